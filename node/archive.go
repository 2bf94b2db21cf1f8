package node

// The compliance archive (docs/archive.md): a tenant's recordings, SMS
// messages, call records and the directory of users and contacts they
// relate to. Recorder clients ingest; only the tenant's compliance
// officers read, and every read names a reason that goes into the audit
// log. Media is sealed by package archive in ArchiveBlobs; everything
// else is sealed here and kept by store.Archive.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ringfence/ringfence/archive"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
)

// Limits of archive requests.
const (
	maxArchiveText     = 16 << 10 // bytes of one SMS text
	maxArchiveField    = 256      // bytes of a name, company, device type, result
	maxArchiveExport   = 1000     // items of one export
	archiveClientIDMax = 128      // bytes of a client message id
)

// Recording content types accepted (WAV, Opus, MP3).
var archiveMediaTypes = map[string]bool{
	"audio/wav": true, "audio/x-wav": true, "audio/wave": true,
	"audio/ogg": true, "audio/opus": true,
	"audio/mpeg": true,
}

// ArchiveUserInput is a directory user as a recorder client sends it.
type ArchiveUserInput struct {
	Name            string   `json:"name"`
	Company         string   `json:"company,omitempty"`
	BusinessNumbers []string `json:"business_numbers,omitempty"`
	PersonalNumbers []string `json:"personal_numbers,omitempty"`
	DeviceType      string   `json:"device_type,omitempty"`
}

// ArchiveUser is a directory user as a compliance officer sees it:
// numbers in E.164.
type ArchiveUser struct {
	ID string `json:"id"`
	ArchiveUserInput
	OffboardedAt *time.Time `json:"offboarded_at,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
}

// ArchiveContact is one entry of a user's contact list.
type ArchiveContact struct {
	ID      string   `json:"id"`
	Name    string   `json:"name,omitempty"`
	Numbers []string `json:"numbers"`
}

// ArchiveRecord is a call record or an SMS message as a recorder client
// sends it. Parties are the other parties' numbers (the user's own number
// is known from the directory); a call has a duration and result, an SMS a
// text.
type ArchiveRecord struct {
	ClientID  string    `json:"client_id"`
	UserID    string    `json:"user_id"`
	Direction string    `json:"direction"`
	Parties   []string  `json:"parties"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	DurationS int64     `json:"duration_s,omitempty"`
	Result    string    `json:"result,omitempty"`
	Text      string    `json:"text,omitempty"`
}

// RecordingRequest begins the upload of a call's recording.
type RecordingRequest struct {
	ClientID    string `json:"client_id"`
	CallID      string `json:"call_id"` // the call record's archive item id
	ContentType string `json:"content_type"`
}

// ArchiveReceipt is what an ingest returns to the recorder: no content.
type ArchiveReceipt struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	Kind     string `json:"kind"`
	SHA256   string `json:"sha256"`
	ChainDay string `json:"chain_day"`
	Created  bool   `json:"created"`
}

// UploadStatus is the state of a recording upload.
type UploadStatus struct {
	UploadID string `json:"upload_id"`
	ItemID   string `json:"item_id"` // the recording's item id, once complete and before
	Offset   int64  `json:"offset"`  // bytes received: the next append starts here
	Done     bool   `json:"done"`
	SHA256   string `json:"sha256,omitempty"` // once done
}

// ArchiveEntry is an archived item as a compliance officer sees it.
type ArchiveEntry struct {
	ID          string    `json:"id"`
	ClientID    string    `json:"client_id"`
	Kind        string    `json:"kind"`
	UserID      string    `json:"user_id"`
	Direction   string    `json:"direction"`
	Parties     []string  `json:"parties"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
	DurationS   int64     `json:"duration_s,omitempty"`
	Result      string    `json:"result,omitempty"`
	Text        string    `json:"text,omitempty"`
	CallID      string    `json:"call_id,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Size        int64     `json:"size,omitempty"`
	SHA256      string    `json:"sha256"`
	ChainDay    string    `json:"chain_day"`
	CreatedAt   time.Time `json:"created_at"`
}

// archiveContent is the canonical JSON of an item: what is sealed in the
// store and, for calls and SMS, what SHA256 is taken of (and what an
// export holds). Field order is fixed by the struct.
type archiveContent struct {
	Kind        string    `json:"kind"`
	ClientID    string    `json:"client_id"`
	UserID      string    `json:"user_id"`
	Direction   string    `json:"direction"`
	Parties     []string  `json:"parties"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
	DurationS   int64     `json:"duration_s,omitempty"`
	Result      string    `json:"result,omitempty"`
	Text        string    `json:"text,omitempty"`
	CallID      string    `json:"call_id,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Size        int64     `json:"size,omitempty"`
	MediaSHA256 string    `json:"media_sha256,omitempty"`
}

// uploadState is an upload session's sealed state.
type uploadState struct {
	CallID      string `json:"call_id"`
	ContentType string `json:"content_type"`
}

func (n *Node) archiveTenant(tenant string) (archive.Tenant, *seal.TenantKeys, error) {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return archive.Tenant{}, nil, err
	}
	return archive.Tenant{ID: tenant, Keys: k}, k, nil
}

// archiveTokenKey is the tenant's key for SMS search tokens: a keyed
// derivation from the tenant's pseudonym key under a label no number
// pseudonym uses, so a token never equals a number's pseudonym and the
// pseudonym key itself never keys a token.
func archiveTokenKey(k *seal.TenantKeys) []byte {
	key := k.Pseudonym("archive tokens v1")
	return key[:]
}

// archiveNumbers normalises numbers and returns them in E.164 with their
// pseudonyms; field names them in errors.
func (n *Node) archiveNumbers(tenant string, k *seal.TenantKeys, raws []string, field string) ([]string, [][]byte, error) {
	if len(raws) > store.MaxArchiveNumbers {
		return nil, nil, call.Errorf(call.Invalid, "%s: at most %d numbers", field, store.MaxArchiveNumbers)
	}
	e164 := make([]string, 0, len(raws))
	ps := make([][]byte, 0, len(raws))
	for _, raw := range raws {
		num, err := n.listNumber(tenant, raw, "", field)
		if err != nil {
			return nil, nil, err
		}
		e164 = append(e164, num.E164)
		ps = append(ps, pseudonym(k, num))
	}
	return e164, ps, nil
}

func checkArchiveID(id, field string) error {
	if id == "" || len(id) > archiveClientIDMax || strings.ContainsAny(id, "/\x00") {
		return call.Errorf(call.Invalid, "%s: 1-%d characters, no '/'", field, archiveClientIDMax)
	}
	return nil
}

func checkArchiveField(v, field string) error {
	if len(v) > maxArchiveField {
		return call.Errorf(call.Invalid, "%s: at most %d bytes", field, maxArchiveField)
	}
	return nil
}

// PutArchiveUser stores a directory user (replacing a stored one's details
// and numbers). The details are sealed; numbers are found by pseudonym.
func (n *Node) PutArchiveUser(ctx context.Context, tenant, id string, in ArchiveUserInput) error {
	_, k, err := n.archiveTenant(tenant)
	if err != nil {
		return err
	}
	if err := checkArchiveID(id, "user id"); err != nil {
		return err
	}
	for f, v := range map[string]string{"name": in.Name, "company": in.Company, "device_type": in.DeviceType} {
		if err := checkArchiveField(v, f); err != nil {
			return err
		}
	}
	var ps [][]byte
	in.BusinessNumbers, ps, err = n.archiveNumbers(tenant, k, in.BusinessNumbers, "business_numbers")
	if err != nil {
		return err
	}
	var pp [][]byte
	in.PersonalNumbers, pp, err = n.archiveNumbers(tenant, k, in.PersonalNumbers, "personal_numbers")
	if err != nil {
		return err
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return n.store.PutArchiveUser(ctx, store.ArchiveUser{Tenant: tenant, ID: id,
		Sealed: k.Seal(b, aad("archive.user", tenant, id)), Numbers: append(ps, pp...), CreatedAt: n.now().UTC()})
}

// OffboardArchiveUser marks a user offboarded; their items stay until
// retention removes them. Audited (archive.offboard).
func (n *Node) OffboardArchiveUser(ctx context.Context, tenant, id string) error {
	if _, err := n.tenantKeys(tenant); err != nil {
		return err
	}
	if err := n.store.OffboardArchiveUser(ctx, tenant, id, n.now().UTC()); err != nil {
		if call.ErrorCode(err) == call.NotFound {
			return call.Errorf(call.NotFound, "no such archive user")
		}
		return err
	}
	return n.audit(ctx, tenant, "archive.offboard", "user:"+id, nil)
}

// PutArchiveContacts replaces a user's contact list.
func (n *Node) PutArchiveContacts(ctx context.Context, tenant, userID string, contacts []ArchiveContact) error {
	_, k, err := n.archiveTenant(tenant)
	if err != nil {
		return err
	}
	if len(contacts) > store.MaxArchiveContacts {
		return call.Errorf(call.Invalid, "contacts: at most %d", store.MaxArchiveContacts)
	}
	rows := make([]store.ArchiveContact, 0, len(contacts))
	for _, c := range contacts {
		if err := checkArchiveID(c.ID, "contacts: id"); err != nil {
			return err
		}
		if err := checkArchiveField(c.Name, "contacts: name"); err != nil {
			return err
		}
		var ps [][]byte
		c.Numbers, ps, err = n.archiveNumbers(tenant, k, c.Numbers, "contacts: numbers")
		if err != nil {
			return err
		}
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		rows = append(rows, store.ArchiveContact{ID: c.ID, Numbers: ps,
			Sealed: k.Seal(b, aad("archive.contact", tenant, userID+"/"+c.ID)), CreatedAt: n.now().UTC()})
	}
	err = n.store.PutArchiveContacts(ctx, tenant, userID, rows)
	if call.ErrorCode(err) == call.NotFound {
		return call.Errorf(call.NotFound, "no such archive user")
	}
	return err
}

// IngestArchive stores a call record (kind store.ArchiveCall) or an SMS
// message (store.ArchiveSMS), idempotently by its client id: a repeat
// returns the stored item's receipt with Created false. The item's SHA256
// is that of its canonical JSON, which is sealed in the store.
func (n *Node) IngestArchive(ctx context.Context, tenant, kind string, in ArchiveRecord) (ArchiveReceipt, error) {
	_, k, err := n.archiveTenant(tenant)
	if err != nil {
		return ArchiveReceipt{}, err
	}
	if kind != store.ArchiveCall && kind != store.ArchiveSMS {
		return ArchiveReceipt{}, call.Errorf(call.Invalid, "kind: must be call or sms")
	}
	if err := checkArchiveID(in.ClientID, "client_id"); err != nil {
		return ArchiveReceipt{}, err
	}
	if err := checkArchiveID(in.UserID, "user_id"); err != nil {
		return ArchiveReceipt{}, err
	}
	if err := store.CheckArchiveDirection(in.Direction); err != nil {
		return ArchiveReceipt{}, err
	}
	if in.StartedAt.IsZero() {
		return ArchiveReceipt{}, call.Errorf(call.Invalid, "started_at: required")
	}
	if len(in.Parties) == 0 {
		return ArchiveReceipt{}, call.Errorf(call.Invalid, "parties: at least one number")
	}
	if err := checkArchiveField(in.Result, "result"); err != nil {
		return ArchiveReceipt{}, err
	}
	c := archiveContent{Kind: kind, ClientID: in.ClientID, UserID: in.UserID, Direction: in.Direction,
		StartedAt: in.StartedAt.UTC()}
	switch kind {
	case store.ArchiveCall:
		if in.Text != "" {
			return ArchiveReceipt{}, call.Errorf(call.Invalid, "text: only an SMS has a text")
		}
		if in.DurationS < 0 {
			return ArchiveReceipt{}, call.Errorf(call.Invalid, "duration_s: must not be negative")
		}
		if !in.EndedAt.IsZero() {
			if in.EndedAt.Before(in.StartedAt) {
				return ArchiveReceipt{}, call.Errorf(call.Invalid, "ended_at: before started_at")
			}
			c.EndedAt = in.EndedAt.UTC()
			if in.DurationS == 0 {
				in.DurationS = int64(in.EndedAt.Sub(in.StartedAt) / time.Second)
			}
		}
		c.DurationS, c.Result = in.DurationS, in.Result
	case store.ArchiveSMS:
		if in.DurationS != 0 || in.Result != "" || !in.EndedAt.IsZero() {
			return ArchiveReceipt{}, call.Errorf(call.Invalid, "duration_s, result, ended_at: only a call has them")
		}
		if len(in.Text) > maxArchiveText {
			return ArchiveReceipt{}, call.Errorf(call.Invalid, "text: at most %d bytes", maxArchiveText)
		}
		c.Text = in.Text
	}
	var parties [][]byte
	c.Parties, parties, err = n.archiveNumbers(tenant, k, in.Parties, "parties")
	if err != nil {
		return ArchiveReceipt{}, err
	}
	var tokens [][]byte
	if c.Text != "" {
		tokens = store.ArchiveTokens(archiveTokenKey(k), c.Text)
	}
	it := store.ArchiveItem{Tenant: tenant, ClientID: c.ClientID, Kind: kind, UserID: c.UserID,
		Direction: c.Direction, StartedAt: c.StartedAt, Duration: time.Duration(c.DurationS) * time.Second,
		Result: c.Result, Parties: parties, Tokens: tokens}
	return n.putArchiveItem(ctx, k, it, c)
}

// putArchiveItem seals c into it, hashes it (unless it.SHA256 is set, as a
// recording's is) and stores it idempotently.
func (n *Node) putArchiveItem(ctx context.Context, k *seal.TenantKeys, it store.ArchiveItem, c archiveContent) (ArchiveReceipt, error) {
	now := n.now().UTC()
	if it.ID == "" {
		it.ID = n.ids.Next(now)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return ArchiveReceipt{}, err
	}
	if it.SHA256 == "" {
		sum := sha256.Sum256(b)
		it.SHA256 = hex.EncodeToString(sum[:])
	}
	it.Sealed = k.Seal(b, aad("archive.item", it.Tenant, it.ID))
	it.ChainDay = now.Format(time.DateOnly)
	it.CreatedAt = now
	stored, created, err := n.store.PutArchiveItem(ctx, it)
	if err != nil {
		return ArchiveReceipt{}, err
	}
	return ArchiveReceipt{ID: stored.ID, ClientID: stored.ClientID, Kind: stored.Kind, SHA256: stored.SHA256,
		ChainDay: stored.ChainDay, Created: created}, nil
}

func (n *Node) uploads() (*archive.Uploads, error) {
	if n.cfg.ArchiveUploads == nil || n.cfg.ArchiveBlobs == nil {
		return nil, call.Errorf(call.Unavailable, "the archive's media store is not configured on this node")
	}
	return n.cfg.ArchiveUploads, nil
}

func (n *Node) blobs() (archive.Blobs, error) {
	if n.cfg.ArchiveBlobs == nil {
		return nil, call.Errorf(call.Unavailable, "the archive's media store is not configured on this node")
	}
	return n.cfg.ArchiveBlobs, nil
}

// BeginRecording starts the upload of a call's recording, or returns the
// status of the upload already begun with the same client id (from which
// the client resumes). NotFound if the call is not one of the tenant's
// call records.
func (n *Node) BeginRecording(ctx context.Context, tenant string, req RecordingRequest) (UploadStatus, bool, error) {
	us, err := n.uploads()
	if err != nil {
		return UploadStatus{}, false, err
	}
	t, k, err := n.archiveTenant(tenant)
	if err != nil {
		return UploadStatus{}, false, err
	}
	if err := checkArchiveID(req.ClientID, "client_id"); err != nil {
		return UploadStatus{}, false, err
	}
	if !archiveMediaTypes[req.ContentType] {
		return UploadStatus{}, false, call.Errorf(call.Invalid, "content_type: must be audio/wav, audio/ogg (Opus) or audio/mpeg (MP3)")
	}
	if u, err := n.store.ArchiveUploadByClient(ctx, tenant, req.ClientID); err == nil {
		st, err := n.uploadStatus(t, k, u)
		return st, false, err
	} else if call.ErrorCode(err) != call.NotFound {
		return UploadStatus{}, false, err
	}
	c, err := n.store.ArchiveItem(ctx, tenant, req.CallID)
	if err != nil || c.Kind != store.ArchiveCall {
		if err == nil || call.ErrorCode(err) == call.NotFound {
			return UploadStatus{}, false, call.Errorf(call.NotFound, "call_id: no such archived call record")
		}
		return UploadStatus{}, false, err
	}
	now := n.now().UTC()
	sess := store.ArchiveUpload{Tenant: tenant, ID: n.ids.Next(now), ItemID: n.ids.Next(now), ClientID: req.ClientID,
		CreatedAt: now, UpdatedAt: now}
	b, _ := json.Marshal(uploadState{CallID: req.CallID, ContentType: req.ContentType})
	sess.State = k.Seal(b, aad("archive.upload", tenant, sess.ID))
	if _, err := us.Begin(t, sess.ID, sess.ItemID); err != nil {
		return UploadStatus{}, false, err
	}
	if err := n.store.PutArchiveUpload(ctx, sess); err != nil {
		us.Discard(t, sess.ID)
		if call.ErrorCode(err) == call.Conflict { // a concurrent begin won
			if u, err := n.store.ArchiveUploadByClient(ctx, tenant, req.ClientID); err == nil {
				st, err := n.uploadStatus(t, k, u)
				return st, false, err
			}
		}
		return UploadStatus{}, false, err
	}
	return UploadStatus{UploadID: sess.ID, ItemID: sess.ItemID}, true, nil
}

func (n *Node) uploadStatus(t archive.Tenant, k *seal.TenantKeys, u store.ArchiveUpload) (UploadStatus, error) {
	us, err := n.uploads()
	if err != nil {
		return UploadStatus{}, err
	}
	s, err := us.Status(t, u.ID)
	if err != nil {
		return UploadStatus{}, err
	}
	out := UploadStatus{UploadID: u.ID, ItemID: u.ItemID, Offset: s.Offset, Done: s.Done}
	if s.Done {
		out.SHA256 = hex.EncodeToString(s.SHA256[:])
	}
	return out, nil
}

// session returns an upload session of the tenant; NotFound (not naming
// the id) if it has none of that id.
func (n *Node) session(ctx context.Context, tenant, uploadID string) (store.ArchiveUpload, error) {
	u, err := n.store.ArchiveUpload(ctx, tenant, uploadID)
	if call.ErrorCode(err) == call.NotFound {
		return u, call.Errorf(call.NotFound, "no such upload")
	}
	return u, err
}

// RecordingStatus returns an upload's status: the offset to resume from.
func (n *Node) RecordingStatus(ctx context.Context, tenant, uploadID string) (UploadStatus, error) {
	t, k, err := n.archiveTenant(tenant)
	if err != nil {
		return UploadStatus{}, err
	}
	u, err := n.session(ctx, tenant, uploadID)
	if err != nil {
		return UploadStatus{}, err
	}
	return n.uploadStatus(t, k, u)
}

// AppendRecording adds body at offset (which must be the upload's
// offset, else Conflict). What arrives before body fails is kept: the
// returned status has the new offset even with an error.
func (n *Node) AppendRecording(ctx context.Context, tenant, uploadID string, offset int64, body io.Reader) (UploadStatus, error) {
	t, k, err := n.archiveTenant(tenant)
	if err != nil {
		return UploadStatus{}, err
	}
	u, err := n.session(ctx, tenant, uploadID)
	if err != nil {
		return UploadStatus{}, err
	}
	if offset < 0 {
		return UploadStatus{}, call.Errorf(call.Invalid, "offset: required, the byte offset to append at (the upload's status says where)")
	}
	us, err := n.uploads()
	if err != nil {
		return UploadStatus{}, err
	}
	s, aerr := us.Append(t, uploadID, offset, body)
	if s.UploadID == "" { // nothing committed
		return UploadStatus{}, aerr
	}
	if s.Offset > u.Offset {
		u.Offset, u.UpdatedAt = s.Offset, n.now().UTC()
		if err := n.store.PutArchiveUpload(ctx, u); err != nil && aerr == nil {
			aerr = err
		}
	}
	st, err := n.uploadStatus(t, k, u)
	if err != nil {
		return UploadStatus{}, err
	}
	return st, aerr
}

// CompleteRecording checks the SHA-256 (hex) of everything received,
// stores the sealed blob and the recording's item (tied to its call:
// user, direction, parties and start time are the call's). Completing
// again returns the same receipt.
func (n *Node) CompleteRecording(ctx context.Context, tenant, uploadID, sumHex string) (ArchiveReceipt, error) {
	t, k, err := n.archiveTenant(tenant)
	if err != nil {
		return ArchiveReceipt{}, err
	}
	u, err := n.session(ctx, tenant, uploadID)
	if err != nil {
		return ArchiveReceipt{}, err
	}
	var sum [sha256.Size]byte
	if b, err := hex.DecodeString(sumHex); err != nil || len(b) != sha256.Size {
		return ArchiveReceipt{}, call.Errorf(call.Invalid, "sha256: must be 64 hex digits")
	} else {
		copy(sum[:], b)
	}
	us, err := n.uploads()
	if err != nil {
		return ArchiveReceipt{}, err
	}
	b, err := k.Open(u.State, aad("archive.upload", tenant, u.ID))
	if err != nil {
		return ArchiveReceipt{}, fmt.Errorf("open upload state: %w", err)
	}
	var state uploadState
	if err := json.Unmarshal(b, &state); err != nil {
		return ArchiveReceipt{}, fmt.Errorf("decode upload state: %w", err)
	}
	s, err := us.Complete(t, uploadID, sum)
	if err != nil {
		if call.ErrorCode(err) == call.Invalid { // refused and removed: forget the session too
			n.store.DeleteArchiveUpload(ctx, tenant, uploadID)
		}
		return ArchiveReceipt{}, err
	}
	c, err := n.store.ArchiveItem(ctx, tenant, state.CallID)
	if err != nil {
		return ArchiveReceipt{}, fmt.Errorf("read the recording's call: %w", err)
	}
	cc, err := n.openItem(k, c)
	if err != nil {
		return ArchiveReceipt{}, err
	}
	media := hex.EncodeToString(s.SHA256[:])
	content := archiveContent{Kind: store.ArchiveRecording, ClientID: u.ClientID, UserID: c.UserID,
		Direction: c.Direction, Parties: cc.Parties, StartedAt: c.StartedAt, DurationS: cc.DurationS,
		CallID: c.ID, ContentType: state.ContentType, Size: s.Offset, MediaSHA256: media}
	it := store.ArchiveItem{Tenant: tenant, ID: u.ItemID, ClientID: u.ClientID, Kind: store.ArchiveRecording,
		UserID: c.UserID, Direction: c.Direction, StartedAt: c.StartedAt, Duration: c.Duration,
		Parties: c.Parties, BlobID: s.BlobID, CallID: c.ID, Size: s.Offset, SHA256: media}
	return n.putArchiveItem(ctx, k, it, content)
}

// openItem opens an item's sealed canonical JSON.
func (n *Node) openItem(k *seal.TenantKeys, it store.ArchiveItem) (archiveContent, error) {
	b, err := k.Open(it.Sealed, aad("archive.item", it.Tenant, it.ID))
	if err != nil {
		return archiveContent{}, fmt.Errorf("open archive item %s: %w", it.ID, err)
	}
	var c archiveContent
	if err := json.Unmarshal(b, &c); err != nil {
		return archiveContent{}, fmt.Errorf("decode archive item %s: %w", it.ID, err)
	}
	return c, nil
}

func (n *Node) entry(k *seal.TenantKeys, it store.ArchiveItem) (ArchiveEntry, error) {
	c, err := n.openItem(k, it)
	if err != nil {
		return ArchiveEntry{}, err
	}
	if c.Parties == nil {
		c.Parties = []string{}
	}
	return ArchiveEntry{ID: it.ID, ClientID: it.ClientID, Kind: it.Kind, UserID: it.UserID, Direction: it.Direction,
		Parties: c.Parties, StartedAt: it.StartedAt, EndedAt: c.EndedAt, DurationS: c.DurationS, Result: c.Result,
		Text: c.Text, CallID: it.CallID, ContentType: c.ContentType, Size: it.Size, SHA256: it.SHA256,
		ChainDay: it.ChainDay, CreatedAt: it.CreatedAt}, nil
}

// checkAccessReason requires the reason a compliance officer gives for a
// read; it goes into the audit log.
func checkAccessReason(reason string) error {
	if strings.TrimSpace(reason) == "" {
		return call.Errorf(call.Invalid, "reason: required for every archive read (X-Reason header or reason parameter)")
	}
	return checkReason(reason, "reason")
}

// ArchiveSearch selects items; zero fields do not filter.
type ArchiveSearch struct {
	UserID    string
	Number    string // a party's number, any format the tenant's region reads
	Direction string
	Kind      string
	From, To  time.Time
	Text      string // every word must be in the SMS's text
	// Paging: the started_at and id of the last item of the previous page.
	BeforeStartedAt time.Time
	BeforeID        string
	Limit           int
}

// SearchArchive returns the matching items, newest first, opened. The
// reason is required. Audited (archive.search, with the reason, which
// filters were used, never their values, and the ids shown).
func (n *Node) SearchArchive(ctx context.Context, tenant string, s ArchiveSearch, reason string) ([]ArchiveEntry, error) {
	_, k, err := n.archiveReader(tenant, reason)
	if err != nil {
		return nil, err
	}
	q := store.ArchiveQuery{UserID: s.UserID, Direction: s.Direction, Kind: s.Kind, From: s.From, To: s.To,
		BeforeStartedAt: s.BeforeStartedAt, BeforeID: s.BeforeID, Limit: s.Limit}
	var used []string
	if s.UserID != "" {
		used = append(used, "user")
	}
	if s.Number != "" {
		num, err := n.listNumber(tenant, s.Number, "", "number")
		if err != nil {
			return nil, err
		}
		q.Party = pseudonym(k, num)
		used = append(used, "number")
	}
	if s.Text != "" {
		q.Tokens = store.ArchiveTokens(archiveTokenKey(k), s.Text)
		if len(q.Tokens) == 0 {
			return nil, call.Errorf(call.Invalid, "text: no words to search for")
		}
		used = append(used, "text")
	}
	for f, v := range map[string]bool{"direction": s.Direction != "", "kind": s.Kind != "", "time": !s.From.IsZero() || !s.To.IsZero()} {
		if v {
			used = append(used, f)
		}
	}
	rows, err := n.store.SearchArchive(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	out := make([]ArchiveEntry, 0, len(rows))
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		e, err := n.entry(k, r)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		ids = append(ids, r.ID)
	}
	return out, n.audit(ctx, tenant, "archive.search", "items", map[string]any{"reason": reason, "filters": slices.Sorted(slices.Values(used)), "count": len(ids), "ids": ids})
}

// archiveReader is archiveTenant for a person's read of the archive,
// which must give its reason (checked after the tenant, so an unknown
// tenant is NotFound whatever the reason).
func (n *Node) archiveReader(tenant, reason string) (archive.Tenant, *seal.TenantKeys, error) {
	t, k, err := n.archiveTenant(tenant)
	if err != nil {
		return archive.Tenant{}, nil, err
	}
	return t, k, checkAccessReason(reason)
}

// ArchiveItem returns one item, opened. Audited (archive.view).
func (n *Node) ArchiveItem(ctx context.Context, tenant, id, reason string) (ArchiveEntry, error) {
	_, k, err := n.archiveReader(tenant, reason)
	if err != nil {
		return ArchiveEntry{}, err
	}
	it, err := n.item(ctx, tenant, id)
	if err != nil {
		return ArchiveEntry{}, err
	}
	e, err := n.entry(k, it)
	if err != nil {
		return ArchiveEntry{}, err
	}
	return e, n.audit(ctx, tenant, "archive.view", id, map[string]string{"reason": reason, "kind": it.Kind})
}

func (n *Node) item(ctx context.Context, tenant, id string) (store.ArchiveItem, error) {
	it, err := n.store.ArchiveItem(ctx, tenant, id)
	if call.ErrorCode(err) == call.NotFound {
		return it, call.Errorf(call.NotFound, "no such archive item")
	}
	return it, err
}

// ArchiveUserView returns a directory user with their contacts, opened.
// Audited (archive.view, Object user:<id>).
func (n *Node) ArchiveUserView(ctx context.Context, tenant, id, reason string) (ArchiveUser, []ArchiveContact, error) {
	_, k, err := n.archiveReader(tenant, reason)
	if err != nil {
		return ArchiveUser{}, nil, err
	}
	u, err := n.store.ArchiveUser(ctx, tenant, id)
	if call.ErrorCode(err) == call.NotFound {
		return ArchiveUser{}, nil, call.Errorf(call.NotFound, "no such archive user")
	} else if err != nil {
		return ArchiveUser{}, nil, err
	}
	b, err := k.Open(u.Sealed, aad("archive.user", tenant, id))
	if err != nil {
		return ArchiveUser{}, nil, fmt.Errorf("open archive user: %w", err)
	}
	out := ArchiveUser{ID: id, CreatedAt: u.CreatedAt}
	if err := json.Unmarshal(b, &out.ArchiveUserInput); err != nil {
		return ArchiveUser{}, nil, fmt.Errorf("decode archive user: %w", err)
	}
	if !u.OffboardedAt.IsZero() {
		t := u.OffboardedAt
		out.OffboardedAt = &t
	}
	rows, err := n.store.ArchiveContacts(ctx, tenant, id)
	if err != nil {
		return ArchiveUser{}, nil, err
	}
	contacts := make([]ArchiveContact, 0, len(rows))
	for _, r := range rows {
		b, err := k.Open(r.Sealed, aad("archive.contact", tenant, id+"/"+r.ID))
		if err != nil {
			return ArchiveUser{}, nil, fmt.Errorf("open archive contact: %w", err)
		}
		var c ArchiveContact
		if err := json.Unmarshal(b, &c); err != nil {
			return ArchiveUser{}, nil, fmt.Errorf("decode archive contact: %w", err)
		}
		contacts = append(contacts, c)
	}
	return out, contacts, n.audit(ctx, tenant, "archive.view", "user:"+id, map[string]any{"reason": reason, "contacts": len(contacts)})
}

// Recording is a recording opened for playback: Media decrypts on read
// and authenticates every chunk (a tampered chunk ends the read with
// archive.ErrTampered). The caller closes Media.
type Recording struct {
	Media       *archive.Media
	ContentType string
	Created     time.Time
	SHA256      string
}

// PlayRecording opens a recording item's media. Audited (archive.play).
// A blob that fails authentication at open is an Internal error wrapping
// archive.ErrTampered.
func (n *Node) PlayRecording(ctx context.Context, tenant, id, reason string) (Recording, error) {
	t, k, err := n.archiveReader(tenant, reason)
	if err != nil {
		return Recording{}, err
	}
	it, err := n.item(ctx, tenant, id)
	if err != nil {
		return Recording{}, err
	}
	if it.Kind != store.ArchiveRecording {
		return Recording{}, call.Errorf(call.NotFound, "no such archive recording")
	}
	c, err := n.openItem(k, it)
	if err != nil {
		return Recording{}, err
	}
	blobs, err := n.blobs()
	if err != nil {
		return Recording{}, err
	}
	if err := n.audit(ctx, tenant, "archive.play", id, map[string]string{"reason": reason}); err != nil {
		return Recording{}, err
	}
	m, err := archive.OpenMedia(blobs, t, it.BlobID)
	if err != nil {
		n.log.Error("archive recording does not open", "tenant", tenant, "item", id, "err", err)
		return Recording{}, fmt.Errorf("open recording %s: %w", id, err)
	}
	return Recording{Media: m, ContentType: c.ContentType, Created: it.CreatedAt, SHA256: it.SHA256}, nil
}

// ExportRequest selects the items of a regulator export.
type ExportRequest struct {
	CaseID string   `json:"case_id"`
	Items  []string `json:"items"`
}

// ExportReceipt describes a sealed export.
type ExportReceipt struct {
	ID             string    `json:"id"`
	CaseID         string    `json:"case_id"`
	Items          int       `json:"items"`
	ManifestSHA256 string    `json:"manifest_sha256"`
	Created        time.Time `json:"created"`
}

// exportBlob names an export's blob: the tenant is in the name, so
// another tenant's export id names a blob that does not exist.
func exportBlob(tenant, id string) string { return "export." + tenant + "." + id }

// ExportArchive bundles the items into a zip with a manifest (ids,
// kinds, times and the SHA-256 of each decrypted file: a recording's
// media, a call's or SMS's canonical JSON), sealed as a blob for
// download. Audited (archive.export, with the reason, case, item ids and
// the manifest's SHA-256, which ringfence archive verify-export prints for
// comparison).
func (n *Node) ExportArchive(ctx context.Context, tenant string, req ExportRequest, reason string) (ExportReceipt, error) {
	blobs, err := n.blobs()
	if err != nil {
		return ExportReceipt{}, err
	}
	t, k, err := n.archiveReader(tenant, reason)
	if err != nil {
		return ExportReceipt{}, err
	}
	if err := checkArchiveID(req.CaseID, "case_id"); err != nil {
		return ExportReceipt{}, err
	}
	if len(req.Items) == 0 || len(req.Items) > maxArchiveExport {
		return ExportReceipt{}, call.Errorf(call.Invalid, "items: 1-%d item ids", maxArchiveExport)
	}
	now := n.now().UTC()
	e := archive.Export{CaseID: req.CaseID, Created: now}
	seen := map[string]bool{}
	for _, id := range req.Items {
		if seen[id] {
			return ExportReceipt{}, call.Errorf(call.Invalid, "items: an item is listed twice")
		}
		seen[id] = true
		it, err := n.item(ctx, tenant, id)
		if err != nil {
			return ExportReceipt{}, err
		}
		ei := archive.ExportItem{ID: it.ID, Kind: it.Kind, Time: it.StartedAt}
		if it.Kind == store.ArchiveRecording {
			c, err := n.openItem(k, it)
			if err != nil {
				return ExportReceipt{}, err
			}
			ei.File = it.ID + mediaExt(c.ContentType)
			blobID := it.BlobID
			ei.Open = func() (io.ReadCloser, error) { return archive.OpenMedia(blobs, t, blobID) }
		} else {
			b, err := k.Open(it.Sealed, aad("archive.item", tenant, it.ID))
			if err != nil {
				return ExportReceipt{}, fmt.Errorf("open archive item %s: %w", it.ID, err)
			}
			ei.File = it.ID + ".json"
			ei.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		}
		e.Items = append(e.Items, ei)
	}
	id := n.ids.Next(now)
	_, sum, err := archive.SealExport(blobs, t, exportBlob(tenant, id), e)
	if err != nil {
		return ExportReceipt{}, err
	}
	rec := ExportReceipt{ID: id, CaseID: req.CaseID, Items: len(e.Items), ManifestSHA256: hex.EncodeToString(sum[:]), Created: now}
	return rec, n.audit(ctx, tenant, "archive.export", id, map[string]any{"reason": reason, "case_id": req.CaseID,
		"items": req.Items, "manifest_sha256": rec.ManifestSHA256})
}

func mediaExt(contentType string) string {
	switch contentType {
	case "audio/mpeg":
		return ".mp3"
	case "audio/ogg", "audio/opus":
		return ".opus"
	}
	return ".wav"
}

// OpenExport opens a sealed export for download (the caller closes it).
// Audited (archive.export.download).
func (n *Node) OpenExport(ctx context.Context, tenant, id, reason string) (*archive.Media, error) {
	t, _, err := n.archiveReader(tenant, reason)
	if err != nil {
		return nil, err
	}
	blobs := n.cfg.ArchiveBlobs
	if blobs == nil || checkArchiveID(id, "export id") != nil {
		return nil, call.Errorf(call.NotFound, "no such archive export") // without a blob store there are none
	}
	m, err := archive.OpenMedia(blobs, t, exportBlob(tenant, id))
	switch {
	case call.ErrorCode(err) == call.NotFound || call.ErrorCode(err) == call.Invalid:
		return nil, call.Errorf(call.NotFound, "no such archive export")
	case err != nil:
		return nil, fmt.Errorf("open export %s: %w", id, err)
	}
	if err := n.audit(ctx, tenant, "archive.export.download", id, map[string]string{"reason": reason}); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// ArchiveHoldRequest places a legal hold on archive items.
type ArchiveHoldRequest struct {
	Scope  string    `json:"scope"` // user, case or range
	UserID string    `json:"user_id,omitempty"`
	CaseID string    `json:"case_id,omitempty"`
	From   time.Time `json:"from,omitzero"`
	To     time.Time `json:"to,omitzero"`
	Reason string    `json:"reason"`
}

// ArchiveHold is a legal hold on archive items.
type ArchiveHold struct {
	ID string `json:"id"`
	ArchiveHoldRequest
	PlacedBy string     `json:"placed_by"`
	PlacedAt time.Time  `json:"placed_at"`
	LiftedBy string     `json:"lifted_by,omitempty"`
	LiftedAt *time.Time `json:"lifted_at,omitempty"`
}

func archiveHoldView(h store.ArchiveHold) ArchiveHold {
	out := ArchiveHold{ID: h.ID, ArchiveHoldRequest: ArchiveHoldRequest{Scope: h.Scope, UserID: h.UserID, CaseID: h.CaseID,
		From: h.From, To: h.To, Reason: h.Reason}, PlacedBy: h.PlacedBy, PlacedAt: h.PlacedAt, LiftedBy: h.LiftedBy}
	if !h.LiftedAt.IsZero() {
		t := h.LiftedAt
		out.LiftedAt = &t
	}
	return out
}

// PlaceArchiveHold places a hold: PurgeExpired spares the items it covers
// (store.ArchiveHold.Covers) until it is lifted. Audited
// (archive.hold.place).
func (n *Node) PlaceArchiveHold(ctx context.Context, tenant string, req ArchiveHoldRequest) (ArchiveHold, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return ArchiveHold{}, err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return ArchiveHold{}, call.Errorf(call.Invalid, "reason: required")
	}
	if err := checkReason(req.Reason, "reason"); err != nil {
		return ArchiveHold{}, err
	}
	now := n.now().UTC()
	h := store.ArchiveHold{Tenant: tenant, ID: "ahold-" + n.ids.Next(now), Scope: req.Scope, UserID: req.UserID,
		CaseID: req.CaseID, From: req.From.UTC(), To: req.To.UTC(), Reason: req.Reason, PlacedBy: actor(ctx), PlacedAt: now}
	if req.From.IsZero() {
		h.From = time.Time{}
	}
	if req.To.IsZero() {
		h.To = time.Time{}
	}
	if err := n.store.PutArchiveHold(ctx, h); err != nil {
		return ArchiveHold{}, err
	}
	return archiveHoldView(h), n.audit(ctx, tenant, "archive.hold.place", h.ID, map[string]string{"scope": h.Scope, "reason": h.Reason})
}

// LiftArchiveHold lifts a hold. Audited (archive.hold.lift).
func (n *Node) LiftArchiveHold(ctx context.Context, tenant, id string) error {
	if _, err := n.tenantKeys(tenant); err != nil {
		return err
	}
	err := n.store.LiftArchiveHold(ctx, tenant, id, actor(ctx), n.now().UTC())
	if call.ErrorCode(err) == call.NotFound {
		return call.Errorf(call.NotFound, "no such archive hold")
	}
	if err != nil {
		return err
	}
	return n.audit(ctx, tenant, "archive.hold.lift", id, nil)
}

// ArchiveHolds lists the tenant's archive holds (only active ones if
// activeOnly).
func (n *Node) ArchiveHolds(ctx context.Context, tenant string, activeOnly bool) ([]ArchiveHold, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return nil, err
	}
	hs, err := n.store.ArchiveHolds(ctx, tenant, activeOnly)
	if err != nil {
		return nil, err
	}
	out := make([]ArchiveHold, 0, len(hs))
	for _, h := range hs {
		out = append(out, archiveHoldView(h))
	}
	return out, nil
}

// Archive retention bounds, in years (the compliance media class allows up
// to 7; the default is 5).
const (
	MinArchiveYears     = 1
	MaxArchiveYears     = 7
	DefaultArchiveYears = 5
)

// ArchiveRetention is the archive's retention, in whole years from an
// item's start: per kind (call, sms, recording) and per-user overrides of
// any kind. A kind not set has DefaultArchiveYears.
type ArchiveRetention struct {
	Kinds map[string]int            `json:"kinds"`
	Users map[string]map[string]int `json:"users,omitempty"`
}

var archiveKinds = []string{store.ArchiveCall, store.ArchiveSMS, store.ArchiveRecording}

// Validate returns Invalid for an unknown kind or a period outside
// MinArchiveYears..MaxArchiveYears.
func (r ArchiveRetention) Validate() error {
	check := func(where string, m map[string]int) error {
		for kind, y := range m {
			if err := store.CheckArchiveKind(kind); err != nil {
				return call.Errorf(call.Invalid, "%s: unknown kind %q (call, sms, recording)", where, kind)
			}
			if y < MinArchiveYears || y > MaxArchiveYears {
				return call.Errorf(call.Invalid, "%s.%s: must be %d to %d years", where, kind, MinArchiveYears, MaxArchiveYears)
			}
		}
		return nil
	}
	if err := check("kinds", r.Kinds); err != nil {
		return err
	}
	if len(r.Users) > store.MaxArchivePurgeUsers {
		return call.Errorf(call.Invalid, "users: at most %d overrides", store.MaxArchivePurgeUsers)
	}
	for u, m := range r.Users {
		if err := checkArchiveID(u, "users: user id"); err != nil {
			return err
		}
		if err := check("users."+u, m); err != nil {
			return err
		}
	}
	return nil
}

// years returns a kind's period for user ("" for the tenant's).
func (r ArchiveRetention) years(user, kind string) int {
	if y, ok := r.Users[user][kind]; ok && user != "" {
		return y
	}
	if y, ok := r.Kinds[kind]; ok {
		return y
	}
	return DefaultArchiveYears
}

// ArchiveRetention returns the tenant's archive retention, every kind
// present (the defaults filled in).
func (n *Node) ArchiveRetention(ctx context.Context, tenant string) (ArchiveRetention, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return ArchiveRetention{}, err
	}
	b, err := n.store.ArchiveRetention(ctx, tenant)
	if err != nil {
		return ArchiveRetention{}, err
	}
	var r ArchiveRetention
	if b != nil {
		if err := json.Unmarshal(b, &r); err != nil {
			return ArchiveRetention{}, fmt.Errorf("decode archive retention of %s: %w", tenant, err)
		}
	}
	out := ArchiveRetention{Kinds: map[string]int{}, Users: r.Users}
	for _, kind := range archiveKinds {
		out.Kinds[kind] = r.years("", kind)
	}
	return out, nil
}

// PutArchiveRetention replaces the tenant's archive retention. Audited
// (retention.write, Object compliance_media).
func (n *Node) PutArchiveRetention(ctx context.Context, tenant string, r ArchiveRetention) error {
	if _, err := n.tenantKeys(tenant); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := n.store.PutArchiveRetention(ctx, tenant, b); err != nil {
		return err
	}
	return n.audit(ctx, tenant, "retention.write", string(privacy.ComplianceMedia), r)
}

// ArchivePurge counts what one archive purge removed, per kind.
type ArchivePurge struct {
	Items   map[string]int64 `json:"items"`
	Blobs   int              `json:"blobs"`
	Uploads int              `json:"abandoned_uploads"` // sessions untouched for uploadLife, discarded
}

// purgeArchive deletes the tenant's archive items past their retention
// (per kind, per-user overrides first), sparing what an active archive
// hold covers, and their blobs. Called by purgeTenant; with dryRun it does
// nothing (the dry run does not count archive items).
func (n *Node) purgeArchive(ctx context.Context, tenant string, now time.Time, dryRun bool) error {
	if dryRun {
		return nil
	}
	r, err := n.ArchiveRetention(ctx, tenant)
	if err != nil {
		return err
	}
	rep := ArchivePurge{Items: map[string]int64{}}
	var orphans []string
	run := func(p store.ArchivePurge) error {
		p.Limit = purgeBatch
		for {
			got, err := n.store.PurgeArchive(ctx, tenant, p)
			if err != nil {
				return err
			}
			rep.Items[p.Kind] += got.Items
			for _, id := range got.BlobIDs {
				if err := n.removeBlob(id); err != nil {
					n.log.Error("archive purge: blob not removed", "tenant", tenant, "blob", id, "err", err)
					orphans = append(orphans, id)
					continue
				}
				rep.Blobs++
			}
			if got.Items < int64(p.Limit) {
				return nil
			}
		}
	}
	for _, kind := range archiveKinds {
		var except []string
		for user, m := range r.Users {
			y, ok := m[kind]
			if !ok {
				continue
			}
			except = append(except, user)
			if err := run(store.ArchivePurge{Kind: kind, Before: privacy.Years(y).Cutoff(now), Users: []string{user}}); err != nil {
				return err
			}
		}
		if err := run(store.ArchivePurge{Kind: kind, Before: privacy.Years(r.Kinds[kind]).Cutoff(now), ExceptUsers: except}); err != nil {
			return err
		}
	}
	abandoned, err := n.expireUploads(ctx, tenant, now.Add(-uploadLife))
	if err != nil {
		return err
	}
	rep.Uploads = abandoned
	var total int64
	for _, v := range rep.Items {
		total += v
	}
	if total == 0 && abandoned == 0 {
		return nil
	}
	if err := n.audit(ctx, tenant, "retention.purge", string(privacy.ComplianceMedia), rep); err != nil {
		return err
	}
	if len(orphans) > 0 {
		return fmt.Errorf("archive purge: %d blobs of deleted items could not be removed", len(orphans))
	}
	return nil
}

// uploadLife is how long an upload may go without a byte before the
// retention run discards it (its partial sealed data with it).
const uploadLife = 7 * 24 * time.Hour

// expireUploads discards the tenant's upload sessions untouched since
// before, and returns how many it discarded.
func (n *Node) expireUploads(ctx context.Context, tenant string, before time.Time) (int, error) {
	t, _, err := n.archiveTenant(tenant)
	if err != nil {
		return 0, err
	}
	done := 0
	for {
		us, err := n.store.ArchiveUploads(ctx, tenant, before, purgeBatch)
		if err != nil {
			return done, err
		}
		for _, u := range us {
			if n.cfg.ArchiveUploads != nil {
				if err := n.cfg.ArchiveUploads.Discard(t, u.ID); err != nil && call.ErrorCode(err) != call.NotFound {
					return done, fmt.Errorf("discard upload %s: %w", u.ID, err)
				}
			}
			if err := n.store.DeleteArchiveUpload(ctx, tenant, u.ID); err != nil && call.ErrorCode(err) != call.NotFound {
				return done, err
			}
			done++
		}
		if len(us) < purgeBatch {
			return done, nil
		}
	}
}

func (n *Node) removeBlob(id string) error {
	if n.cfg.ArchiveBlobs == nil {
		return errors.New("no blob store configured")
	}
	err := n.cfg.ArchiveBlobs.Remove(id)
	if call.ErrorCode(err) == call.NotFound {
		return nil
	}
	return err
}

// DayChain is one day's link of an archive's audit chain.
type DayChain struct {
	Day   string `json:"day"`
	Items int    `json:"items"`
	Chain string `json:"chain_sha256"` // hex
}

// ChainLink is what the day chain hashes of one item.
type ChainLink struct {
	ID, Kind, SHA256 string
}

// ArchiveChainHash computes a day's chain hash: h0 = SHA-256("ringfence
// archive day v1" 0x00 tenant 0x00 day), then for each item in id order
// h = SHA-256(h || id 0x00 kind 0x00 sha256-hex). An auditor recomputes it
// from the items (and each item's SHA-256 from its decrypted content or
// an export) and compares it with the archive.day audit entry.
func ArchiveChainHash(tenant, day string, links []ChainLink) string {
	h := sha256.Sum256([]byte("ringfence archive day v1\x00" + tenant + "\x00" + day))
	for _, l := range links {
		m := sha256.New()
		m.Write(h[:])
		m.Write([]byte(l.ID + "\x00" + l.Kind + "\x00" + l.SHA256))
		m.Sum(h[:0])
	}
	return hex.EncodeToString(h[:])
}

// SealArchiveDay computes the chain hash over a closed day's items (the
// day items were ingested, UTC, in id order) and records it in the audit
// log (archive.day, Object the day, Detail items and chain). Conflict for
// today or a later day: items may still arrive. Sealing a day again
// records it again (an auditor compares the entries; a purge in between
// changes the count).
func (n *Node) SealArchiveDay(ctx context.Context, tenant, day string) (DayChain, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return DayChain{}, err
	}
	if err := store.CheckArchiveDay(day); err != nil {
		return DayChain{}, err
	}
	if day >= n.now().UTC().Format(time.DateOnly) {
		return DayChain{}, call.Errorf(call.Conflict, "day: %s has not closed yet (UTC)", day)
	}
	links, err := n.dayLinks(ctx, tenant, day)
	if err != nil {
		return DayChain{}, err
	}
	dc := DayChain{Day: day, Items: len(links), Chain: ArchiveChainHash(tenant, day, links)}
	return dc, n.audit(ctx, tenant, "archive.day", day, dc)
}

func (n *Node) dayLinks(ctx context.Context, tenant, day string) ([]ChainLink, error) {
	var links []ChainLink
	after := ""
	for {
		rows, err := n.store.ArchiveDayItems(ctx, tenant, day, after, loadPage)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			links = append(links, ChainLink{ID: r.ID, Kind: r.Kind, SHA256: r.SHA256})
		}
		if len(rows) < loadPage {
			return links, nil
		}
		after = rows[len(rows)-1].ID
	}
}
