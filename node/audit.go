package node

import (
	"context"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
)

// Auditor records an audited event durably before the operation it
// describes answers (audit.Log).
type Auditor interface {
	Record(ctx context.Context, e audit.Event) error
}

type principalKey struct{}

// As returns a context saying p is acting: the node audits what it does in
// that context under p's name. Front ends call it once per request.
func As(ctx context.Context, p call.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalOf returns the principal set by As.
func PrincipalOf(ctx context.Context) (call.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(call.Principal)
	return p, ok
}

// actor names whoever acts in ctx: the principal set by As, or "operator"
// (the CLI, a scheduled job) when none is.
func actor(ctx context.Context) string {
	if p, ok := PrincipalOf(ctx); ok {
		return p.Actor
	}
	return "operator"
}

// audit records one event of tenant ("" for the platform). Object names
// what was touched by id or pseudonym, never by number; detail must hold
// no personal data. A node without an Auditor audits nothing (tests only:
// Main always sets one).
func (n *Node) audit(ctx context.Context, tenant, action, object string, detail any) error {
	if n.cfg.Audit == nil {
		return nil
	}
	return n.cfg.Audit.Record(ctx, audit.Event{Tenant: tenant, Actor: actor(ctx), Action: action, Object: object, Detail: detail})
}
