package node

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// privClock is a fake clock the tests move by hand.
type privClock struct {
	mu sync.Mutex
	t  time.Time
}

func newPrivClock(t time.Time) *privClock { return &privClock{t: t} }

func (c *privClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *privClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *privClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// privEnv is a node over a real SQLite file, with a keystore (so tenants
// can be shredded), an audit log and a fake clock.
type privEnv struct {
	clk  *privClock
	dir  string
	path string // the SQLite file
	mk   seal.MasterKey
	ks   *seal.Keystore
	st   *sqlite.DB
	log  *audit.Log
	n    *Node
}

// openPrivEnv opens a privEnv in a new temporary directory, the follower
// off (one node; each test that needs a follower makes its own).
func openPrivEnv(t *testing.T, clk *privClock) *privEnv {
	t.Helper()
	mk, err := seal.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ks, err := seal.OpenKeystore(filepath.Join(dir, "keys"), mk)
	if err != nil {
		t.Fatal(err)
	}
	e := &privEnv{clk: clk, dir: dir, path: filepath.Join(dir, "rf.db"), mk: mk, ks: ks}
	e.open(t)
	return e
}

// open opens the store and the node on e's files.
func (e *privEnv) open(t *testing.T) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), e.path)
	if err != nil {
		t.Fatal(err)
	}
	st.Now = e.clk.Now
	e.st = st
	e.log = audit.New(st, audit.KeyFromSecret(e.mk.Derive("audit checkpoint v1")), "test", e.clk.Now)
	cfg := Config{Now: e.clk.Now, Audit: e.log, StoreName: "sqlite", Follow: FollowConfig{Poll: -1}}
	n, err := Open(t.Context(), cfg, st, seal.NewKeyringWithKeystore(e.mk, e.ks))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	e.n = n
	t.Cleanup(func() {
		n.Close()
		st.Close()
	})
}

// screenAt screens one call from caller (for user, if not "") at the
// clock's time, then moves the clock on an hour.
func (e *privEnv) screen(t *testing.T, tenant, caller, user string) *call.Call {
	t.Helper()
	c, err := e.n.Screen(t.Context(), Incoming{Tenant: tenant, Caller: caller, Dialled: "+442079460123", UserRef: user})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Hour)
	return c
}

func hasMarker(c *call.Call, code string) bool {
	return slices.ContainsFunc(c.Verdict.Markers, func(m call.Marker) bool { return m.Code == code })
}

// The subject of the rights tests and a bystander whose data must not be
// touched.
const (
	subjectNumber   = "+447400123456"
	subjectNational = "07400123456"
	subjectUser     = "cust-1"
	otherNumber     = "+447400654321"
	otherUser       = "cust-2"
)

// rightsFixture is what the rights tests set up: the subject's and the
// bystander's calls, a customer link for each, and their pseudonyms.
type rightsFixture struct {
	*privEnv
	subjectCalls []*call.Call
	otherCalls   []*call.Call
	caller       []byte // the subject's number pseudonym
	user         []byte // the subject's user-ref pseudonym
	otherCaller  []byte
}

// newRightsFixture makes tenant "bank" with three calls of the subject
// (as subjectUser) and two of the bystander, each linked to its customer
// by a genuine label.
func newRightsFixture(t *testing.T) *rightsFixture {
	t.Helper()
	clk := newPrivClock(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
	f := &rightsFixture{privEnv: openPrivEnv(t, clk)}
	ctx := t.Context()
	if _, _, err := f.n.CreateTenant(ctx, "bank", "Bank", "GB"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.subjectCalls = append(f.subjectCalls, f.screen(t, "bank", subjectNational, subjectUser))
	}
	for range 2 {
		f.otherCalls = append(f.otherCalls, f.screen(t, "bank", otherNumber, otherUser))
	}
	for _, c := range []*call.Call{f.subjectCalls[0], f.otherCalls[0]} {
		if _, err := f.n.Label(ctx, "bank", c.ID, call.Label{Label: call.Genuine, By: "ana", Note: "called back"}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := f.n.tenantKeys("bank")
	if err != nil {
		t.Fatal(err)
	}
	f.caller = pseudonym(k, f.n.engine.Number("bank", subjectNumber))
	f.user = userPseudonym(k, subjectUser)
	f.otherCaller = pseudonym(k, f.n.engine.Number("bank", otherNumber))
	if c := f.screen(t, "bank", subjectNumber, subjectUser); !hasMarker(c, "link.known_customer") {
		t.Fatalf("the subject is not linked to its customer before the case: markers %v", c.Verdict.Markers)
	} else {
		f.subjectCalls = append(f.subjectCalls, c)
	}
	if err := f.n.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// openConfirmed opens a case of typ about the subject and confirms the
// requester's identity.
func (f *rightsFixture) openConfirmed(t *testing.T, typ privacy.Type, withUser bool) CaseView {
	t.Helper()
	req := CaseRequest{Type: typ, Number: subjectNumber}
	if withUser {
		req.UserRef = subjectUser
	}
	v, err := f.n.OpenCase(t.Context(), "bank", req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.n.Fulfil(t.Context(), "bank", v.ID, FulfilOptions{}); call.ErrorCode(err) != call.Conflict {
		t.Fatalf("fulfil before the identity check: %v; want Conflict", err)
	}
	if v, err = f.n.StepCase(t.Context(), "bank", v.ID, CaseStep{Step: "confirm_identity"}); err != nil {
		t.Fatal(err)
	}
	return v
}

// fulfil fulfils the case and checks its receipt: completed, stored with
// the case, and in the audit log as "dsar.complete" with the same content.
// It returns the receipt's results by class.
func (f *rightsFixture) fulfil(t *testing.T, id string, opts FulfilOptions) map[privacy.Class]privacy.StoreResult {
	t.Helper()
	ctx := t.Context()
	v, err := f.n.Fulfil(ctx, "bank", id, opts)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != privacy.Completed || v.Receipt == nil {
		t.Fatalf("after Fulfil the case is %s with receipt %v", v.Status, v.Receipt)
	}
	stored, err := f.n.Case(ctx, "bank", id)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(v.Receipt)
	if got, _ := json.Marshal(stored.Receipt); !bytes.Equal(got, want) {
		t.Errorf("stored receipt %s; Fulfil returned %s", got, want)
	}
	es, err := f.n.AuditEntries(ctx, "bank", store.AuditFilter{ActionPrefix: "dsar.complete"})
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, e := range es {
		if e.Object == id {
			audited = append(audited, e.Detail)
		}
	}
	if len(audited) != 1 {
		t.Fatalf("%d dsar.complete audit entries for %s; want 1", len(audited), id)
	}
	var r privacy.Receipt
	if err := json.Unmarshal([]byte(audited[0]), &r); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(r); !bytes.Equal(got, want) {
		t.Errorf("audited receipt %s; want %s", got, want)
	}
	if strings.Contains(audited[0], subjectNumber) || strings.Contains(audited[0], subjectUser) {
		t.Errorf("the audited receipt names the subject: %s", audited[0])
	}
	byClass := map[privacy.Class]privacy.StoreResult{}
	for _, s := range v.Receipt.Stores {
		if s.Store != "sqlite" {
			t.Errorf("receipt store %q; want sqlite", s.Store)
		}
		if _, dup := byClass[s.Class]; dup {
			t.Errorf("receipt has class %s twice", s.Class)
		}
		byClass[s.Class] = s
	}
	return byClass
}

// wantResult checks one class of a receipt.
func wantResult(t *testing.T, got map[privacy.Class]privacy.StoreResult, class privacy.Class, found, done int64, action string) {
	t.Helper()
	r, ok := got[class]
	if !ok {
		t.Errorf("receipt has no %s", class)
		return
	}
	if r.Found != found || r.Done != done || r.Action != action {
		t.Errorf("receipt %s: found %d, done %d, action %q; want %d, %d, %q", class, r.Found, r.Done, r.Action, found, done, action)
	}
}

// subjectRows counts what the store holds about the subject (by number or
// user ref) and about the bystander.
func (f *rightsFixture) counts(t *testing.T, caller, user []byte) (calls, entries, links int) {
	t.Helper()
	ctx := t.Context()
	if err := f.n.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cs, err := f.st.SubjectCalls(ctx, "bank", caller, user, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	es, err := f.st.SubjectListEntries(ctx, "bank", caller)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := f.st.SubjectLinks(ctx, "bank", caller, user)
	if err != nil {
		t.Fatal(err)
	}
	return len(cs), len(es), len(ls)
}

// TestRightAccessAndPortability fulfils access and portability cases: the
// package holds exactly the subject's calls (by number or user ref), its
// list entries and links, never the bystander's, in JSON and CSV.
func TestRightAccessAndPortability(t *testing.T) {
	for _, typ := range []privacy.Type{privacy.Access, privacy.Portability} {
		t.Run(string(typ), func(t *testing.T) {
			f := newRightsFixture(t)
			ctx := t.Context()
			if _, err := f.n.AddListEntry(ctx, "bank", call.DNOList, subjectNumber, "reported", time.Time{}); err != nil {
				t.Fatal(err)
			}
			// A call from another number as the subject's user is theirs too.
			f.subjectCalls = append(f.subjectCalls, f.screen(t, "bank", "+447400111222", subjectUser))
			v := f.openConfirmed(t, typ, true)
			res := f.fulfil(t, v.ID, FulfilOptions{})
			n := int64(len(f.subjectCalls))
			wantResult(t, res, privacy.CallRecords, n, n, privacy.ActionExported)
			wantResult(t, res, privacy.LabelsReports, 1, 1, privacy.ActionExported)
			wantResult(t, res, privacy.Lists, 1, 1, privacy.ActionExported)
			wantResult(t, res, privacy.CustomerLinks, 1, 1, privacy.ActionExported)

			b, err := f.n.CasePackage(ctx, "bank", v.ID, "json")
			if err != nil {
				t.Fatal(err)
			}
			var pkg SubjectPackage
			if err := json.Unmarshal(b, &pkg); err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for _, c := range pkg.Calls {
				got = append(got, c.RecordID)
				if c.UserRef != subjectUser {
					t.Errorf("package call %s has user ref %q", c.RecordID, c.UserRef)
				}
			}
			for _, c := range f.subjectCalls {
				want = append(want, c.ID)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("package calls %v; want %v", got, want)
			}
			if len(pkg.ListEntries) != 1 || pkg.ListEntries[0].List != call.DNOList || len(pkg.Links) != 1 {
				t.Errorf("package list entries %+v, links %v", pkg.ListEntries, pkg.Links)
			}
			if pkg.Subject.Number != subjectNumber || pkg.Subject.UserRef != subjectUser {
				t.Errorf("package subject %q/%q", pkg.Subject.Number, pkg.Subject.UserRef)
			}
			for _, c := range f.otherCalls {
				if bytes.Contains(b, []byte(c.ID)) {
					t.Errorf("package holds the bystander's record %s", c.ID)
				}
			}
			if bytes.Contains(b, []byte(otherNumber)) || bytes.Contains(b, []byte(otherUser)) {
				t.Error("package names the bystander")
			}
			csv, err := f.n.CasePackage(ctx, "bank", v.ID, "csv")
			if err != nil {
				t.Fatal(err)
			}
			if lines := strings.Count(string(csv), "\n"); lines != len(f.subjectCalls)+1 {
				t.Errorf("CSV has %d lines; want a header and %d calls", lines, len(f.subjectCalls))
			}
			// The package expires.
			f.clk.Add(31 * 24 * time.Hour)
			if _, err := f.n.CasePackage(ctx, "bank", v.ID, "json"); call.ErrorCode(err) != call.NotFound {
				t.Errorf("package after 31 days: %v; want NotFound", err)
			}
		})
	}
}

// TestRightErasure erases the subject: their calls, labels, list entries
// and links go from the store, the deny entry no longer blocks the
// number's next call, its customer link is forgotten, and the bystander
// keeps everything.
func TestRightErasure(t *testing.T) {
	f := newRightsFixture(t)
	ctx := t.Context()
	if _, err := f.n.AddListEntry(ctx, "bank", call.DenyList, subjectNumber, "reported", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.n.AddListEntry(ctx, "bank", call.DenyList, otherNumber, "reported", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if c := f.screen(t, "bank", subjectNumber, subjectUser); c.Verdict.Action != call.Block || !hasMarker(c, "list.deny") {
		t.Fatalf("before erasure a denied number gets %s, markers %v", c.Verdict.Action, c.Verdict.Markers)
	} else {
		f.subjectCalls = append(f.subjectCalls, c)
	}
	calls, entries, links := f.counts(t, f.caller, f.user)
	if calls != len(f.subjectCalls) || entries != 1 || links != 1 {
		t.Fatalf("before erasure the store holds %d calls, %d entries, %d links of the subject", calls, entries, links)
	}
	oCalls, oEntries, oLinks := f.counts(t, f.otherCaller, nil)

	v := f.openConfirmed(t, privacy.Erasure, true)
	res := f.fulfil(t, v.ID, FulfilOptions{})
	n := int64(len(f.subjectCalls))
	wantResult(t, res, privacy.CallRecords, n, n, privacy.ActionDeleted)
	wantResult(t, res, privacy.LabelsReports, 1, 1, privacy.ActionDeleted)
	wantResult(t, res, privacy.Lists, 1, 1, privacy.ActionDeleted)
	wantResult(t, res, privacy.CustomerLinks, 1, 1, privacy.ActionDeleted)
	if v, _ := f.n.Case(ctx, "bank", v.ID); v.Outcome != privacy.Complied {
		t.Errorf("outcome %s; want complied", v.Outcome)
	}

	if calls, entries, links := f.counts(t, f.caller, f.user); calls+entries+links != 0 {
		t.Errorf("after erasure the store holds %d calls, %d entries, %d links of the subject", calls, entries, links)
	}
	for _, c := range f.subjectCalls {
		if _, err := f.st.Call(ctx, "bank", c.ID); call.ErrorCode(err) != call.NotFound {
			t.Errorf("record %s after erasure: %v; want NotFound", c.ID, err)
		}
	}
	if c, e, l := f.counts(t, f.otherCaller, nil); c != oCalls || e != oEntries || l != oLinks {
		t.Errorf("the bystander went from %d/%d/%d to %d/%d/%d calls/entries/links", oCalls, oEntries, oLinks, c, e, l)
	}
	if _, ok := f.n.engine.Listed("bank", call.DenyList, f.n.engine.Number("bank", subjectNumber)); ok {
		t.Error("the engine still lists the erased number")
	}
	if _, ok := f.n.engine.Listed("bank", call.DenyList, f.n.engine.Number("bank", otherNumber)); !ok {
		t.Error("the engine forgot the bystander's deny entry")
	}
	f.clk.Add(48 * time.Hour) // out of the velocity windows
	c := f.screen(t, "bank", subjectNumber, subjectUser)
	if c.Verdict.Action == call.Block || hasMarker(c, "list.deny") {
		t.Errorf("after erasure the number gets %s, markers %v", c.Verdict.Action, c.Verdict.Markers)
	}
	if hasMarker(c, "link.known_customer") {
		t.Error("after erasure the number is still linked to its customer")
	}
	// The restart reloads what the store holds: nothing of the subject.
	f.n.Close()
	f.st.Close()
	f.open(t)
	if _, ok := f.n.engine.Listed("bank", call.DenyList, f.n.engine.Number("bank", subjectNumber)); ok {
		t.Error("after a restart the engine lists the erased number")
	}
}

// TestRightErasureKept checks that erasure keeps the subject's data under
// a legal hold or a recorded legal basis, and the receipt says so.
func TestRightErasureKept(t *testing.T) {
	for _, how := range []string{"hold", "basis"} {
		t.Run(how, func(t *testing.T) {
			f := newRightsFixture(t)
			ctx := t.Context()
			var opts FulfilOptions
			var action string
			if how == "hold" {
				h, err := f.n.PlaceHold(ctx, "bank", HoldRequest{Scope: store.HoldSubject, Subject: SubjectRef{Number: subjectNumber}, Reason: "litigation"})
				if err != nil {
					t.Fatal(err)
				}
				action = privacy.KeptLegalHold(h.ID)
			} else {
				opts.KeepBasis = "Article 17(3)(e): defence of legal claims"
				action = privacy.KeptLegalBasis(opts.KeepBasis)
			}
			before, _, _ := f.counts(t, f.caller, f.user)
			v := f.openConfirmed(t, privacy.Erasure, true)
			res := f.fulfil(t, v.ID, opts)
			n := int64(len(f.subjectCalls))
			wantResult(t, res, privacy.CallRecords, n, 0, action)
			wantResult(t, res, privacy.CustomerLinks, 1, 0, action)
			if after, _, _ := f.counts(t, f.caller, f.user); after != before {
				t.Errorf("kept erasure: %d calls of the subject, was %d", after, before)
			}
			if v, _ := f.n.Case(ctx, "bank", v.ID); v.Outcome != privacy.PartlyComplied {
				t.Errorf("outcome %s; want partly_complied", v.Outcome)
			}
		})
	}
}

// TestRightErasureKeptHoldIDWithDigits keeps an erasure under a hold whose
// id has seven digits in a row, as about one id in 250 does (ids start
// with the time in base 32; here the clock makes it "01K0000000").
func TestRightErasureKeptHoldIDWithDigits(t *testing.T) {
	f := newRightsFixture(t)
	ctx := t.Context()
	f.clk.Set(time.UnixMilli(51 << 35).UTC())
	h, err := f.n.PlaceHold(ctx, "bank", HoldRequest{Scope: store.HoldSubject, Subject: SubjectRef{Number: subjectNumber}, Reason: "litigation"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.ID, "0000000") {
		t.Fatalf("hold id %s has no run of seven digits; the test proves nothing", h.ID)
	}
	v := f.openConfirmed(t, privacy.Erasure, false)
	if _, err := f.n.Fulfil(ctx, "bank", v.ID, FulfilOptions{}); err != nil {
		t.Errorf("erasure under a hold whose id has a digit run: %v", err)
	}
}

// TestRightRectification corrects a fraud label: the number leaves the
// deny list (store and engine), its fraud-labelled call is disputed, and
// its next call is not blocked.
func TestRightRectification(t *testing.T) {
	f := newRightsFixture(t)
	ctx := t.Context()
	fraud := f.subjectCalls[1]
	if _, err := f.n.Label(ctx, "bank", fraud.ID, call.Label{Label: call.Fraud, FraudType: "impersonation", By: "ana"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.n.AddListEntry(ctx, "bank", call.DenyList, otherNumber, "reported", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if c := f.screen(t, "bank", subjectNumber, ""); c.Verdict.Action != call.Block {
		t.Fatalf("a number of confirmed fraud gets %s", c.Verdict.Action)
	}
	v := f.openConfirmed(t, privacy.Rectification, false)
	res := f.fulfil(t, v.ID, FulfilOptions{})
	wantResult(t, res, privacy.Lists, 1, 1, privacy.ActionRectified)
	wantResult(t, res, privacy.LabelsReports, 1, 1, privacy.ActionRectified)

	es, err := f.st.SubjectListEntries(ctx, "bank", f.caller)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(es, func(e store.ListEntry) bool { return e.List == call.DenyList }) {
		t.Error("the store still denies the rectified number")
	}
	if _, ok := f.n.engine.Listed("bank", call.DenyList, f.n.engine.Number("bank", subjectNumber)); ok {
		t.Error("the engine still denies the rectified number")
	}
	if _, ok := f.n.engine.Listed("bank", call.DenyList, f.n.engine.Number("bank", otherNumber)); !ok {
		t.Error("rectification took the bystander off the deny list")
	}
	row, err := f.st.Call(ctx, "bank", fraud.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Review != call.Disputed {
		t.Errorf("the fraud-labelled call is %q; want disputed", row.Review)
	}
	for _, c := range f.subjectCalls {
		if c.ID == fraud.ID {
			continue
		}
		if row, err := f.st.Call(ctx, "bank", c.ID); err != nil || row.Review == call.Disputed {
			t.Errorf("call %s without a fraud label is %q (%v)", c.ID, row.Review, err)
		}
	}
	f.clk.Add(48 * time.Hour)
	if c := f.screen(t, "bank", subjectNumber, ""); c.Verdict.Action == call.Block || hasMarker(c, "list.deny") {
		t.Errorf("after rectification the number gets %s, markers %v", c.Verdict.Action, c.Verdict.Markers)
	}
}

// TestRightRestrictionAndObjection records the limits on both of the
// subject's pseudonyms, in the store and in the node's memory, and they
// survive a restart.
func TestRightRestrictionAndObjection(t *testing.T) {
	for _, typ := range []privacy.Type{privacy.Restriction, privacy.Objection} {
		t.Run(string(typ), func(t *testing.T) {
			f := newRightsFixture(t)
			ctx := t.Context()
			want := func(where string) {
				t.Helper()
				for _, p := range [][]byte{f.caller, f.user} {
					r, o := f.n.Limits("bank", p)
					fl, err := f.st.SubjectFlags(ctx, "bank", p)
					if err != nil {
						t.Fatal(err)
					}
					if r != (typ == privacy.Restriction) || o != (typ == privacy.Objection) || fl.Restricted != r || fl.Objected != o {
						t.Errorf("%s: node limits %v/%v, stored %v/%v", where, r, o, fl.Restricted, fl.Objected)
					}
				}
				if r, o := f.n.Limits("bank", f.otherCaller); r || o {
					t.Errorf("%s: the bystander is limited", where)
				}
			}
			if r, o := f.n.Limits("bank", f.caller); r || o {
				t.Fatal("limited before the case")
			}
			v := f.openConfirmed(t, typ, true)
			res := f.fulfil(t, v.ID, FulfilOptions{})
			action := privacy.ActionRestricted
			if typ == privacy.Objection {
				action = privacy.ActionStopped
			}
			wantResult(t, res, privacy.CallRecords, 2, 2, action)
			want("after Fulfil")
			f.n.Close()
			f.st.Close()
			f.open(t)
			want("after a restart")
		})
	}
}

// TestRightConsentWithdrawal withdraws every purpose the subject had
// consented to, and only the named ones when named.
func TestRightConsentWithdrawal(t *testing.T) {
	latest := func(t *testing.T, f *rightsFixture, p []byte) map[string]bool {
		t.Helper()
		cs, err := f.st.Consents(t.Context(), "bank", p)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, c := range cs {
			m[c.Purpose] = c.Given
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		purposes []string
		want     map[string]bool
	}{
		{"all", nil, map[string]bool{"marketing": false, "research": false, "profiling": false}},
		{"named", []string{"research"}, map[string]bool{"marketing": true, "research": false, "profiling": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRightsFixture(t)
			ctx := t.Context()
			ref := SubjectRef{Number: subjectNumber}
			for _, c := range []struct {
				purpose string
				given   bool
			}{{"marketing", true}, {"research", true}, {"profiling", false}} {
				if err := f.n.RecordConsent(ctx, "bank", ref, c.purpose, c.given, "web form"); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.n.RecordConsent(ctx, "bank", SubjectRef{Number: otherNumber}, "marketing", true, "web form"); err != nil {
				t.Fatal(err)
			}
			f.clk.Add(time.Hour)
			v := f.openConfirmed(t, privacy.ConsentWithdrawal, false)
			res := f.fulfil(t, v.ID, FulfilOptions{Purposes: tc.purposes})
			n := int64(2)
			if tc.purposes != nil {
				n = int64(len(tc.purposes))
			}
			wantResult(t, res, privacy.CallRecords, n, n, privacy.ActionStopped)
			if got := latest(t, f, f.caller); !mapsEqual(got, tc.want) {
				t.Errorf("consents after withdrawal %v; want %v", got, tc.want)
			}
			if got := latest(t, f, f.otherCaller); !got["marketing"] {
				t.Error("the bystander's consent was withdrawn")
			}
		})
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestPrivacyCaseDeadline checks a case's deadline through the node with a
// fake clock: received 31 January, due on the last day of February (ICO:
// the corresponding date or the month's last day), moved by a pause and by
// an extension, and stored with the case.
func TestPrivacyCaseDeadline(t *testing.T) {
	london := privacy.London()
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, london) }
	for _, tc := range []struct {
		year int
		due  time.Time
	}{
		{2024, day(2024, 2, 29)},
		{2025, day(2025, 2, 28)},
	} {
		t.Run(tc.due.Format(time.DateOnly), func(t *testing.T) {
			clk := newPrivClock(time.Date(tc.year, 1, 31, 10, 0, 0, 0, london))
			e := openPrivEnv(t, clk)
			ctx := t.Context()
			if _, _, err := e.n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
				t.Fatal(err)
			}
			v, err := e.n.OpenCase(ctx, "bank", CaseRequest{Type: privacy.Access, Number: subjectNumber})
			if err != nil {
				t.Fatal(err)
			}
			if v.Deadline.Started {
				t.Fatal("the clock runs before the identity check")
			}
			if v, err = e.n.StepCase(ctx, "bank", v.ID, CaseStep{Step: "confirm_identity"}); err != nil {
				t.Fatal(err)
			}
			check := func(what string, v CaseView, due time.Time, paused int) {
				t.Helper()
				if !v.Deadline.Due.Equal(due) || v.Deadline.PausedDays != paused {
					t.Errorf("%s: due %s after %d paused days; want %s after %d", what, v.Deadline.Due.Format(time.DateOnly), v.Deadline.PausedDays, due.Format(time.DateOnly), paused)
				}
				row, err := e.st.Case(ctx, "bank", v.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !row.DueAt.Equal(v.Deadline.Due) {
					t.Errorf("%s: stored due %s; view says %s", what, row.DueAt, v.Deadline.Due)
				}
			}
			check("received 31 January", v, tc.due, 0)

			// Paused 5 to 15 February: ten days more.
			clk.Set(time.Date(tc.year, 2, 5, 12, 0, 0, 0, london))
			if _, err := e.n.StepCase(ctx, "bank", v.ID, CaseStep{Step: "pause", Reason: "which account"}); err != nil {
				t.Fatal(err)
			}
			clk.Set(time.Date(tc.year, 2, 15, 12, 0, 0, 0, london))
			if v, err = e.n.StepCase(ctx, "bank", v.ID, CaseStep{Step: "resume"}); err != nil {
				t.Fatal(err)
			}
			check("after a ten-day pause", v, tc.due.AddDate(0, 0, 10), 10)

			// Extended by two months, the requester told the same day.
			clk.Add(24 * time.Hour)
			if v, err = e.n.StepCase(ctx, "bank", v.ID, CaseStep{Step: "extend", Months: 2, ToldAt: clk.Now(), Reason: "complex"}); err != nil {
				t.Fatal(err)
			}
			check("after a two-month extension", v, day(tc.year, 4, 30).AddDate(0, 0, 10), 10)
			if _, err := e.n.StepCase(ctx, "bank", v.ID, CaseStep{Step: "extend", Months: 1, ToldAt: clk.Now(), Reason: "more"}); call.ErrorCode(err) != call.Invalid {
				t.Errorf("a third month of extension: %v; want Invalid", err)
			}
			// Read back through the node after a restart: the same.
			e.n.Close()
			e.st.Close()
			e.open(t)
			got, err := e.n.Case(ctx, "bank", v.ID)
			if err != nil {
				t.Fatal(err)
			}
			check("after a restart", got, day(tc.year, 4, 30).AddDate(0, 0, 10), 10)
			if got.Deadline.Overdue(clk.Now()) {
				t.Error("overdue long before its due date")
			}
			clk.Set(day(tc.year, 5, 11).Add(time.Hour))
			if got, _ := e.n.Case(ctx, "bank", v.ID); !got.Deadline.Overdue(clk.Now()) {
				t.Error("not overdue the day after its due date")
			}
		})
	}
}

// TestRightErasureReachesFollower erases a subject on one node and checks
// that another node on the same store (following its change feed, where
// only the pseudonym of an erased number travels) forgets the number's
// deny entry and customer link too.
func TestRightErasureReachesFollower(t *testing.T) {
	ctx := t.Context()
	clk := newPrivClock(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
	e := openPrivEnv(t, clk)
	e.n.Close() // reopened below with the follower on
	e.st.Close()
	start := func() *Node {
		st, err := sqlite.Open(ctx, e.path)
		if err != nil {
			t.Fatal(err)
		}
		st.Now = clk.Now
		n, err := Open(ctx, Config{Now: clk.Now, Follow: FollowConfig{Poll: 20 * time.Millisecond}}, st, seal.NewKeyringWithKeystore(e.mk, e.ks))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(); st.Close() })
		return n
	}
	a, b := start(), start()
	const limit = 5 * time.Second
	if _, _, err := a.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "tenant on B", limit, func() bool { _, err := b.Tenant("bank"); return err == nil })
	screen := func(n *Node, caller, user string) *call.Call {
		t.Helper()
		clk.Add(time.Hour)
		c, err := n.Screen(ctx, Incoming{Tenant: "bank", Caller: caller, Dialled: "+442079460123", UserRef: user})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := screen(a, subjectNumber, subjectUser)
	if _, err := a.Label(ctx, "bank", c.ID, call.Label{Label: call.Genuine, By: "ana"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "link on B", limit, func() bool { return hasMarker(screen(b, subjectNumber, subjectUser), "link.known_customer") })
	for _, num := range []string{subjectNumber, otherNumber} {
		if _, err := a.AddListEntry(ctx, "bank", call.DenyList, num, "reported", time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	listed := func(num string) bool {
		_, ok := b.engine.Listed("bank", call.DenyList, b.engine.Number("bank", num))
		return ok
	}
	eventually(t, "deny entries on B", limit, func() bool { return listed(subjectNumber) && listed(otherNumber) })

	v, err := a.OpenCase(ctx, "bank", CaseRequest{Type: privacy.Erasure, Number: subjectNumber})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.StepCase(ctx, "bank", v.ID, CaseStep{Step: "confirm_identity"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Fulfil(ctx, "bank", v.ID, FulfilOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "erasure on B", limit, func() bool { return !listed(subjectNumber) })
	if !listed(otherNumber) {
		t.Error("B forgot the bystander's deny entry")
	}
	clk.Add(48 * time.Hour) // out of the velocity windows
	if c := screen(b, subjectNumber, subjectUser); c.Verdict.Action == call.Block || hasMarker(c, "list.deny") || hasMarker(c, "link.known_customer") {
		t.Errorf("after the erasure B gives the number %s, markers %v", c.Verdict.Action, c.Verdict.Markers)
	}
}

// TestDictionaryMatchesNoPseudonym hashes a dictionary of a million
// plausible numbers around the ones stored (every UK mobile +447400xxxxxx,
// the stored ones among them) the ways an attacker without the tenant's
// key would: SHA-256 of the E.164 and digits-only forms and HMAC-SHA-256
// of the E.164 form under an empty key (and, for the stored numbers,
// SHA-256 of the national form too). None may equal any pseudonym in the
// database file, read with plain SQL from every pseudonym column. The tenant's keyed pseudonyms of the same numbers must be there
// (the control that the read finds the pseudonyms).
func TestDictionaryMatchesNoPseudonym(t *testing.T) {
	clk := newPrivClock(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
	e := openPrivEnv(t, clk)
	ctx := t.Context()
	if _, _, err := e.n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	numbers := []string{"+447400123456", "+447400000001", "+447400999999", "+447700900777"}
	for i, num := range numbers {
		user := "cust-" + string(rune('a'+i))
		c := e.screen(t, "bank", num, user)
		if _, err := e.n.Label(ctx, "bank", c.ID, call.Label{Label: call.Genuine, By: "ana"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.AddListEntry(ctx, "bank", call.DNOList, num, "", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := e.n.RecordConsent(ctx, "bank", SubjectRef{Number: num, UserRef: user}, "marketing", true, "web"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.PlaceHold(ctx, "bank", HoldRequest{Scope: store.HoldSubject, Subject: SubjectRef{Number: num}, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		v, err := e.n.OpenCase(ctx, "bank", CaseRequest{Type: privacy.Restriction, Number: num, UserRef: user})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.StepCase(ctx, "bank", v.ID, CaseStep{Step: "confirm_identity"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.Fulfil(ctx, "bank", v.ID, FulfilOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.n.AddListEntry(ctx, "bank", call.DenyList, numbers[0], "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := e.n.DeleteListEntry(ctx, "bank", call.DenyList, numbers[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.n.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	stored := storedPseudonyms(t, e.path)
	k, _ := e.n.tenantKeys("bank")
	for i, num := range numbers {
		for _, p := range [][32]byte{k.Pseudonym(num), k.Pseudonym("user:cust-" + string(rune('a'+i)))} {
			if stored[p] < 5 {
				t.Fatalf("a keyed pseudonym of a stored subject is in %d columns; want at least 5: the scan would prove nothing", stored[p])
			}
		}
	}

	// Each worker hashes a slice of the range, then the stored numbers
	// (whatever their prefix) are hashed once more by the first.
	const size = 1_000_000
	var (
		mu      sync.Mutex
		hits    []string
		checked atomic.Int64
		wg      sync.WaitGroup
	)
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			mac := hmac.New(sha256.New, nil)
			var (
				sum      [32]byte
				national = make([]byte, 0, 16)
				found    []string
				count    int64
			)
			hash := func(e164 []byte, withNational bool) {
				digits := e164[1:]
				if _, ok := stored[sha256.Sum256(e164)]; ok {
					found = append(found, "SHA-256 of E.164")
				}
				if _, ok := stored[sha256.Sum256(digits)]; ok {
					found = append(found, "SHA-256 of digits")
				}
				if withNational {
					national = append(append(national[:0], '0'), e164[3:]...)
					if _, ok := stored[sha256.Sum256(national)]; ok {
						found = append(found, "SHA-256 of national form")
					}
				}
				mac.Reset()
				mac.Write(e164)
				if _, ok := stored[[32]byte(mac.Sum(sum[:0]))]; ok {
					found = append(found, "HMAC-SHA-256 of E.164 with an empty key")
				}
				count++
			}
			buf := []byte("+447400000000")
			for i := w * size / workers; i < (w+1)*size/workers; i++ {
				for j, v := len(buf)-1, i; j >= len(buf)-6; j-- {
					buf[j] = byte('0' + v%10)
					v /= 10
				}
				hash(buf, false)
			}
			if w == 0 {
				for _, num := range numbers {
					hash([]byte(num), true)
				}
			}
			checked.Add(count)
			mu.Lock()
			hits = append(hits, found...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if got := checked.Load(); got != size+int64(len(numbers)) {
		t.Fatalf("checked %d numbers", got)
	}
	if len(hits) > 0 {
		t.Errorf("%d unkeyed hashes equal a stored pseudonym, e.g. %s", len(hits), hits[0])
	}
}

// storedPseudonyms reads every pseudonym in the SQLite file at path with
// plain SQL (not through the store), counting the columns each is in.
func storedPseudonyms(t *testing.T, path string) map[[32]byte]int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[[32]byte]int{}
	add := func(b []byte) {
		if len(b) == 32 {
			out[[32]byte(b)]++
		}
	}
	for _, q := range []string{
		"SELECT caller_pseudonym FROM calls", "SELECT dialled_pseudonym FROM calls", "SELECT user_pseudonym FROM calls",
		"SELECT pseudonym FROM list_entries",
		"SELECT caller_pseudonym FROM links", "SELECT user_pseudonym FROM links",
		"SELECT pseudonym FROM subject_flags",
		"SELECT subject_pseudonym FROM cases", "SELECT user_pseudonym FROM cases",
		"SELECT subject_pseudonym FROM holds",
		"SELECT pseudonym FROM consents",
		"SELECT key FROM changes",
	} {
		rows, err := db.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		n := 0
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			add(b)
			if a, c, ok := (store.Change{Key: b}).LinkKey(); ok { // list and link keys
				add(a)
				add(c)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n == 0 {
			t.Errorf("%s: no rows; the scan would miss that column", q)
		}
	}
	return out
}
