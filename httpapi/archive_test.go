package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/archive"
	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/consortium"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// archiveEnv is an API over a node with a real archive (blobs and uploads
// on disk) and the consortium on, with a key of every role for "bank" and
// "other".
type archiveEnv struct {
	*env
	keys map[string]map[call.Role]string // tenant -> role -> key
}

func newArchiveEnv(t *testing.T) *archiveEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "rf.db"))
	if err != nil {
		t.Fatal(err)
	}
	mk, _ := seal.NewMasterKey()
	blobs, err := archive.OpenDirBlobs(filepath.Join(dir, "archive", "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ups, err := archive.OpenUploads(filepath.Join(dir, "archive", "uploads"), blobs, archive.UploadsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	signer := audit.KeyFromSecret(mk.Derive("audit checkpoint v1"))
	view := consortium.NewView(mk.Derive("consortium pseudonym v1"))
	svc := &consortium.Service{ID: "test", Store: st, View: view}
	if err := svc.Setup(ctx, "operator", store.ConsortiumInfo{Terms: consortiumTerms}); err != nil {
		t.Fatal(err)
	}
	nc := node.Config{Audit: audit.New(st, signer, "test", nil), AuditKey: signer.Public().(ed25519.PublicKey),
		ArchiveBlobs: blobs, ArchiveUploads: ups, Consortium: svc}
	nc.Engine.Consortium = view
	n, err := node.Open(ctx, nc, st, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	ae := &archiveEnv{keys: map[string]map[call.Role]string{}}
	for _, tenant := range []string{"bank", "other"} {
		if _, _, err := n.CreateTenant(ctx, tenant, "", "GB"); err != nil {
			t.Fatal(err)
		}
		ae.keys[tenant] = map[call.Role]string{}
		for _, r := range call.Roles {
			k, err := n.NewAPIKey(ctx, tenant, "k-"+string(r), r)
			if err != nil {
				t.Fatal(err)
			}
			ae.keys[tenant][r] = k
		}
	}
	srv := httptest.NewServer(New(Config{}, n, nil))
	t.Cleanup(func() {
		srv.Close()
		n.Close()
		st.Close()
	})
	ae.env = &env{t: t, srv: srv, node: n, key: ae.keys["bank"][call.Admin], key2: ae.keys["other"][call.Admin]}
	return ae
}

// raw sends a request with a raw body and headers and returns the status,
// headers and body.
func (e *archiveEnv) raw(key, method, path string, body io.Reader, hdr map[string]string) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

const (
	archSMS    = "Meet at the quayside warehouse"
	archParty  = "+447700900444"
	archNat    = "07700900444"
	archPerson = "Octavia Wrenfield"
)

// archiveObjects are one tenant's archive objects made through the API.
type archiveObjects struct {
	user, call, sms, rec, upload, export, hold string
	audio                                      []byte
}

// populate ingests a user, a call, an SMS and a recording (uploaded in
// two parts) with tenant's recorder key, and exports them and places a
// hold with its compliance officer's.
func (e *archiveEnv) populate(t *testing.T, tenant string) archiveObjects {
	t.Helper()
	rec, co := e.keys[tenant][call.Recorder], e.keys[tenant][call.ComplianceOfficer]
	o := archiveObjects{user: "u-" + tenant}
	if st, _ := e.do(rec, "PUT", "/v1/archive/users/"+o.user, `{"name":"`+archPerson+`","business_numbers":["`+archNat+`"]}`, nil); st != 204 {
		t.Fatalf("put user: %d", st)
	}
	var rc node.ArchiveReceipt
	if st, _ := e.do(rec, "POST", "/v1/archive/calls", `{"client_id":"c1","user_id":"`+o.user+`","direction":"inbound","parties":["`+archNat+`"],"started_at":"2026-03-01T10:00:00Z","duration_s":60,"result":"answered"}`, &rc); st != 201 {
		t.Fatalf("ingest call: %d", st)
	}
	o.call = rc.ID
	body := `{"client_id":"s1","user_id":"` + o.user + `","direction":"outbound","parties":["` + archParty + `"],"started_at":"2026-03-01T11:00:00Z","text":"` + archSMS + `"}`
	if st, _ := e.do(rec, "POST", "/v1/archive/sms", body, &rc); st != 201 {
		t.Fatalf("ingest sms: %d", st)
	}
	o.sms = rc.ID
	var again node.ArchiveReceipt
	if st, _ := e.do(rec, "POST", "/v1/archive/sms", body, &again); st != 200 || again.ID != o.sms || again.Created {
		t.Errorf("repeated sms: %d %+v, want 200 with the stored item", st, again)
	}

	o.audio, _ = io.ReadAll(io.LimitReader(rand.NewChaCha8([32]byte{byte(len(tenant))}), 300_000))
	var up node.UploadStatus
	if st, _ := e.do(rec, "POST", "/v1/archive/recordings", `{"client_id":"r1","call_id":"`+o.call+`","content_type":"audio/wav"}`, &up); st != 201 {
		t.Fatalf("begin recording: %d", st)
	}
	o.upload = up.UploadID
	path := "/v1/archive/uploads/" + up.UploadID
	if st, _, b := e.raw(rec, "PATCH", path, bytes.NewReader(o.audio[:100_000]), map[string]string{"Upload-Offset": "0"}); st != 200 {
		t.Fatalf("append: %d %s", st, b)
	}
	st, h, _ := e.raw(rec, "PATCH", path, bytes.NewReader(o.audio[100_000:]), map[string]string{"Upload-Offset": "5"})
	if st != 409 || h.Get("Upload-Offset") != "100000" {
		t.Errorf("append at a wrong offset: %d, Upload-Offset %q; want 409 and 100000", st, h.Get("Upload-Offset"))
	}
	var status node.UploadStatus
	if st, _ := e.do(rec, "GET", path, "", &status); st != 200 || status.Offset != 100_000 {
		t.Fatalf("status: %d %+v", st, status)
	}
	if st, _, b := e.raw(rec, "PATCH", path, bytes.NewReader(o.audio[100_000:]), map[string]string{"Upload-Offset": "100000"}); st != 200 {
		t.Fatalf("append: %d %s", st, b)
	}
	sum := sha256.Sum256(o.audio)
	if st, _ := e.do(rec, "POST", path+"/complete", `{"sha256":"`+hex.EncodeToString(sum[:])+`"}`, &rc); st != 201 || rc.Kind != "recording" {
		t.Fatalf("complete: %d %+v", st, rc)
	}
	o.rec = rc.ID

	var ex node.ExportReceipt
	if st, _ := e.do(co, "POST", "/v1/archive/exports?reason=case+1", `{"case_id":"case-1","items":["`+o.call+`","`+o.sms+`","`+o.rec+`"]}`, &ex); st != 201 {
		t.Fatalf("export: %d", st)
	}
	o.export = ex.ID
	var hold node.ArchiveHold
	if st, _ := e.do(co, "POST", "/v1/archive/holds", `{"scope":"user","user_id":"`+o.user+`","reason":"case 1"}`, &hold); st != 201 {
		t.Fatalf("hold: %d", st)
	}
	o.hold = hold.ID
	return o
}

func TestArchiveHTTPFlow(t *testing.T) {
	e := newArchiveEnv(t)
	o := e.populate(t, "bank")
	co := e.keys["bank"][call.ComplianceOfficer]

	t.Run("reason required", func(t *testing.T) {
		for _, p := range []string{"/v1/archive/items", "/v1/archive/items/" + o.sms, "/v1/archive/items/" + o.rec + "/media",
			"/v1/archive/exports/" + o.export, "/v1/archive/users/" + o.user} {
			var ae apiError
			if st, _ := e.do(co, "GET", p, "", &ae); st != 400 || !strings.Contains(ae.Error.Message, "reason") {
				t.Errorf("GET %s without a reason: %d %+v", p, st, ae.Error)
			}
		}
	})
	t.Run("search", func(t *testing.T) {
		var res struct{ Items []node.ArchiveEntry }
		st, _, b := e.raw(co, "GET", "/v1/archive/items?text=QUAYSIDE&number="+url.QueryEscape(archParty), nil, map[string]string{"X-Reason": "surveillance alert 9"})
		if st != 200 {
			t.Fatalf("search: %d %s", st, b)
		}
		decodeInto(t, b, &res)
		if len(res.Items) != 1 || res.Items[0].ID != o.sms || res.Items[0].Text != archSMS {
			t.Errorf("search = %+v", res.Items)
		}
		if st, _ := e.do(co, "GET", "/v1/archive/items?reason=x&kind=recording", "", &res); st != 200 || len(res.Items) != 1 || res.Items[0].ID != o.rec {
			t.Errorf("search by kind: %d %+v", st, res.Items)
		}
	})
	t.Run("playback with ranges", func(t *testing.T) {
		st, h, b := e.raw(co, "GET", "/v1/archive/items/"+o.rec+"/media?reason=qa", nil, nil)
		if st != 200 || !bytes.Equal(b, o.audio) || h.Get("Content-Type") != "audio/wav" {
			t.Fatalf("playback: %d %q, %d bytes (equal %v)", st, h.Get("Content-Type"), len(b), bytes.Equal(b, o.audio))
		}
		st, h, b = e.raw(co, "GET", "/v1/archive/items/"+o.rec+"/media?reason=qa", nil, map[string]string{"Range": "bytes=65500-65599"})
		if st != 206 || !bytes.Equal(b, o.audio[65500:65600]) || h.Get("Content-Range") != "bytes 65500-65599/"+strconv.Itoa(len(o.audio)) {
			t.Errorf("range: %d %q %d bytes", st, h.Get("Content-Range"), len(b))
		}
		if st, _, _ := e.raw(co, "GET", "/v1/archive/items/"+o.sms+"/media?reason=qa", nil, nil); st != 404 {
			t.Errorf("media of an SMS: %d, want 404", st)
		}
	})
	t.Run("export download verifies", func(t *testing.T) {
		st, h, b := e.raw(co, "GET", "/v1/archive/exports/"+o.export+"?reason=case+1", nil, nil)
		if st != 200 || h.Get("Content-Type") != "application/zip" {
			t.Fatalf("download: %d %q", st, h.Get("Content-Type"))
		}
		m, _, err := archive.VerifyExport(bytes.NewReader(b), int64(len(b)))
		if err != nil || len(m.Items) != 3 {
			t.Fatalf("verify: %v %+v", err, m)
		}
	})
	t.Run("retention", func(t *testing.T) {
		var r node.ArchiveRetention
		if st, _ := e.do(co, "PUT", "/v1/archive/retention", `{"kinds":{"recording":7},"users":{"u-bank":{"sms":2}}}`, &r); st != 200 || r.Kinds["recording"] != 7 || r.Kinds["call"] != 5 {
			t.Errorf("put retention: %d %+v", st, r)
		}
		var ae apiError
		if st, _ := e.do(co, "PUT", "/v1/archive/retention", `{"kinds":{"sms":8}}`, &ae); st != 400 {
			t.Errorf("8 years: %d %+v", st, ae)
		}
	})
	t.Run("recorder reads nothing back", func(t *testing.T) {
		rec := e.keys["bank"][call.Recorder]
		for _, p := range []string{"/v1/archive/items?reason=x", "/v1/archive/items/" + o.sms + "?reason=x", "/v1/archive/items/" + o.rec + "/media?reason=x",
			"/v1/archive/exports/" + o.export + "?reason=x", "/v1/archive/users/" + o.user + "?reason=x", "/v1/archive/holds", "/v1/archive/retention", "/v1/calls"} {
			if st, _, b := e.raw(rec, "GET", p, nil, nil); st != 403 || bytes.Contains(b, []byte(archSMS)) {
				t.Errorf("recorder GET %s: %d", p, st)
			}
		}
	})
}

func decodeInto(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
}

// TestArchiveRoutesRoles pins the roles of every archive route: ingest by
// recorder keys only, everything else by compliance officers only; and
// checks that every other role's key gets 403 on each, with real ids.
func TestArchiveRoutesRoles(t *testing.T) {
	e := newArchiveEnv(t)
	o := e.populate(t, "bank")
	ingest := map[string]bool{
		"PUT /v1/archive/users/{id}": true, "PUT /v1/archive/users/{id}/contacts": true, "POST /v1/archive/users/{id}/offboard": true,
		"POST /v1/archive/calls": true, "POST /v1/archive/sms": true, "POST /v1/archive/recordings": true,
		"GET /v1/archive/uploads/{id}": true, "PATCH /v1/archive/uploads/{id}": true, "POST /v1/archive/uploads/{id}/complete": true,
	}
	n := 0
	for _, route := range Routes {
		method, path, _ := cut(route.Pattern)
		if !strings.HasPrefix(path, "/v1/archive/") {
			continue
		}
		n++
		want := []call.Role{call.ComplianceOfficer}
		if ingest[route.Pattern] {
			want = []call.Role{call.Recorder}
		}
		if !slices.Equal(route.Roles, want) {
			t.Errorf("%s: roles %v, want %v", route.Pattern, route.Roles, want)
		}
		p := fillArchivePath(path, o) + "?reason=roles"
		for _, role := range call.Roles {
			if slices.Contains(want, role) {
				continue
			}
			st, _, b := e.raw(e.keys["bank"][role], method, p, strings.NewReader(`{}`), nil)
			if st != 403 || bytes.Contains(b, []byte(archSMS)) || bytes.Contains(b, []byte(archPerson)) {
				t.Errorf("%s %s as %s: %d %s, want 403", method, p, role, st, b)
			}
		}
	}
	if n != 21 {
		t.Errorf("%d archive routes, the test knows 21", n)
	}
}

// fillArchivePath names o's objects in an archive route's path.
func fillArchivePath(path string, o archiveObjects) string {
	r := strings.NewReplacer("/users/{id}", "/users/"+o.user, "/uploads/{id}", "/uploads/"+o.upload,
		"/items/{id}", "/items/"+o.rec, "/exports/{id}", "/exports/"+o.export, "/holds/{id}", "/holds/"+o.hold, "{day}", "2026-01-01")
	return r.Replace(path)
}

// TestArchiveOtherTenant names bank's archive objects with other's keys
// of the allowed role: every route with an object answers 404, exactly as
// for an id nobody has, and nothing of bank's comes back.
func TestArchiveOtherTenant(t *testing.T) {
	e := newArchiveEnv(t)
	o := e.populate(t, "bank")
	e.populate(t, "other") // other has objects of its own (same client ids)
	none := archiveObjects{user: "u-none", upload: "01ARZ3NDEKTSV4RRFFQ69G5FAV", rec: "01ARZ3NDEKTSV4RRFFQ69G5FAV", export: "01ARZ3NDEKTSV4RRFFQ69G5FAV", hold: "ahold-01ARZ3NDEKTSV4RRFFQ69G5FAV"}
	bodies := map[string]string{
		"PUT /v1/archive/users/{id}/contacts":    `{"contacts":[]}`,
		"POST /v1/archive/uploads/{id}/complete": `{"sha256":"` + strings.Repeat("0", 64) + `"}`,
		"PATCH /v1/archive/uploads/{id}":         "more audio",
	}
	for _, route := range Routes {
		method, path, _ := cut(route.Pattern)
		if !strings.HasPrefix(path, "/v1/archive/") || !strings.Contains(path, "{id}") || route.Pattern == "PUT /v1/archive/users/{id}" {
			continue // PUT users/{id} makes other's own user of that id: TestAuthorisationMatrix checks bank's is unchanged
		}
		key := e.keys["other"][route.Roles[0]]
		for _, obj := range []archiveObjects{o, none} {
			p := fillArchivePath(path, obj) + "?reason=cross"
			hdr := map[string]string{"Upload-Offset": "0"}
			st, _, b := e.raw(key, method, p, strings.NewReader(bodies[route.Pattern]), hdr)
			if st != 404 || bytes.Contains(b, []byte(o.sms)) {
				t.Errorf("other tenant %s %s: %d %s, want 404", method, p, st, b)
			}
		}
	}
	// Exporting bank's item from other's account is 404 too.
	var ae apiError
	if st, _ := e.do(e.keys["other"][call.ComplianceOfficer], "POST", "/v1/archive/exports?reason=x", `{"case_id":"c","items":["`+o.sms+`"]}`, &ae); st != 404 {
		t.Errorf("other tenant exports bank's item: %d %+v", st, ae)
	}
	// Bank's objects are intact.
	var it node.ArchiveEntry
	if st, _ := e.do(e.keys["bank"][call.ComplianceOfficer], "GET", "/v1/archive/items/"+o.sms+"?reason=x", "", &it); st != 200 || it.Text != archSMS {
		t.Errorf("bank's sms after other's attempts: %d %+v", st, it)
	}
	var hs struct{ Holds []node.ArchiveHold }
	if st, _ := e.do(e.keys["bank"][call.ComplianceOfficer], "GET", "/v1/archive/holds?active=true", "", &hs); st != 200 || len(hs.Holds) != 1 {
		t.Errorf("bank's holds after other's attempts: %d %+v", st, hs)
	}
}

// TestArchiveNotShared checks that nothing of the archive reaches the
// consortium or the other non-archive read routes: every GET route
// outside /v1/archive, called with every role of both tenants (the SMS
// party's number named where a route takes a number), answers without
// the archive's ids, text, names or numbers' archive-only traces.
func TestArchiveNotShared(t *testing.T) {
	e := newArchiveEnv(t)
	if st, _ := e.do(e.keys["bank"][call.Admin], "PUT", "/v1/consortium/membership", `{"terms":"`+consortiumTerms+`"}`, nil); st != 200 {
		t.Fatalf("join: %d", st)
	}
	if st, _ := e.do(e.keys["other"][call.Admin], "PUT", "/v1/consortium/membership", `{"terms":"`+consortiumTerms+`"}`, nil); st != 200 {
		t.Fatalf("join: %d", st)
	}
	o := e.populate(t, "bank")
	needles := []string{o.call, o.sms, o.rec, o.export, o.user, archSMS, "quayside", archPerson}
	checked := 0
	for _, route := range Routes {
		method, path, _ := cut(route.Pattern)
		if method != "GET" || strings.HasPrefix(path, "/v1/archive/") || path == "/v1/openapi.json" {
			continue
		}
		p := strings.NewReplacer("{number}", url.PathEscape(archParty), "{id}", o.sms, "{list}", "deny", "{version}", "1").Replace(path)
		for _, tenant := range []string{"bank", "other"} {
			for _, role := range call.Roles {
				st, _, b := e.raw(e.keys[tenant][role], method, p, nil, nil)
				if st >= 500 {
					t.Errorf("%s %s as %s/%s: %d", method, p, tenant, role, st)
				}
				check := needles
				if strings.Contains(path, "{id}") {
					check = slices.DeleteFunc(slices.Clone(needles), func(s string) bool { return s == o.sms }) // an error may echo the id asked for
				}
				if path == "/v1/audit" {
					check = needles[5:] // the tenant's own audit log names archive ids by design; never content
				}
				for _, s := range check {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("%s %s as %s/%s answers with archive data %q", method, p, tenant, role, s)
					}
				}
				if st == 200 {
					checked++
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no route answered 200: the check proved nothing")
	}
	// The consortium holds no entry for the archived party's number.
	var entry map[string]any
	st, _ := e.do(e.keys["other"][call.Analyst], "GET", "/v1/consortium/entries/"+url.PathEscape(archParty), "", &entry)
	if st == 200 {
		if r, _ := entry["reports"].(float64); r != 0 {
			t.Errorf("consortium entry for the archived number: %+v", entry)
		}
	}
}
