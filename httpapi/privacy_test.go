package httpapi

import (
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/consortium"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// privacyEnv is env with an audit log and keys for the privacy roles of
// tenant "bank".
type privacyEnv struct {
	*env
	officer, auditor, analyst string
}

// newPrivacyEnv is newFullEnv without a consortium, with keys for the
// privacy officer, an auditor and an analyst of tenant "bank".
func newPrivacyEnv(t *testing.T) *privacyEnv {
	t.Helper()
	pe := &privacyEnv{env: newFullEnv(t, Config{}, false)}
	for _, k := range []struct {
		to   *string
		role call.Role
	}{{&pe.officer, call.PrivacyOfficer}, {&pe.auditor, call.Auditor}, {&pe.analyst, call.Analyst}} {
		key, err := pe.node.NewAPIKey(context.Background(), "bank", string(k.role), k.role)
		if err != nil {
			t.Fatal(err)
		}
		*k.to = key
	}
	return pe
}

// consortiumTerms is the terms version of newFullEnv's consortium.
const consortiumTerms = "terms-1"

// newFullEnv is newEnv with the node auditing to a real audit.Log whose
// checkpoint key is derived from the master key, as ringfence serve does,
// and, with consortium, running a consortium (terms consortiumTerms) that
// neither tenant has joined yet.
func newFullEnv(t *testing.T, cfg Config, withConsortium bool) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rf.db"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := seal.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := audit.KeyFromSecret(mk.Derive("audit checkpoint v1"))
	nc := node.Config{
		Audit:     audit.New(st, signer, "master:"+mk.ID(), nil),
		AuditKey:  signer.Public().(ed25519.PublicKey),
		StoreName: "sqlite",
	}
	var svc *consortium.Service
	if withConsortium {
		view := consortium.NewView(mk.Derive("consortium pseudonym v1"))
		svc = &consortium.Service{ID: "test", Store: st, View: view}
		if err := svc.Setup(ctx, "operator", store.ConsortiumInfo{Terms: consortiumTerms}); err != nil {
			t.Fatal(err)
		}
		nc.Consortium, nc.Engine.Consortium = svc, view
	}
	n, err := node.Open(ctx, nc, st, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := n.CreateTenant(ctx, "bank", "Bank", "GB")
	if err != nil {
		t.Fatal(err)
	}
	_, key2, err := n.CreateTenant(ctx, "other", "Other", "GB")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(cfg, n, nil))
	t.Cleanup(func() {
		srv.Close()
		n.Close()
		st.Close()
	})
	return &env{t: t, srv: srv, node: n, key: key, key2: key2}
}

// caseJSON is the part of a case the tests read.
type caseJSON struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Identity string `json:"identity"`
	Outcome  string `json:"outcome"`
	Number   string `json:"number"`
	Deadline struct {
		Started bool   `json:"started"`
		Due     string `json:"due"`
	} `json:"deadline"`
	Package *struct {
		Bytes int `json:"bytes"`
	} `json:"package"`
	Receipt *struct {
		CaseID string `json:"case_id"`
		Stores []struct {
			Store, Class, Action string
			Found, Done          int64
		} `json:"stores"`
	} `json:"receipt"`
}

// result returns the receipt's line for class.
func (c caseJSON) result(t *testing.T, class string) (action string, found, done int64) {
	t.Helper()
	if c.Receipt == nil {
		t.Fatalf("case %s has no receipt", c.ID)
	}
	for _, s := range c.Receipt.Stores {
		if s.Class == class {
			return s.Action, s.Found, s.Done
		}
	}
	t.Fatalf("receipt of %s has no %s line: %+v", c.ID, class, c.Receipt.Stores)
	return "", 0, 0
}

// screenFrom screens n calls from caller for the subject and returns their
// record ids.
func (e *privacyEnv) screenFrom(caller string, n int) []string {
	e.t.Helper()
	var ids []string
	for i := range n {
		var v verdict
		body := `{"caller":"` + caller + `","dialled":"+442071838750","call_ref":"ref-` + string(rune('a'+i)) + `"}`
		if st, _ := e.do(e.key, "POST", "/v1/screen", body, &v); st != 200 {
			e.t.Fatalf("screen: %d", st)
		}
		ids = append(ids, v.RecordID)
	}
	return ids
}

// openConfirmed opens a case of typ for number and confirms the subject's
// identity.
func (e *privacyEnv) openConfirmed(typ, number string) caseJSON {
	e.t.Helper()
	var c caseJSON
	if st, _ := e.do(e.officer, "POST", "/v1/privacy/cases", `{"type":"`+typ+`","number":"`+number+`"}`, &c); st != 201 {
		e.t.Fatalf("open %s case: %d", typ, st)
	}
	if c.Status != "open" || c.Identity != "pending" || c.Deadline.Started {
		e.t.Errorf("new case = %+v, want open, identity pending, clock not started", c)
	}
	if st, _ := e.do(e.officer, "POST", "/v1/privacy/cases/"+c.ID+"/steps", `{"step":"confirm_identity"}`, &c); st != 200 {
		e.t.Fatalf("confirm identity: %d", st)
	}
	if c.Status != "in_progress" || c.Identity != "confirmed" || !c.Deadline.Started || c.Deadline.Due == "" {
		e.t.Errorf("confirmed case = %+v, want in_progress with a running clock", c)
	}
	return c
}

func (e *privacyEnv) fulfil(id, body string) caseJSON {
	e.t.Helper()
	var c caseJSON
	if st, _ := e.do(e.officer, "POST", "/v1/privacy/cases/"+id+"/fulfil", body, &c); st != 200 {
		e.t.Fatalf("fulfil %s: %d", id, st)
	}
	if c.Status != "completed" || c.Receipt == nil || c.Receipt.CaseID != id {
		e.t.Fatalf("fulfilled case = %+v, want completed with a receipt", c)
	}
	return c
}

// get fetches path with key and returns status, headers and raw body.
func (e *privacyEnv) get(key, path string) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// callIDs lists the ids of the tenant's calls.
func (e *privacyEnv) callIDs() []string {
	e.t.Helper()
	var page callsPage
	if st, _ := e.do(e.key, "GET", "/v1/calls?limit=1000", "", &page); st != 200 {
		e.t.Fatalf("list calls: %d", st)
	}
	var ids []string
	for _, c := range page.Calls {
		ids = append(ids, c.RecordID)
	}
	return ids
}

func TestAccessCaseOverHTTP(t *testing.T) {
	e := newPrivacyEnv(t)
	const subject = "+447400123456"
	calls := e.screenFrom(subject, 2)
	bystander := e.screenFrom("+447400999999", 1)
	if st, _ := e.do(e.key, "POST", "/v1/lists/deny", `{"number":"07400 123456","reason":"scam calls"}`, nil); st != 201 {
		t.Fatalf("deny: %d", st)
	}
	if st, _ := e.do(e.analyst, "POST", "/v1/calls/"+calls[0]+"/label", `{"label":"fraud","fraud_type":"impersonation","note":"said he was the bank"}`, nil); st != 201 {
		t.Fatalf("label: %d", st)
	}

	c := e.openConfirmed("access", "07400 123456")
	if c.Number != subject {
		t.Errorf("case number = %q, want %s", c.Number, subject)
	}
	var ae apiError
	if st, _ := e.do(e.officer, "GET", "/v1/privacy/cases/"+c.ID+"/package", "", &ae); st != 404 || ae.Error.Code != "not_found" {
		t.Errorf("package before fulfil: %d %+v, want 404", st, ae)
	}
	c = e.fulfil(c.ID, `{}`)
	if c.Package == nil || c.Package.Bytes == 0 {
		t.Errorf("fulfilled access case has no package: %+v", c)
	}
	if action, found, done := c.result(t, "call_records"); action != "exported" || found != 2 || done != 2 {
		t.Errorf("receipt call_records = %s %d/%d, want exported 2/2", action, found, done)
	}
	if action, found, _ := c.result(t, "lists"); action != "exported" || found != 1 {
		t.Errorf("receipt lists = %s %d, want exported 1", action, found)
	}

	// JSON.
	st, h, b := e.get(e.officer, "/v1/privacy/cases/"+c.ID+"/package?format=json")
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || h.Get("Cache-Control") != "no-store" ||
		h.Get("Content-Disposition") != `attachment; filename="`+c.ID+`.json"` {
		t.Fatalf("json package: %d %v", st, h)
	}
	var pkg struct {
		Schema  string `json:"schema"`
		CaseID  string `json:"case_id"`
		Subject struct {
			Number string `json:"number"`
		} `json:"subject"`
		Calls []struct {
			RecordID string `json:"record_id"`
			Caller   string `json:"caller"`
			Labels   []struct {
				Label, Note string
			} `json:"labels"`
		} `json:"calls"`
		ListEntries []struct {
			List, Reason string
		} `json:"list_entries"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("package is not JSON: %v", err)
	}
	if pkg.Schema != "ringfence.subject-package/v1" || pkg.CaseID != c.ID || pkg.Subject.Number != subject {
		t.Errorf("package header = %s %s %s", pkg.Schema, pkg.CaseID, pkg.Subject.Number)
	}
	var got []string
	for _, pc := range pkg.Calls {
		got = append(got, pc.RecordID)
		if pc.Caller != subject {
			t.Errorf("package call %s caller = %q, want %s", pc.RecordID, pc.Caller, subject)
		}
		if pc.RecordID == calls[0] && (len(pc.Labels) != 1 || pc.Labels[0].Note != "said he was the bank") {
			t.Errorf("package call %s labels = %+v, want the fraud label with its note", pc.RecordID, pc.Labels)
		}
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(calls)); !slices.Equal(got, want) {
		t.Errorf("package calls = %v, want %v (and not the bystander's %v)", got, want, bystander)
	}
	// The fraud label re-listed the number with its own reason.
	if len(pkg.ListEntries) != 1 || pkg.ListEntries[0].List != "deny" || !strings.Contains(pkg.ListEntries[0].Reason, calls[0]) {
		t.Errorf("package list entries = %+v, want the deny entry of the fraud label", pkg.ListEntries)
	}

	// CSV.
	st, h, b = e.get(e.officer, "/v1/privacy/cases/"+c.ID+"/package?format=csv")
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || h.Get("Content-Disposition") != `attachment; filename="`+c.ID+`.csv"` {
		t.Fatalf("csv package: %d %v", st, h)
	}
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		t.Fatalf("package is not CSV: %v", err)
	}
	if len(rows) != 3 || rows[0][0] != "record_id" || rows[0][2] != "caller" {
		t.Fatalf("csv = %q, want a header and 2 rows", rows)
	}
	got = []string{rows[1][0], rows[2][0]}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(calls)); !slices.Equal(got, want) {
		t.Errorf("csv records = %v, want %v", got, want)
	}
	for _, r := range rows[1:] {
		// A leading '+' is escaped so that a spreadsheet reads text.
		if r[2] != "'"+subject {
			t.Errorf("csv caller = %q, want '%s", r[2], subject)
		}
	}
	if st, _ := e.do(e.officer, "GET", "/v1/privacy/cases/"+c.ID+"/package?format=xml", "", &ae); st != 400 || !strings.Contains(ae.Error.Message, "format") {
		t.Errorf("xml package: %d %+v, want 400 naming format", st, ae)
	}

	// The audit log shows the case's steps and holds no number.
	st, _, b = e.get(e.auditor, "/v1/audit?action=dsar.&limit=1000")
	if st != 200 {
		t.Fatalf("audit: %d %s", st, b)
	}
	if strings.Contains(string(b), "7400123456") {
		t.Errorf("audit entries hold the subject's number: %s", b)
	}
	var log struct {
		Entries []struct {
			Seq                         int64
			Actor, Action, Object, Hash string
		} `json:"entries"`
	}
	if err := json.Unmarshal(b, &log); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var last int64
	for _, en := range log.Entries {
		if en.Seq <= last || len(en.Hash) != 64 {
			t.Errorf("entry %+v: seq not ascending or hash not SHA-256 hex", en)
		}
		last = en.Seq
		if en.Object == c.ID {
			seen[en.Action] = true
			if en.Actor != "key:privacy_officer" {
				t.Errorf("%s by %q, want key:privacy_officer", en.Action, en.Actor)
			}
		}
	}
	for _, a := range []string{"dsar.open", "dsar.confirm_identity", "dsar.complete", "dsar.download"} {
		if !seen[a] {
			t.Errorf("audit log has no %s entry for %s (has %v)", a, c.ID, seen)
		}
	}
	var rep struct {
		OK      bool           `json:"ok"`
		Entries int64          `json:"entries"`
		Last    int64          `json:"last"`
		Break   map[string]any `json:"break"`
	}
	if st, _ := e.do(e.auditor, "POST", "/v1/audit/verify", "", &rep); st != 200 || !rep.OK || rep.Break != nil || rep.Entries < int64(len(log.Entries)) || rep.Last < last {
		t.Errorf("verify: %d %+v, want ok over at least %d entries", st, rep, len(log.Entries))
	}
	// Another tenant's privacy officer does not find the case.
	po2, err := e.node.NewAPIKey(context.Background(), "other", "po", call.PrivacyOfficer)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := e.do(po2, "GET", "/v1/privacy/cases/"+c.ID, "", &ae); st != 404 {
		t.Errorf("other tenant's privacy officer reading the case: %d, want 404", st)
	}
	if st, _ := e.do(po2, "GET", "/v1/privacy/cases/"+c.ID+"/package", "", &ae); st != 404 {
		t.Errorf("other tenant's privacy officer downloading the package: %d, want 404", st)
	}
}

func TestErasureCaseOverHTTP(t *testing.T) {
	e := newPrivacyEnv(t)
	const subject, held = "+447400123456", "+447400654321"
	gone := e.screenFrom(subject, 2)
	kept := e.screenFrom(held, 2)
	bystander := e.screenFrom("+447400999999", 1)

	t.Run("erased", func(t *testing.T) {
		c := e.openConfirmed("erasure", subject)
		c = e.fulfil(c.ID, `{}`)
		if action, found, done := c.result(t, "call_records"); action != "deleted" || found != 2 || done != 2 {
			t.Errorf("receipt call_records = %s %d/%d, want deleted 2/2", action, found, done)
		}
		if c.Outcome != "complied" {
			t.Errorf("outcome = %q, want complied", c.Outcome)
		}
		ids := e.callIDs()
		for _, id := range gone {
			if slices.Contains(ids, id) {
				t.Errorf("erased call %s still listed", id)
			}
			var ae apiError
			if st, _ := e.do(e.key, "GET", "/v1/calls/"+id, "", &ae); st != 404 {
				t.Errorf("erased call %s: %d, want 404", id, st)
			}
		}
		for _, id := range append(slices.Clone(kept), bystander...) {
			if !slices.Contains(ids, id) {
				t.Errorf("call %s of another subject was erased", id)
			}
		}
	})

	t.Run("legal hold", func(t *testing.T) {
		var h struct{ ID string }
		if st, _ := e.do(e.officer, "POST", "/v1/privacy/holds", `{"scope":"subject","subject":{"number":"`+held+`"},"reason":"claim 2026/114"}`, &h); st != 201 || h.ID == "" {
			t.Fatalf("place hold: %d %+v", st, h)
		}
		c := e.openConfirmed("erasure", held)
		c = e.fulfil(c.ID, `{}`)
		action, found, done := c.result(t, "call_records")
		if action != "kept: legal hold "+h.ID || found != 2 || done != 0 {
			t.Errorf("receipt call_records = %q %d/%d, want %q 2/0", action, found, done, "kept: legal hold "+h.ID)
		}
		if c.Outcome != "partly_complied" {
			t.Errorf("outcome = %q, want partly_complied", c.Outcome)
		}
		ids := e.callIDs()
		for _, id := range kept {
			if !slices.Contains(ids, id) {
				t.Errorf("held call %s was erased", id)
			}
		}
	})
}

func TestRestrictionCaseOverHTTP(t *testing.T) {
	e := newPrivacyEnv(t)
	const subject = "+447400123456"
	e.screenFrom(subject, 1)
	// A subject hold shows the subject's pseudonym, which node.Limits takes.
	var h struct{ ID, Subject string }
	if st, _ := e.do(e.officer, "POST", "/v1/privacy/holds", `{"scope":"subject","subject":{"number":"`+subject+`"},"reason":"pseudonym"}`, &h); st != 201 {
		t.Fatalf("place hold: %d", st)
	}
	p, err := hex.DecodeString(h.Subject)
	if err != nil || len(p) != 32 {
		t.Fatalf("hold subject %q is not a 32-byte pseudonym", h.Subject)
	}
	if st, _ := e.do(e.officer, "DELETE", "/v1/privacy/holds/"+h.ID, "", nil); st != 204 {
		t.Fatalf("lift hold: %d", st)
	}
	if r, _ := e.node.Limits("bank", p); r {
		t.Fatal("restricted before the case")
	}
	c := e.openConfirmed("restriction", subject)
	c = e.fulfil(c.ID, `{}`)
	if action, _, done := c.result(t, "call_records"); action != "restricted" || done != 1 {
		t.Errorf("receipt = %s %d, want restricted 1", action, done)
	}
	if r, o := e.node.Limits("bank", p); !r || o {
		t.Errorf("Limits = restricted %v, objected %v; want restricted only", r, o)
	}
	if r, _ := e.node.Limits("other", p); r {
		t.Error("restriction leaked to another tenant")
	}
}

func TestRetentionOverHTTP(t *testing.T) {
	e := newPrivacyEnv(t)
	var ret map[string]struct{ Months, Days int }
	if st, _ := e.do(e.officer, "GET", "/v1/privacy/retention", "", &ret); st != 200 || ret["call_records"].Months == 0 {
		t.Fatalf("get retention: %d %+v", st, ret)
	}
	cases := []struct {
		name, body string
		status     int
		message    string
	}{
		{"too long", `{"call_records":{"months":1200}}`, 400, "retention.call_records: must be between"},
		{"too short", `{"call_records":{"months":0}}`, 400, "retention.call_records: must be between"},
		{"days", `{"call_records":{"days":10}}`, 400, "retention.call_records: must be whole months"},
		{"unknown class", `{"horoscopes":{"months":1}}`, 400, `unknown data class "horoscopes"`},
		{"fixed class", `{"access_logs":{"days":30}}`, 400, "retention.access_logs: fixed at"},
		{"within bounds", `{"call_records":{"months":6}}`, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ae apiError
			st, _ := e.do(e.officer, "PUT", "/v1/privacy/retention", c.body, &ae)
			if st != c.status || !strings.Contains(ae.Error.Message, c.message) {
				t.Errorf("got %d %+v, want %d %q", st, ae.Error, c.status, c.message)
			}
		})
	}
	if st, _ := e.do(e.officer, "GET", "/v1/privacy/retention", "", &ret); st != 200 || ret["call_records"].Months != 6 {
		t.Errorf("after PUT: %d %+v, want call_records 6 months", st, ret["call_records"])
	}
}
