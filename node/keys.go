package node

import (
	"context"
	"fmt"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
)

// reopenKeys reads a tenant's wrapped keys from the store and opens them,
// so this node seals with the newest version (after a rotation anywhere).
func (n *Node) reopenKeys(ctx context.Context, tenant string) error {
	t, err := n.store.Tenant(ctx, tenant)
	if err != nil {
		return err
	}
	keys, err := n.ring.Open(tenant, t.Keys)
	if err != nil {
		return fmt.Errorf("open keys of %s: %w", tenant, err)
	}
	n.mu.Lock()
	n.keys[tenant] = keys
	n.mu.Unlock()
	return nil
}

// updateKeys applies fn to the tenant's stored wrapped keys and stores the
// result (compare and swap), then reopens them.
func (n *Node) updateKeys(ctx context.Context, tenant string, fn func(wrapped []byte) ([]byte, error)) error {
	t, err := n.store.Tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if !t.DeletedAt.IsZero() {
		return call.Errorf(call.NotFound, "tenant %q was offboarded", tenant)
	}
	wrapped, err := fn(t.Keys)
	if err != nil {
		return err
	}
	if err := n.store.PutTenantKeys(ctx, tenant, wrapped, t.Keys); err != nil {
		return err
	}
	return n.reopenKeys(ctx, tenant)
}

// upgradeKeys rewraps a tenant's key set stored in the old format (under
// the master key alone) under its key-encryption key, which shredding can
// destroy, and returns the current blob.
func (n *Node) upgradeKeys(ctx context.Context, t store.Tenant) ([]byte, error) {
	out, changed, err := n.ring.Upgrade(t.ID, t.Keys)
	if err != nil || !changed {
		return t.Keys, err
	}
	if err := n.store.PutTenantKeys(ctx, t.ID, out, t.Keys); err != nil {
		return nil, err
	}
	return out, n.audit(ctx, t.ID, "keys.upgrade", t.ID, nil)
}

// RotateKey adds the next data key version of the tenant: new writes seal
// with it at once (on other nodes when they apply the change). Stored
// ciphertexts move forward with Rewrap. Audited; returns the new version.
func (n *Node) RotateKey(ctx context.Context, tenant string) (uint32, error) {
	err := n.updateKeys(ctx, tenant, func(w []byte) ([]byte, error) { return n.ring.Rotate(tenant, w) })
	if err != nil {
		return 0, err
	}
	k, _ := n.tenantKeys(tenant)
	return k.KeyVersion(), n.audit(ctx, tenant, "keys.rotate", tenant, map[string]uint32{"version": k.KeyVersion()})
}

// sealedKinds are the stored sealed values Rewrap walks.
var sealedKinds = []string{store.SealedCalls, store.SealedLabels, store.SealedLists, store.SealedLinks, store.SealedCases}

// RewrapReport counts what a rewrap resealed, per kind of sealed value.
type RewrapReport struct {
	Version  uint32         `json:"version"`
	Resealed map[string]int `json:"resealed"`
	Current  map[string]int `json:"already_current"`
}

// Rewrap reseals every stored ciphertext of the tenant that an older data
// key sealed under the newest one, a page at a time (compare and swap, so
// a concurrent write is never lost). Audited.
func (n *Node) Rewrap(ctx context.Context, tenant string) (RewrapReport, error) {
	if err := n.rec.sync(ctx); err != nil {
		return RewrapReport{}, err
	}
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return RewrapReport{}, err
	}
	rep := RewrapReport{Version: k.KeyVersion(), Resealed: map[string]int{}, Current: map[string]int{}}
	for _, kind := range sealedKinds {
		for after := ""; ; {
			rows, err := n.store.SealedRows(ctx, tenant, kind, after, loadPage)
			if err != nil {
				return rep, err
			}
			var changed []store.SealedRow
			var old [][]byte
			for _, r := range rows {
				out, ok, err := k.Reseal(r.Sealed, aad(kind, tenant, r.AADID))
				if err != nil {
					return rep, fmt.Errorf("reseal %s %s: %w", kind, r.Row, err)
				}
				if !ok {
					rep.Current[kind]++
					continue
				}
				old = append(old, r.Sealed)
				r.Sealed = out
				changed = append(changed, r)
			}
			if len(changed) > 0 {
				done, err := n.store.ReplaceSealed(ctx, tenant, changed, old)
				if err != nil {
					return rep, err
				}
				rep.Resealed[kind] += done
			}
			if len(rows) < loadPage {
				break
			}
			after = rows[len(rows)-1].Row
		}
	}
	return rep, n.audit(ctx, tenant, "keys.rewrap", tenant, rep)
}

// RewrapPending rewraps every tenant whose keys have a version newer than
// the oldest they still open, unless this node has already rewrapped it
// under that version: the background half of a rotation (serve runs it
// with the retention purge). It returns the reports of the tenants it
// rewrapped.
func (n *Node) RewrapPending(ctx context.Context) (map[string]RewrapReport, error) {
	n.mu.RLock()
	pending := map[string]uint32{}
	for id, k := range n.keys {
		if v := k.KeyVersion(); v > max(k.MinVersion(), 1) && n.rewrapped[id] != v {
			pending[id] = v
		}
	}
	n.mu.RUnlock()
	out := map[string]RewrapReport{}
	for id, v := range pending {
		rep, err := n.Rewrap(ctx, id)
		if err != nil {
			return out, fmt.Errorf("rewrap %s: %w", id, err)
		}
		out[id] = rep
		n.mu.Lock()
		n.rewrapped[id] = v
		n.mu.Unlock()
	}
	return out, nil
}

// RetireKeys raises the tenant's minimum decryption version to its newest
// key version, so older keys are destroyed and their ciphertexts refused.
// It refuses (Conflict) while any stored value still needs an older key:
// run Rewrap first. The change log's copies of deleted values (at most a
// day old) are not rewrapped: after retirement they cannot be opened, and a
// node applying such a change finds the number by its pseudonym instead.
// Audited.
func (n *Node) RetireKeys(ctx context.Context, tenant string) (uint32, error) {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return 0, err
	}
	// The compliance archive's sealed values and blob keys are not
	// rewrapped yet: retiring a key would make them unreadable.
	users, err := n.store.ArchiveUsers(ctx, tenant, "", 1)
	if err != nil {
		return 0, err
	}
	items, err := n.store.SearchArchive(ctx, tenant, store.ArchiveQuery{Limit: 1})
	if err != nil {
		return 0, err
	}
	if len(users) > 0 || len(items) > 0 {
		return 0, call.Errorf(call.Conflict, "tenant %s has compliance-archive data, which the rewrap does not cover yet: retiring older keys would make it unreadable", tenant)
	}
	newest := k.KeyVersion()
	for _, kind := range sealedKinds {
		for after := ""; ; {
			rows, err := n.store.SealedRows(ctx, tenant, kind, after, loadPage)
			if err != nil {
				return 0, err
			}
			for _, r := range rows {
				if v, ok := seal.CiphertextVersion(r.Sealed); !ok || v != newest {
					return 0, call.Errorf(call.Conflict, "%s %s is sealed under key version %d: run the rewrap first", kind, r.Row, v)
				}
			}
			if len(rows) < loadPage {
				break
			}
			after = rows[len(rows)-1].Row
		}
	}
	err = n.updateKeys(ctx, tenant, func(w []byte) ([]byte, error) { return n.ring.Retire(tenant, w, newest) })
	if err != nil {
		return 0, err
	}
	return newest, n.audit(ctx, tenant, "keys.retire", tenant, map[string]uint32{"min_version": newest})
}

// Offboard deletes every row of the tenant and then destroys its keys
// (crypto-shredding), so no copy of its data taken before, not even a
// backup of the database, can be read again. The tenant's id stays
// reserved. Irreversible; audited.
func (n *Node) Offboard(ctx context.Context, tenant string) (store.Counts, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return store.Counts{}, err
	}
	if err := n.rec.sync(ctx); err != nil {
		return store.Counts{}, err
	}
	counts, err := n.store.DeleteTenantData(ctx, tenant)
	if err != nil {
		return counts, err
	}
	if err := n.ring.Shred(tenant); err != nil {
		return counts, fmt.Errorf("tenant %s: data deleted but keys not destroyed (run offboard again): %w", tenant, err)
	}
	n.drop(tenant)
	return counts, n.audit(ctx, "", "keys.shred", tenant, counts)
}

// drop forgets an offboarded tenant: its keys, API keys and engine state.
func (n *Node) drop(tenant string) {
	n.mu.Lock()
	delete(n.keys, tenant)
	for h, p := range n.apiKeys {
		if p.Tenant == tenant {
			delete(n.apiKeys, h)
		}
	}
	n.mu.Unlock()
	n.fmu.Lock()
	delete(n.flags, tenant)
	n.fmu.Unlock()
	n.engine.RemoveTenant(tenant)
}
