package node

import (
	"context"
	"fmt"

	"github.com/ringfence/ringfence/call"
)

// PutRoute validates and stores a route and applies it to the next call.
func (n *Node) PutRoute(ctx context.Context, tenant string, r call.Route) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if err := n.store.PutRoute(ctx, tenant, r); err != nil {
		return err
	}
	if err := n.audit(ctx, tenant, "route.write", r.ID, r); err != nil {
		return err
	}
	return n.engine.PutRoute(tenant, r)
}

// DeleteRoute removes a route. NotFound if absent.
func (n *Node) DeleteRoute(ctx context.Context, tenant, id string) error {
	if err := n.store.DeleteRoute(ctx, tenant, id); err != nil {
		return err
	}
	if err := n.audit(ctx, tenant, "route.delete", id, nil); err != nil {
		return err
	}
	return n.engine.DeleteRoute(tenant, id)
}

// Route returns one route. NotFound if absent.
func (n *Node) Route(tenant, id string) (call.Route, error) {
	r, ok := n.engine.Route(tenant, id)
	if !ok {
		return call.Route{}, call.Errorf(call.NotFound, "no route %q", id)
	}
	return r, nil
}

// Routes returns the tenant's routes ordered by id.
func (n *Node) Routes(ctx context.Context, tenant string) ([]call.Route, error) {
	return n.store.Routes(ctx, tenant)
}

// Policy returns the tenant's live policy.
func (n *Node) Policy(tenant string) (call.Policy, error) {
	p, ok := n.engine.Policy(tenant)
	if !ok {
		return call.Policy{}, call.Errorf(call.NotFound, "unknown tenant %q", tenant)
	}
	return p, nil
}

// PutPolicy replaces the tenant's policy. p.Version must equal the current
// version (optimistic locking; 0 skips the check); the stored policy gets the
// next version, which is returned. Conflict if another change came first.
func (n *Node) PutPolicy(ctx context.Context, tenant string, p call.Policy) (call.Policy, error) {
	cur, err := n.Policy(tenant)
	if err != nil {
		return call.Policy{}, err
	}
	if p.Version != 0 && p.Version != cur.Version {
		return call.Policy{}, call.Errorf(call.Conflict, "version: policy is at version %d, not %d; reload and retry", cur.Version, p.Version)
	}
	if err := p.Validate(); err != nil {
		return call.Policy{}, err
	}
	for code := range p.Weights {
		if !n.engine.KnownMarker(code) {
			return call.Policy{}, call.Errorf(call.Invalid, "weights.%s: no such marker code (see docs/markers.md)", code)
		}
	}
	for code := range p.Actions {
		if !n.engine.KnownMarker(code) {
			return call.Policy{}, call.Errorf(call.Invalid, "actions.%s: no such marker code (see docs/markers.md)", code)
		}
	}
	p.Version = cur.Version + 1
	if p.Shadow != nil {
		p.Shadow.Version = p.Version
	}
	if err := n.store.PutPolicy(ctx, tenant, p); err != nil {
		return call.Policy{}, err
	}
	if err := n.audit(ctx, tenant, "policy.write", fmt.Sprint(p.Version), p); err != nil {
		return call.Policy{}, err
	}
	return p, n.engine.SetPolicy(tenant, p)
}
