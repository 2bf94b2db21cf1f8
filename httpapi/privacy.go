package httpapi

import (
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/store"
)

func (s *Server) openCase(w http.ResponseWriter, r *http.Request) {
	var req node.CaseRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.node.OpenCase(r.Context(), tenantOf(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) listCases(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.CaseFilter{Status: q.Get("status"), Before: q.Get("before")}
	var err error
	f.DueBefore, err = queryTime(q.Get("due_before"), "due_before")
	if err == nil {
		f.Limit, err = queryLimit(q.Get("limit"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cases, err := s.node.Cases(r.Context(), tenantOf(r), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cases": cases})
}

func queryLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, call.Errorf(call.Invalid, "limit: must be between 1 and 1000")
	}
	return n, nil
}

func (s *Server) getCase(w http.ResponseWriter, r *http.Request) {
	c, err := s.node.Case(r.Context(), tenantOf(r), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) stepCase(w http.ResponseWriter, r *http.Request) {
	var step node.CaseStep
	if err := s.decode(w, r, &step); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.node.StepCase(r.Context(), tenantOf(r), r.PathValue("id"), step)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) fulfilCase(w http.ResponseWriter, r *http.Request) {
	var opts node.FulfilOptions // the body is optional
	if r.ContentLength != 0 {
		if err := s.decode(w, r, &opts); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	c, err := s.node.Fulfil(r.Context(), tenantOf(r), r.PathValue("id"), opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) casePackage(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	b, err := s.node.CasePackage(r.Context(), tenantOf(r), r.PathValue("id"), format)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ct, ext := "application/json", "json"
	if format == "csv" {
		ct, ext = "text/csv; charset=utf-8", "csv"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", `attachment; filename="`+r.PathValue("id")+`.`+ext+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func (s *Server) listHolds(w http.ResponseWriter, r *http.Request) {
	holds, err := s.node.Holds(r.Context(), tenantOf(r), r.URL.Query().Get("active") == "true")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"holds": holds})
}

func (s *Server) placeHold(w http.ResponseWriter, r *http.Request) {
	var req node.HoldRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	h, err := s.node.PlaceHold(r.Context(), tenantOf(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

func (s *Server) liftHold(w http.ResponseWriter, r *http.Request) {
	if err := s.node.LiftHold(r.Context(), tenantOf(r), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type consentRequest struct {
	node.SubjectRef
	Purpose string `json:"purpose"`
	Given   bool   `json:"given"`
	Source  string `json:"source,omitempty"`
}

func (s *Server) recordConsent(w http.ResponseWriter, r *http.Request) {
	var req consentRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.node.RecordConsent(r.Context(), tenantOf(r), req.SubjectRef, req.Purpose, req.Given, req.Source); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getRetention(w http.ResponseWriter, r *http.Request) {
	ret, err := s.node.Retention(r.Context(), tenantOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ret)
}

func (s *Server) putRetention(w http.ResponseWriter, r *http.Request) {
	var ret privacy.Retention
	if err := s.decode(w, r, &ret); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.node.PutRetention(r.Context(), tenantOf(r), ret); err != nil {
		s.fail(w, r, err)
		return
	}
	s.getRetention(w, r)
}

func (s *Server) records(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"records": privacy.Records()})
}

type auditEntryJSON struct {
	Seq    int64  `json:"seq"`
	At     string `json:"at"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Object string `json:"object,omitempty"`
	Detail string `json:"detail,omitempty"`
	Hash   string `json:"hash"`
}

func (s *Server) auditEntries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AuditFilter{ActionPrefix: q.Get("action"), Actor: q.Get("actor")}
	var err error
	if f.From, err = queryTime(q.Get("from"), "from"); err == nil {
		if f.To, err = queryTime(q.Get("to"), "to"); err == nil {
			f.Limit, err = queryLimit(q.Get("limit"))
		}
	}
	if err == nil && q.Get("after") != "" {
		if f.After, err = strconv.ParseInt(q.Get("after"), 10, 64); err != nil || f.After < 0 {
			err = call.Errorf(call.Invalid, "after: must be a seq from a previous page")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	es, err := s.node.AuditEntries(r.Context(), tenantOf(r), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]auditEntryJSON, len(es))
	for i, e := range es {
		out[i] = auditEntryJSON{Seq: e.Seq, At: e.At.UTC().Format("2006-01-02T15:04:05.000000Z"), Actor: e.Actor, Action: e.Action, Object: e.Object, Detail: e.Detail, Hash: hexString(e.Hash)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	rep, err := s.node.VerifyAudit(r.Context(), tenantOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := map[string]any{
		"ok": rep.OK(), "first": rep.First, "last": rep.Last, "entries": rep.Entries,
		"checkpoints": rep.Checkpoints, "last_checkpoint": rep.LastCheckpoint,
	}
	if rep.Break != nil {
		out["break"] = map[string]any{"seq": rep.Break.Seq, "kind": rep.Break.Kind, "detail": rep.Break.Detail}
	}
	writeJSON(w, http.StatusOK, out)
}

type keyRequest struct {
	Name string    `json:"name"`
	Role call.Role `json:"role"`
}

func (s *Server) newKey(w http.ResponseWriter, r *http.Request) {
	var req keyRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	key, err := s.node.NewAPIKey(r.Context(), tenantOf(r), req.Name, req.Role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]string{"name": req.Name, "role": string(req.Role), "key": key})
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
