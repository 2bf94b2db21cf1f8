package screen

import (
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/numbering"
	"github.com/ringfence/ringfence/velocity"
)

// tenant is one tenant's in-memory screening state.
type tenant struct {
	info   call.Tenant
	homeCC string // the home region's country calling code, "+44"
	idx    uint32 // velocity namespace: a hash of the tenant id, the same on every node

	mu     sync.RWMutex
	policy *policy
	source call.Policy // as set, for reading back
	routes map[string]call.Route
	lists  [3]map[uint64]listed // by listIndex
	lmu    sync.RWMutex         // guards links, users, candidates and seen (apart from mu so list reads never wait on link writes)
	links  map[uint64][]uint64  // caller key -> user ref hashes
	users  map[uint64]int       // user ref hash -> numbers linked to it
	// candidates are (caller, user) pairs seen once in a verified call, by
	// the event time of that call (unix nanoseconds).
	candidates map[[2]uint64]int64
	seen       map[uint64]int // user ref hash -> candidate numbers
}

type listed struct {
	expires int64 // unix nanoseconds; 0: never
	reason  string
}

// policy is call.Policy compiled for evaluation.
type policy struct {
	version         string
	flagAt, blockAt float64
	prior           float64
	weights         map[string]float64
	actions         map[string]call.Action
	Shadow          *policy
}

func compile(p call.Policy, suffix string) *policy {
	c := &policy{
		version: "v" + strconv.Itoa(p.Version) + suffix,
		flagAt:  p.FlagAt, blockAt: p.BlockAt, prior: p.Prior,
		weights: maps.Clone(p.Weights), actions: maps.Clone(p.Actions), // the caller keeps its maps
	}
	if p.Shadow != nil {
		c.Shadow = compile(*p.Shadow, "-shadow")
	}
	return c
}

func listIndex(k call.ListKind) int {
	switch k {
	case call.AllowList:
		return 0
	case call.DenyList:
		return 1
	}
	return 2
}

func (t *tenant) key(n call.Number) velocity.Key {
	return velocity.Key{Tenant: t.idx, Num: n.Key()}
}

// SetTenant adds a tenant or replaces its details and policy, keeping its
// lists, routes and links.
func (e *Engine) SetTenant(info call.Tenant, p call.Policy) {
	e.norm.Warm(info.Region) // compile the home numbering plan now, not on the first call
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenants[info.ID]
	if t == nil {
		t = &tenant{idx: tenantIndex(info.ID), routes: map[string]call.Route{}, links: map[uint64][]uint64{}, users: map[uint64]int{}, candidates: map[[2]uint64]int64{}, seen: map[uint64]int{}}
		for i := range t.lists {
			t.lists[i] = map[uint64]listed{}
		}
		e.tenants[info.ID] = t
	}
	t.mu.Lock()
	t.info, t.policy, t.source = info, compile(p, ""), p
	t.homeCC = numbering.CountryCode(info.Region)
	t.mu.Unlock()
}

// SetPolicy replaces a tenant's policy.
func (e *Engine) SetPolicy(tenantID string, p call.Policy) error {
	t, err := e.mustTenant(tenantID)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.policy, t.source = compile(p, ""), p
	t.mu.Unlock()
	return nil
}

// PutRoute adds or replaces a route.
func (e *Engine) PutRoute(tenantID string, r call.Route) error {
	t, err := e.mustTenant(tenantID)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.routes[r.ID] = r
	t.mu.Unlock()
	return nil
}

// DeleteRoute removes a route; unknown ids are ignored.
func (e *Engine) DeleteRoute(tenantID, id string) error {
	t, err := e.mustTenant(tenantID)
	if err != nil {
		return err
	}
	t.mu.Lock()
	delete(t.routes, id)
	t.mu.Unlock()
	return nil
}

// Route returns the tenant's route with the id.
func (e *Engine) Route(tenantID, id string) (call.Route, bool) {
	t := e.tenant(tenantID)
	if t == nil {
		return call.Route{}, false
	}
	t.mu.RLock()
	r, ok := t.routes[id]
	t.mu.RUnlock()
	return r, ok
}

// PutListEntries adds or replaces entries on the tenant's lists. Entries
// without an E.164 number are ignored.
func (e *Engine) PutListEntries(tenantID string, entries ...call.ListEntry) error {
	t, err := e.mustTenant(tenantID)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, en := range entries {
		k := en.Number.Key()
		if k == 0 {
			continue
		}
		var exp int64
		if !en.ExpiresAt.IsZero() {
			exp = en.ExpiresAt.UnixNano()
		}
		t.lists[listIndex(en.List)][k] = listed{expires: exp, reason: en.Reason}
	}
	return nil
}

// DeleteListEntry removes a number from one of the tenant's lists.
func (e *Engine) DeleteListEntry(tenantID string, list call.ListKind, n call.Number) error {
	t, err := e.mustTenant(tenantID)
	if err != nil {
		return err
	}
	t.mu.Lock()
	delete(t.lists[listIndex(list)], n.Key())
	t.mu.Unlock()
	return nil
}

// ListLen reports how many numbers a tenant's list holds in memory.
func (e *Engine) ListLen(tenantID string, list call.ListKind) int {
	t := e.tenant(tenantID)
	if t == nil {
		return 0
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.lists[listIndex(list)])
}

func (t *tenant) onList(list call.ListKind, k uint64, at time.Time) (listed, bool) {
	if k == 0 {
		return listed{}, false
	}
	t.mu.RLock()
	l, ok := t.lists[listIndex(list)][k]
	t.mu.RUnlock()
	if ok && l.expires != 0 && at.UnixNano() >= l.expires {
		return listed{}, false
	}
	return l, ok
}

// Link records that the caller was seen with the user ref, so later calls
// from the number for that customer carry the customer-link marker.
func (e *Engine) Link(tenantID string, caller call.Number, userRef string) {
	if t := e.tenant(tenantID); t != nil && userRef != "" {
		t.link(caller.Key(), userHash(userRef), e.cfg.MaxLinks)
	}
}

// Unlink forgets every customer link of the caller (e.g. after a confirmed
// fraud label).
func (e *Engine) Unlink(tenantID string, caller call.Number) {
	if t := e.tenant(tenantID); t != nil {
		t.lmu.Lock()
		for _, u := range t.links[caller.Key()] {
			t.unuse(u)
		}
		for pair := range t.candidates {
			if pair[0] == caller.Key() {
				t.dropCandidate(pair)
			}
		}
		delete(t.links, caller.Key())
		t.lmu.Unlock()
	}
}

// maxUsersPerCaller bounds how many customers one number can be linked to.
const maxUsersPerCaller = 8

func (t *tenant) link(caller, user uint64, maxLinks int) bool {
	if caller == 0 || user == 0 {
		return false
	}
	// Most calls are by known links: check under the read lock first.
	if t.linked(caller, user) {
		return false
	}
	t.lmu.Lock()
	defer t.lmu.Unlock()
	users, ok := t.links[caller]
	if !ok && len(t.links) >= maxLinks {
		return false // full: new links are dropped (documented in docs/markers.md)
	}
	for _, u := range users {
		if u == user {
			return false
		}
	}
	if len(users) >= maxUsersPerCaller {
		t.unuse(users[0])
		copy(users, users[1:])
		users = users[:len(users)-1]
	}
	t.links[caller] = append(users, user)
	t.users[user]++
	return true
}

// observeLink counts one verified sighting of caller with user at time at;
// the second sighting at least after later establishes the link.
func (t *tenant) observeLink(caller, user uint64, at time.Time, after time.Duration, maxLinks int) bool {
	if caller == 0 || user == 0 || t.linked(caller, user) {
		return false
	}
	pair := [2]uint64{caller, user}
	now := at.UnixNano()
	// A repeat call within LinkAfter changes nothing: check under the read
	// lock so the usual case does not serialise the engine.
	t.lmu.RLock()
	first, seen := t.candidates[pair]
	t.lmu.RUnlock()
	if seen && now-first < int64(after) {
		return false
	}
	t.lmu.Lock()
	first, seen = t.candidates[pair]
	switch {
	case !seen:
		if len(t.candidates) < maxLinks {
			t.candidates[pair] = now
			t.seen[user]++
		}
		t.lmu.Unlock()
		return false
	case now-first < int64(after):
		t.lmu.Unlock()
		return false
	}
	t.dropCandidate(pair)
	t.lmu.Unlock()
	return t.link(caller, user, maxLinks)
}

// dropCandidate forgets a candidate pair. Hold t.lmu.
func (t *tenant) dropCandidate(pair [2]uint64) {
	delete(t.candidates, pair)
	if t.seen[pair[1]] <= 1 {
		delete(t.seen, pair[1])
	} else {
		t.seen[pair[1]]--
	}
}

// unuse drops one linked number from a user's count. Hold t.lmu.
func (t *tenant) unuse(user uint64) {
	if t.users[user] <= 1 {
		delete(t.users, user)
	} else {
		t.users[user]--
	}
}

// linkState reports whether the caller is linked to the user, whether it
// is at least a candidate for the user, and how many numbers are linked or
// candidates for the user.
func (t *tenant) linkState(caller, user uint64) (linked, candidate bool, numbers int) {
	t.lmu.RLock()
	defer t.lmu.RUnlock()
	for _, u := range t.links[caller] {
		if u == user {
			linked = true
			break
		}
	}
	_, candidate = t.candidates[[2]uint64{caller, user}]
	return linked, candidate, t.users[user] + t.seen[user]
}

func (t *tenant) linked(caller, user uint64) bool {
	if caller == 0 || user == 0 {
		return false
	}
	t.lmu.RLock()
	defer t.lmu.RUnlock()
	for _, u := range t.links[caller] {
		if u == user {
			return true
		}
	}
	return false
}

// Tenant returns a tenant's details.
func (e *Engine) Tenant(id string) (call.Tenant, bool) {
	t := e.tenant(id)
	if t == nil {
		return call.Tenant{}, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.info, true
}

// Policy returns a tenant's live policy as last set.
func (e *Engine) Policy(id string) (call.Policy, bool) {
	t := e.tenant(id)
	if t == nil {
		return call.Policy{}, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.source, true
}

// Listed returns the live entry for the number on one of the tenant's lists.
// The entry carries the list, number, reason and expiry (not the creation time).
func (e *Engine) Listed(tenantID string, list call.ListKind, n call.Number) (call.ListEntry, bool) {
	t := e.tenant(tenantID)
	if t == nil {
		return call.ListEntry{}, false
	}
	l, ok := t.onList(list, n.Key(), e.now())
	if !ok {
		return call.ListEntry{}, false
	}
	en := call.ListEntry{List: list, Number: n, Reason: l.reason}
	if l.expires != 0 {
		en.ExpiresAt = time.Unix(0, l.expires)
	}
	return en, true
}

// tenantIndex names a tenant in the velocity windows: FNV-1a of its id, so
// nodes that share windows (velocity/redisvel) agree whatever order they
// learnt their tenants in.
func tenantIndex(id string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return h | 1
}
