package node

import (
	"testing"
	"time"

	"github.com/ringfence/ringfence/store"
)

// TestExcluded leaves a restricted caller's calls (and an objecting user
// ref's) out of analytics, and no one else's.
func TestExcluded(t *testing.T) {
	clk := newPrivClock(time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC))
	e := openPrivEnv(t, clk)
	ctx := t.Context()
	if _, _, err := e.n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	k, _ := e.n.tenantKeys("bank")
	screen := func(caller, user string) bool {
		t.Helper()
		c, err := e.n.Screen(ctx, Incoming{Tenant: "bank", Caller: caller, Dialled: "+442079460123", UserRef: user})
		if err != nil {
			t.Fatal(err)
		}
		return e.n.Excluded("bank", c)
	}
	if screen("+447400123456", "cust-1") {
		t.Fatal("a call excluded before any restriction")
	}
	restricted := store.SubjectFlags{Tenant: "bank", Pseudonym: pseudonym(k, e.n.engine.Number("bank", "+447400123456")), Restricted: true}
	objected := store.SubjectFlags{Tenant: "bank", Pseudonym: userPseudonym(k, "cust-2"), Objected: true}
	for _, f := range []store.SubjectFlags{restricted, objected} {
		if err := e.st.PutSubjectFlags(ctx, f); err != nil {
			t.Fatal(err)
		}
		e.n.setFlags(f)
	}
	for _, tc := range []struct {
		caller, user string
		want         bool
	}{
		{"+447400123456", "", true},       // restricted caller
		{"+447400999999", "cust-2", true}, // objecting user ref
		{"+447400999999", "cust-1", false},
	} {
		if got := screen(tc.caller, tc.user); got != tc.want {
			t.Errorf("Excluded(%s, %s) = %v, want %v", tc.caller, tc.user, got, tc.want)
		}
	}
}
