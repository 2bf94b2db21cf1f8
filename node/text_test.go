package node

import (
	"context"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store/postgres"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
)

// TestTextPostgreSQLRefuses: PostgreSQL refuses NUL and invalid UTF-8 in
// text, and a refused record used to stall the recorder for good (found
// by fuzzing). Such input is now Invalid at the door, and recording goes
// on.
func TestTextPostgreSQLRefuses(t *testing.T) {
	ctx := t.Context()
	st, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	mk, _ := seal.NewMasterKey()
	n, err := Open(ctx, Config{}, st, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		st.Close()
	})
	if _, _, err := n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Incoming{
		{Ref: "a\x00b"}, {Ref: "\xff"}, {UserRef: "u\x00"},
	} {
		bad.Tenant, bad.Dialled = "bank", "+442079460123"
		if bad.Caller == "" {
			bad.Caller = "+447400123456"
		}
		if _, err := n.Screen(ctx, bad); call.ErrorCode(err) != call.Invalid {
			t.Errorf("%q: %v; want Invalid", bad.Ref+bad.UserRef+bad.Caller, err)
		}
	}
	c, err := n.Screen(ctx, Incoming{Tenant: "bank", Ref: "fine", Caller: "+447400123456", Dialled: "+442079460123"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Label(ctx, "bank", c.ID, call.Label{Label: call.Fraud, FraudType: "x\x00"}); call.ErrorCode(err) != call.Invalid {
		t.Errorf("fraud type with NUL: %v; want Invalid", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.Sync(sctx); err != nil {
		t.Fatalf("the recorder is stuck: %v", err)
	}
	if _, err := n.Call(ctx, "bank", c.ID); err != nil {
		t.Errorf("the good record: %v", err)
	}
}
