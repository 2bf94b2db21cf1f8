package node

import (
	"context"

	"github.com/ringfence/ringfence/call"

	"github.com/ringfence/ringfence/store"
)

// setFlags holds a subject's processing limits in memory, where the paths
// that must honour them (consortium sharing, training exports) look.
func (n *Node) setFlags(f store.SubjectFlags) {
	if len(f.Pseudonym) != 32 {
		return
	}
	n.fmu.Lock()
	defer n.fmu.Unlock()
	m := n.flags[f.Tenant]
	if m == nil {
		m = map[[32]byte]store.SubjectFlags{}
		n.flags[f.Tenant] = m
	}
	if !f.Restricted && !f.Objected {
		delete(m, [32]byte(f.Pseudonym))
		return
	}
	m[[32]byte(f.Pseudonym)] = f
}

// Limits reports whether the subject behind a pseudonym has restricted
// processing of their data or objected to it.
func (n *Node) Limits(tenant string, pseudonym []byte) (restricted, objected bool) {
	if len(pseudonym) != 32 {
		return false, false
	}
	n.fmu.RLock()
	f := n.flags[tenant][[32]byte(pseudonym)]
	n.fmu.RUnlock()
	return f.Restricted, f.Objected
}

// loadFlags reads every stored processing limit of a tenant.
func (n *Node) loadFlags(ctx context.Context, tenant string) error {
	var after []byte
	for {
		fs, err := n.store.SubjectFlagsOf(ctx, tenant, after, loadPage)
		if err != nil {
			return err
		}
		for _, f := range fs {
			n.setFlags(f)
		}
		if len(fs) < loadPage {
			return nil
		}
		after = fs[len(fs)-1].Pseudonym
	}
}

// Excluded reports whether a call must be left out of analytics: its
// caller or its user ref belongs to a subject who restricted or objected to
// processing (their data is kept, not analysed).
func (n *Node) Excluded(tenant string, c *call.Call) bool {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return false
	}
	for _, p := range [][]byte{pseudonym(k, c.Caller), userPseudonym(k, c.UserRef)} {
		if restricted, objected := n.Limits(tenant, p); restricted || objected {
			return true
		}
	}
	return false
}
