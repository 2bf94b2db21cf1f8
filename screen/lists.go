package screen

import "github.com/ringfence/ringfence/call"

// lists applies the tenant's allow and deny lists. The allow list does not
// apply when the CLI shows spoofing signs: spoofers present trusted numbers.
func (ev *eval) lists() {
	k := ev.c.Caller.Key()
	if l, ok := ev.t.onList(call.AllowList, k, ev.c.StartedAt); ok && !spoofed(ev.found[:ev.n]) {
		ev.add("list.allow", detail("on allow list", l.reason))
	}
	if l, ok := ev.t.onList(call.DenyList, k, ev.c.StartedAt); ok {
		ev.add("list.deny", detail("on deny list", l.reason))
	}
}
