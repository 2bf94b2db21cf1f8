package screen

import "strconv"

// Forget removes from memory every customer link and link candidate (and,
// if lists, every list entry) of the tenant whose number match accepts
// (given in E.164), and returns how many numbers it dropped. It is how a node applies an erasure
// made on another node, where only the number's pseudonym travels: the
// caller hashes each E.164 form and compares. It scans the tenant's lists
// and links, so it costs about a microsecond per held number; erasures are
// rare. Velocity windows are not scanned: they hold counts, not numbers,
// and age out within their longest window.
func (e *Engine) Forget(tenantID string, match func(e164 string) bool, lists bool) int {
	t := e.tenant(tenantID)
	if t == nil {
		return 0
	}
	e164 := func(k uint64) string { return "+" + strconv.FormatUint(k, 10) }
	dropped := map[uint64]bool{}
	t.mu.Lock()
	for i := range t.lists {
		if !lists {
			break
		}
		for k := range t.lists[i] {
			if dropped[k] || match(e164(k)) {
				delete(t.lists[i], k)
				dropped[k] = true
			}
		}
	}
	t.mu.Unlock()

	t.lmu.Lock()
	defer t.lmu.Unlock()
	for k, users := range t.links {
		if dropped[k] || match(e164(k)) {
			for _, u := range users {
				t.unuse(u)
			}
			delete(t.links, k)
			dropped[k] = true
		}
	}
	for pair := range t.candidates {
		if dropped[pair[0]] || match(e164(pair[0])) {
			t.dropCandidate(pair)
			dropped[pair[0]] = true
		}
	}
	return len(dropped)
}

// RemoveTenant forgets a tenant and everything the engine holds for it (an
// offboarded tenant). Its velocity counts age out of their windows.
func (e *Engine) RemoveTenant(id string) {
	e.mu.Lock()
	delete(e.tenants, id)
	e.mu.Unlock()
}
