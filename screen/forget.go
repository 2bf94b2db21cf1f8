package screen

import (
	"strconv"

	"github.com/ringfence/ringfence/call"
)

// A node applies a deletion made elsewhere by the number's pseudonym when
// the change does not carry the number (an erasure, or a copy sealed under
// a key since retired). The engine holds numbers, not pseudonyms, so these
// scans hand each held number (E.164) to match, which hashes and compares:
// about a microsecond per held number. Such deletions are rare. Velocity
// windows are not scanned: they hold counts, not numbers, and age out
// within their longest window.

// ForgetListed removes the entries of one of the tenant's lists whose
// number match accepts, and returns how many it removed.
func (e *Engine) ForgetListed(tenantID string, list call.ListKind, match func(e164 string) bool) int {
	t := e.tenant(tenantID)
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k := range t.lists[listIndex(list)] {
		if match(e164(k)) {
			delete(t.lists[listIndex(list)], k)
			n++
		}
	}
	return n
}

// ForgetLinks removes every customer link and link candidate of the
// tenant whose caller number match accepts, and returns how many numbers
// it dropped.
func (e *Engine) ForgetLinks(tenantID string, match func(e164 string) bool) int {
	t := e.tenant(tenantID)
	if t == nil {
		return 0
	}
	t.lmu.Lock()
	defer t.lmu.Unlock()
	dropped := map[uint64]bool{}
	for k, users := range t.links {
		if match(e164(k)) {
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

// e164 is the E.164 form of a number key (call.Number.Key).
func e164(k uint64) string { return "+" + strconv.FormatUint(k, 10) }

// RemoveTenant forgets a tenant and everything the engine holds for it (an
// offboarded tenant). Its velocity counts age out of their windows.
func (e *Engine) RemoveTenant(id string) {
	e.mu.Lock()
	delete(e.tenants, id)
	e.mu.Unlock()
}
