package screen

import "github.com/ringfence/ringfence/call"

// dno catches the tenant's own numbers presented as the caller: its
// inbound-only (do-not-originate) numbers, or the very number dialled.
func (ev *eval) dno() {
	k := ev.c.Caller.Key()
	if k == 0 {
		return
	}
	if k == ev.c.Dialled.Key() {
		ev.add("cli.same_as_dialled", "caller presents the dialled number")
	}
	if l, ok := ev.t.onList(call.DNOList, k, ev.c.StartedAt); ok {
		ev.add("dno.listed", detail("inbound-only number presented as caller", l.reason))
	}
}

func detail(s, reason string) string {
	if reason == "" {
		return s
	}
	return s + ": " + reason
}
