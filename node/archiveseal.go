package node

import (
	"context"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/store"
)

// SealClosedArchiveDays seals yesterday's (UTC) archive day of every
// tenant whose day has not been sealed yet (SealArchiveDay), so the audit
// log holds one chain hash per tenant and day without anyone asking. serve
// runs it with each retention run. It returns the days it sealed by
// tenant.
func (n *Node) SealClosedArchiveDays(ctx context.Context) (map[string]DayChain, error) {
	day := n.now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	n.mu.RLock()
	tenants := make([]string, 0, len(n.keys))
	for id := range n.keys {
		tenants = append(tenants, id)
	}
	n.mu.RUnlock()
	out := map[string]DayChain{}
	for _, t := range tenants {
		sealed, err := n.archiveDaySealed(ctx, t, day)
		if err != nil {
			return out, err
		}
		if sealed {
			continue
		}
		dc, err := n.SealArchiveDay(ctx, t, day)
		if err != nil {
			return out, fmt.Errorf("seal archive day %s of %s: %w", day, t, err)
		}
		out[t] = dc
	}
	return out, nil
}

// archiveDaySealed reports whether the audit log has the day's seal.
func (n *Node) archiveDaySealed(ctx context.Context, tenant, day string) (bool, error) {
	f := store.AuditFilter{Tenant: tenant, ActionPrefix: "archive.day", Limit: 1000}
	for {
		es, err := n.store.AuditEntries(ctx, f)
		if err != nil {
			return false, err
		}
		for _, e := range es {
			if e.Action == "archive.day" && e.Object == day {
				return true, nil
			}
		}
		if len(es) < f.Limit {
			return false, nil
		}
		f.After = es[len(es)-1].Seq
	}
}
