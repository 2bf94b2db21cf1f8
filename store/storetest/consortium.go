package storetest

import (
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// RunConsortium runs the consortium storage suite. Each subtest calls open
// for a fresh, empty store and closes it when done.
func RunConsortium(t *testing.T, open func(t *testing.T) store.Store) {
	runSuite(t, open, []subtest{
		{"Settings", testConsortiumSettings},
		{"Membership", testConsortiumMembership},
		{"Reports", testConsortiumReports},
		{"LeaveWithdraws", testConsortiumLeaveWithdraws},
		{"Disputes", testConsortiumDisputes},
		{"Purge", testConsortiumPurge},
		{"Impact", testConsortiumImpact},
	})
}

const cid = "uk-banks"

// consortiumWith makes the consortium and the tenants, and skips the change
// log past them.
func consortiumWith(t *testing.T, s store.Store, tenants ...string) *changeLog {
	t.Helper()
	for _, id := range tenants {
		tenant(t, s, id)
	}
	must(t, s.PutConsortium(t.Context(), store.ConsortiumInfo{ID: cid, Name: "UK banks", Terms: "v1",
		Reciprocity: store.Reciprocity{ContributionWindow: 90 * 24 * time.Hour, GracePeriod: 30 * 24 * time.Hour},
		Expiry:      396 * 24 * time.Hour, CreatedAt: at(0)}))
	l := &changeLog{t: t, s: s}
	last, err := s.LastChange(t.Context())
	must(t, err)
	l.seen = last
	return l
}

func join(t *testing.T, s store.Store, tenants ...string) {
	t.Helper()
	for _, id := range tenants {
		must(t, s.JoinConsortium(t.Context(), store.Membership{Consortium: cid, Tenant: id, JoinedAt: at(1), Terms: "v1"}))
	}
}

func memberChange(tenant string) store.Change {
	return store.Change{Tenant: tenant, Kind: store.ChangeConsortiumMember, Key: store.ConsortiumChangeKey(cid, []byte(tenant))}
}

func entryChange(p []byte) store.Change {
	return store.Change{Kind: store.ChangeConsortiumEntry, Key: store.ConsortiumChangeKey(cid, p)}
}

func report(id, tenant string, p []byte, i int) store.ConsortiumReport {
	return store.ConsortiumReport{ID: id, Consortium: cid, Tenant: tenant, Pseudonym: p, TenantPseudonym: pseudonym(),
		Sealed: random(40), FraudType: "impersonation", Evidence: "label:" + id, Note: random(20), ReportedAt: at(i)}
}

func testConsortiumSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.ConsortiumInfo(ctx, cid)
	wantCode(t, "ConsortiumInfo of an unknown id", err, call.NotFound)
	want := store.ConsortiumInfo{ID: cid, Name: "UK banks", Terms: "v1",
		Reciprocity: store.Reciprocity{ContributionWindow: time.Hour, GracePeriod: 2 * time.Hour}, Expiry: 3 * time.Hour, CreatedAt: at(0)}
	must(t, s.PutConsortium(ctx, want))
	got, err := s.ConsortiumInfo(ctx, cid)
	must(t, err)
	equal(t, "ConsortiumInfo", got, want)
	want.Terms, want.Reciprocity.GracePeriod = "v2", 0
	must(t, s.PutConsortium(ctx, want))
	got, err = s.ConsortiumInfo(ctx, cid)
	must(t, err)
	equal(t, "ConsortiumInfo after replacing", got, want)
	l := &changeLog{t: t, s: s}
	l.expect("PutConsortium twice",
		store.Change{Kind: store.ChangeConsortium, Key: []byte(cid)}, store.Change{Kind: store.ChangeConsortium, Key: []byte(cid)})
}

func testConsortiumMembership(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := consortiumWith(t, s, "bank-a", "bank-b")
	must(t, s.JoinConsortium(ctx, store.Membership{Consortium: cid, Tenant: "bank-b", JoinedAt: at(2), Terms: "v1"}))
	must(t, s.JoinConsortium(ctx, store.Membership{Consortium: cid, Tenant: "bank-a", JoinedAt: at(1), Terms: "v1"}))
	l.expect("two joins", memberChange("bank-b"), memberChange("bank-a"))

	wantCode(t, "second join", s.JoinConsortium(ctx, store.Membership{Consortium: cid, Tenant: "bank-a", JoinedAt: at(3), Terms: "v1"}), call.Conflict)
	wantCode(t, "join of an unknown tenant", s.JoinConsortium(ctx, store.Membership{Consortium: cid, Tenant: "nobody", JoinedAt: at(3), Terms: "v1"}), call.NotFound)
	wantCode(t, "join of an unknown consortium", s.JoinConsortium(ctx, store.Membership{Consortium: "other", Tenant: "bank-a", JoinedAt: at(3), Terms: "v1"}), call.NotFound)
	l.expect("failed joins")

	must(t, s.LeaveConsortium(ctx, cid, "bank-a", at(5)))
	wantCode(t, "second leave", s.LeaveConsortium(ctx, cid, "bank-a", at(6)), call.NotFound)
	wantCode(t, "leave of a non-member", s.LeaveConsortium(ctx, cid, "nobody", at(6)), call.NotFound)
	l.expect("leave", memberChange("bank-a"))
	ms, err := s.Memberships(ctx, cid)
	must(t, err)
	equal(t, "Memberships", ms, []store.Membership{
		{Consortium: cid, Tenant: "bank-a", JoinedAt: at(1), Terms: "v1", LeftAt: at(5)},
		{Consortium: cid, Tenant: "bank-b", JoinedAt: at(2), Terms: "v1"},
	})

	must(t, s.JoinConsortium(ctx, store.Membership{Consortium: cid, Tenant: "bank-a", JoinedAt: at(7), Terms: "v2"}))
	l.expect("rejoin", memberChange("bank-a"))
	ms, err = s.Memberships(ctx, cid)
	must(t, err)
	equal(t, "Memberships after rejoining", ms[0], store.Membership{Consortium: cid, Tenant: "bank-a", JoinedAt: at(7), Terms: "v2"})
}

func testConsortiumReports(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := consortiumWith(t, s, "bank-a", "bank-b", "outsider")
	join(t, s, "bank-a", "bank-b")
	l.expect("joins", memberChange("bank-a"), memberChange("bank-b"))
	p1, p2 := pseudonym(), pseudonym()
	r1, r2, r3 := report("r1", "bank-a", p1, 2), report("r2", "bank-b", p1, 3), report("r3", "bank-a", p2, 4)
	r3.Note = nil
	for _, r := range []store.ConsortiumReport{r1, r2, r3} {
		must(t, s.AddConsortiumReport(ctx, r))
	}
	wantCode(t, "report by a non-member", s.AddConsortiumReport(ctx, report("r4", "outsider", p1, 5)), call.NotFound)
	wantCode(t, "duplicate id", s.AddConsortiumReport(ctx, report("r1", "bank-b", p2, 5)), call.Conflict)
	l.expect("reports", entryChange(p1), entryChange(p1), entryChange(p2))

	all, err := s.ConsortiumReports(ctx, cid, store.ReportFilter{})
	must(t, err)
	equal(t, "all reports", all, []store.ConsortiumReport{r1, r2, r3})
	byP, err := s.ConsortiumReports(ctx, cid, store.ReportFilter{Pseudonym: p1})
	must(t, err)
	equal(t, "reports of p1", byP, []store.ConsortiumReport{r1, r2})
	byT, err := s.ConsortiumReports(ctx, cid, store.ReportFilter{Tenant: "bank-a", After: "r1", Limit: 1})
	must(t, err)
	equal(t, "bank-a's reports after r1", byT, []store.ConsortiumReport{r3})

	_, err = s.WithdrawConsortiumReport(ctx, cid, "bank-b", "r1", at(6))
	wantCode(t, "withdrawing another member's report", err, call.NotFound)
	got, err := s.WithdrawConsortiumReport(ctx, cid, "bank-a", "r1", at(6))
	must(t, err)
	r1.WithdrawnAt = at(6)
	equal(t, "withdrawn report", got, r1)
	_, err = s.WithdrawConsortiumReport(ctx, cid, "bank-a", "r1", at(7))
	wantCode(t, "second withdrawal", err, call.NotFound)
	l.expect("withdrawal", entryChange(p1))
	live, err := s.ConsortiumReports(ctx, cid, store.ReportFilter{Live: true})
	must(t, err)
	equal(t, "live reports", live, []store.ConsortiumReport{r2, r3})
}

func testConsortiumLeaveWithdraws(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := consortiumWith(t, s, "bank-a", "bank-b")
	join(t, s, "bank-a", "bank-b")
	p1, p2 := pseudonym(), pseudonym()
	must(t, s.AddConsortiumReport(ctx, report("r1", "bank-a", p1, 2)))
	must(t, s.AddConsortiumReport(ctx, report("r2", "bank-a", p2, 2)))
	must(t, s.AddConsortiumReport(ctx, report("r3", "bank-b", p1, 2)))
	l.expect("setup", memberChange("bank-a"), memberChange("bank-b"), entryChange(p1), entryChange(p2), entryChange(p1))
	must(t, s.LeaveConsortium(ctx, cid, "bank-a", at(9)))
	want := []store.Change{memberChange("bank-a")}
	ps := [][]byte{p1, p2}
	if string(p2) < string(p1) {
		ps = [][]byte{p2, p1}
	}
	for _, p := range ps {
		want = append(want, entryChange(p))
	}
	l.expect("leave", want...)
	live, err := s.ConsortiumReports(ctx, cid, store.ReportFilter{Live: true})
	must(t, err)
	if len(live) != 1 || live[0].ID != "r3" {
		t.Errorf("live reports after bank-a left = %+v; want r3 only", live)
	}
	gone, err := s.ConsortiumReports(ctx, cid, store.ReportFilter{Tenant: "bank-a"})
	must(t, err)
	for _, r := range gone {
		if !r.WithdrawnAt.Equal(at(9)) {
			t.Errorf("report %s withdrawn at %v; want %v", r.ID, r.WithdrawnAt, at(9))
		}
	}
	wantCode(t, "report after leaving", s.AddConsortiumReport(ctx, report("r4", "bank-a", p1, 10)), call.NotFound)
}

func testConsortiumDisputes(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := consortiumWith(t, s, "bank-a")
	join(t, s, "bank-a")
	p1, p2 := pseudonym(), pseudonym()
	must(t, s.AddConsortiumReport(ctx, report("r1", "bank-a", p1, 2)))
	must(t, s.AddConsortiumReport(ctx, report("r2", "bank-a", p2, 2)))
	l.expect("setup", memberChange("bank-a"), entryChange(p1), entryChange(p2))

	d1 := store.ConsortiumDispute{ID: "d1", Consortium: cid, Pseudonym: p1, RaisedBy: "bank-a", Reason: "not_fraud", State: store.DisputeOpen, OpenedAt: at(3)}
	d2 := store.ConsortiumDispute{ID: "d2", Consortium: cid, Pseudonym: p2, RaisedBy: "platform", Reason: "erasure", State: store.DisputeOpen, OpenedAt: at(3)}
	must(t, s.OpenConsortiumDispute(ctx, d1))
	must(t, s.OpenConsortiumDispute(ctx, d2))
	wantCode(t, "duplicate dispute", s.OpenConsortiumDispute(ctx, d1), call.Conflict)
	wantCode(t, "dispute in an unknown consortium", s.OpenConsortiumDispute(ctx, store.ConsortiumDispute{ID: "d3", Consortium: "x", Pseudonym: p1, RaisedBy: "platform", Reason: "other", OpenedAt: at(3)}), call.NotFound)
	l.expect("disputes", entryChange(p1), entryChange(p2))
	open, err := s.ConsortiumDisputes(ctx, cid, store.DisputeFilter{Open: true})
	must(t, err)
	equal(t, "open disputes", open, []store.ConsortiumDispute{d1, d2})

	got, err := s.ResolveConsortiumDispute(ctx, cid, "d1", store.DisputeUpheld, "evidence_confirmed", at(4))
	must(t, err)
	d1.State, d1.ResolvedAt, d1.Resolution = store.DisputeUpheld, at(4), "evidence_confirmed"
	equal(t, "upheld dispute", got, d1)
	_, err = s.ResolveConsortiumDispute(ctx, cid, "d1", store.DisputeAccepted, "x", at(5))
	wantCode(t, "resolving twice", err, call.Conflict)
	_, err = s.ResolveConsortiumDispute(ctx, cid, "nope", store.DisputeAccepted, "x", at(5))
	wantCode(t, "resolving an unknown dispute", err, call.NotFound)
	_, err = s.ResolveConsortiumDispute(ctx, cid, "d2", store.DisputeOpen, "x", at(5))
	wantCode(t, "resolving to open", err, call.Invalid)
	l.expect("upheld", entryChange(p1))
	live, err := s.ConsortiumReports(ctx, cid, store.ReportFilter{Pseudonym: p1, Live: true})
	must(t, err)
	if len(live) != 1 {
		t.Errorf("reports after an upheld dispute = %d; want 1", len(live))
	}

	_, err = s.ResolveConsortiumDispute(ctx, cid, "d2", store.DisputeAccepted, "erasure_granted", at(6))
	must(t, err)
	l.expect("accepted", entryChange(p2))
	rs, err := s.ConsortiumReports(ctx, cid, store.ReportFilter{Pseudonym: p2})
	must(t, err)
	if len(rs) != 0 {
		t.Errorf("reports after an accepted dispute = %+v; want none (removed)", rs)
	}
	ds, err := s.ConsortiumDisputes(ctx, cid, store.DisputeFilter{Pseudonym: p2})
	must(t, err)
	if len(ds) != 1 || ds[0].State != store.DisputeAccepted || ds[0].Resolution != "erasure_granted" {
		t.Errorf("disputes of p2 = %+v; want d2 accepted", ds)
	}
}

func testConsortiumPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := consortiumWith(t, s, "bank-a", "bank-b")
	join(t, s, "bank-a", "bank-b")
	old, fresh, ancient, gone := pseudonym(), pseudonym(), pseudonym(), pseudonym()
	must(t, s.AddConsortiumReport(ctx, report("r1", "bank-a", old, 10)))      // entry's newest report before the cut: purged
	must(t, s.AddConsortiumReport(ctx, report("r2", "bank-a", fresh, 10)))    // kept: the entry has a newer report
	must(t, s.AddConsortiumReport(ctx, report("r3", "bank-b", fresh, 100)))   // kept
	must(t, s.AddConsortiumReport(ctx, report("r4", "bank-a", ancient, 1)))   // before the hard cap: purged though the entry is fresh
	must(t, s.AddConsortiumReport(ctx, report("r5", "bank-b", ancient, 100))) // kept
	must(t, s.AddConsortiumReport(ctx, report("r6", "bank-b", gone, 100)))
	_, err := s.WithdrawConsortiumReport(ctx, cid, "bank-b", "r6", at(20)) // withdrawn before the cut: purged
	must(t, err)
	l.seen, err = s.LastChange(ctx)
	must(t, err)

	n, err := s.PurgeConsortium(ctx, cid, at(50), at(5))
	must(t, err)
	if n != 3 {
		t.Errorf("PurgeConsortium deleted %d; want 3", n)
	}
	rs, err := s.ConsortiumReports(ctx, cid, store.ReportFilter{})
	must(t, err)
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	equal(t, "reports after purge", ids, []string{"r2", "r3", "r5"})
	want := entryChanges(old, ancient, gone)
	l.expect("purge", want...)
	n, err = s.PurgeConsortium(ctx, cid, at(50), at(5))
	must(t, err)
	if n != 0 {
		t.Errorf("second purge deleted %d; want 0", n)
	}
	l.expect("second purge")
}

// entryChanges returns entry changes for the pseudonyms in byte order.
func entryChanges(ps ...[]byte) []store.Change {
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			if string(ps[j]) < string(ps[i]) {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
	}
	var cs []store.Change
	for _, p := range ps {
		cs = append(cs, entryChange(p))
	}
	return cs
}

func testConsortiumImpact(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := consortiumWith(t, s, "bank-a", "bank-b")
	join(t, s, "bank-a", "bank-b")
	l.expect("joins", memberChange("bank-a"), memberChange("bank-b"))
	must(t, s.AddConsortiumImpact(ctx, cid, map[string]int64{"bank-a": 3, "nobody": 5}))
	must(t, s.AddConsortiumImpact(ctx, cid, map[string]int64{"bank-a": 2, "bank-b": 1}))
	l.expect("impact is not a change")
	ms, err := s.Memberships(ctx, cid)
	must(t, err)
	if ms[0].Impact != 5 || ms[1].Impact != 1 {
		t.Errorf("impact = %d, %d; want 5, 1", ms[0].Impact, ms[1].Impact)
	}
}
