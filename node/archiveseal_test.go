package node

import (
	"testing"
	"time"

	"github.com/ringfence/ringfence/store"
)

// TestSealClosedArchiveDays seals each tenant's yesterday once: a second
// run the same day seals nothing, the next day seals the new yesterday.
func TestSealClosedArchiveDays(t *testing.T) {
	clk := newPrivClock(time.Date(2025, 5, 2, 9, 0, 0, 0, time.UTC))
	e := openPrivEnv(t, clk)
	ctx := t.Context()
	for _, id := range []string{"bank", "broker"} {
		if _, _, err := e.n.CreateTenant(ctx, id, "", "GB"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.n.SealClosedArchiveDays(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["bank"].Day != "2025-05-01" || got["broker"].Day != "2025-05-01" {
		t.Fatalf("first run sealed %+v; want 2025-05-01 for both tenants", got)
	}
	if got, err := e.n.SealClosedArchiveDays(ctx); err != nil || len(got) != 0 {
		t.Fatalf("second run the same day: %+v, %v; want nothing", got, err)
	}
	clk.Add(24 * time.Hour)
	if got, err := e.n.SealClosedArchiveDays(ctx); err != nil || len(got) != 2 || got["bank"].Day != "2025-05-02" {
		t.Fatalf("next day: %+v, %v; want 2025-05-02 for both", got, err)
	}
	es, err := e.st.AuditEntries(ctx, store.AuditFilter{Tenant: "bank", ActionPrefix: "archive.day"})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Object != "2025-05-01" || es[1].Object != "2025-05-02" {
		t.Errorf("bank's archive.day entries: %+v; want one per day", es)
	}
}
