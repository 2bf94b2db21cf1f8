package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/archive"
	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// archEnv is a node with an archive over real files: a SQLite store, a
// blob directory and an upload staging directory, with a fake clock and
// an audit log.
type archEnv struct {
	clk   *privClock
	dir   string
	mk    seal.MasterKey
	st    *sqlite.DB
	log   *audit.Log
	blobs *archive.DirBlobs
	n     *Node
}

var archBase = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

func openArchEnv(t *testing.T) *archEnv {
	t.Helper()
	mk, err := seal.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &archEnv{clk: newPrivClock(archBase), dir: t.TempDir(), mk: mk}
	e.open(t)
	ctx := t.Context()
	for _, id := range []string{"bank", "other"} {
		if _, _, err := e.n.CreateTenant(ctx, id, "", "GB"); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// open opens the store, blobs, uploads and node on e's files (again after
// close, as after a restart).
func (e *archEnv) open(t *testing.T) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(e.dir, "rf.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Now = e.clk.Now
	e.st = st
	e.blobs, err = archive.OpenDirBlobs(filepath.Join(e.dir, "archive", "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ups, err := archive.OpenUploads(filepath.Join(e.dir, "archive", "uploads"), e.blobs, archive.UploadsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e.log = audit.New(st, audit.KeyFromSecret(e.mk.Derive("audit checkpoint v1")), "test", e.clk.Now)
	cfg := Config{Now: e.clk.Now, Audit: e.log, Follow: FollowConfig{Poll: -1}, ArchiveBlobs: e.blobs, ArchiveUploads: ups}
	n, err := Open(t.Context(), cfg, st, seal.NewKeyring(e.mk))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	e.n = n
	t.Cleanup(func() { e.close() })
}

func (e *archEnv) close() {
	if e.n != nil {
		e.n.Close()
		e.st.Close()
		e.n = nil
	}
}

// auditOf returns the tenant's audit entries of one action.
func (e *archEnv) auditOf(t *testing.T, tenant, action string) []store.AuditEntry {
	t.Helper()
	es, err := e.st.AuditEntries(t.Context(), store.AuditFilter{Tenant: tenant, ActionPrefix: action, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEntry
	for _, en := range es {
		if en.Action == action {
			out = append(out, en)
		}
	}
	return out
}

func (e *archEnv) ingest(t *testing.T, tenant, kind string, r ArchiveRecord) ArchiveReceipt {
	t.Helper()
	rc, err := e.n.IngestArchive(t.Context(), tenant, kind, r)
	if err != nil {
		t.Fatalf("ingest %s %s: %v", kind, r.ClientID, err)
	}
	return rc
}

// upload uploads plain as a recording of call in one go.
func (e *archEnv) upload(t *testing.T, tenant, clientID, callID string, plain []byte) ArchiveReceipt {
	t.Helper()
	ctx := t.Context()
	st, _, err := e.n.BeginRecording(ctx, tenant, RecordingRequest{ClientID: clientID, CallID: callID, ContentType: "audio/wav"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.AppendRecording(ctx, tenant, st.UploadID, 0, bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(plain)
	rc, err := e.n.CompleteRecording(ctx, tenant, st.UploadID, hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

const (
	archUserNumber  = "+447700900111"
	archUserNat     = "07700900111"
	archPartyA      = "+447700900222"
	archPartyANat   = "07700900222"
	archPartyB      = "+442079460555"
	archPartyBNat   = "02079460555"
	archContactNum  = "+447700900333"
	archContactNat  = "07700900333"
	archSMSText     = "Zanzibar quartermaster transfers Tuesday"
	archSMSWord     = "quartermaster"
	archUserName    = "Philippa Ormsby-Quill"
	archContactName = "Barnaby Thistlewood"
)

func TestArchiveIngestSearchView(t *testing.T) {
	e := openArchEnv(t)
	ctx := t.Context()
	if err := e.n.PutArchiveUser(ctx, "bank", "u1", ArchiveUserInput{Name: archUserName, Company: "Bank", BusinessNumbers: []string{archUserNat}, DeviceType: "iphone"}); err != nil {
		t.Fatal(err)
	}
	if err := e.n.PutArchiveUser(ctx, "bank", "u2", ArchiveUserInput{Name: "Second"}); err != nil {
		t.Fatal(err)
	}
	if err := e.n.PutArchiveContacts(ctx, "bank", "u1", []ArchiveContact{{ID: "c1", Name: archContactName, Numbers: []string{archContactNat}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.n.PutArchiveContacts(ctx, "bank", "nobody", nil); call.ErrorCode(err) != call.NotFound {
		t.Errorf("contacts of an unknown user: %v, want not_found", err)
	}
	t0 := archBase.Add(-48 * time.Hour)
	callIn := e.ingest(t, "bank", store.ArchiveCall, ArchiveRecord{ClientID: "m-call-1", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyANat}, StartedAt: t0, EndedAt: t0.Add(95 * time.Second), Result: "answered"})
	callOut := e.ingest(t, "bank", store.ArchiveCall, ArchiveRecord{ClientID: "m-call-2", UserID: "u2", Direction: "outbound",
		Parties: []string{archPartyB}, StartedAt: t0.Add(2 * time.Hour), DurationS: 30, Result: "answered"})
	sms := e.ingest(t, "bank", store.ArchiveSMS, ArchiveRecord{ClientID: "m-sms-1", UserID: "u1", Direction: "outbound",
		Parties: []string{archPartyA}, StartedAt: t0.Add(4 * time.Hour), Text: archSMSText})
	sms2 := e.ingest(t, "bank", store.ArchiveSMS, ArchiveRecord{ClientID: "m-sms-2", UserID: "u2", Direction: "inbound",
		Parties: []string{archPartyB}, StartedAt: t0.Add(6 * time.Hour), Text: "lunch on Tuesday?"})
	for _, rc := range []ArchiveReceipt{callIn, callOut, sms, sms2} {
		if !rc.Created || rc.ID == "" || len(rc.SHA256) != 64 || rc.ChainDay != "2026-03-10" {
			t.Errorf("receipt %+v", rc)
		}
	}

	t.Run("idempotent", func(t *testing.T) {
		again := e.ingest(t, "bank", store.ArchiveSMS, ArchiveRecord{ClientID: "m-sms-1", UserID: "u2", Direction: "inbound",
			Parties: []string{archPartyB}, StartedAt: t0, Text: "something else"})
		if again.Created || again.ID != sms.ID || again.SHA256 != sms.SHA256 {
			t.Errorf("repeat = %+v, want the stored %+v", again, sms)
		}
		// Another tenant's same client id is its own item.
		o := e.ingest(t, "other", store.ArchiveSMS, ArchiveRecord{ClientID: "m-sms-1", UserID: "u1", Direction: "inbound",
			Parties: []string{archPartyA}, StartedAt: t0, Text: archSMSText})
		if !o.Created || o.ID == sms.ID {
			t.Errorf("other tenant's ingest = %+v", o)
		}
	})

	t.Run("canonical hash", func(t *testing.T) {
		it, err := e.st.ArchiveItem(ctx, "bank", sms.ID)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := e.n.tenantKeys("bank")
		plain, err := k.Open(it.Sealed, aad("archive.item", "bank", sms.ID))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(plain)
		if hex.EncodeToString(sum[:]) != sms.SHA256 || !bytes.Contains(plain, []byte(archSMSText)) {
			t.Errorf("stored SHA-256 %s is not that of the sealed canonical JSON %s", sms.SHA256, plain)
		}
	})

	ids := func(es []ArchiveEntry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.ID)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		name string
		q    ArchiveSearch
		want []string // newest first
	}{
		{"all", ArchiveSearch{}, []string{sms2.ID, sms.ID, callOut.ID, callIn.ID}},
		{"user", ArchiveSearch{UserID: "u1"}, []string{sms.ID, callIn.ID}},
		{"number national", ArchiveSearch{Number: archPartyANat}, []string{sms.ID, callIn.ID}},
		{"number e164", ArchiveSearch{Number: archPartyB}, []string{sms2.ID, callOut.ID}},
		{"direction", ArchiveSearch{Direction: "inbound"}, []string{sms2.ID, callIn.ID}},
		{"kind", ArchiveSearch{Kind: "call"}, []string{callOut.ID, callIn.ID}},
		{"time range", ArchiveSearch{From: t0.Add(time.Hour), To: t0.Add(5 * time.Hour)}, []string{sms.ID, callOut.ID}},
		{"text word", ArchiveSearch{Text: "QUARTERMASTER"}, []string{sms.ID}},
		{"text shared word", ArchiveSearch{Text: "tuesday"}, []string{sms2.ID, sms.ID}},
		{"text all words", ArchiveSearch{Text: "lunch tuesday"}, []string{sms2.ID}},
		{"text absent", ArchiveSearch{Text: "submarine"}, nil},
		{"combined", ArchiveSearch{UserID: "u1", Direction: "outbound", Text: "transfers"}, []string{sms.ID}},
	} {
		t.Run("search "+tc.name, func(t *testing.T) {
			got, err := e.n.SearchArchive(ctx, "bank", tc.q, "case 7 review")
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != strings.Join(tc.want, ",") {
				t.Errorf("got %s, want %s", ids(got), strings.Join(tc.want, ","))
			}
		})
	}

	t.Run("view", func(t *testing.T) {
		got, err := e.n.ArchiveItem(ctx, "bank", callIn.ID, "case 7 review")
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != "call" || got.Parties[0] != archPartyA || got.DurationS != 95 || got.Result != "answered" || got.UserID != "u1" {
			t.Errorf("view = %+v", got)
		}
		s, _ := e.n.ArchiveItem(ctx, "bank", sms.ID, "case 7 review")
		if s.Text != archSMSText {
			t.Errorf("sms text = %q", s.Text)
		}
		u, cs, err := e.n.ArchiveUserView(ctx, "bank", "u1", "case 7 review")
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != archUserName || u.BusinessNumbers[0] != archUserNumber || len(cs) != 1 || cs[0].Numbers[0] != archContactNum {
			t.Errorf("user = %+v %+v", u, cs)
		}
	})

	t.Run("reason required", func(t *testing.T) {
		if _, err := e.n.SearchArchive(ctx, "bank", ArchiveSearch{}, " "); call.ErrorCode(err) != call.Invalid {
			t.Errorf("search without reason: %v", err)
		}
		if _, err := e.n.ArchiveItem(ctx, "bank", sms.ID, ""); call.ErrorCode(err) != call.Invalid {
			t.Errorf("view without reason: %v", err)
		}
		if _, err := e.n.PlayRecording(ctx, "bank", sms.ID, ""); call.ErrorCode(err) != call.Invalid {
			t.Errorf("play without reason: %v", err)
		}
		if _, err := e.n.ExportArchive(ctx, "bank", ExportRequest{CaseID: "c", Items: []string{sms.ID}}, ""); call.ErrorCode(err) != call.Invalid {
			t.Errorf("export without reason: %v", err)
		}
	})

	t.Run("other tenant", func(t *testing.T) {
		if _, err := e.n.ArchiveItem(ctx, "other", sms.ID, "r"); call.ErrorCode(err) != call.NotFound {
			t.Errorf("other tenant's view: %v", err)
		}
		got, err := e.n.SearchArchive(ctx, "other", ArchiveSearch{Number: archPartyB}, "r")
		if err != nil || len(got) != 0 {
			t.Errorf("other tenant's search: %v %v", ids(got), err)
		}
		if _, _, err := e.n.ArchiveUserView(ctx, "other", "u2", "r"); call.ErrorCode(err) != call.NotFound {
			t.Errorf("other tenant's user: %v", err)
		}
	})

	t.Run("audited", func(t *testing.T) {
		es := e.auditOf(t, "bank", "archive.search")
		if len(es) == 0 || !strings.Contains(es[0].Detail, `"reason":"case 7 review"`) {
			t.Fatalf("archive.search entries %+v", es)
		}
		for _, en := range es {
			for _, secret := range []string{archPartyANat, archPartyA, archPartyB, "quartermaster", "QUARTERMASTER"} {
				if strings.Contains(en.Detail, secret) {
					t.Errorf("audit detail %s holds a search value", en.Detail)
				}
			}
		}
		v := e.auditOf(t, "bank", "archive.view")
		if len(v) < 2 || v[0].Object != callIn.ID {
			t.Errorf("archive.view entries %+v", v)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for name, r := range map[string]ArchiveRecord{
			"no client id":  {UserID: "u1", Direction: "inbound", Parties: []string{archPartyA}, StartedAt: t0},
			"bad direction": {ClientID: "x1", UserID: "u1", Direction: "sideways", Parties: []string{archPartyA}, StartedAt: t0},
			"bad number":    {ClientID: "x2", UserID: "u1", Direction: "inbound", Parties: []string{"12"}, StartedAt: t0},
			"no start":      {ClientID: "x3", UserID: "u1", Direction: "inbound", Parties: []string{archPartyA}},
			"no parties":    {ClientID: "x4", UserID: "u1", Direction: "inbound", StartedAt: t0},
		} {
			if _, err := e.n.IngestArchive(ctx, "bank", store.ArchiveSMS, r); call.ErrorCode(err) != call.Invalid {
				t.Errorf("%s: %v, want invalid", name, err)
			}
		}
	})
}

// archStream returns a reader of n pseudo-random bytes from seed.
func archStream(seed byte, n int64) io.Reader {
	var s [32]byte
	s[0] = seed
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// archFailAfter returns n bytes of r, then err (a dropped connection).
type archFailAfter struct {
	r   io.Reader
	n   int64
	err error
}

func (f *archFailAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

var errArchDropped = errors.New("connection dropped")

// TestArchiveRecordingResume uploads a recording generated on the fly
// through the node, drops the connection part-way, restarts the node,
// resumes from the reported offset, completes it and plays it back,
// comparing SHA-256 and a range, while sampling the heap. 1 GiB with
// RINGFENCE_LONG=1, else 64 MiB.
func TestArchiveRecordingResume(t *testing.T) {
	size := int64(64 << 20)
	if os.Getenv("RINGFENCE_LONG") == "1" {
		size = 1 << 30
	}
	const memLimit = 64 << 20
	e := openArchEnv(t)
	ctx := t.Context()
	c := e.ingest(t, "bank", store.ArchiveCall, ArchiveRecord{ClientID: "call-big", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: archBase.Add(-time.Hour), DurationS: 3600})
	runtime.GC()

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
		t.Logf("%d MiB: peak HeapInuse %.1f MiB", size>>20, float64(peak.Load())/(1<<20))
		if peak.Load() >= memLimit {
			t.Errorf("peak HeapInuse %d bytes, limit %d", peak.Load(), memLimit)
		}
	}()

	req := RecordingRequest{ClientID: "rec-big", CallID: c.ID, ContentType: "audio/wav"}
	st, created, err := e.n.BeginRecording(ctx, "bank", req)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	cut := size/3 + 12345
	got, err := e.n.AppendRecording(ctx, "bank", st.UploadID, 0, &archFailAfter{r: archStream(7, size), n: cut, err: errArchDropped})
	if !errors.Is(err, errArchDropped) || got.Offset != cut {
		t.Fatalf("interrupted append = %+v, %v", got, err)
	}

	// Restart: a new node over the same files; the client lost its place.
	e.close()
	e.open(t)
	again, created, err := e.n.BeginRecording(ctx, "bank", req)
	if err != nil || created || again.UploadID != st.UploadID || again.Offset != cut {
		t.Fatalf("begin after restart = %+v created %v, %v; want upload %s at %d", again, created, err, st.UploadID, cut)
	}
	if _, err := e.n.AppendRecording(ctx, "bank", st.UploadID, 0, strings.NewReader("x")); call.ErrorCode(err) != call.Conflict {
		t.Errorf("append at a wrong offset: %v, want conflict", err)
	}
	if _, err := e.n.RecordingStatus(ctx, "other", st.UploadID); call.ErrorCode(err) != call.NotFound {
		t.Errorf("other tenant's upload status: %v", err)
	}
	rest := archStream(7, size)
	if _, err := io.CopyN(io.Discard, rest, again.Offset); err != nil {
		t.Fatal(err)
	}
	if got, err := e.n.AppendRecording(ctx, "bank", st.UploadID, again.Offset, rest); err != nil || got.Offset != size {
		t.Fatalf("resumed append = %+v, %v", got, err)
	}
	h := sha256.New()
	io.Copy(h, archStream(7, size))
	sum := hex.EncodeToString(h.Sum(nil))
	bad := strings.Repeat("0", 64)
	if _, err := e.n.CompleteRecording(ctx, "other", st.UploadID, sum); call.ErrorCode(err) != call.NotFound {
		t.Errorf("other tenant's complete: %v", err)
	}
	rc, err := e.n.CompleteRecording(ctx, "bank", st.UploadID, sum)
	if err != nil || rc.SHA256 != sum || rc.Kind != "recording" || !rc.Created {
		t.Fatalf("complete = %+v, %v", rc, err)
	}
	if rc2, err := e.n.CompleteRecording(ctx, "bank", st.UploadID, sum); err != nil || rc2.ID != rc.ID || rc2.Created {
		t.Errorf("complete again = %+v, %v", rc2, err)
	}
	if _, err := e.n.CompleteRecording(ctx, "bank", st.UploadID, bad); call.ErrorCode(err) != call.Conflict {
		t.Errorf("complete again with another sum: %v", err)
	}

	rec, err := e.n.PlayRecording(ctx, "bank", rc.ID, "QA sample")
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Media.Close()
	if rec.Media.Size() != size || rec.ContentType != "audio/wav" {
		t.Fatalf("size %d type %q", rec.Media.Size(), rec.ContentType)
	}
	ph := sha256.New()
	if _, err := io.Copy(ph, rec.Media); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(ph.Sum(nil)) != sum {
		t.Fatal("played back bytes differ from the uploaded ones")
	}
	// A range in the middle, across a chunk boundary.
	off := int64(archive.DefaultChunkSize)*5 - 100
	want := make([]byte, 1000)
	r := archStream(7, size)
	io.CopyN(io.Discard, r, off)
	io.ReadFull(r, want)
	part := make([]byte, 1000)
	if _, err := rec.Media.ReadAt(part, off); err != nil || !bytes.Equal(part, want) {
		t.Errorf("range read differs: %v", err)
	}
	if _, err := e.n.PlayRecording(ctx, "other", rc.ID, "r"); call.ErrorCode(err) != call.NotFound {
		t.Errorf("other tenant's playback: %v", err)
	}
	if p := e.auditOf(t, "bank", "archive.play"); len(p) != 1 || !strings.Contains(p[0].Detail, "QA sample") {
		t.Errorf("archive.play entries %+v", p)
	}
}

func TestArchiveRecordingRefusals(t *testing.T) {
	e := openArchEnv(t)
	ctx := t.Context()
	c := e.ingest(t, "bank", store.ArchiveCall, ArchiveRecord{ClientID: "call-1", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: archBase})
	sms := e.ingest(t, "bank", store.ArchiveSMS, ArchiveRecord{ClientID: "sms-1", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: archBase, Text: "hi"})
	for name, tc := range map[string]struct {
		tenant string
		req    RecordingRequest
		code   string
	}{
		"another tenant's call": {"other", RecordingRequest{ClientID: "r1", CallID: c.ID, ContentType: "audio/wav"}, call.NotFound},
		"not a call":            {"bank", RecordingRequest{ClientID: "r2", CallID: sms.ID, ContentType: "audio/wav"}, call.NotFound},
		"bad type":              {"bank", RecordingRequest{ClientID: "r3", CallID: c.ID, ContentType: "video/mp4"}, call.Invalid},
	} {
		if _, _, err := e.n.BeginRecording(ctx, tc.tenant, tc.req); call.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	st, _, err := e.n.BeginRecording(ctx, "bank", RecordingRequest{ClientID: "r4", CallID: c.ID, ContentType: "audio/mpeg"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.AppendRecording(ctx, "bank", st.UploadID, 0, strings.NewReader("ID3 not what was hashed")); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("something else"))
	if _, err := e.n.CompleteRecording(ctx, "bank", st.UploadID, hex.EncodeToString(sum[:])); call.ErrorCode(err) != call.Invalid {
		t.Errorf("complete with a wrong SHA-256: %v, want invalid", err)
	}
	if _, err := e.n.RecordingStatus(ctx, "bank", st.UploadID); call.ErrorCode(err) != call.NotFound {
		t.Errorf("a refused upload is forgotten: %v", err)
	}
}

// blobPath finds a blob's file under the blob directory.
func (e *archEnv) blobPath(t *testing.T, id string) string {
	t.Helper()
	var found string
	filepath.WalkDir(filepath.Join(e.dir, "archive", "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == id {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("blob %s not on disk", id)
	}
	return found
}

// TestArchiveTamperOnPlayback flips a byte in, or drops a chunk from, a
// stored blob and plays it back through the node.
func TestArchiveTamperOnPlayback(t *testing.T) {
	const chunks = 5
	plain, _ := io.ReadAll(archStream(3, chunks*archive.DefaultChunkSize-777))
	sealedChunk := int64(archive.DefaultChunkSize + 16)
	for _, tc := range []struct {
		name   string
		tamper func(b []byte) []byte
	}{
		{"none", func(b []byte) []byte { return b }},
		{"flipped byte", func(b []byte) []byte {
			hdr := int64(len(b)) - int64(len(plain)) - 16*chunks
			b[hdr+2*sealedChunk+1234] ^= 0x01
			return b
		}},
		{"dropped chunk", func(b []byte) []byte {
			hdr := int64(len(b)) - int64(len(plain)) - 16*chunks
			return append(b[:hdr+1*sealedChunk:hdr+1*sealedChunk], b[hdr+2*sealedChunk:]...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := openArchEnv(t)
			ctx := t.Context()
			c := e.ingest(t, "bank", store.ArchiveCall, ArchiveRecord{ClientID: "call-1", UserID: "u1", Direction: "inbound",
				Parties: []string{archPartyA}, StartedAt: archBase})
			rc := e.upload(t, "bank", "rec-1", c.ID, plain)
			p := e.blobPath(t, rc.ID)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tc.tamper(b), 0o600); err != nil {
				t.Fatal(err)
			}
			rec, err := e.n.PlayRecording(ctx, "bank", rc.ID, "tamper check")
			var got []byte
			if err == nil {
				got, err = io.ReadAll(rec.Media)
				rec.Media.Close()
			}
			if tc.name == "none" {
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("untampered playback: %v (%d bytes)", err, len(got))
				}
				return
			}
			if !errors.Is(err, archive.ErrTampered) {
				t.Fatalf("playback of a tampered blob: %v (%d bytes), want ErrTampered", err, len(got))
			}
			if len(got) > 2*archive.DefaultChunkSize {
				t.Errorf("%d bytes were served past the tampered chunk", len(got))
			}
		})
	}
}

func TestArchiveRetentionAndHolds(t *testing.T) {
	e := openArchEnv(t)
	ctx := t.Context()
	old := archBase.Add(-30 * 24 * time.Hour) // items from a month before the clock
	type item struct {
		id, kind, user string
	}
	var items []item
	add := func(kind, user string, at time.Time) item {
		r := ArchiveRecord{ClientID: kind + "-" + user + "-" + at.Format("0102"), UserID: user, Direction: "inbound",
			Parties: []string{archPartyA}, StartedAt: at}
		if kind == store.ArchiveSMS {
			r.Text = "hello"
		}
		rc := e.ingest(t, "bank", kind, r)
		it := item{id: rc.ID, kind: kind, user: user}
		items = append(items, it)
		return it
	}
	for _, u := range []string{"u1", "u2", "u3"} {
		if err := e.n.PutArchiveUser(ctx, "bank", u, ArchiveUserInput{Name: u}); err != nil {
			t.Fatal(err)
		}
	}
	u1sms := add(store.ArchiveSMS, "u1", old)
	u2sms := add(store.ArchiveSMS, "u2", old)
	u3smsIn := add(store.ArchiveSMS, "u3", old)                        // inside the range hold
	u3smsOut := add(store.ArchiveSMS, "u3", old.Add(-10*24*time.Hour)) // outside it
	u2call := add(store.ArchiveCall, "u2", old)
	u1call := add(store.ArchiveCall, "u1", old)
	recU1 := e.upload(t, "bank", "rec-u1", u1call.id, []byte("u1 audio"))
	recU2 := e.upload(t, "bank", "rec-u2", u2call.id, []byte("u2 audio"))
	otherSMS := e.ingest(t, "other", store.ArchiveSMS, ArchiveRecord{ClientID: "o-1", UserID: "u2", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: old, Text: "x"})
	e.blobPath(t, recU1.ID)
	e.blobPath(t, recU2.ID)

	for name, r := range map[string]ArchiveRetention{
		"8 years":      {Kinds: map[string]int{"sms": 8}},
		"0 years":      {Kinds: map[string]int{"call": 0}},
		"unknown kind": {Kinds: map[string]int{"fax": 2}},
		"user 9 years": {Users: map[string]map[string]int{"u1": {"recording": 9}}},
	} {
		if err := e.n.PutArchiveRetention(ctx, "bank", r); call.ErrorCode(err) != call.Invalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	def, err := e.n.ArchiveRetention(ctx, "bank")
	if err != nil || def.Kinds["call"] != 5 || def.Kinds["sms"] != 5 || def.Kinds["recording"] != 5 {
		t.Fatalf("default retention %+v %v", def, err)
	}
	if err := e.n.PutArchiveRetention(ctx, "bank", ArchiveRetention{Kinds: map[string]int{"sms": 1, "call": 2},
		Users: map[string]map[string]int{"u2": {"recording": 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.PlaceArchiveHold(ctx, "bank", ArchiveHoldRequest{Scope: "user", UserID: "u1", Reason: "litigation"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.PlaceArchiveHold(ctx, "bank", ArchiveHoldRequest{Scope: "range", UserID: "u3", From: old.Add(-time.Hour), To: old.Add(time.Hour), Reason: "inquiry"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.PlaceArchiveHold(ctx, "bank", ArchiveHoldRequest{Scope: "range", Reason: "no bounds"}); call.ErrorCode(err) != call.Invalid {
		t.Errorf("range hold without bounds: %v", err)
	}
	// Offboarding keeps a user's items until retention ends.
	if err := e.n.OffboardArchiveUser(ctx, "bank", "u2"); err != nil {
		t.Fatal(err)
	}

	present := func(id string) bool {
		_, err := e.st.ArchiveItem(ctx, "bank", id)
		if err != nil && call.ErrorCode(err) != call.NotFound {
			t.Fatal(err)
		}
		return err == nil
	}
	blobPresent := func(id string) bool {
		_, err := e.blobs.Open(id)
		return err == nil
	}

	// Thirteen months on: SMS (1 year) and u2's recording (1 year) expire
	// unless held; calls (2 years) and u1's recording (5 years) stay.
	e.clk.Set(archBase.AddDate(1, 1, 0))
	if _, err := e.n.PurgeExpired(ctx, false); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{u1sms.id: true, u2sms.id: false, u3smsIn.id: true, u3smsOut.id: false,
		u2call.id: true, u1call.id: true, recU1.ID: true, recU2.ID: false}
	for id, w := range want {
		if present(id) != w {
			t.Errorf("item %s present = %v, want %v", id, !w, w)
		}
	}
	if !blobPresent(recU1.ID) || blobPresent(recU2.ID) {
		t.Errorf("blobs after purge: u1 %v (want true), u2 %v (want false)", blobPresent(recU1.ID), blobPresent(recU2.ID))
	}
	if _, err := e.st.ArchiveItem(ctx, "other", otherSMS.ID); err != nil {
		t.Errorf("another tenant's item (default 5 years) was purged: %v", err)
	}
	if p := e.auditOf(t, "bank", "retention.purge"); len(p) == 0 || p[len(p)-1].Object != "compliance_media" {
		t.Errorf("retention.purge entries %+v", p)
	}

	// Lifting the user hold lets u1's SMS go on the next run.
	holds, err := e.n.ArchiveHolds(ctx, "bank", true)
	if err != nil || len(holds) != 2 {
		t.Fatalf("holds %+v %v", holds, err)
	}
	for _, h := range holds {
		if h.Scope == "user" {
			if err := e.n.LiftArchiveHold(ctx, "bank", h.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.n.LiftArchiveHold(ctx, "other", holds[0].ID); call.ErrorCode(err) != call.NotFound {
		t.Errorf("other tenant lifts bank's hold: %v", err)
	}
	if _, err := e.n.PurgeExpired(ctx, false); err != nil {
		t.Fatal(err)
	}
	if present(u1sms.id) || !present(u3smsIn.id) || !present(u1call.id) {
		t.Errorf("after lifting the user hold: u1 sms %v (want false), u3 held sms %v, u1 call %v (want true)", present(u1sms.id), present(u3smsIn.id), present(u1call.id))
	}
	// Past two years the calls go, the range-held SMS stays.
	e.clk.Set(archBase.AddDate(2, 1, 0))
	if _, err := e.n.PurgeExpired(ctx, false); err != nil {
		t.Fatal(err)
	}
	if present(u1call.id) || present(u2call.id) || !present(u3smsIn.id) || !present(recU1.ID) {
		t.Errorf("after 2 years: calls %v %v (want false), held sms %v, u1 recording %v (want true)", present(u1call.id), present(u2call.id), present(u3smsIn.id), present(recU1.ID))
	}
}

func TestArchiveExport(t *testing.T) {
	e := openArchEnv(t)
	ctx := t.Context()
	c := e.ingest(t, "bank", store.ArchiveCall, ArchiveRecord{ClientID: "call-1", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: archBase, DurationS: 12})
	sms := e.ingest(t, "bank", store.ArchiveSMS, ArchiveRecord{ClientID: "sms-1", UserID: "u1", Direction: "outbound",
		Parties: []string{archPartyA}, StartedAt: archBase, Text: archSMSText})
	audio, _ := io.ReadAll(archStream(9, 200_000))
	rec := e.upload(t, "bank", "rec-1", c.ID, audio)

	if _, err := e.n.ExportArchive(ctx, "other", ExportRequest{CaseID: "case-1", Items: []string{sms.ID}}, "r"); call.ErrorCode(err) != call.NotFound {
		t.Errorf("export of another tenant's item: %v", err)
	}
	rc, err := e.n.ExportArchive(ctx, "bank", ExportRequest{CaseID: "case-1", Items: []string{c.ID, sms.ID, rec.ID}}, "FCA request 42")
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.n.OpenExport(ctx, "bank", rc.ID, "FCA request 42")
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := io.ReadAll(m)
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	man, sum, err := archive.VerifyExport(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(sum[:]) != rc.ManifestSHA256 || man.CaseID != "case-1" || len(man.Items) != 3 {
		t.Fatalf("manifest %+v sum %x, receipt %+v", man, sum, rc)
	}
	byID := map[string]archive.ManifestItem{}
	for _, it := range man.Items {
		byID[it.ID] = it
	}
	for _, r := range []ArchiveReceipt{c, sms, rec} {
		if byID[r.ID].SHA256 != r.SHA256 {
			t.Errorf("manifest sha256 of %s = %s, the item's is %s", r.Kind, byID[r.ID].SHA256, r.SHA256)
		}
	}
	if ex := e.auditOf(t, "bank", "archive.export"); len(ex) != 1 || !strings.Contains(ex[0].Detail, rc.ManifestSHA256) || !strings.Contains(ex[0].Detail, "FCA request 42") {
		t.Errorf("archive.export entries %+v", ex)
	}
	if _, err := e.n.OpenExport(ctx, "other", rc.ID, "r"); call.ErrorCode(err) != call.NotFound {
		t.Errorf("other tenant's export download: %v", err)
	}

	// A tampered export is refused: one character of the SMS text.
	i := bytes.Index(zipped, []byte(archSMSWord))
	if i < 0 {
		t.Fatal("the SMS text is not in the export")
	}
	bad := bytes.Clone(zipped)
	bad[i] ^= 0x20
	if _, _, err := archive.VerifyExport(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, archive.ErrTampered) {
		t.Errorf("tampered export: %v, want ErrTampered", err)
	}
}

func TestArchiveDayChain(t *testing.T) {
	e := openArchEnv(t)
	ctx := t.Context()
	var day1 []ArchiveReceipt
	for i, text := range []string{"one", "two", "three"} {
		day1 = append(day1, e.ingest(t, "bank", store.ArchiveSMS, ArchiveRecord{ClientID: "d1-" + text, UserID: "u1",
			Direction: "inbound", Parties: []string{archPartyA}, StartedAt: archBase.Add(-time.Duration(i) * 24 * time.Hour), Text: text}))
	}
	c := e.ingest(t, "bank", store.ArchiveCall, ArchiveRecord{ClientID: "d1-call", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: archBase})
	day1 = append(day1, c, e.upload(t, "bank", "d1-rec", c.ID, []byte("audio bytes")))
	e.ingest(t, "other", store.ArchiveSMS, ArchiveRecord{ClientID: "o", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: archBase, Text: "other"})
	day := archBase.Format(time.DateOnly)
	if _, err := e.n.SealArchiveDay(ctx, "bank", day); call.ErrorCode(err) != call.Conflict {
		t.Errorf("sealing a day not yet closed: %v, want conflict", err)
	}
	e.clk.Add(24 * time.Hour)
	e.ingest(t, "bank", store.ArchiveSMS, ArchiveRecord{ClientID: "d2", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: archBase, Text: "next day"})
	dc, err := e.n.SealArchiveDay(ctx, "bank", day)
	if err != nil {
		t.Fatal(err)
	}
	if dc.Items != len(day1) {
		t.Errorf("day items = %d, want %d", dc.Items, len(day1))
	}

	// The auditor's recomputation: each item's SHA-256 from its decrypted
	// content, then the chain over the day's items in id order.
	k, _ := e.n.tenantKeys("bank")
	rows, err := e.st.ArchiveDayItems(ctx, "bank", day, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("ringfence archive day v1\x00bank\x00" + day))
	for _, r := range rows {
		plain, err := k.Open(r.Sealed, aad("archive.item", "bank", r.ID))
		if err != nil {
			t.Fatal(err)
		}
		var content struct {
			Kind        string `json:"kind"`
			MediaSHA256 string `json:"media_sha256"`
		}
		json.Unmarshal(plain, &content)
		var sum string
		if content.Kind == store.ArchiveRecording {
			m, err := archive.OpenMedia(e.blobs, archive.Tenant{ID: "bank", Keys: k}, r.BlobID)
			if err != nil {
				t.Fatal(err)
			}
			mh := sha256.New()
			io.Copy(mh, m)
			m.Close()
			sum = hex.EncodeToString(mh.Sum(nil))
			if sum != content.MediaSHA256 {
				t.Errorf("recording %s: media sha256 %s, sealed record says %s", r.ID, sum, content.MediaSHA256)
			}
		} else {
			s := sha256.Sum256(plain)
			sum = hex.EncodeToString(s[:])
		}
		if sum != r.SHA256 {
			t.Errorf("item %s: recomputed sha256 %s, stored %s", r.ID, sum, r.SHA256)
		}
		next := sha256.Sum256(append(h[:], []byte(r.ID+"\x00"+r.Kind+"\x00"+sum)...))
		h = next
	}
	audited := e.auditOf(t, "bank", "archive.day")
	if len(audited) != 1 || audited[0].Object != day {
		t.Fatalf("archive.day entries %+v", audited)
	}
	var detail DayChain
	if err := json.Unmarshal([]byte(audited[0].Detail), &detail); err != nil {
		t.Fatal(err)
	}
	if detail.Chain != hex.EncodeToString(h[:]) || detail.Items != len(rows) || len(rows) != len(day1) {
		t.Errorf("audited chain %+v, recomputed %x over %d items", detail, h, len(rows))
	}
}

// TestArchiveNoPlaintextOnDisk ingests every kind with known numbers, a
// known text and names, and audio with a marker (one upload left half
// done), then scans the SQLite file and WAL, the blobs and the uploads.
func TestArchiveNoPlaintextOnDisk(t *testing.T) {
	e := openArchEnv(t)
	ctx := t.Context()
	if err := e.n.PutArchiveUser(ctx, "bank", "u1", ArchiveUserInput{Name: archUserName, Company: "Bank",
		BusinessNumbers: []string{archUserNat}, PersonalNumbers: []string{archContactNum}, DeviceType: "android"}); err != nil {
		t.Fatal(err)
	}
	if err := e.n.PutArchiveContacts(ctx, "bank", "u1", []ArchiveContact{{ID: "c1", Name: archContactName, Numbers: []string{archPartyB}}}); err != nil {
		t.Fatal(err)
	}
	c := e.ingest(t, "bank", store.ArchiveCall, ArchiveRecord{ClientID: "call-1", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyANat}, StartedAt: archBase, DurationS: 5, Result: "answered"})
	e.ingest(t, "bank", store.ArchiveSMS, ArchiveRecord{ClientID: "sms-1", UserID: "u1", Direction: "outbound",
		Parties: []string{archPartyBNat}, StartedAt: archBase, Text: archSMSText})
	marker := []byte("RINGFENCE-AUDIO-MARKER-0123456789-abcdefghijklmnopqrstuvwxyz-")
	audio := bytes.Repeat(marker, 3*archive.DefaultChunkSize/len(marker))
	rc := e.upload(t, "bank", "rec-1", c.ID, audio)
	half, _, err := e.n.BeginRecording(ctx, "bank", RecordingRequest{ClientID: "rec-2", CallID: c.ID, ContentType: "audio/wav"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.AppendRecording(ctx, "bank", half.UploadID, 0, &archFailAfter{r: bytes.NewReader(audio), n: archive.DefaultChunkSize + 999, err: errArchDropped}); !errors.Is(err, errArchDropped) {
		t.Fatal(err)
	}
	// Reads and an export (sealed at rest) too.
	if _, err := e.n.SearchArchive(ctx, "bank", ArchiveSearch{Number: archPartyA, Text: archSMSWord}, "scan"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.ExportArchive(ctx, "bank", ExportRequest{CaseID: "case-1", Items: []string{rc.ID}}, "scan"); err != nil {
		t.Fatal(err)
	}

	files := map[string][]byte{}
	filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(e.dir, p)
			files[rel] = b
		}
		return nil
	})
	var haveWAL, haveBlob, havePart bool
	for name := range files {
		haveWAL = haveWAL || strings.HasSuffix(name, "-wal")
		haveBlob = haveBlob || strings.Contains(name, rc.ID)
		havePart = havePart || strings.HasSuffix(name, ".part")
	}
	if !haveWAL || !haveBlob || !havePart {
		t.Fatalf("scan would prove little: WAL %v, blob %v, partial upload %v among %d files", haveWAL, haveBlob, havePart, len(files))
	}
	needles := []string{archSMSText, archSMSWord, "Zanzibar", archUserName, archContactName, string(marker[:24])}
	for _, num := range [][2]string{{archUserNumber, archUserNat}, {archPartyA, archPartyANat}, {archPartyB, archPartyBNat}, {archContactNum, archContactNat}} {
		needles = append(needles, num[0], num[1], num[0][1:])
	}
	for name, b := range files {
		for _, s := range needles {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q", name, s)
			}
		}
	}
	// The scan can fail: the needles are what the archive gives back.
	e.close()
	e.open(t)
	got, err := e.n.ArchiveItem(ctx, "bank", c.ID, "scan")
	if err != nil || got.Parties[0] != archPartyA {
		t.Fatalf("view after reopen: %+v %v", got, err)
	}
}

// TestArchiveAbandonedUploads discards, with the retention run, an upload
// untouched for a week (session and partial data), and keeps a recent one.
func TestArchiveAbandonedUploads(t *testing.T) {
	e := openArchEnv(t)
	ctx := t.Context()
	c := e.ingest(t, "bank", store.ArchiveCall, ArchiveRecord{ClientID: "call-1", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: archBase})
	old, _, err := e.n.BeginRecording(ctx, "bank", RecordingRequest{ClientID: "r-old", CallID: c.ID, ContentType: "audio/wav"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.AppendRecording(ctx, "bank", old.UploadID, 0, strings.NewReader("RIFF partial")); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(8 * 24 * time.Hour)
	recent, _, err := e.n.BeginRecording(ctx, "bank", RecordingRequest{ClientID: "r-new", CallID: c.ID, ContentType: "audio/wav"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.PurgeExpired(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.RecordingStatus(ctx, "bank", old.UploadID); call.ErrorCode(err) != call.NotFound {
		t.Errorf("an upload untouched for 8 days survives the purge: %v", err)
	}
	if _, err := e.n.RecordingStatus(ctx, "bank", recent.UploadID); err != nil {
		t.Errorf("a fresh upload was discarded: %v", err)
	}
}

// TestArchiveBlocksKeyRetirement: the rewrap does not cover the archive
// yet, so retiring a tenant's older keys is refused while it holds any.
func TestArchiveBlocksKeyRetirement(t *testing.T) {
	e := openArchEnv(t)
	ctx := t.Context()
	e.ingest(t, "bank", store.ArchiveSMS, ArchiveRecord{ClientID: "sms-1", UserID: "u1", Direction: "inbound",
		Parties: []string{archPartyA}, StartedAt: archBase, Text: "hello"})
	if _, err := e.n.RotateKey(ctx, "bank"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.Rewrap(ctx, "bank"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.RetireKeys(ctx, "bank"); call.ErrorCode(err) != call.Conflict {
		t.Fatalf("RetireKeys with archive data: %v, want Conflict", err)
	}
}
