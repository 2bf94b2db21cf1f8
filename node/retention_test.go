package node

import (
	"encoding/hex"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/store"
)

// TestRetentionPurge checks PurgeExpired with a fake clock: call records
// older than each tenant's retention go (with their labels), younger ones
// stay, a subject hold and a case hold keep their subjects' old records, a
// tenant hold keeps the whole tenant, and a dry run deletes nothing but
// counts what the real run then deletes.
func TestRetentionPurge(t *testing.T) {
	now := time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)
	clk := newPrivClock(now)
	e := openPrivEnv(t, clk)
	ctx := t.Context()
	for _, id := range []string{"bank", "frozen", "plain"} {
		if _, _, err := e.n.CreateTenant(ctx, id, "", "GB"); err != nil {
			t.Fatal(err)
		}
	}
	// bank keeps call records 3 months: before 15 March 12:00 they are due.
	if err := e.n.PutRetention(ctx, "bank", privacy.Retention{privacy.CallRecords: privacy.Months(3)}); err != nil {
		t.Fatal(err)
	}
	if err := e.n.PutRetention(ctx, "frozen", privacy.Retention{privacy.CallRecords: privacy.Months(1)}); err != nil {
		t.Fatal(err)
	}
	if r, err := e.n.Retention(ctx, "plain"); err != nil || r[privacy.CallRecords] != privacy.Months(13) {
		t.Fatalf("default call-record retention %v (%v); want 13 months", r[privacy.CallRecords], err)
	}
	cutoff := time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)

	const (
		free      = "+447400100001" // no hold
		held      = "+447400100002" // subject hold
		caseHeld  = "+447400100003" // hold on a case about them
		heldUser  = "cust-held"     // subject hold by user ref
		byUserNum = "+447400100004" // called as heldUser
	)
	ids := map[string][]string{} // tenant -> ids expected to stay
	var due []string             // bank ids expected to go
	screenAt := func(tenant, caller, user string, at time.Time, stays bool) *call.Call {
		t.Helper()
		c, err := e.n.Screen(ctx, Incoming{Tenant: tenant, Caller: caller, Dialled: "+442079460123", UserRef: user, StartedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		if stays {
			ids[tenant] = append(ids[tenant], c.ID)
		} else {
			due = append(due, c.ID)
		}
		return c
	}
	old := now.AddDate(0, 0, -120)
	young := now.AddDate(0, 0, -30)
	labelled := screenAt("bank", free, "", old, false)
	screenAt("bank", free, "", cutoff.Add(-time.Minute), false)
	screenAt("bank", free, "", cutoff.Add(time.Minute), true)
	screenAt("bank", free, "", young, true)
	screenAt("bank", "", "", old, false) // withheld caller
	heldOld := screenAt("bank", held, "", old, true)
	screenAt("bank", held, "", young, true)
	screenAt("bank", caseHeld, "", old, true)
	screenAt("bank", byUserNum, heldUser, old, true)
	for _, tenant := range []string{"frozen", "plain"} {
		screenAt(tenant, free, "", old, true)
		screenAt(tenant, held, "", young, true)
	}
	if _, err := e.n.Label(ctx, "bank", labelled.ID, call.Label{Label: call.Genuine, By: "ana", Note: "fine"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []HoldRequest{
		{Scope: store.HoldSubject, Subject: SubjectRef{Number: held}, Reason: "litigation"},
		{Scope: store.HoldSubject, Subject: SubjectRef{UserRef: heldUser}, Reason: "litigation"},
	} {
		if _, err := e.n.PlaceHold(ctx, "bank", h); err != nil {
			t.Fatal(err)
		}
	}
	cv, err := e.n.OpenCase(ctx, "bank", CaseRequest{Type: privacy.Access, Number: caseHeld})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.PlaceHold(ctx, "bank", HoldRequest{Scope: store.HoldCase, CaseID: cv.ID, Reason: "complaint"}); err != nil {
		t.Fatal(err)
	}
	frozenHold, err := e.n.PlaceHold(ctx, "frozen", HoldRequest{Scope: store.HoldTenant, Reason: "regulator inquiry"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.n.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	stored := func(tenant string) []string {
		t.Helper()
		rows, err := e.st.Calls(ctx, tenant, store.CallFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	all := map[string][]string{}
	for _, tenant := range []string{"bank", "frozen", "plain"} {
		all[tenant] = stored(tenant)
	}
	purged := func(rep PurgeReport) map[string]int64 {
		m := map[string]int64{}
		for _, tp := range rep.Tenants {
			m[tp.Tenant] = tp.Calls
		}
		return m
	}
	want := map[string]int64{"bank": int64(len(due)), "plain": 0}

	dry, err := e.n.PurgeExpired(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := purged(dry); !maps.Equal(got, want) {
		t.Errorf("dry run counts %v; want %v", got, want)
	}
	if dry.Skipped["frozen"] != "legal hold "+frozenHold.ID {
		t.Errorf("dry run skipped %v; want frozen under its hold", dry.Skipped)
	}
	for tenant, before := range all {
		if got := stored(tenant); !slices.Equal(got, before) {
			t.Errorf("the dry run changed %s: %d records, was %d", tenant, len(got), len(before))
		}
	}
	if es, err := e.st.AuditEntries(ctx, store.AuditFilter{ActionPrefix: "retention.purge"}); err != nil || len(es) != 0 {
		t.Errorf("the dry run audited %d purges (%v)", len(es), err)
	}

	rep, err := e.n.PurgeExpired(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := purged(rep); !maps.Equal(got, want) {
		t.Errorf("purge deleted %v; want %v (the dry run's count)", got, want)
	}
	for _, tp := range rep.Tenants {
		if tp.Tenant == "bank" && (!tp.Cutoff.Equal(cutoff) || tp.Held != 3) {
			t.Errorf("bank purged before %s with %d pseudonyms held; want %s and 3", tp.Cutoff, tp.Held, cutoff)
		}
	}
	for tenant, before := range all {
		w := before
		if tenant == "bank" {
			w = slices.Sorted(slices.Values(ids["bank"]))
		}
		if got := stored(tenant); !slices.Equal(got, w) {
			t.Errorf("%s after the purge: %v; want %v", tenant, got, w)
		}
	}
	for _, id := range due {
		if _, err := e.st.Call(ctx, "bank", id); call.ErrorCode(err) != call.NotFound {
			t.Errorf("due record %s: %v; want NotFound", id, err)
		}
	}
	if ls, err := e.st.Labels(ctx, "bank", labelled.ID); err != nil || len(ls) != 0 {
		t.Errorf("the purged record's labels: %d (%v)", len(ls), err)
	}
	es, err := e.st.AuditEntries(ctx, store.AuditFilter{ActionPrefix: "retention.purge"})
	if err != nil || len(es) != 1 || es[0].Tenant != "bank" {
		t.Errorf("purge audit entries %+v (%v); want one of bank", es, err)
	}

	// Nothing more is due; lifting the subject hold lets its old record go.
	if again, err := e.n.PurgeExpired(ctx, false); err != nil || purged(again)["bank"] != 0 {
		t.Errorf("a second purge deleted %v (%v)", purged(again), err)
	}
	holds, err := e.n.Holds(ctx, "bank", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range holds {
		if h.Scope == store.HoldSubject && h.Subject != "" {
			k, _ := e.n.tenantKeys("bank")
			if h.Subject == hex.EncodeToString(pseudonym(k, e.n.engine.Number("bank", held))) {
				if err := e.n.LiftHold(ctx, "bank", h.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if rep, err := e.n.PurgeExpired(ctx, false); err != nil || purged(rep)["bank"] != 1 {
		t.Fatalf("after lifting the hold the purge deleted %v (%v); want 1", purged(rep), err)
	}
	if _, err := e.st.Call(ctx, "bank", heldOld.ID); call.ErrorCode(err) != call.NotFound {
		t.Errorf("the formerly held old record: %v; want NotFound", err)
	}
}
