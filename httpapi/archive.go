package httpapi

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/archive"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/store"
)

// The compliance archive's routes (docs/archive.md). Recorder keys ingest
// and see only their uploads' status; compliance officers read, and every
// read names a reason (X-Reason header or reason parameter) that is
// audited.

// mediaTimeout is how long one media request (an upload append, a
// playback, an export download) may take, overriding the server's read
// and write timeouts, which are sized for JSON.
const mediaTimeout = time.Hour

// Unwrap lets http.ResponseController reach the connection under the
// request log's wrapper (to lift the deadlines for media).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// reason is the access reason of a compliance officer's read.
func reason(r *http.Request) string {
	if v := r.Header.Get("X-Reason"); v != "" {
		return v
	}
	return r.URL.Query().Get("reason")
}

func (s *Server) putArchiveUser(w http.ResponseWriter, r *http.Request) {
	var in node.ArchiveUserInput
	if err := s.decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.node.PutArchiveUser(r.Context(), tenantOf(r), r.PathValue("id"), in); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type contactsRequest struct {
	Contacts []node.ArchiveContact `json:"contacts"`
}

func (s *Server) putArchiveContacts(w http.ResponseWriter, r *http.Request) {
	var req contactsRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.node.PutArchiveContacts(r.Context(), tenantOf(r), r.PathValue("id"), req.Contacts); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) offboardArchiveUser(w http.ResponseWriter, r *http.Request) {
	if err := s.node.OffboardArchiveUser(r.Context(), tenantOf(r), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) ingestArchiveCall(w http.ResponseWriter, r *http.Request) {
	s.ingestArchive(w, r, store.ArchiveCall)
}

func (s *Server) ingestArchiveSMS(w http.ResponseWriter, r *http.Request) {
	s.ingestArchive(w, r, store.ArchiveSMS)
}

// ingestArchive answers 201 for a new item, 200 for a repeat of a client
// id (the stored item's receipt).
func (s *Server) ingestArchive(w http.ResponseWriter, r *http.Request, kind string) {
	var in node.ArchiveRecord
	if err := s.decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	rc, err := s.node.IngestArchive(r.Context(), tenantOf(r), kind, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, created(rc.Created), rc)
}

func created(c bool) int {
	if c {
		return http.StatusCreated
	}
	return http.StatusOK
}

func (s *Server) beginRecording(w http.ResponseWriter, r *http.Request) {
	var req node.RecordingRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	st, isNew, err := s.node.BeginRecording(r.Context(), tenantOf(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeUpload(w, created(isNew), st)
}

func writeUpload(w http.ResponseWriter, code int, st node.UploadStatus) {
	w.Header().Set("Upload-Offset", strconv.FormatInt(st.Offset, 10))
	writeJSON(w, code, st)
}

func (s *Server) uploadStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.node.RecordingStatus(r.Context(), tenantOf(r), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeUpload(w, http.StatusOK, st)
}

// appendUpload appends the body (raw bytes) at the Upload-Offset header's
// offset. A wrong offset is 409 naming the expected one (and the
// Upload-Offset header of the answer holds it).
func (s *Server) appendUpload(w http.ResponseWriter, r *http.Request) {
	off, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || off < 0 {
		off = -1 // Invalid, once the upload is known to be the tenant's
	}
	// The server's read timeout suits JSON, not a recording: allow this
	// body mediaTimeout (a slower client resumes from the offset).
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(mediaTimeout))
	st, err := s.node.AppendRecording(r.Context(), tenantOf(r), r.PathValue("id"), off, r.Body)
	if err != nil {
		if st.UploadID != "" {
			w.Header().Set("Upload-Offset", strconv.FormatInt(st.Offset, 10))
		}
		if call.ErrorCode(err) == call.Internal && st.UploadID != "" {
			// The body broke off (a dropped connection): what arrived is
			// kept; the client resumes from the offset.
			s.log.Info("archive upload interrupted", "upload", st.UploadID, "offset", st.Offset)
		}
		s.fail(w, r, err)
		return
	}
	writeUpload(w, http.StatusOK, st)
}

type completeRequest struct {
	SHA256 string `json:"sha256"`
}

func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request) {
	var req completeRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	rc, err := s.node.CompleteRecording(r.Context(), tenantOf(r), r.PathValue("id"), req.SHA256)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, created(rc.Created), rc)
}

func (s *Server) getArchiveUser(w http.ResponseWriter, r *http.Request) {
	u, cs, err := s.node.ArchiveUserView(r.Context(), tenantOf(r), r.PathValue("id"), reason(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": u, "contacts": cs})
}

func (s *Server) searchArchive(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := node.ArchiveSearch{UserID: q.Get("user"), Number: q.Get("number"), Direction: q.Get("direction"),
		Kind: q.Get("kind"), Text: q.Get("text"), BeforeID: q.Get("before_id")}
	var err error
	f.From, err = queryTime(q.Get("from"), "from")
	if err == nil {
		f.To, err = queryTime(q.Get("to"), "to")
	}
	if err == nil {
		f.BeforeStartedAt, err = queryTime(q.Get("before_time"), "before_time")
	}
	if err == nil {
		f.Limit, err = queryLimit(q.Get("limit"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	items, err := s.node.SearchArchive(r.Context(), tenantOf(r), f, reason(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *Server) getArchiveItem(w http.ResponseWriter, r *http.Request) {
	it, err := s.node.ArchiveItem(r.Context(), tenantOf(r), r.PathValue("id"), reason(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, it)
}

// tamperWatch remembers the first read error of a media stream, so a
// chunk that fails authentication during a response is logged (the
// status is sent by then; the response is cut short).
type tamperWatch struct {
	*archive.Media
	err error
}

func (t *tamperWatch) Read(p []byte) (int, error) {
	n, err := t.Media.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// playRecording streams the decrypted recording with HTTP range support.
func (s *Server) playRecording(w http.ResponseWriter, r *http.Request) {
	rec, err := s.node.PlayRecording(r.Context(), tenantOf(r), r.PathValue("id"), reason(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rec.Media.Close()
	w.Header().Set("Content-Type", rec.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("ETag", `"`+rec.SHA256+`"`)
	m := &tamperWatch{Media: rec.Media}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(mediaTimeout))
	http.ServeContent(w, r, "", rec.Created, m)
	if m.err != nil {
		s.log.Error("archive playback stopped", "item", r.PathValue("id"), "err", m.err)
	}
}

func (s *Server) exportArchive(w http.ResponseWriter, r *http.Request) {
	var req node.ExportRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	rc, err := s.node.ExportArchive(r.Context(), tenantOf(r), req, reason(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rc)
}

func (s *Server) downloadExport(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m, err := s.node.OpenExport(r.Context(), tenantOf(r), id, reason(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer m.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="ringfence-export-`+id+`.zip"`)
	w.Header().Set("Cache-Control", "no-store")
	tw := &tamperWatch{Media: m}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(mediaTimeout))
	http.ServeContent(w, r, "", time.Time{}, tw)
	if tw.err != nil {
		s.log.Error("archive export download stopped", "export", id, "err", tw.err)
	}
}

func (s *Server) listArchiveHolds(w http.ResponseWriter, r *http.Request) {
	hs, err := s.node.ArchiveHolds(r.Context(), tenantOf(r), r.URL.Query().Get("active") == "true")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"holds": hs})
}

func (s *Server) placeArchiveHold(w http.ResponseWriter, r *http.Request) {
	var req node.ArchiveHoldRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	h, err := s.node.PlaceArchiveHold(r.Context(), tenantOf(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

func (s *Server) liftArchiveHold(w http.ResponseWriter, r *http.Request) {
	if err := s.node.LiftArchiveHold(r.Context(), tenantOf(r), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getArchiveRetention(w http.ResponseWriter, r *http.Request) {
	rt, err := s.node.ArchiveRetention(r.Context(), tenantOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rt)
}

func (s *Server) putArchiveRetention(w http.ResponseWriter, r *http.Request) {
	var rt node.ArchiveRetention
	if err := s.decode(w, r, &rt); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.node.PutArchiveRetention(r.Context(), tenantOf(r), rt); err != nil {
		s.fail(w, r, err)
		return
	}
	s.getArchiveRetention(w, r)
}

func (s *Server) sealArchiveDay(w http.ResponseWriter, r *http.Request) {
	dc, err := s.node.SealArchiveDay(r.Context(), tenantOf(r), r.PathValue("day"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, dc)
}
