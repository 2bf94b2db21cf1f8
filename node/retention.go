package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/store"
)

// Retention returns the tenant's retention periods: what it configured,
// with the defaults for the rest (every class is present).
func (n *Node) Retention(ctx context.Context, tenant string) (privacy.Retention, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return nil, err
	}
	b, err := n.store.Retention(ctx, tenant)
	if err != nil {
		return nil, err
	}
	set := privacy.Retention{}
	if b != nil {
		if err := json.Unmarshal(b, &set); err != nil {
			return nil, fmt.Errorf("decode retention of %s: %w", tenant, err)
		}
	}
	out := privacy.Retention{}
	for _, c := range privacy.Classes() {
		out[c.Class] = set.Effective(c.Class)
	}
	return out, nil
}

// PutRetention replaces the tenant's configured retention periods, within
// each class's bounds. Audited.
func (n *Node) PutRetention(ctx context.Context, tenant string, r privacy.Retention) error {
	if _, err := n.tenantKeys(tenant); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := n.store.PutRetention(ctx, tenant, b); err != nil {
		return err
	}
	return n.audit(ctx, tenant, "retention.write", tenant, r)
}

// purgeBatch is how many records one purge transaction deletes: small
// enough that the recorder's commits interleave with a large purge.
const purgeBatch = 1000

// PurgeReport says what a retention run removed (or, dry, would remove).
type PurgeReport struct {
	DryRun  bool              `json:"dry_run"`
	At      time.Time         `json:"at"`
	Tenants []TenantPurge     `json:"tenants"`
	Changes int64             `json:"change_log_rows"`
	Skipped map[string]string `json:"skipped,omitempty"` // tenant -> why (a tenant-wide hold)
}

// TenantPurge is one tenant's part of a retention run.
type TenantPurge struct {
	Tenant string    `json:"tenant"`
	Cutoff time.Time `json:"call_records_before"`
	Calls  int64     `json:"call_records"`
	Held   int       `json:"subjects_held"`
}

// changeLogLife is how long the change log keeps a change: far longer
// than any running node takes to apply it. A node that stops for longer
// reloads its state on start, which it does anyway.
const changeLogLife = 24 * time.Hour

// PurgeExpired deletes what has outlived its retention: call records (with
// their labels and signalling) older than each tenant's period, except
// what an active legal hold covers, and the change log's old rows. It
// works in batches of purgeBatch so screening is never stalled for long.
// With dryRun it only counts. Audited per tenant.
func (n *Node) PurgeExpired(ctx context.Context, dryRun bool) (PurgeReport, error) {
	now := n.now().UTC()
	rep := PurgeReport{DryRun: dryRun, At: now, Tenants: []TenantPurge{}}
	tenants, err := n.store.Tenants(ctx)
	if err != nil {
		return rep, err
	}
	for _, t := range tenants {
		if !t.DeletedAt.IsZero() {
			continue
		}
		tp, skip, err := n.purgeTenant(ctx, t.ID, now, dryRun)
		if err != nil {
			return rep, fmt.Errorf("purge tenant %s: %w", t.ID, err)
		}
		if skip != "" {
			if rep.Skipped == nil {
				rep.Skipped = map[string]string{}
			}
			rep.Skipped[t.ID] = skip
			continue
		}
		rep.Tenants = append(rep.Tenants, tp)
	}
	if !dryRun {
		if rep.Changes, err = n.store.PurgeChanges(ctx, now.Add(-changeLogLife)); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (n *Node) purgeTenant(ctx context.Context, tenant string, now time.Time, dryRun bool) (TenantPurge, string, error) {
	r, err := n.Retention(ctx, tenant)
	if err != nil {
		return TenantPurge{}, "", err
	}
	tp := TenantPurge{Tenant: tenant, Cutoff: r.Effective(privacy.CallRecords).Cutoff(now)}
	holds, err := n.store.Holds(ctx, tenant, true)
	if err != nil {
		return tp, "", err
	}
	var keep [][]byte
	for _, h := range holds {
		switch h.Scope {
		case store.HoldTenant:
			return tp, "legal hold " + h.ID, nil
		case store.HoldSubject:
			keep = append(keep, h.SubjectPseudonym)
		case store.HoldCase:
			c, err := n.store.Case(ctx, tenant, h.CaseID)
			if err != nil && call.ErrorCode(err) != call.NotFound {
				return tp, "", err
			}
			for _, p := range [][]byte{c.SubjectPseudonym, c.UserPseudonym} {
				if p != nil {
					keep = append(keep, p)
				}
			}
		}
	}
	tp.Held = len(keep)
	if err := n.purgeArchive(ctx, tenant, now, dryRun); err != nil {
		return tp, "", fmt.Errorf("purge the compliance archive: %w", err)
	}
	if dryRun {
		tp.Calls, err = n.countPurgeable(ctx, tenant, tp.Cutoff, keep)
		return tp, "", err
	}
	for {
		k, err := n.store.PurgeCalls(ctx, tenant, tp.Cutoff, keep, purgeBatch)
		if err != nil {
			return tp, "", err
		}
		tp.Calls += k
		if k < purgeBatch {
			break
		}
	}
	if tp.Calls > 0 {
		return tp, "", n.audit(ctx, tenant, "retention.purge", string(privacy.CallRecords), tp)
	}
	return tp, "", nil
}

// countPurgeable counts the records a purge would delete.
func (n *Node) countPurgeable(ctx context.Context, tenant string, before time.Time, keep [][]byte) (int64, error) {
	held := map[string]bool{}
	for _, p := range keep {
		held[string(p)] = true
	}
	var count int64
	f := store.CallFilter{To: before, Limit: 1000}
	for {
		rows, err := n.store.Calls(ctx, tenant, f)
		if err != nil {
			return 0, err
		}
		for _, r := range rows {
			if !held[string(r.CallerPseudonym)] && (r.UserPseudonym == nil || !held[string(r.UserPseudonym)]) {
				count++
			}
		}
		if len(rows) < f.Limit {
			return count, nil
		}
		f.Before = rows[len(rows)-1].ID
	}
}
