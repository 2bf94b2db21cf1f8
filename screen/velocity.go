package screen

import "github.com/ringfence/ringfence/call"

// velocity reads the event-time windows for the caller and dialled number.
func (ev *eval) velocity() {
	c := ev.c
	th := &ev.e.cfg.Thresholds
	v := ev.e.win.Counts(ev.t.key(c.Caller), ev.t.key(c.Dialled), c.StartedAt)
	if v.CallerMinute >= th.CallsPerMinute {
		ev.add("velocity.caller_minute", count(v.CallerMinute, "calls in the last minute"))
	}
	if v.CallerHour >= th.CallsPerHour {
		ev.add("velocity.caller_hour", count(v.CallerHour, "calls in the last hour"))
	}
	if v.CallerDay >= th.CallsPerDay {
		ev.add("velocity.caller_day", count(v.CallerDay, "calls in the last 24 hours"))
	}
	if v.DistinctDialledHour >= th.DistinctDialled {
		ev.add("velocity.distinct_dialled", count(v.DistinctDialledHour, "distinct numbers dialled in the last hour"))
	}
	if c.UserRef != "" && v.DistinctUsersDay >= th.DistinctUsers {
		ev.add("velocity.distinct_users", count(v.DistinctUsersDay, "distinct customer ids in the last 24 hours"))
	}
	if v.SweepHour >= th.Sweep {
		ev.add("velocity.sweep", count(v.SweepHour, "numbers of one block dialled in the last hour"))
	}
	if v.DistinctCallersTenMin >= th.DialledBurst && !ev.published() {
		ev.add("velocity.dialled_burst", count(v.DistinctCallersTenMin, "distinct callers to this number in 10 minutes"))
	}
	if v.EndedDay >= th.ShortCalls && float64(v.ShortDay) >= th.ShortShare*float64(v.EndedDay) {
		ev.add("velocity.short_calls", count(v.ShortDay, "of ")+count(v.EndedDay, "ended calls were short"))
	}
}

// published reports whether the dialled number is one of the tenant's own
// published inbound numbers (its DNO list): those take bursts of distinct
// callers by design.
func (ev *eval) published() bool {
	_, ok := ev.t.onList(call.DNOList, ev.c.Dialled.Key(), ev.c.StartedAt)
	return ok
}
