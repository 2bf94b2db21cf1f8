package storetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// RunPrivacy runs the conformance suite of store.Privacy. Each subtest calls
// open for a fresh, empty store and closes it when done.
func RunPrivacy(t *testing.T, open func(t *testing.T) store.Store) {
	runSuite(t, open, []subtest{
		{"SubjectFlags", testSubjectFlags},
		{"Cases", testCases},
		{"Holds", testHolds},
		{"Consents", testConsents},
		{"Retention", testRetention},
		{"APIKeyRoles", testAPIKeyRoles},
		{"SubjectData", testSubjectData},
		{"EraseSubject", testEraseSubject},
		{"PurgeCalls", testPurgeCalls},
		{"PurgeChanges", testPurgeChanges},
		{"SealedRows", testSealedRows},
		{"ReplaceSealed", testReplaceSealed},
		{"DeleteTenantData", testDeleteTenantData},
		{"PrivacyUnknownTenant", testPrivacyUnknownTenant},
	})
}

func testSubjectFlags(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	log := &changeLog{t: t, s: s}
	log.seen, _ = s.LastChange(ctx)

	p := pseudonym()
	got, err := s.SubjectFlags(ctx, "acme", p)
	must(t, err)
	equal(t, "SubjectFlags of an unknown subject", got, store.SubjectFlags{Tenant: "acme", Pseudonym: p})

	f := store.SubjectFlags{Tenant: "acme", Pseudonym: p, Restricted: true, UpdatedAt: at(1)}
	must(t, s.PutSubjectFlags(ctx, f))
	log.expect("PutSubjectFlags", store.Change{Tenant: "acme", Kind: store.ChangeSubjectFlags, Key: p})
	got, err = s.SubjectFlags(ctx, "acme", p)
	must(t, err)
	equal(t, "SubjectFlags", got, f)

	f.Restricted, f.Objected, f.UpdatedAt = false, true, at(2)
	must(t, s.PutSubjectFlags(ctx, f))
	log.expect("PutSubjectFlags again", store.Change{Tenant: "acme", Kind: store.ChangeSubjectFlags, Key: p})
	got, err = s.SubjectFlags(ctx, "acme", p)
	must(t, err)
	equal(t, "SubjectFlags after an update", got, f)

	if got, err := s.SubjectFlags(ctx, "bank", p); err != nil || got.Restricted || got.Objected {
		t.Errorf("SubjectFlags of another tenant = %+v, %v; want none set", got, err)
	}
	wantCode(t, "PutSubjectFlags without a pseudonym",
		s.PutSubjectFlags(ctx, store.SubjectFlags{Tenant: "acme", Restricted: true}), call.Invalid)
	log.expect("failed PutSubjectFlags")

	want := []store.SubjectFlags{f}
	for range 4 {
		g := store.SubjectFlags{Tenant: "acme", Pseudonym: pseudonym(), Restricted: true, UpdatedAt: at(3)}
		must(t, s.PutSubjectFlags(ctx, g))
		want = append(want, g)
	}
	slices.SortFunc(want, func(a, b store.SubjectFlags) int { return bytes.Compare(a.Pseudonym, b.Pseudonym) })
	var all []store.SubjectFlags
	var after []byte
	for {
		page, err := s.SubjectFlagsOf(ctx, "acme", after, 2)
		must(t, err)
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Pseudonym
	}
	equal(t, "SubjectFlagsOf in pages of 2", all, want)
}

func newCase(tenant, id string, i int) store.Case {
	return store.Case{
		ID: id, Tenant: tenant, Type: "erasure", Status: "received",
		SubjectPseudonym: pseudonym(), Sealed: random(80), Data: []byte(`[{"at":"2025-03-14","event":"received"}]`),
		ReceivedAt: at(i), DueAt: at(i).AddDate(0, 1, 0), Version: 1,
	}
}

func testCases(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")

	c := newCase("acme", "case-2", 0)
	must(t, s.PutCase(ctx, c))
	got, err := s.Case(ctx, "acme", c.ID)
	must(t, err)
	equal(t, "Case", got, c)
	_, err = s.Case(ctx, "bank", c.ID)
	wantCode(t, "Case of another tenant", err, call.NotFound)
	_, err = s.Case(ctx, "acme", "case-9")
	wantCode(t, "Case of an unknown id", err, call.NotFound)

	for _, tt := range []struct {
		name    string
		version int
		code    string
	}{
		{"insert again", 1, call.Conflict},
		{"skip a version", 3, call.Conflict},
		{"same version", 1, call.Conflict},
		{"version 0", 0, call.Invalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := c
			d.Status, d.Version = "changed", tt.version
			wantCode(t, "PutCase", s.PutCase(ctx, d), tt.code)
			got, err := s.Case(ctx, "acme", c.ID)
			must(t, err)
			equal(t, "Case after a refused PutCase", got, c)
		})
	}
	c.Status, c.ClosedAt, c.UserPseudonym, c.Version = "closed", at(5), pseudonym(), 2
	must(t, s.PutCase(ctx, c))
	got, err = s.Case(ctx, "acme", c.ID)
	must(t, err)
	equal(t, "Case after an update", got, c)
	other := c
	other.Tenant, other.Version = "bank", 3
	wantCode(t, "PutCase updating another tenant's case", s.PutCase(ctx, other), call.Conflict)

	// case-1 due first, case-3 due last; case-2 is closed.
	must(t, s.PutCase(ctx, newCase("acme", "case-1", -10)))
	must(t, s.PutCase(ctx, newCase("acme", "case-3", 10)))
	must(t, s.PutCase(ctx, newCase("bank", "case-4", 0)))
	for _, tt := range []struct {
		name string
		f    store.CaseFilter
		want []string
	}{
		{"all", store.CaseFilter{}, []string{"case-3", "case-2", "case-1"}},
		{"status", store.CaseFilter{Status: "received"}, []string{"case-3", "case-1"}},
		{"due before", store.CaseFilter{DueBefore: at(0).AddDate(0, 1, 0)}, []string{"case-1"}},
		{"due before, inclusive of earlier", store.CaseFilter{DueBefore: at(1).AddDate(0, 1, 0)}, []string{"case-2", "case-1"}},
		{"page", store.CaseFilter{Limit: 2}, []string{"case-3", "case-2"}},
		{"next page", store.CaseFilter{Before: "case-2", Limit: 2}, []string{"case-1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := s.Cases(ctx, "acme", tt.f)
			must(t, err)
			var ids []string
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			equal(t, "Cases", ids, tt.want)
		})
	}
}

func testHolds(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	holds := []store.Hold{
		{ID: "h1", Tenant: "acme", Scope: store.HoldTenant, Reason: "litigation", PlacedBy: "dpo", PlacedAt: at(0)},
		{ID: "h2", Tenant: "acme", Scope: store.HoldSubject, SubjectPseudonym: pseudonym(), Reason: "police request", PlacedBy: "dpo", PlacedAt: at(1)},
		{ID: "h3", Tenant: "acme", Scope: store.HoldCase, CaseID: "case-1", Reason: "complaint", PlacedBy: "dpo", PlacedAt: at(2)},
	}
	for _, h := range holds {
		must(t, s.PutHold(ctx, h))
	}
	wantCode(t, "PutHold of a stored id", s.PutHold(ctx, holds[0]), call.Conflict)
	for _, tt := range []struct {
		name string
		h    store.Hold
	}{
		{"unknown scope", store.Hold{ID: "x", Tenant: "acme", Scope: "world"}},
		{"subject without pseudonym", store.Hold{ID: "x", Tenant: "acme", Scope: store.HoldSubject}},
		{"case without id", store.Hold{ID: "x", Tenant: "acme", Scope: store.HoldCase}},
		{"no id", store.Hold{Tenant: "acme", Scope: store.HoldTenant}},
	} {
		wantCode(t, "PutHold: "+tt.name, s.PutHold(ctx, tt.h), call.Invalid)
	}

	got, err := s.Holds(ctx, "acme", true)
	must(t, err)
	equal(t, "Holds", got, holds)
	must(t, s.LiftHold(ctx, "acme", "h2", "dpo2", at(9)))
	wantCode(t, "LiftHold twice", s.LiftHold(ctx, "acme", "h2", "dpo2", at(10)), call.Conflict)
	wantCode(t, "LiftHold of an unknown hold", s.LiftHold(ctx, "acme", "h9", "dpo2", at(10)), call.NotFound)
	wantCode(t, "LiftHold of another tenant's hold", s.LiftHold(ctx, "bank", "h1", "dpo2", at(10)), call.NotFound)

	got, err = s.Holds(ctx, "acme", true)
	must(t, err)
	equal(t, "active Holds after lifting h2", got, []store.Hold{holds[0], holds[2]})
	lifted := holds[1]
	lifted.LiftedBy, lifted.LiftedAt = "dpo2", at(9)
	if lifted.Active() || !holds[1].Active() {
		t.Errorf("Active: lifted %v, placed %v; want false, true", lifted.Active(), holds[1].Active())
	}
	got, err = s.Holds(ctx, "acme", false)
	must(t, err)
	equal(t, "all Holds", got, []store.Hold{holds[0], lifted, holds[2]})
	got, err = s.Holds(ctx, "bank", false)
	must(t, err)
	equal(t, "Holds of another tenant", len(got), 0)
}

func testConsents(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	p := pseudonym()
	want := []store.Consent{
		{Tenant: "acme", Pseudonym: p, Purpose: "recording", Given: true, At: at(0), Source: "ivr"},
		{Tenant: "acme", Pseudonym: p, Purpose: "marketing", Given: true, At: at(1), Source: "web"},
		{Tenant: "acme", Pseudonym: p, Purpose: "recording", Given: false, At: at(2), Source: "case-7"},
	}
	// Stored out of order: the history is by time.
	for _, i := range []int{1, 2, 0} {
		must(t, s.PutConsent(ctx, want[i]))
	}
	must(t, s.PutConsent(ctx, store.Consent{Tenant: "acme", Pseudonym: pseudonym(), Purpose: "recording", Given: true, At: at(0)}))
	must(t, s.PutConsent(ctx, store.Consent{Tenant: "bank", Pseudonym: p, Purpose: "recording", Given: true, At: at(0)}))
	got, err := s.Consents(ctx, "acme", p)
	must(t, err)
	equal(t, "Consents", got, want)
	wantCode(t, "PutConsent without purpose",
		s.PutConsent(ctx, store.Consent{Tenant: "acme", Pseudonym: p, At: at(3)}), call.Invalid)
	got, err = s.Consents(ctx, "acme", pseudonym())
	must(t, err)
	equal(t, "Consents of an unknown subject", len(got), 0)
}

func testRetention(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	got, err := s.Retention(ctx, "acme")
	if err != nil || got != nil {
		t.Fatalf("Retention with none stored = %q, %v; want nil, nil", got, err)
	}
	for _, settings := range []string{`{"calls":"P90D"}`, `{"calls":"P30D","labels":"P1Y"}`} {
		must(t, s.PutRetention(ctx, "acme", []byte(settings)))
		got, err := s.Retention(ctx, "acme")
		must(t, err)
		if string(got) != settings {
			t.Errorf("Retention = %s; want %s", got, settings)
		}
	}
	if got, err := s.Retention(ctx, "bank"); err != nil || got != nil {
		t.Errorf("Retention of another tenant = %q, %v; want nil", got, err)
	}
}

func testAPIKeyRoles(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	var want []store.APIKey
	for _, role := range []string{"", "analyst", "auditor", "privacy_officer", "compliance_officer", "admin"} {
		k := store.APIKey{Tenant: "acme", Name: "key-" + role, Role: role, CreatedAt: at(0)}
		rand.Read(k.Hash[:])
		must(t, s.AddAPIKey(ctx, k))
		want = append(want, k)
	}
	slices.SortFunc(want, func(a, b store.APIKey) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
	got, err := s.APIKeys(ctx, "acme")
	must(t, err)
	equal(t, "APIKeys", got, want)

	bad := store.APIKey{Tenant: "acme", Name: "bad", Role: "root", CreatedAt: at(0)}
	rand.Read(bad.Hash[:])
	wantCode(t, "AddAPIKey with an unknown role", s.AddAPIKey(ctx, bad), call.Invalid)
	_, err = s.TenantByAPIKey(ctx, bad.Hash)
	wantCode(t, "TenantByAPIKey of a refused key", err, call.NotFound)
}

// subject is a data subject's stored data in a test store.
type subject struct {
	caller, user []byte
	calls        []store.Call // ordered by id
	labels       int
	entries      []store.ListEntry
	links        []store.Link
}

// storeSubject stores call records with the subject as caller (2) and as
// user (2), labels on two of them, a deny and an allow entry for the
// caller and links with the subject as caller and as user.
func storeSubject(t *testing.T, s store.Store, tenant string, i int) subject {
	t.Helper()
	ctx := t.Context()
	sub := subject{caller: pseudonym(), user: pseudonym()}
	for j := range 4 {
		c := newCall(tenant, at(i*10+j))
		if j < 2 {
			c.CallerPseudonym = sub.caller
		} else {
			c.UserPseudonym = sub.user
		}
		if j == 1 {
			c.UserPseudonym = nil
		}
		sub.calls = append(sub.calls, c)
	}
	must(t, s.InsertCalls(ctx, sub.calls))
	for _, c := range sub.calls[1:3] {
		must(t, s.AddLabel(ctx, store.Label{Tenant: tenant, RecordID: c.ID, Label: call.Fraud, FraudType: "vishing",
			Sealed: random(40), By: "analyst", At: at(i*10 + 5)}))
		sub.labels++
	}
	sub.calls = get2(t, s, tenant, sub.calls) // review status set by the labels
	for _, list := range []call.ListKind{call.DenyList, call.AllowList} {
		e := newEntry(list)
		e.Pseudonym = sub.caller
		sub.entries = append(sub.entries, e)
	}
	must(t, s.PutListEntries(ctx, tenant, sub.entries))
	slices.SortFunc(sub.entries, func(a, b store.ListEntry) int { return cmpString(string(a.List), string(b.List)) })
	sub.links = []store.Link{
		{CallerPseudonym: sub.caller, UserPseudonym: pseudonym(), Sealed: random(90), At: at(i)},
		{CallerPseudonym: pseudonym(), UserPseudonym: sub.user, Sealed: random(90), At: at(i)},
		{CallerPseudonym: sub.caller, UserPseudonym: sub.user, Sealed: random(90), At: at(i)},
	}
	must(t, s.PutLinks(ctx, tenant, sub.links))
	slices.SortFunc(sub.links, compareLinks)
	return sub
}

// get2 reads the records back, ordered by id.
func get2(t *testing.T, s store.Store, tenant string, cs []store.Call) []store.Call {
	t.Helper()
	out := make([]store.Call, len(cs))
	for i, c := range cs {
		out[i] = get(t, s, tenant, c.ID)
	}
	slices.SortFunc(out, func(a, b store.Call) int { return cmpString(a.ID, b.ID) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testSubjectData(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	sub := storeSubject(t, s, "acme", 0)
	storeSubject(t, s, "acme", 1) // someone else
	insert(t, s, "acme", 3)
	// The same pseudonyms in another tenant are another tenant's data.
	c := newCall("bank", at(0))
	c.CallerPseudonym = sub.caller
	must(t, s.InsertCalls(ctx, []store.Call{c}))

	var got []store.Call
	after := ""
	for {
		page, err := s.SubjectCalls(ctx, "acme", sub.caller, sub.user, after, 3)
		must(t, err)
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	equal(t, "SubjectCalls in pages of 3", got, sub.calls)
	byCaller, err := s.SubjectCalls(ctx, "acme", sub.caller, nil, "", 0)
	must(t, err)
	equal(t, "SubjectCalls by caller only", ids(byCaller), ids(sub.calls[:2]))
	byUser, err := s.SubjectCalls(ctx, "acme", nil, sub.user, "", 0)
	must(t, err)
	equal(t, "SubjectCalls by user only", ids(byUser), ids(sub.calls[2:]))
	_, err = s.SubjectCalls(ctx, "acme", nil, nil, "", 0)
	wantCode(t, "SubjectCalls without a pseudonym", err, call.Invalid)

	es, err := s.SubjectListEntries(ctx, "acme", sub.caller)
	must(t, err)
	equal(t, "SubjectListEntries", es, sub.entries)
	es, err = s.SubjectListEntries(ctx, "bank", sub.caller)
	must(t, err)
	equal(t, "SubjectListEntries of another tenant", len(es), 0)

	ls, err := s.SubjectLinks(ctx, "acme", sub.caller, sub.user)
	must(t, err)
	equal(t, "SubjectLinks", ls, sub.links)
	ls, err = s.SubjectLinks(ctx, "acme", nil, sub.user)
	must(t, err)
	equal(t, "SubjectLinks by user", len(ls), 2)
}

func testEraseSubject(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	sub := storeSubject(t, s, "acme", 0)
	other := storeSubject(t, s, "acme", 1)
	// Deletions before the erasure leave sealed copies in the change log:
	// one of the subject's, which erasure must clear, and one of someone
	// else's, which it must not.
	gone := newEntry(call.DNOList)
	gone.Pseudonym = sub.caller
	kept := newEntry(call.DNOList)
	must(t, s.PutListEntries(ctx, "acme", []store.ListEntry{gone, kept}))
	must(t, s.DeleteListEntry(ctx, "acme", call.DNOList, gone.Pseudonym))
	must(t, s.DeleteListEntry(ctx, "acme", call.DNOList, kept.Pseudonym))
	goneLink := store.Link{CallerPseudonym: pseudonym(), UserPseudonym: sub.user, Sealed: random(90), At: at(0)}
	must(t, s.PutLinks(ctx, "acme", []store.Link{goneLink}))
	must(t, s.DeleteLinks(ctx, "acme", goneLink.CallerPseudonym))
	// The same subject in another tenant is untouched.
	c := newCall("bank", at(0))
	c.CallerPseudonym = sub.caller
	must(t, s.InsertCalls(ctx, []store.Call{c}))
	before, err := s.Counts(ctx, "acme")
	must(t, err)
	log := &changeLog{t: t, s: s}
	log.seen, _ = s.LastChange(ctx)

	e, err := s.EraseSubject(ctx, "acme", sub.caller, sub.user)
	must(t, err)
	equal(t, "Erased", e, store.Erased{Calls: 4, Labels: int64(sub.labels), ListEntries: 2, Links: 3})
	var want []store.Change
	for _, en := range sub.entries {
		want = append(want, listChange("acme", store.ChangeListDelete, en, nil))
	}
	slices.SortFunc(want, func(a, b store.Change) int { return bytes.Compare(a.Key, b.Key) })
	for _, l := range sub.links {
		want = append(want, linkChange("acme", store.ChangeLinkDelete, l, nil))
	}
	log.expect("EraseSubject", want...)

	after, err := s.Counts(ctx, "acme")
	must(t, err)
	equal(t, "Counts after erasure", after, store.Counts{
		APIKeys: before.APIKeys, Calls: before.Calls - 4, Labels: before.Labels - int64(sub.labels),
		ListEntries: before.ListEntries - 2, Routes: before.Routes, Policies: before.Policies, Links: before.Links - 3})
	cs, err := s.SubjectCalls(ctx, "acme", sub.caller, sub.user, "", 0)
	must(t, err)
	equal(t, "SubjectCalls after erasure", len(cs), 0)
	for _, c := range sub.calls {
		_, err := s.Call(ctx, "acme", c.ID)
		wantCode(t, "Call of an erased record", err, call.NotFound)
		ls, err := s.Labels(ctx, "acme", c.ID)
		must(t, err)
		equal(t, "Labels of an erased record", len(ls), 0)
	}
	es, err := s.SubjectListEntries(ctx, "acme", sub.caller)
	must(t, err)
	equal(t, "SubjectListEntries after erasure", len(es), 0)
	ls, err := s.SubjectLinks(ctx, "acme", sub.caller, sub.user)
	must(t, err)
	equal(t, "SubjectLinks after erasure", len(ls), 0)

	// No sealed copy of the subject anywhere in the change log; the other
	// deletion's copy is still there.
	changes, err := s.Changes(ctx, 0, 1000)
	must(t, err)
	var keptCopy bool
	for _, c := range changes {
		if c.Sealed == nil {
			continue
		}
		if bytes.Equal(c.Sealed, gone.Sealed) || bytes.Equal(c.Sealed, goneLink.Sealed) ||
			changeNames(c, sub.caller) || changeNames(c, sub.user) {
			t.Errorf("change %d (%s) still holds a sealed copy of the erased subject", c.Seq, c.Kind)
		}
		keptCopy = keptCopy || bytes.Equal(c.Sealed, kept.Sealed)
	}
	if !keptCopy {
		t.Errorf("erasure cleared another subject's sealed copy from the change log")
	}

	// The other subject and the other tenant are untouched.
	got, err := s.SubjectCalls(ctx, "acme", other.caller, other.user, "", 0)
	must(t, err)
	equal(t, "another subject's calls", got, other.calls)
	if _, err := s.Call(ctx, "bank", c.ID); err != nil {
		t.Errorf("Call of another tenant's record with the same pseudonym: %v", err)
	}

	e, err = s.EraseSubject(ctx, "acme", sub.caller, sub.user)
	must(t, err)
	equal(t, "Erased again", e, store.Erased{})
	log.expect("EraseSubject with nothing stored")
	_, err = s.EraseSubject(ctx, "acme", nil, nil)
	wantCode(t, "EraseSubject without a pseudonym", err, call.Invalid)
}

// changeNames reports whether a list or link change's key holds p.
func changeNames(c store.Change, p []byte) bool {
	if _, lp, ok := c.ListKey(); ok && c.Kind == store.ChangeListDelete && bytes.Equal(lp, p) {
		return true
	}
	cp, up, ok := c.LinkKey()
	return ok && c.Kind == store.ChangeLinkDelete && (bytes.Equal(cp, p) || bytes.Equal(up, p))
}

func testPurgeCalls(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	cs := insert(t, s, "acme", 10) // at(0) .. at(9)
	bank := insert(t, s, "bank", 10)
	held := [][]byte{cs[1].CallerPseudonym, cs[3].UserPseudonym, pseudonym()}
	for _, c := range cs[:6] {
		must(t, s.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: c.ID, Label: call.Genuine, By: "a", At: at(20)}))
	}

	// Before at(6): records 0-5, of which 1 and 3 are held; limit 2.
	var batches []int64
	for {
		n, err := s.PurgeCalls(ctx, "acme", at(6), held, 2)
		must(t, err)
		batches = append(batches, n)
		if n < 2 {
			break
		}
	}
	equal(t, "PurgeCalls batches", batches, []int64{2, 2, 0})
	left, err := s.Calls(ctx, "acme", store.CallFilter{})
	must(t, err)
	equal(t, "records left", ids(left), ids([]store.Call{cs[9], cs[8], cs[7], cs[6], cs[3], cs[1]}))
	counts, err := s.Counts(ctx, "acme")
	must(t, err)
	if counts.Labels != 2 {
		t.Errorf("labels left: %d; want 2 (of the held records)", counts.Labels)
	}
	if counts, _ := s.Counts(ctx, "bank"); counts.Calls != 10 {
		t.Errorf("another tenant's records left: %d; want 10", counts.Calls)
	}

	// Oldest first.
	n, err := s.PurgeCalls(ctx, "bank", at(100), nil, 1)
	must(t, err)
	if n != 1 {
		t.Fatalf("PurgeCalls limit 1 = %d", n)
	}
	left, err = s.Calls(ctx, "bank", store.CallFilter{})
	must(t, err)
	equal(t, "bank records after purging one", ids(left), newest(bank, 1, 10))
	_, err = s.PurgeCalls(ctx, "acme", at(6), make([][]byte, 10001), 1)
	wantCode(t, "PurgeCalls keeping too many", err, call.Invalid)
}

func testPurgeChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	through, err := s.ChangesPrunedThrough(ctx)
	must(t, err)
	if through != 0 {
		t.Errorf("ChangesPrunedThrough of a new store = %d; want 0", through)
	}
	tenant(t, s, "acme")
	must(t, s.PutRoute(ctx, "acme", call.Route{ID: "r1", Kind: call.Domestic, Country: "GB"}))
	last, err := s.LastChange(ctx)
	must(t, err)

	// Changes are stamped with the store's clock; a day either side of
	// now brackets them without depending on how long the test takes.
	n, err := s.PurgeChanges(ctx, time.Now().AddDate(0, 0, -1))
	must(t, err)
	if n != 0 {
		t.Errorf("PurgeChanges of nothing old = %d", n)
	}
	if through, _ := s.ChangesPrunedThrough(ctx); through != 0 {
		t.Errorf("ChangesPrunedThrough after pruning nothing = %d; want 0", through)
	}
	n, err = s.PurgeChanges(ctx, time.Now().AddDate(0, 0, 1))
	must(t, err)
	if n != 2 {
		t.Errorf("PurgeChanges of everything = %d; want 2", n)
	}
	through, err = s.ChangesPrunedThrough(ctx)
	must(t, err)
	if through != last {
		t.Errorf("ChangesPrunedThrough = %d; want %d", through, last)
	}
	must(t, s.PutRoute(ctx, "acme", call.Route{ID: "r2", Kind: call.Domestic, Country: "GB"}))
	cs, err := s.Changes(ctx, 0, 100)
	must(t, err)
	if len(cs) != 1 || cs[0].Seq <= through {
		t.Errorf("Changes after pruning = %+v; want only the new one, above %d", cs, through)
	}
	if n, _ := s.PurgeChanges(ctx, time.Now().AddDate(0, 0, -1)); n != 0 {
		t.Errorf("PurgeChanges of nothing old = %d", n)
	}
	if got, _ := s.ChangesPrunedThrough(ctx); got != through {
		t.Errorf("ChangesPrunedThrough went from %d to %d on pruning nothing", through, got)
	}
}

// sealedFixture stores one of every sealed kind in acme (two of each) and
// some in bank, and returns acme's rows by kind, in Row order.
func sealedFixture(t *testing.T, s store.Store) map[string][]store.SealedRow {
	t.Helper()
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	insert(t, s, "bank", 2)
	cs := []store.Call{newCall("acme", at(0)), newCall("acme", at(1)), newCall("acme", at(2))}
	cs[2].Sealed = nil // no sealed value: not a row to rewrap
	must(t, s.InsertCalls(ctx, cs))
	rows := map[string][]store.SealedRow{}
	for _, c := range cs[:2] {
		rows[store.SealedCalls] = append(rows[store.SealedCalls], store.SealedRow{Kind: store.SealedCalls, Row: c.ID, AADID: c.ID, Sealed: c.Sealed})
	}
	for i, c := range []store.Call{cs[1], cs[0], cs[0]} {
		l := store.Label{Tenant: "acme", RecordID: c.ID, Label: call.Fraud, Sealed: random(40), By: "a", At: at(i)}
		must(t, s.AddLabel(ctx, l))
		rows[store.SealedLabels] = append(rows[store.SealedLabels], store.SealedRow{Kind: store.SealedLabels, AADID: c.ID, Sealed: l.Sealed})
	}
	must(t, s.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: cs[1].ID, Label: call.Fraud, By: "a", At: at(5)})) // no note
	entries := []store.ListEntry{newEntry(call.DenyList), newEntry(call.AllowList), newEntry(call.DenyList)}
	must(t, s.PutListEntries(ctx, "acme", entries))
	must(t, s.PutListEntries(ctx, "bank", []store.ListEntry{newEntry(call.DenyList)}))
	for _, e := range entries {
		id := string(e.List) + "/" + hex.EncodeToString(e.Pseudonym)
		rows[store.SealedLists] = append(rows[store.SealedLists], store.SealedRow{Kind: store.SealedLists, AADID: id, Sealed: e.Sealed})
	}
	slices.SortFunc(rows[store.SealedLists], func(a, b store.SealedRow) int { return cmpString(a.AADID, b.AADID) })
	links := []store.Link{
		{CallerPseudonym: pseudonym(), UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)},
		{CallerPseudonym: pseudonym(), UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)},
	}
	links = append(links, store.Link{CallerPseudonym: links[0].CallerPseudonym, UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)})
	must(t, s.PutLinks(ctx, "acme", links))
	slices.SortFunc(links, compareLinks)
	for _, l := range links {
		id := fmt.Sprintf("%x/%x", l.CallerPseudonym, l.UserPseudonym)
		rows[store.SealedLinks] = append(rows[store.SealedLinks], store.SealedRow{Kind: store.SealedLinks, AADID: id, Sealed: l.Sealed})
	}
	return rows
}

// allSealed reads every row of a kind in pages of 2.
func allSealed(t *testing.T, s store.Store, tenant, kind string) []store.SealedRow {
	t.Helper()
	var all []store.SealedRow
	after := ""
	for {
		page, err := s.SealedRows(t.Context(), tenant, kind, after, 2)
		must(t, err)
		if len(page) == 0 {
			return all
		}
		for _, r := range page {
			if r.Row <= after && after != "" {
				t.Errorf("SealedRows %s: row %q after cursor %q", kind, r.Row, after)
			}
		}
		all = append(all, page...)
		after = page[len(page)-1].Row
	}
}

func testSealedRows(t *testing.T, s store.Store) {
	want := sealedFixture(t, s)
	for _, kind := range []string{store.SealedCalls, store.SealedLabels, store.SealedLists, store.SealedLinks} {
		t.Run(kind, func(t *testing.T) {
			got := allSealed(t, s, "acme", kind)
			bare := make([]store.SealedRow, len(got))
			for i, r := range got {
				bare[i] = store.SealedRow{Kind: r.Kind, AADID: r.AADID, Sealed: r.Sealed}
				if r.Row == "" {
					t.Errorf("row %d has no locator", i)
				}
			}
			w := slices.Clone(want[kind])
			for i := range w {
				w[i].Row = ""
			}
			equal(t, "SealedRows", bare, w) // labels in the order they were added
		})
	}
	_, err := s.SealedRows(t.Context(), "acme", "media", "", 0)
	wantCode(t, "SealedRows of an unknown kind", err, call.Invalid)
	_, err = s.SealedRows(t.Context(), "acme", store.SealedLinks, "zz", 0)
	wantCode(t, "SealedRows with a malformed cursor", err, call.Invalid)
	rows, err := s.SealedRows(t.Context(), "nobody", store.SealedCalls, "", 0)
	must(t, err)
	equal(t, "SealedRows of an unknown tenant", len(rows), 0)
}

func testReplaceSealed(t *testing.T, s store.Store) {
	ctx := t.Context()
	sealedFixture(t, s)
	for _, kind := range []string{store.SealedCalls, store.SealedLabels, store.SealedLists, store.SealedLinks} {
		t.Run(kind, func(t *testing.T) {
			rows := allSealed(t, s, "acme", kind)
			if len(rows) < 2 {
				t.Fatalf("fixture has %d rows of %s", len(rows), kind)
			}
			old := make([][]byte, len(rows))
			next := make([]store.SealedRow, len(rows))
			for i, r := range rows {
				old[i] = r.Sealed
				next[i] = r
				next[i].Sealed = random(len(r.Sealed) + 8)
			}
			old[0] = random(len(old[0])) // changed since it was read: skipped
			// Another tenant's rows are never replaced, even by locator.
			foreign := next[1]
			n, err := s.ReplaceSealed(ctx, "bank", []store.SealedRow{foreign}, [][]byte{rows[1].Sealed})
			must(t, err)
			if n != 0 {
				t.Errorf("ReplaceSealed in another tenant replaced %d", n)
			}

			n, err = s.ReplaceSealed(ctx, "acme", next, old)
			must(t, err)
			if n != len(rows)-1 {
				t.Errorf("ReplaceSealed = %d; want %d", n, len(rows)-1)
			}
			got := allSealed(t, s, "acme", kind)
			want := slices.Clone(next)
			want[0] = rows[0]
			equal(t, "rows after ReplaceSealed", got, want)
		})
	}
	// The stores' own reads see the new values.
	rows := allSealed(t, s, "acme", store.SealedCalls)
	if c := get(t, s, "acme", rows[1].Row); !bytes.Equal(c.Sealed, rows[1].Sealed) {
		t.Errorf("Call after ReplaceSealed: sealed value not the replaced one")
	}

	_, err := s.ReplaceSealed(ctx, "acme", rows, nil)
	wantCode(t, "ReplaceSealed with too few old values", err, call.Invalid)
	_, err = s.ReplaceSealed(ctx, "acme", []store.SealedRow{{Kind: "media", Row: "x"}}, [][]byte{nil})
	wantCode(t, "ReplaceSealed of an unknown kind", err, call.Invalid)
	_, err = s.ReplaceSealed(ctx, "acme", []store.SealedRow{{Kind: store.SealedLists, Row: "deny"}}, [][]byte{nil})
	wantCode(t, "ReplaceSealed of a malformed row", err, call.Invalid)
}

func testDeleteTenantData(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"acme", "bank"} {
		tenant(t, s, id)
		sub := storeSubject(t, s, id, 0)
		var hash [32]byte
		rand.Read(hash[:])
		must(t, s.AddAPIKey(ctx, store.APIKey{Tenant: id, Hash: hash, Name: "ops", Role: "analyst", CreatedAt: at(0)}))
		must(t, s.PutRoute(ctx, id, call.Route{ID: "r1", Kind: call.Domestic, Country: "GB"}))
		must(t, s.PutPolicy(ctx, id, call.DefaultPolicy()))
		must(t, s.PutSubjectFlags(ctx, store.SubjectFlags{Tenant: id, Pseudonym: sub.caller, Restricted: true, UpdatedAt: at(0)}))
		must(t, s.PutCase(ctx, newCase(id, "case-1", 0)))
		must(t, s.PutHold(ctx, store.Hold{ID: "h1", Tenant: id, Scope: store.HoldTenant, PlacedBy: "dpo", PlacedAt: at(0)}))
		must(t, s.PutConsent(ctx, store.Consent{Tenant: id, Pseudonym: sub.caller, Purpose: "recording", Given: true, At: at(0)}))
		must(t, s.PutRetention(ctx, id, []byte(`{}`)))
	}
	bankBefore, err := s.Counts(ctx, "bank")
	must(t, err)
	acmeBefore, err := s.Counts(ctx, "acme")
	must(t, err)
	last, err := s.LastChange(ctx)
	must(t, err)

	c, err := s.DeleteTenantData(ctx, "acme")
	must(t, err)
	equal(t, "DeleteTenantData counts", c, acmeBefore)
	after, err := s.Counts(ctx, "acme")
	must(t, err)
	equal(t, "Counts after DeleteTenantData", after, store.Counts{})
	bankAfter, err := s.Counts(ctx, "bank")
	must(t, err)
	equal(t, "another tenant's Counts", bankAfter, bankBefore)

	tn, err := s.Tenant(ctx, "acme")
	must(t, err)
	if tn.Keys != nil || tn.DeletedAt.IsZero() || tn.Name != "Tenant acme" {
		t.Errorf("Tenant after DeleteTenantData = %+v; want keys nil and DeletedAt set", tn)
	}
	ts, err := s.Tenants(ctx)
	must(t, err)
	if len(ts) != 2 || ts[0].ID != "acme" || ts[0].DeletedAt.IsZero() || !ts[1].DeletedAt.IsZero() || ts[1].Keys == nil {
		t.Errorf("Tenants after DeleteTenantData = %+v; want acme deleted, bank not", ts)
	}
	wantCode(t, "CreateTenant reusing a deleted id",
		s.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "New", Region: "GB", CreatedAt: at(9)}), call.Conflict)

	// Privacy rows are gone too.
	if cs, err := s.Cases(ctx, "acme", store.CaseFilter{}); err != nil || len(cs) != 0 {
		t.Errorf("Cases after DeleteTenantData = %d, %v", len(cs), err)
	}
	if hs, err := s.Holds(ctx, "acme", false); err != nil || len(hs) != 0 {
		t.Errorf("Holds after DeleteTenantData = %d, %v", len(hs), err)
	}
	if fs, err := s.SubjectFlagsOf(ctx, "acme", nil, 0); err != nil || len(fs) != 0 {
		t.Errorf("SubjectFlagsOf after DeleteTenantData = %d, %v", len(fs), err)
	}
	if r, err := s.Retention(ctx, "acme"); err != nil || r != nil {
		t.Errorf("Retention after DeleteTenantData = %q, %v", r, err)
	}
	if hs, err := s.Holds(ctx, "bank", false); err != nil || len(hs) != 1 {
		t.Errorf("another tenant's Holds = %d, %v", len(hs), err)
	}

	// The tenant's change-log rows are gone but for one announcing it.
	changes, err := s.Changes(ctx, 0, 1000)
	must(t, err)
	var acme []store.Change
	for _, ch := range changes {
		if ch.Tenant == "acme" {
			acme = append(acme, ch)
		}
	}
	if len(acme) != 1 || acme[0].Kind != store.ChangeTenant || acme[0].Seq <= last {
		t.Errorf("acme's changes after DeleteTenantData: %s; want one new tenant change", fmtChanges(acme))
	}

	c, err = s.DeleteTenantData(ctx, "acme")
	must(t, err)
	equal(t, "DeleteTenantData again", c, store.Counts{})
	_, err = s.DeleteTenantData(ctx, "nobody")
	wantCode(t, "DeleteTenantData of an unknown tenant", err, call.NotFound)
}

func testPrivacyUnknownTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	for what, err := range map[string]error{
		"PutSubjectFlags": s.PutSubjectFlags(ctx, store.SubjectFlags{Tenant: "nobody", Pseudonym: pseudonym()}),
		"PutCase":         s.PutCase(ctx, newCase("nobody", "case-1", 0)),
		"PutHold":         s.PutHold(ctx, store.Hold{ID: "h", Tenant: "nobody", Scope: store.HoldTenant}),
		"PutConsent":      s.PutConsent(ctx, store.Consent{Tenant: "nobody", Pseudonym: pseudonym(), Purpose: "x"}),
		"PutRetention":    s.PutRetention(ctx, "nobody", []byte(`{}`)),
	} {
		wantCode(t, what+" for an unknown tenant", err, call.NotFound)
	}
}
