package privacy

import (
	"time"
	_ "time/tzdata" // Europe/London must resolve on hosts without a zoneinfo database
)

// london is the zone whose calendar the UK deadlines count in. Loaded once;
// never changed.
var london = mustLoad("Europe/London")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil { // unreachable: time/tzdata embeds the database
		panic("privacy: " + err.Error())
	}
	return loc
}

// London returns the Europe/London zone that deadlines are counted in.
func London() *time.Location { return london }

// DueDate returns the calendar date months calendar months after the
// Europe/London date of start, per the ICO's right-of-access guidance: the
// corresponding date in the later month, or that month's last day when the
// date does not exist there (31 March + 1 month = 30 April). The day of
// start counts as day one, so 3 September + 1 month = 3 October.
//
// The result is midnight at the start of the due date in Europe/London; a
// response is in time if it is sent on or before that date. Negative months
// count backwards the same way. DueDate does not move a date that falls on a
// weekend or bank holiday: the ICO allows the next working day then, but the
// calendar date is always in time.
func DueDate(start time.Time, months int) time.Time {
	y, m, d := start.In(london).Date()
	total := y*12 + int(m-1) + months
	ny, nm := floorDiv(total, 12), time.Month(floorMod(total, 12)+1)
	return time.Date(ny, nm, min(d, daysIn(ny, nm)), 0, 0, 0, 0, london)
}

// Date returns midnight at the start of t's Europe/London calendar date.
func Date(t time.Time) time.Time {
	y, m, d := t.In(london).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, london)
}

// addDays moves a Europe/London date by n calendar days (safe across clock
// changes, unlike adding 24-hour durations).
func addDays(date time.Time, n int) time.Time {
	y, m, d := date.In(london).Date()
	return time.Date(y, m, d+n, 0, 0, 0, 0, london)
}

// daysBetween returns the number of calendar days from the Europe/London
// date of a to that of b (negative when b is earlier).
func daysBetween(a, b time.Time) int {
	ay, am, ad := a.In(london).Date()
	by, bm, bd := b.In(london).Date()
	// Count on UTC midnights: every UTC day is 24 hours long.
	ua := time.Date(ay, am, ad, 0, 0, 0, 0, time.UTC)
	ub := time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC)
	return int(ub.Sub(ua) / (24 * time.Hour))
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int) int { return a - floorDiv(a, b)*b }

// Deadline is a case's time limit as derived from its events at one moment.
type Deadline struct {
	// Started reports whether the clock runs: the request was received and
	// the requester's identity confirmed. Until then the other fields are zero.
	Started bool `json:"started"`
	// Start is the day the clock started: the later of receipt and identity
	// confirmation (Europe/London midnight).
	Start time.Time `json:"start,omitzero"`
	// PausedDays is the number of calendar days the clock stood still while
	// the case waited for information from the requester, counting a pause
	// still open up to now.
	PausedDays int `json:"paused_days"`
	// ExtendedMonths is the total extension, 0 to 2.
	ExtendedMonths int `json:"extended_months"`
	// Original is the one-month due date, moved by the paused days.
	Original time.Time `json:"original,omitzero"`
	// Due is the date by which the case must be answered: one month plus
	// the extension from Start, moved by the paused days.
	Due time.Time `json:"due,omitzero"`
	// Paused reports whether the clock is stopped now.
	Paused bool `json:"paused"`
}

// Overdue reports whether the deadline has passed at now: the clock runs
// and now's Europe/London date is after Due.
func (d Deadline) Overdue(now time.Time) bool {
	return d.Started && daysBetween(d.Due, now) > 0
}

// DaysLeft returns the calendar days from now's Europe/London date to Due
// (0 on the due date, negative when overdue). It returns 0 when the clock
// has not started.
func (d Deadline) DaysLeft(now time.Time) int {
	if !d.Started {
		return 0
	}
	return daysBetween(now, d.Due)
}

// Deadline derives the case's time limit from its events as at now. now only
// matters while the case is paused (the open pause counts up to now's date).
// Events after a terminal event do not exist (the state machine refuses
// them), so a completed or refused case keeps the deadline it had.
func (c *Case) Deadline(now time.Time) Deadline {
	var (
		d         Deadline
		received  time.Time
		confirmed time.Time
		pausedAt  time.Time
		end       time.Time // the terminal event, if any
	)
	for _, e := range c.Events {
		switch e.Kind {
		case EventReceived:
			received = e.At
		case EventIdentityConfirmed:
			confirmed = e.At
		case EventPaused:
			pausedAt = e.At
		case EventResumed:
			if !pausedAt.IsZero() {
				d.PausedDays += daysBetween(pausedAt, e.At)
				pausedAt = time.Time{}
			}
		case EventExtended:
			d.ExtendedMonths += e.Months
		case EventCompleted, EventRefused:
			end = e.At
		}
	}
	if received.IsZero() || confirmed.IsZero() {
		return Deadline{}
	}
	if !pausedAt.IsZero() {
		until := now
		if !end.IsZero() {
			until = end
		}
		if n := daysBetween(pausedAt, until); n > 0 {
			d.PausedDays += n
		}
		d.Paused = end.IsZero()
	}
	start := received
	if confirmed.After(start) {
		start = confirmed
	}
	d.Started = true
	d.Start = Date(start)
	d.Original = addDays(DueDate(start, 1), d.PausedDays)
	d.Due = addDays(DueDate(start, 1+d.ExtendedMonths), d.PausedDays)
	return d
}
