package consortium_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/consortium"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// Numbers of the scenarios (Ofcom drama ranges).
const (
	fraudster = "+447700900123"
	other     = "+447700900456"
	innocent  = "+441632960999"
)

var key = []byte("consortium-key-derived-by-the-lead-from-the-master-key")

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type auditRec struct {
	tenant, actor, action, object string
	detail                        string
}

type env struct {
	t     *testing.T
	path  string
	db    *sqlite.DB
	svc   *consortium.Service
	view  *consortium.View
	clock *clock
	mu    sync.Mutex
	audit []auditRec
}

var tenants = []string{"bank-a", "bank-b", "bank-c", "bank-d", "bank-e", "bank-f"}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "ringfence.db"), clock: &clock{}}
	e.clock.Set(t0)
	db, err := sqlite.Open(t.Context(), e.path)
	if err != nil {
		t.Fatal(err)
	}
	db.Now = e.clock.Now
	t.Cleanup(func() { db.Close() })
	e.db = db
	for _, id := range tenants {
		if err := db.CreateTenant(t.Context(), store.Tenant{ID: id, Name: id, Region: "GB", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	e.view = consortium.NewView(key)
	e.svc = e.service(e.view)
	if err := e.svc.Setup(t.Context(), "operator", store.ConsortiumInfo{Name: "UK banks", Terms: "2026-01",
		Reciprocity: store.Reciprocity{ContributionWindow: 90 * day, GracePeriod: 30 * day}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// service returns a service over the env's store for a view (another node
// has its own view).
func (e *env) service(v *consortium.View) *consortium.Service {
	return &consortium.Service{ID: "uk", Store: e.db, View: v, IDs: &call.IDs{}, Now: e.clock.Now,
		Audit: func(ctx context.Context, tenant, actor, action, object string, detail any) error {
			b, _ := json.Marshal(detail)
			e.mu.Lock()
			e.audit = append(e.audit, auditRec{tenant, actor, action, object, string(b)})
			e.mu.Unlock()
			return nil
		}}
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) join(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		e.must(e.svc.Join(e.t.Context(), id, "admin@"+id, "2026-01"))
	}
}

func (e *env) report(tenant, number string, typ consortium.FraudType) string {
	e.t.Helper()
	id, err := e.svc.Report(e.t.Context(), consortium.Report{Tenant: tenant, Actor: "analyst@" + tenant, Source: consortium.SourceAPI,
		Number: number, Evidence: "case-" + tenant, Type: typ, TenantPseudonym: bytes.Repeat([]byte{7}, 32), Sealed: []byte("sealed-by-" + tenant)})
	e.must(err)
	return id
}

func (e *env) actions() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, a := range e.audit {
		out = append(out, a.action)
	}
	return out
}

func code(err error) string { return call.ErrorCode(err) }

func TestJoinAndLeave(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if err := e.svc.Join(ctx, "bank-a", "admin", "2025-06"); code(err) != call.Conflict {
		t.Errorf("Join with old terms: %v; want Conflict", err)
	}
	e.clock.Advance(time.Hour)
	e.join("bank-a")
	if err := e.svc.Join(ctx, "bank-a", "admin", "2026-01"); code(err) != call.Conflict {
		t.Errorf("second Join: %v; want Conflict", err)
	}
	ms, err := e.db.Memberships(ctx, "uk")
	e.must(err)
	if len(ms) != 1 || !ms[0].JoinedAt.Equal(t0.Add(time.Hour)) || ms[0].Terms != "2026-01" || !ms[0].LeftAt.IsZero() {
		t.Fatalf("membership = %+v; want joined at t0+1h under 2026-01", ms)
	}
	st, err := e.svc.MemberStatus(ctx, "bank-a")
	e.must(err)
	if !st.Member || !st.Receives || st.Terms != "2026-01" {
		t.Errorf("status of a new member = %+v; want member receiving (grace period)", st)
	}
	e.must(e.svc.Leave(ctx, "bank-a", "admin"))
	if err := e.svc.Leave(ctx, "bank-a", "admin"); code(err) != call.NotFound {
		t.Errorf("second Leave: %v; want NotFound", err)
	}
	st, err = e.svc.MemberStatus(ctx, "bank-a")
	e.must(err)
	if st.Member || st.Receives || st.LeftAt.IsZero() {
		t.Errorf("status of a former member = %+v; want left, not receiving", st)
	}
	if got := strings.Join(e.actions(), " "); got != "consortium.setup consortium.join consortium.leave" {
		t.Errorf("audited %q", got)
	}
}

func TestStandardOfProof(t *testing.T) {
	e := newEnv(t)
	e.join("bank-a", "bank-b")
	rec := call.IDs{}
	recordID := rec.Next(t0)
	sealed := []byte("sealed")
	for _, tc := range []struct {
		name string
		r    consortium.Report
		want string // error code, "" for accepted
	}{
		{"marker or automatic verdict (no source)", consortium.Report{Number: fraudster, Type: consortium.Impersonation, Evidence: "x"}, call.Invalid},
		{"unknown source", consortium.Report{Source: "verdict", Number: fraudster, Type: consortium.Impersonation, Evidence: "x"}, call.Invalid},
		{"label without a record", consortium.Report{Source: consortium.SourceLabel, Number: fraudster, Type: consortium.Impersonation}, call.Invalid},
		{"API report without evidence", consortium.Report{Source: consortium.SourceAPI, Number: fraudster, Type: consortium.Impersonation}, call.Invalid},
		{"API report posing as a label", consortium.Report{Source: consortium.SourceAPI, Number: fraudster, Type: consortium.Impersonation, Evidence: "label:x"}, call.Invalid},
		{"no fraud type", consortium.Report{Source: consortium.SourceAPI, Number: fraudster, Evidence: "case-1"}, call.Invalid},
		{"type outside the set", consortium.Report{Source: consortium.SourceAPI, Number: fraudster, Type: "spam", Evidence: "case-1"}, call.Invalid},
		{"not E.164", consortium.Report{Source: consortium.SourceAPI, Number: "07700900123", Type: consortium.APP, Evidence: "case-1"}, call.Invalid},
		{"non-member", consortium.Report{Tenant: "bank-e", Source: consortium.SourceAPI, Number: fraudster, Type: consortium.APP, Evidence: "case-1"}, call.Conflict},
		{"analyst's fraud label", consortium.Report{Source: consortium.SourceLabel, RecordID: recordID, Number: fraudster, Type: consortium.Impersonation}, ""},
		{"API report with evidence", consortium.Report{Source: consortium.SourceAPI, Number: other, Type: consortium.APP, Evidence: "case-9"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.r.Tenant == "" {
				tc.r.Tenant = "bank-a"
			}
			tc.r.Sealed = sealed
			_, err := e.svc.Report(t.Context(), tc.r)
			if code(err) != tc.want {
				t.Errorf("Report: %v; want code %q", err, tc.want)
			}
		})
	}
	rs, err := e.db.ConsortiumReports(t.Context(), "uk", store.ReportFilter{})
	e.must(err)
	if len(rs) != 2 || rs[0].Evidence != "label:"+recordID || rs[1].Evidence != "case-9" {
		t.Errorf("stored reports = %+v; want the label's and the API's only", rs)
	}
}

// TestIsolationMatrix checks what each kind of tenant sees of a number two
// members reported: a contributing member, a reporter itself, a member that
// does not contribute (past its grace period), a non-member and a former
// member whose report was withdrawn on leaving.
func TestIsolationMatrix(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.join("bank-a", "bank-b", "bank-c", "bank-d", "bank-f")
	e.clock.Advance(40 * day) // past the 30-day grace period
	e.report("bank-a", fraudster, consortium.Impersonation)
	e.report("bank-b", fraudster, consortium.APP)
	e.report("bank-f", fraudster, consortium.CardFraud)
	e.report("bank-c", other, consortium.Robocall) // bank-c contributes, not on this number
	e.must(e.svc.Leave(ctx, "bank-f", "admin"))
	e.clock.Advance(day)
	now := e.clock.Now()

	for _, tc := range []struct {
		tenant  string
		kind    string
		members int
		types   string
		entry   string // Entry's error code
		own     int
	}{
		{"bank-c", "contributing member", 2, "impersonation,app_scam", "", 0},
		{"bank-a", "reporter (own report not counted)", 1, "app_scam", "", 1},
		{"bank-b", "reporter (own report not counted)", 1, "impersonation", "", 1},
		{"bank-d", "non-contributing member past grace", 0, "", "", 0},
		{"bank-e", "non-member", 0, "", call.Conflict, 0},
		{"bank-f", "former member", 0, "", call.Conflict, 0},
	} {
		t.Run(tc.kind+"/"+tc.tenant, func(t *testing.T) {
			s := e.view.Lookup(tc.tenant, fraudster, now)
			if s.Members != tc.members || s.Types.String() != tc.types {
				t.Errorf("Lookup = %d members %q; want %d %q", s.Members, s.Types, tc.members, tc.types)
			}
			if tc.members > 0 && (!s.Last.Equal(t0.Add(40*day)) || s.Confidence <= 0.7 || s.Confidence >= 1) {
				t.Errorf("Lookup = %+v; want last report at t0+40d and a confidence in (0.7,1)", s)
			}
			en, err := e.svc.Entry(ctx, tc.tenant, "analyst", fraudster)
			if code(err) != tc.entry {
				t.Fatalf("Entry: %v; want code %q", err, tc.entry)
			}
			if err != nil {
				return
			}
			if en.Signal.Members != tc.members || len(en.Own) != tc.own {
				t.Errorf("Entry = %d members, %d own reports; want %d, %d", en.Signal.Members, len(en.Own), tc.members, tc.own)
			}
			for _, r := range en.Own {
				if string(r.Sealed) != "sealed-by-"+tc.tenant || r.Evidence != "case-"+tc.tenant {
					t.Errorf("own report %+v is not the member's own, in full", r)
				}
			}
			// Nothing the member can read names another member.
			st, err := e.svc.MemberStatus(ctx, tc.tenant)
			e.must(err)
			mine, err := e.svc.OwnReports(ctx, tc.tenant, "analyst")
			e.must(err)
			ds, err := e.svc.Disputes(ctx, tc.tenant, "analyst", fraudster)
			e.must(err)
			b, err := json.Marshal([]any{en, st, mine, ds, s})
			e.must(err)
			for _, id := range tenants {
				if id != tc.tenant && bytes.Contains(b, []byte(id)) {
					t.Errorf("%s can read %s's id: %s", tc.tenant, id, b)
				}
			}
		})
	}
}

func TestReciprocity(t *testing.T) {
	e := newEnv(t)
	e.join("bank-a", "bank-c")
	e.report("bank-a", fraudster, consortium.Impersonation)
	for _, tc := range []struct {
		after    time.Duration // since t0
		contrib  bool          // bank-c reports another number at this point
		receives bool
	}{
		{day, false, true},       // within the 30-day grace period
		{30 * day, false, true},  // its last day
		{31 * day, false, false}, // past grace, no contribution
		{32 * day, true, true},   // contributed
		{32*day + 90*day, false, true},
		{33*day + 90*day, false, false}, // contribution older than the 90-day window
	} {
		e.clock.Set(t0.Add(tc.after))
		if tc.contrib {
			e.report("bank-c", other, consortium.APP)
			// Keep bank-a's entry alive and bank-a contributing.
		}
		got := e.view.Lookup("bank-c", fraudster, e.clock.Now()).Found()
		if got != tc.receives || e.view.Receives("bank-c", e.clock.Now()) != tc.receives {
			t.Errorf("at t0+%v: bank-c receives = %v; want %v", tc.after, got, tc.receives)
		}
		st, err := e.svc.MemberStatus(t.Context(), "bank-c")
		e.must(err)
		if st.Receives != tc.receives {
			t.Errorf("at t0+%v: MemberStatus.Receives = %v; want %v", tc.after, st.Receives, tc.receives)
		}
	}
}

func TestExpiryAndWithdrawal(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if err := e.svc.Setup(ctx, "operator", store.ConsortiumInfo{Terms: "2026-01", Expiry: consortium.MaxExpiry + day}); code(err) != call.Invalid {
		t.Errorf("Setup with an expiry beyond 6 years: %v; want Invalid", err)
	}
	e.must(e.svc.Setup(ctx, "operator", store.ConsortiumInfo{Terms: "2026-01",
		Reciprocity: store.Reciprocity{ContributionWindow: 10 * 365 * day, GracePeriod: 10 * 365 * day}}))
	info, err := e.db.ConsortiumInfo(ctx, "uk")
	e.must(err)
	if info.Expiry != consortium.DefaultExpiry {
		t.Errorf("default expiry = %v; want %v", info.Expiry, consortium.DefaultExpiry)
	}
	e.join("bank-a", "bank-b", "bank-c")
	e.report("bank-a", fraudster, consortium.Impersonation)
	wid := e.report("bank-b", other, consortium.APP)

	// Withdrawal: only by its member, effective at once.
	if err := e.svc.Withdraw(ctx, "bank-c", "analyst", wid); code(err) != call.NotFound {
		t.Errorf("Withdraw of another member's report: %v; want NotFound", err)
	}
	if !e.view.Lookup("bank-c", other, e.clock.Now()).Found() {
		t.Fatal("report not visible before withdrawal")
	}
	e.must(e.svc.Withdraw(ctx, "bank-b", "analyst", wid))
	if e.view.Lookup("bank-c", other, e.clock.Now()).Found() {
		t.Error("withdrawn report still scores")
	}

	// Expiry: 13 months after the newest report.
	e.clock.Set(t0.Add(consortium.DefaultExpiry - time.Hour))
	_, err = e.svc.Purge(ctx, "operator")
	e.must(err)
	if !e.view.Lookup("bank-c", fraudster, e.clock.Now()).Found() {
		t.Error("entry gone before its expiry")
	}
	e.clock.Set(t0.Add(consortium.DefaultExpiry + time.Hour))
	n, err := e.svc.Purge(ctx, "operator")
	e.must(err)
	if n != 2 { // the expired report and the withdrawn one
		t.Errorf("Purge deleted %d reports; want 2", n)
	}
	if e.view.Lookup("bank-c", fraudster, e.clock.Now()).Found() || e.view.Len() != 0 {
		t.Errorf("expired entry still in the view (%d entries)", e.view.Len())
	}
	rs, err := e.db.ConsortiumReports(ctx, "uk", store.ReportFilter{})
	e.must(err)
	if len(rs) != 0 {
		t.Errorf("stored reports after expiry = %d; want 0", len(rs))
	}
}

func TestDisputes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.join("bank-a", "bank-b", "bank-c")
	e.report("bank-a", fraudster, consortium.Impersonation)
	e.report("bank-b", fraudster, consortium.Impersonation)
	seen := func() bool { return e.view.Lookup("bank-c", fraudster, e.clock.Now()).Found() }
	if !seen() {
		t.Fatal("entry not visible")
	}
	if _, err := e.svc.Dispute(ctx, "bank-e", "x", fraudster, nil, consortium.ReasonNotFraud, ""); code(err) != call.Conflict {
		t.Errorf("dispute by a non-member: %v; want Conflict", err)
	}
	if _, err := e.svc.Dispute(ctx, "bank-c", "x", fraudster, nil, "because", ""); code(err) != call.Invalid {
		t.Errorf("dispute with an unknown reason: %v; want Invalid", err)
	}
	d1, err := e.svc.Dispute(ctx, "bank-c", "analyst", fraudster, nil, consortium.ReasonNotFraud, "customer's own number")
	e.must(err)
	if seen() {
		t.Error("disputed entry still scores")
	}
	e.must(e.svc.Resolve(ctx, "operator", d1, store.DisputeUpheld, "evidence_confirmed", ""))
	if !seen() {
		t.Error("upheld entry not restored")
	}
	if err := e.svc.Resolve(ctx, "operator", d1, store.DisputeAccepted, "again", ""); code(err) != call.Conflict {
		t.Errorf("resolving twice: %v; want Conflict", err)
	}

	// The platform acts on a data subject's erasure request.
	d2, err := e.svc.Dispute(ctx, consortium.Platform, "privacy-officer", fraudster, nil, consortium.ReasonErasure, "DSAR case 17")
	e.must(err)
	if seen() {
		t.Error("entry under the platform's dispute still scores")
	}
	e.must(e.svc.Resolve(ctx, "privacy-officer", d2, store.DisputeAccepted, "erasure_granted", "identity verified"))
	if seen() {
		t.Error("accepted dispute: entry still scores")
	}
	rs, err := e.db.ConsortiumReports(ctx, "uk", store.ReportFilter{Pseudonym: consortium.Pseudonym(key, fraudster)})
	e.must(err)
	if len(rs) != 0 {
		t.Errorf("reports after an accepted dispute: %d; want removed", len(rs))
	}
	var found bool
	for _, a := range e.audit {
		if a.action == "consortium.resolve" && a.object == d2 && strings.Contains(a.detail, "erasure_granted") && strings.Contains(a.detail, `"reason":"erasure"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("the accepted dispute's reason is not in the audit log: %+v", e.audit)
	}
	// A member sees its own dispute as its own, the platform's as the platform's.
	ds, err := e.svc.Disputes(ctx, "bank-c", "analyst", fraudster)
	e.must(err)
	if len(ds) != 2 || !ds[0].Mine || !ds[1].ByPlatform || ds[1].Mine {
		t.Errorf("bank-c's disputes = %+v", ds)
	}
	ds, err = e.svc.Disputes(ctx, "bank-a", "analyst", fraudster)
	e.must(err)
	if len(ds) != 2 || ds[0].Mine {
		t.Errorf("bank-a's disputes = %+v; want bank-c's dispute not shown as bank-a's", ds)
	}
}

// TestFollower checks that a second node, following the change log, sees
// every consortium write: a report at member A changes member B's next
// lookup there too, and a dispute suspends the entry there at once.
func TestFollower(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	node2 := consortium.NewView(key)
	svc2 := e.service(node2)
	e.must(svc2.Load(ctx))
	seq, err := e.db.LastChange(ctx)
	e.must(err)
	follow := func() {
		t.Helper()
		cs, err := e.db.Changes(ctx, seq, 1000)
		e.must(err)
		for _, c := range cs {
			e.must(svc2.Apply(ctx, c))
			seq = c.Seq
		}
	}
	e.join("bank-a", "bank-b")
	follow()
	e.report("bank-a", fraudster, consortium.Impersonation)
	if node2.Lookup("bank-b", fraudster, e.clock.Now()).Found() {
		t.Fatal("node 2 saw the report before following")
	}
	follow()
	if s := node2.Lookup("bank-b", fraudster, e.clock.Now()); s.Members != 1 || !s.Types.Has(consortium.Impersonation) {
		t.Errorf("node 2 after the report: %+v", s)
	}
	d, err := e.svc.Dispute(ctx, "bank-b", "x", fraudster, nil, consortium.ReasonWrongNumber, "")
	e.must(err)
	follow()
	if node2.Lookup("bank-b", fraudster, e.clock.Now()).Found() {
		t.Error("node 2 still scores a disputed entry")
	}
	e.must(e.svc.Resolve(ctx, "op", d, store.DisputeUpheld, "ok", ""))
	follow()
	if !node2.Lookup("bank-b", fraudster, e.clock.Now()).Found() {
		t.Error("node 2 did not restore the upheld entry")
	}
	e.must(e.svc.Leave(ctx, "bank-a", "admin"))
	follow()
	if node2.Lookup("bank-b", fraudster, e.clock.Now()).Found() {
		t.Error("node 2 still scores a former member's report")
	}
	// A fresh node loading from the store agrees.
	node3 := consortium.NewView(key)
	e.must(e.service(node3).Load(ctx))
	if node3.Len() != node2.Len() || node3.Lookup("bank-b", fraudster, e.clock.Now()).Found() {
		t.Errorf("node 3 loaded %d entries; node 2 has %d", node3.Len(), node2.Len())
	}
}

func TestImpact(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.join("bank-a", "bank-b", "bank-c")
	e.report("bank-a", fraudster, consortium.Impersonation)
	e.report("bank-b", fraudster, consortium.Impersonation)
	for range 3 {
		e.view.Lookup("bank-c", fraudster, e.clock.Now())
	}
	e.view.Lookup("bank-a", fraudster, e.clock.Now()) // credits bank-b only
	e.view.Lookup("bank-c", innocent, e.clock.Now())  // a miss credits nobody
	st, err := e.svc.MemberStatus(ctx, "bank-a")
	e.must(err)
	if st.Impact != 3 || st.Contributions != 1 {
		t.Errorf("bank-a status = %+v; want impact 3, 1 contribution", st)
	}
	e.must(e.svc.FlushImpact(ctx))
	ms, err := e.db.Memberships(ctx, "uk")
	e.must(err)
	if ms[0].Impact != 3 || ms[1].Impact != 4 || ms[2].Impact != 0 {
		t.Errorf("stored impact = %d %d %d; want 3 4 0", ms[0].Impact, ms[1].Impact, ms[2].Impact)
	}
	st, err = e.svc.MemberStatus(ctx, "bank-b")
	e.must(err)
	if st.Impact != 4 {
		t.Errorf("bank-b impact after flush = %d; want 4 (not counted twice)", st.Impact)
	}
}

// TestAudited checks that every write and every detail read is audited.
func TestAudited(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.join("bank-a", "bank-b")
	id := e.report("bank-a", fraudster, consortium.Impersonation)
	_, err := e.svc.Entry(ctx, "bank-b", "analyst", fraudster)
	e.must(err)
	_, err = e.svc.OwnReports(ctx, "bank-a", "analyst")
	e.must(err)
	_, err = e.svc.Disputes(ctx, "bank-b", "analyst", fraudster)
	e.must(err)
	d, err := e.svc.Dispute(ctx, "bank-b", "analyst", fraudster, nil, consortium.ReasonOther, "")
	e.must(err)
	e.must(e.svc.Resolve(ctx, "op", d, store.DisputeUpheld, "ok", ""))
	e.must(e.svc.Withdraw(ctx, "bank-a", "analyst", id))
	_, err = e.svc.Purge(ctx, "op")
	e.must(err)
	_, err = e.svc.Stats(ctx, "op")
	e.must(err)
	e.must(e.svc.Leave(ctx, "bank-b", "admin"))
	want := "consortium.setup consortium.join consortium.join consortium.report consortium.read_entry consortium.read_own_reports " +
		"consortium.read_disputes consortium.dispute consortium.resolve consortium.withdraw consortium.purge consortium.stats consortium.leave"
	if got := strings.Join(e.actions(), " "); got != want {
		t.Errorf("audited\n got %s\nwant %s", got, want)
	}
	for _, a := range e.audit {
		if strings.Contains(a.detail+a.object, "7700900") {
			t.Errorf("audit record holds a phone number: %+v", a)
		}
	}

	// A detail read whose audit fails returns nothing.
	e.svc.Audit = func(context.Context, string, string, string, string, any) error { return os.ErrPermission }
	if _, err := e.svc.Entry(ctx, "bank-a", "analyst", fraudster); err == nil {
		t.Error("Entry returned detail though its audit failed")
	}
}

// TestNoPlaintext scans the SQLite file, its WAL and every change for the
// numbers' digits, and checks that no consortium table row names a member in
// a column another member's reads return.
func TestNoPlaintext(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.join("bank-a", "bank-b", "bank-c")
	e.report("bank-a", fraudster, consortium.Impersonation)
	e.report("bank-b", other, consortium.APP)
	d, err := e.svc.Dispute(ctx, consortium.Platform, "dpo", innocent, nil, consortium.ReasonRectification, "")
	e.must(err)
	e.must(e.svc.Resolve(ctx, "dpo", d, store.DisputeAccepted, "rectified", ""))
	cs, err := e.db.Changes(ctx, 0, 1000)
	e.must(err)
	for _, c := range cs {
		if c.Kind == store.ChangeConsortiumEntry && c.Tenant != "" {
			t.Errorf("entry change names tenant %q", c.Tenant)
		}
	}
	e.must(e.db.Close())
	var all []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(e.path + suffix)
		if err == nil {
			all = append(all, b...)
		}
	}
	if !bytes.Contains(all, []byte("sealed-by-bank-a")) {
		t.Fatal("the scan does not see the reports' rows (control value missing)")
	}
	for _, n := range []string{fraudster, other, innocent} {
		for _, form := range []string{n, n[1:], "0" + n[3:]} {
			if bytes.Contains(all, []byte(form)) {
				t.Errorf("the database file holds %q", form)
			}
		}
	}
}
