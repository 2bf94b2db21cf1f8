package node

import (
	"context"
	"crypto/ed25519"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// AuditEntries returns a page of the tenant's audit entries, oldest first
// (f.Tenant is forced to tenant). Reading the log is itself audited.
func (n *Node) AuditEntries(ctx context.Context, tenant string, f store.AuditFilter) ([]store.AuditEntry, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return nil, err
	}
	if f.Limit < 0 || f.Limit > 1000 {
		return nil, call.Errorf(call.Invalid, "limit: must be between 1 and 1000")
	}
	f.Tenant = tenant
	es, err := n.store.AuditEntries(ctx, f)
	if err != nil {
		return nil, err
	}
	return es, n.audit(ctx, tenant, "audit.read", "audit", map[string]any{"entries": len(es), "after": f.After})
}

// VerifyAudit walks the whole audit log (every tenant's entries share one
// chain) and its signed checkpoints. The report names no entry's content.
func (n *Node) VerifyAudit(ctx context.Context, tenant string) (audit.Report, error) {
	if len(n.cfg.AuditKey) != ed25519.PublicKeySize {
		return audit.Report{}, call.Errorf(call.Unavailable, "audit verification is not configured on this node")
	}
	rep, err := audit.Verify(ctx, n.store, n.cfg.AuditKey)
	if err != nil {
		return rep, err
	}
	return rep, n.audit(ctx, tenant, "audit.verify", "audit", map[string]any{"ok": rep.OK(), "last": rep.Last})
}
