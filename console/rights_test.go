package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/archive"
	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/consortium"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// rightsTerms is the consortium terms version the test consortium offers.
const rightsTerms = "terms-1"

// otherMember is a second consortium member whose identity the bank's
// pages must never show.
const otherMember = "acme-insure"

// newRightsEnv is newEnv with a consortium (the tenant and otherMember
// may join) and the compliance archive's media store.
func newRightsEnv(tb testing.TB, cfg Config) *env {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "rf.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	mk, err := seal.NewMasterKey()
	if err != nil {
		tb.Fatal(err)
	}
	blobs, err := archive.OpenDirBlobs(filepath.Join(dir, "archive", "blobs"))
	if err != nil {
		tb.Fatal(err)
	}
	ups, err := archive.OpenUploads(filepath.Join(dir, "archive", "uploads"), blobs, archive.UploadsConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	view := consortium.NewView(mk.Derive("consortium pseudonym v1"))
	svc := &consortium.Service{ID: "test", Store: st, View: view}
	if err := svc.Setup(ctx, "operator", store.ConsortiumInfo{Terms: rightsTerms}); err != nil {
		tb.Fatal(err)
	}
	signer := audit.KeyFromSecret(mk.Derive("audit checkpoint v1"))
	nc := node.Config{
		Audit: audit.New(st, signer, "test", nil), AuditKey: signer.Public().(ed25519.PublicKey),
		StoreName: "sqlite", Consortium: svc, ArchiveBlobs: blobs, ArchiveUploads: ups,
	}
	nc.Engine.Consortium = view
	n, err := node.Open(ctx, nc, st, seal.NewKeyring(mk))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close() })
	for _, id := range []string{tenant, otherMember} {
		if _, _, err := n.CreateTenant(ctx, id, id, "GB"); err != nil {
			tb.Fatal(err)
		}
	}
	e := &env{t: tb, st: st, node: n, clock: &clock{}}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	e.con, err = New(cfg, n, st)
	if err != nil {
		tb.Fatal(err)
	}
	e.srv = httptest.NewServer(e.con)
	tb.Cleanup(e.srv.Close)
	for _, r := range signInRoles {
		e.addUser(userOf(r), r)
	}
	return e
}

// userOf names the test user of a role.
func userOf(r call.Role) string { return "u-" + string(r) }

// as is a node context for a tenant's admin.
func as(tenantID string) context.Context {
	return node.As(context.Background(), call.Principal{Tenant: tenantID, Role: call.Admin, Actor: "user:setup"})
}

// token signs in as the role's user and returns the browser and its CSRF
// token (from the sign-out form of the page the role lands on).
func (e *env) token(r call.Role) (*browser, string) {
	e.t.Helper()
	b := e.signIn(userOf(r))
	page := "/console/"
	res, _ := b.get(page)
	if loc := res.Header.Get("Location"); res.StatusCode == http.StatusSeeOther {
		page = loc
	}
	return b, b.csrf(page)
}

// path fills a route pattern's wildcards.
func path(pattern string) (method, p string) {
	method, p, _ = strings.Cut(pattern, " ")
	return method, strings.ReplaceAll(p, "{id}", "x-1")
}

func TestRightsRoles(t *testing.T) {
	t.Parallel()
	e := newRightsEnv(t, Config{})
	for _, role := range signInRoles {
		b, tok := e.token(role)
		for _, rt := range rightsRoutes {
			method, p := path(rt.pattern)
			t.Run(string(role)+" "+rt.pattern, func(t *testing.T) {
				var res *http.Response
				var body string
				if method == http.MethodPost {
					res, body = b.post(p, url.Values{"csrf": {tok}})
				} else {
					res, body = b.get(p)
				}
				allowed := slices.Contains(rt.roles, role)
				if !allowed && res.StatusCode != http.StatusForbidden {
					t.Fatalf("status %d, want 403", res.StatusCode)
				}
				if !allowed && !strings.Contains(body, "may not open") {
					t.Fatal("the 403 page does not say why")
				}
				if allowed && res.StatusCode == http.StatusForbidden {
					t.Fatalf("status 403 for a role the route allows")
				}
			})
		}
	}
	// Nothing of the archive is reachable by any role but a compliance
	// officer.
	for _, rt := range rightsRoutes {
		if strings.Contains(rt.pattern, "/console/archive") && !slices.Equal(rt.roles, []call.Role{call.ComplianceOfficer}) {
			t.Errorf("%s: roles %v, want compliance officer only", rt.pattern, rt.roles)
		}
	}
}

func TestRightsCSRF(t *testing.T) {
	t.Parallel()
	e := newRightsEnv(t, Config{})
	for _, rt := range rightsRoutes {
		method, p := path(rt.pattern)
		if method != http.MethodPost {
			continue
		}
		b := e.signIn(userOf(rt.roles[0]))
		for name, form := range map[string]url.Values{"no token": {}, "forged": {"csrf": {"forged"}}} {
			t.Run(rt.pattern+" "+name, func(t *testing.T) {
				form.Set("type", "access")
				form.Set("user_ref", "cust-1")
				form.Set("scope", "tenant")
				form.Set("reason", "audit")
				if res, _ := b.post(p, form); res.StatusCode != http.StatusForbidden {
					t.Fatalf("status %d, want 403", res.StatusCode)
				}
			})
		}
	}
	if cs, err := e.node.Cases(as(tenant), tenant, store.CaseFilter{}); err != nil || len(cs) != 0 {
		t.Fatalf("cases after forged posts: %d, %v", len(cs), err)
	}
	if hs, err := e.node.Holds(as(tenant), tenant, false); err != nil || len(hs) != 0 {
		t.Fatalf("holds after forged posts: %d, %v", len(hs), err)
	}
}

var caseLocation = regexp.MustCompile(`^/console/privacy/cases/([^?/]+)\?done=opened$`)

// openCase opens a case through the form and returns its id.
func openCaseForm(t *testing.T, b *browser, tok string, form url.Values) string {
	t.Helper()
	form.Set("csrf", tok)
	res, body := b.post("/console/privacy/cases", form)
	m := caseLocation.FindStringSubmatch(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("open case: status %d, location %q: %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	return m[1]
}

func TestPrivacyCaseFlow(t *testing.T) {
	t.Parallel()
	e := newRightsEnv(t, Config{})
	const subject = "+447700900555"
	c := e.screen(subject)
	b, tok := e.token(call.PrivacyOfficer)

	id := openCaseForm(t, b, tok, url.Values{"type": {"access"}, "number": {subject}})
	res, body := b.get("/console/privacy/cases/" + id)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("case page: %d", res.StatusCode)
	}
	if strings.Contains(body, subject[3:]) || !strings.Contains(body, "555") {
		t.Fatal("the case page shows the subject's number unmasked (or not at all)")
	}
	if !strings.Contains(body, "clock not started") {
		t.Fatal("a new case's deadline badge does not say the clock has not started")
	}

	// Unmasking reads the case through the node: audited as dsar.read.
	reads := len(e.auditActions("dsar.read", "user:"+userOf(call.PrivacyOfficer)))
	_, body = b.post("/console/privacy/cases/"+id+"/unmask", url.Values{"csrf": {tok}})
	if !strings.Contains(html.UnescapeString(body), subject) {
		t.Fatal("the unmasked case page does not show the number")
	}
	if got := len(e.auditActions("dsar.read", "user:"+userOf(call.PrivacyOfficer))); got != reads+1 {
		t.Fatalf("dsar.read entries: %d, want %d", got, reads+1)
	}

	// Fulfilling before the identity is confirmed is refused beside the form.
	res, body = b.post("/console/privacy/cases/"+id+"/fulfil", url.Values{"csrf": {tok}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("fulfil before identity: status %d", res.StatusCode)
	}

	// A pause without a reason: the error is beside the field.
	res, _ = b.post("/console/privacy/cases/"+id+"/step", url.Values{"csrf": {tok}, "step": {"confirm_identity"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm identity: %d", res.StatusCode)
	}
	res, body = b.post("/console/privacy/cases/"+id+"/step", url.Values{"csrf": {tok}, "step": {"pause"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `aria-describedby="s-pause-err"`) || !strings.Contains(body, `id="s-pause-err"`) {
		t.Fatalf("pause without a reason: status %d, no error beside the field", res.StatusCode)
	}

	res, _ = b.post("/console/privacy/cases/"+id+"/fulfil", url.Values{"csrf": {tok}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("fulfil: %d", res.StatusCode)
	}
	_, body = b.get("/console/privacy/cases/" + id + "?done=fulfil")
	for _, want := range []string{`id="receipt"`, "completed", `id="package-json"`, `id="package-csv"`, "Case fulfilled"} {
		if !strings.Contains(body, want) {
			t.Errorf("fulfilled case page lacks %q", want)
		}
	}
	for _, format := range []string{"json", "csv"} {
		t.Run(format, func(t *testing.T) {
			res, pkg := b.get("/console/privacy/cases/" + id + "/package?format=" + format)
			if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
				t.Fatalf("package: status %d, disposition %q", res.StatusCode, res.Header.Get("Content-Disposition"))
			}
			if !strings.Contains(pkg, subject) || !strings.Contains(pkg, c.ID) {
				t.Fatalf("the %s package lacks the subject's number or call", format)
			}
		})
	}
	if n := len(e.auditActions("dsar.download", "user:"+userOf(call.PrivacyOfficer))); n != 2 {
		t.Fatalf("dsar.download entries: %d, want 2", n)
	}
}

func TestPrivacyOverdue(t *testing.T) {
	t.Parallel()
	e := newRightsEnv(t, Config{})
	b, tok := e.token(call.PrivacyOfficer)
	now := time.Now()
	old := now.AddDate(0, 0, -40).In(privacy.London()).Format("2006-01-02")
	late := openCaseForm(t, b, tok, url.Values{"type": {"erasure"}, "user_ref": {"cust-late"}, "received": {old}})
	if res, body := b.post("/console/privacy/cases/"+late+"/step", url.Values{"csrf": {tok}, "step": {"confirm_identity"}, "at": {old}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm identity 40 days ago: %d: %s", res.StatusCode, body)
	}
	fresh := openCaseForm(t, b, tok, url.Values{"type": {"access"}, "user_ref": {"cust-fresh"}})
	b.post("/console/privacy/cases/"+fresh+"/step", url.Values{"csrf": {tok}, "step": {"confirm_identity"}})
	waiting := openCaseForm(t, b, tok, url.Values{"type": {"objection"}, "user_ref": {"cust-wait"}})

	_, body := b.get("/console/privacy")
	badgeOf := func(id string) string {
		m := regexp.MustCompile(`id="case-` + regexp.QuoteMeta(id) + `"[\s\S]*?data-badge>([^<]*)<`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("case %s not listed", id)
		}
		return m[1]
	}
	if got := badgeOf(late); got != "OVERDUE" {
		t.Errorf("case received and confirmed 40 days ago: badge %q, want OVERDUE", got)
	}
	if got := badgeOf(fresh); !strings.HasSuffix(got, "days left") {
		t.Errorf("case confirmed today: badge %q, want days left", got)
	}
	if got := badgeOf(waiting); got != "clock not started" {
		t.Errorf("unconfirmed case: badge %q", got)
	}
	// Sorted by due date: the overdue case first, the unstarted one after
	// the running ones.
	if i, j, k := strings.Index(body, "case-"+late), strings.Index(body, "case-"+fresh), strings.Index(body, "case-"+waiting); !(i < j && j < k) {
		t.Errorf("cases not sorted by due date: %d %d %d", i, j, k)
	}

	// The form's errors show beside their fields.
	res, body := b.post("/console/privacy/cases", url.Values{"csrf": {tok}, "type": {"nonsense"}, "received": {"yesterday"}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad form: status %d", res.StatusCode)
	}
	for _, f := range []string{"c-type", "c-number", "c-received"} {
		if !strings.Contains(body, `aria-describedby="`+f+`-err"`) || !strings.Contains(body, `id="`+f+`-err"`) {
			t.Errorf("no error beside %s", f)
		}
	}
}

func TestPrivacyHoldsAndRetention(t *testing.T) {
	t.Parallel()
	e := newRightsEnv(t, Config{})
	b, tok := e.token(call.PrivacyOfficer)
	res, body := b.post("/console/privacy/holds", url.Values{"csrf": {tok}, "scope": {"tenant"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="h-reason-err"`) {
		t.Fatalf("hold without a reason: status %d", res.StatusCode)
	}
	if res, _ := b.post("/console/privacy/holds", url.Values{"csrf": {tok}, "scope": {"subject"}, "number": {"+447700900777"}, "reason": {"litigation"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("place hold: %d", res.StatusCode)
	}
	hs, err := e.node.Holds(as(tenant), tenant, true)
	if err != nil || len(hs) != 1 || hs[0].Scope != "subject" {
		t.Fatalf("holds %+v, %v", hs, err)
	}
	_, body = b.get("/console/privacy/holds")
	if !strings.Contains(body, "hold-"+hs[0].ID[len("hold-"):]) || !strings.Contains(body, "litigation") || strings.Contains(body, "900777") {
		t.Fatal("holds page: hold missing, or the subject's number shown")
	}
	// An admin may lift it.
	ab, atok := e.token(call.Admin)
	if res, _ := ab.post("/console/privacy/holds/"+hs[0].ID+"/lift", url.Values{"csrf": {atok}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("lift: %d", res.StatusCode)
	}
	if hs, _ := e.node.Holds(as(tenant), tenant, true); len(hs) != 0 {
		t.Fatal("the hold is still active")
	}

	_, body = b.get("/console/privacy/retention")
	for _, ci := range privacy.Classes() {
		if !strings.Contains(body, `id="class-`+string(ci.Class)+`"`) || !strings.Contains(body, ci.Name) {
			t.Errorf("retention page lacks class %s", ci.Class)
		}
	}
	if !strings.Contains(body, privacy.Classes()[0].Default.String()) {
		t.Error("retention page lacks the periods")
	}
}

func TestConsortiumPage(t *testing.T) {
	t.Parallel()
	e := newRightsEnv(t, Config{})
	b, tok := e.token(call.Analyst)
	_, body := b.get("/console/consortium")
	if !strings.Contains(body, "<dt>Member</dt><dd>no</dd>") {
		t.Fatal("before joining the page does not say the tenant is not a member")
	}
	for _, id := range []string{tenant, otherMember} {
		if err := e.node.JoinConsortium(as(id), id, rightsTerms); err != nil {
			t.Fatal(err)
		}
	}
	const shared, mine = "+447700900321", "+447700900654"
	if _, err := e.node.ReportFraud(as(otherMember), otherMember, node.ReportRequest{Number: shared, FraudType: "account_takeover", Evidence: "case-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.ReportFraud(as(tenant), tenant, node.ReportRequest{Number: mine, FraudType: "impersonation", Evidence: "ticket-9"}); err != nil {
		t.Fatal(err)
	}
	_, body = b.get("/console/consortium")
	for _, want := range []string{"<dt>Member</dt><dd>yes</dd>", "Member since", rightsTerms, "impersonation", "ticket-9", "&#43;44•••"} {
		if !strings.Contains(body, want) {
			t.Errorf("consortium page lacks %q", want)
		}
	}
	if strings.Contains(body, otherMember) || strings.Contains(body, mine[3:]) || strings.Contains(body, shared[3:]) {
		t.Fatal("the consortium page names another member or shows a number")
	}
	if !regexp.MustCompile(`Live contributions</dt><dd class="num">1<`).MatchString(body) {
		t.Error("contributions not 1")
	}

	own, _ := e.node.OwnReports(as(tenant), tenant)
	if len(own) != 1 {
		t.Fatalf("own reports: %d", len(own))
	}
	if res, _ := b.post("/console/consortium/reports/"+own[0].ID+"/withdraw", url.Values{"csrf": {tok}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("withdraw: %d", res.StatusCode)
	}
	if own, _ := e.node.OwnReports(as(tenant), tenant); own[0].WithdrawnAt.IsZero() {
		t.Fatal("the report was not withdrawn")
	}

	res, body := b.post("/console/consortium/disputes", url.Values{"csrf": {tok}, "number": {shared}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="d-reason-err"`) {
		t.Fatalf("dispute without a reason: %d", res.StatusCode)
	}
	if res, body := b.post("/console/consortium/disputes", url.Values{"csrf": {tok}, "number": {shared}, "reason": {"wrong_number"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("dispute: %d: %s", res.StatusCode, body)
	}
	if v, err := e.node.ConsortiumEntry(as(tenant), tenant, shared); err != nil || !v.Disputed {
		t.Fatalf("entry after the dispute: %+v, %v", v, err)
	}
}

// archiveFixture stores a call, its recording and an SMS for the tenant.
func archiveFixture(t testing.TB, e *env) (callID, recID, smsID string, media []byte) {
	t.Helper()
	ctx := as(tenant)
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	rc, err := e.node.IngestArchive(ctx, tenant, store.ArchiveCall, node.ArchiveRecord{ClientID: "c-1", UserID: "trader-7",
		Direction: "outbound", Parties: []string{"+447700900888"}, StartedAt: start, DurationS: 42, Result: "answered"})
	if err != nil {
		t.Fatal(err)
	}
	sms, err := e.node.IngestArchive(ctx, tenant, store.ArchiveSMS, node.ArchiveRecord{ClientID: "s-1", UserID: "trader-7",
		Direction: "inbound", Parties: []string{"+447700900888"}, StartedAt: start.Add(time.Minute), Text: "buy gilts at noon"})
	if err != nil {
		t.Fatal(err)
	}
	media = bytes.Repeat([]byte("RIFF-test-audio-"), 4096)
	up, _, err := e.node.BeginRecording(ctx, tenant, node.RecordingRequest{ClientID: "r-1", CallID: rc.ID, ContentType: "audio/wav"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.AppendRecording(ctx, tenant, up.UploadID, 0, bytes.NewReader(media)); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(media)
	rec, err := e.node.CompleteRecording(ctx, tenant, up.UploadID, hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	return rc.ID, rec.ID, sms.ID, media
}

// auditDetails returns the details of the tenant's audit entries of one
// action by actor.
func auditDetails(e *env, action, actor string) []string {
	var out []string
	for _, en := range e.auditActions(action, actor) {
		if en.Action == action {
			out = append(out, en.Detail)
		}
	}
	return out
}

func TestArchivePages(t *testing.T) {
	t.Parallel()
	e := newRightsEnv(t, Config{})
	callID, recID, smsID, media := archiveFixture(t, e)
	b, tok := e.token(call.ComplianceOfficer)
	officer := "user:" + userOf(call.ComplianceOfficer)

	// The bare page is the form; a search without a reason is refused
	// with the error beside the reason field, and nothing is searched.
	if res, body := b.get("/console/archive"); res.StatusCode != http.StatusOK || !strings.Contains(body, `id="a-reason"`) {
		t.Fatalf("archive page: %d", res.StatusCode)
	}
	res, body := b.get("/console/archive?" + url.Values{"reason": {""}, "user": {"trader-7"}}.Encode())
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `aria-describedby="a-reason-err"`) || !strings.Contains(body, "reason: required") {
		t.Fatalf("search without a reason: status %d, error not beside the field", res.StatusCode)
	}
	if n := len(auditDetails(e, "archive.search", officer)); n != 0 {
		t.Fatalf("a refused search was audited %d times", n)
	}

	const reason = "FCA review of desk seven"
	res, body = b.get("/console/archive?" + url.Values{"reason": {reason}, "user": {"trader-7"}}.Encode())
	if res.StatusCode != http.StatusOK {
		t.Fatalf("search: %d", res.StatusCode)
	}
	for _, id := range []string{callID, recID, smsID} {
		if !strings.Contains(body, `id="item-`+id+`"`) {
			t.Errorf("results lack item %s", id)
		}
	}
	if strings.Contains(body, "900888") {
		t.Error("the results show a party's number unmasked")
	}
	ds := auditDetails(e, "archive.search", officer)
	if len(ds) != 1 || !strings.Contains(ds[0], reason) {
		t.Fatalf("archive.search audit details %q, want one with the reason", ds)
	}

	// The item page: opened with the reason, audited with it.
	rq := url.Values{"reason": {reason}}.Encode()
	if res, body := b.get("/console/archive/items/" + smsID); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="i-reason-err"`) {
		t.Fatalf("item without a reason: %d", res.StatusCode)
	}
	_, body = b.get("/console/archive/items/" + smsID + "?" + rq)
	if !strings.Contains(body, "buy gilts at noon") {
		t.Fatal("the SMS item page lacks its text")
	}
	if ds := auditDetails(e, "archive.view", officer); len(ds) != 1 || !strings.Contains(ds[0], reason) {
		t.Fatalf("archive.view audit details %q", ds)
	}
	_, body = b.get("/console/archive/items/" + recID + "?" + rq)
	m := regexp.MustCompile(`<audio controls[^>]* src="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the recording's page has no player")
	}
	if src, err := url.Parse(html.UnescapeString(m[1])); err != nil || src.Path != "/console/archive/items/"+recID+"/media" || src.Query().Get("reason") != reason {
		t.Fatalf("player src %q", m[1])
	}

	// The media streams with ranges; playback is audited with the reason.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/console/archive/items/"+recID+"/media?"+rq, nil)
	req.Header.Set("Range", "bytes=100-199")
	res, part := b.do(req)
	if res.StatusCode != http.StatusPartialContent || part != string(media[100:200]) || res.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("range request: status %d, %d bytes, type %q", res.StatusCode, len(part), res.Header.Get("Content-Type"))
	}
	if ds := auditDetails(e, "archive.play", officer); len(ds) != 1 || !strings.Contains(ds[0], reason) {
		t.Fatalf("archive.play audit details %q", ds)
	}
	if res, _ := b.get("/console/archive/items/" + recID + "/media"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("media without a reason: %d", res.StatusCode)
	}

	// Export: errors beside the fields, then an export and its download.
	res, body = b.post("/console/archive/exports", url.Values{"csrf": {tok}, "items": {callID, smsID}, "reason": {reason}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="e-case-err"`) {
		t.Fatalf("export without a case: %d", res.StatusCode)
	}
	res, body = b.post("/console/archive/exports", url.Values{"csrf": {tok}, "items": {callID, smsID}, "reason": {reason}, "case_id": {"fca-2025-a"}})
	m = regexp.MustCompile(`id="export-download" href="([^"]+)"`).FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("export: status %d, no download link", res.StatusCode)
	}
	res, zip := b.get(html.UnescapeString(m[1]))
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(zip, "PK") || res.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("export download: status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if ds := auditDetails(e, "archive.export", officer); len(ds) != 1 || !strings.Contains(ds[0], reason) {
		t.Fatalf("archive.export audit details %q", ds)
	}

	// Holds: place one on the user, see it, lift it.
	if res, body := b.post("/console/archive/holds", url.Values{"csrf": {tok}, "scope": {"user"}, "user_id": {"trader-7"}}); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="ah-reason-err"`) {
		t.Fatalf("archive hold without a reason: %d", res.StatusCode)
	}
	if res, body := b.post("/console/archive/holds", url.Values{"csrf": {tok}, "scope": {"user"}, "user_id": {"trader-7"}, "reason": {"investigation"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("archive hold: %d: %s", res.StatusCode, body)
	}
	hs, err := e.node.ArchiveHolds(as(tenant), tenant, true)
	if err != nil || len(hs) != 1 {
		t.Fatalf("archive holds %+v, %v", hs, err)
	}
	if _, body := b.get("/console/archive/holds"); !strings.Contains(body, `id="hold-`+hs[0].ID+`"`) || !strings.Contains(body, "user trader-7") {
		t.Fatal("the archive holds page lacks the hold")
	}
	if res, _ := b.post("/console/archive/holds/"+hs[0].ID+"/lift", url.Values{"csrf": {tok}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("lift: %d", res.StatusCode)
	}
	if hs, _ := e.node.ArchiveHolds(as(tenant), tenant, true); len(hs) != 0 {
		t.Fatal("the archive hold is still active")
	}
}

// TestRightsUnavailable: a node without these operations answers 503.
func TestRightsUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	bare, err := New(Config{}, struct{ Node }{e.node}, e.st)
	if err != nil {
		t.Fatal(err)
	}
	e.addUser("pat", call.PrivacyOfficer)
	b := e.signIn("pat")
	req := httptest.NewRequest(http.MethodGet, "/console/privacy", nil)
	for _, c := range b.c.Jar.Cookies(mustURL(t, e.srv.URL+"/console/")) {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	bare.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", w.Code)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
