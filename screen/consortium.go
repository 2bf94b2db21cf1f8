package screen

import (
	"strconv"
	"time"

	"github.com/ringfence/ringfence/consortium"
)

// ConsortiumView is the fraud-sharing consortium as screening reads it
// (*consortium.View): what the tenant may see about a caller, already
// filtered for membership, reciprocity, disputes and the tenant's own
// reports. It must not block: it is on the per-call path.
type ConsortiumView interface {
	Lookup(tenant, e164 string, now time.Time) consortium.Signal
}

// consortiumRecent is how new the newest other member's report must be for
// consortium.recent.
const consortiumRecent = 7 * 24 * time.Hour

// consortium adds the consortium family: reported by other members, by two
// or more, recently. Event time is the call's start, so a replay scores as
// the call did.
func (ev *eval) consortium() {
	v := ev.e.cfg.Consortium
	if v == nil || !ev.c.Caller.Present() {
		return
	}
	at := ev.c.StartedAt
	if at.IsZero() {
		at = ev.e.now()
	}
	s := v.Lookup(ev.c.Tenant, ev.c.Caller.E164, at)
	if !s.Found() {
		return
	}
	d := "members=" + strconv.Itoa(s.Members) + " types=" + s.Types.String() +
		" confidence=" + strconv.FormatFloat(s.Confidence, 'f', 2, 64)
	ev.add("consortium.reported", d)
	if s.Members >= 2 {
		ev.add("consortium.reported_multi", "members="+strconv.Itoa(s.Members))
	}
	if age := at.Sub(s.Last); age < consortiumRecent {
		ev.add("consortium.recent", "last report "+strconv.Itoa(int(max(age, 0)/time.Hour))+"h ago")
	}
}
