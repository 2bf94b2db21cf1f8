package privacy

import (
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
)

// at is a Europe/London wall-clock instant.
func at(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, London())
}

func day(y int, m time.Month, d int) time.Time { return at(y, m, d, 12, 0) }

func TestDueDate(t *testing.T) {
	tests := []struct {
		name   string
		start  time.Time
		months int
		want   string
	}{
		{"ICO: 3 September -> 3 October", day(2026, time.September, 3), 1, "2026-10-03"},
		{"ICO: 31 March -> 30 April (no 31 April)", day(2026, time.March, 31), 1, "2026-04-30"},
		{"31 January 2026 -> 28 February 2026", day(2026, time.January, 31), 1, "2026-02-28"},
		{"leap year: 31 January 2024 -> 29 February 2024", day(2024, time.January, 31), 1, "2024-02-29"},
		{"30 January 2026 -> 28 February 2026", day(2026, time.January, 30), 1, "2026-02-28"},
		{"31 August -> 30 September", day(2026, time.August, 31), 1, "2026-09-30"},
		{"December rolls into January", day(2026, time.December, 15), 1, "2027-01-15"},
		{"extended: 3 September + 3 months -> 3 December", day(2026, time.September, 3), 3, "2026-12-03"},
		{"extended: 30 November + 3 months -> 28 February", day(2026, time.November, 30), 3, "2027-02-28"},
		{"zero months is the same date", day(2026, time.May, 17), 0, "2026-05-17"},
		{"negative months count back", day(2026, time.March, 31), -1, "2026-02-28"},
		{"day one is the day of receipt, late evening included", at(2026, time.August, 1, 23, 59), 1, "2026-09-01"},
		// 23:30 UTC on 31 March is 00:30 on 1 April in London (BST).
		{"the London date, not the UTC date", time.Date(2026, time.March, 31, 23, 30, 0, 0, time.UTC), 1, "2026-05-01"},
		{"GMT: UTC and London agree in winter", time.Date(2026, time.January, 31, 23, 30, 0, 0, time.UTC), 1, "2026-02-28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DueDate(tt.start, tt.months)
			if s := got.Format(time.DateOnly); s != tt.want {
				t.Errorf("DueDate(%s, %d) = %s, want %s", tt.start, tt.months, s, tt.want)
			}
			if got.Location() != London() || got.Hour() != 0 || got.Minute() != 0 {
				t.Errorf("DueDate = %s, want midnight Europe/London", got)
			}
		})
	}
}

// step is one transition applied to a case in a timeline test.
type step func(c *Case) error

func confirm(t time.Time) step { return func(c *Case) error { return c.ConfirmIdentity(t) } }
func ask(t time.Time) step     { return func(c *Case) error { return c.RequestIdentity(t) } }
func pause(t time.Time) step {
	return func(c *Case) error { return c.Pause(t, "clarification of the date range") }
}
func resume(t time.Time) step { return func(c *Case) error { return c.Resume(t) } }
func extend(t, told time.Time, months int) step {
	return func(c *Case) error { return c.Extend(t, told, months, "complex request across stores") }
}

func TestCaseDeadline(t *testing.T) {
	sep3 := day(2026, time.September, 3)
	tests := []struct {
		name     string
		received time.Time
		steps    []step
		now      time.Time
		want     string // due date, "" when the clock has not started
		original string
		paused   int
	}{
		{
			name: "identity confirmed on receipt", received: sep3,
			steps: []step{confirm(sep3)}, now: sep3,
			want: "2026-10-03", original: "2026-10-03",
		},
		{
			name: "identity confirmed later than receipt: the clock starts then", received: sep3,
			steps: []step{ask(sep3), confirm(day(2026, time.September, 10))}, now: sep3,
			want: "2026-10-10", original: "2026-10-10",
		},
		{
			name: "identity confirmed on 31 January: 28 February", received: day(2026, time.January, 20),
			steps: []step{confirm(day(2026, time.January, 31))}, now: day(2026, time.February, 1),
			want: "2026-02-28", original: "2026-02-28",
		},
		{
			name: "awaiting identity: no deadline yet", received: sep3,
			steps: []step{ask(sep3)}, now: day(2026, time.December, 1),
			want: "",
		},
		{
			name: "a pause of 5 days moves the due date by 5", received: sep3,
			steps: []step{confirm(sep3), pause(day(2026, time.September, 10)), resume(day(2026, time.September, 15))},
			now:   day(2026, time.September, 20),
			want:  "2026-10-08", original: "2026-10-08", paused: 5,
		},
		{
			name: "two pauses add up", received: sep3,
			steps: []step{confirm(sep3),
				pause(day(2026, time.September, 4)), resume(day(2026, time.September, 6)),
				pause(day(2026, time.September, 20)), resume(day(2026, time.September, 21))},
			now:  day(2026, time.September, 22),
			want: "2026-10-06", original: "2026-10-06", paused: 3,
		},
		{
			name: "an open pause counts up to now", received: sep3,
			steps: []step{confirm(sep3), pause(day(2026, time.September, 10))},
			now:   day(2026, time.September, 17),
			want:  "2026-10-10", original: "2026-10-10", paused: 7,
		},
		{
			name: "pause and resume on one day costs nothing", received: sep3,
			steps: []step{confirm(sep3), pause(at(2026, time.September, 10, 9, 0)), resume(at(2026, time.September, 10, 17, 0))},
			now:   day(2026, time.September, 11),
			want:  "2026-10-03", original: "2026-10-03",
		},
		{
			name: "ICO: extension by two further months from 3 September -> 3 December", received: sep3,
			steps: []step{confirm(sep3), extend(day(2026, time.September, 20), day(2026, time.September, 20), 2)},
			now:   day(2026, time.September, 21),
			want:  "2026-12-03", original: "2026-10-03",
		},
		{
			name: "extension told on the original due date is in time", received: sep3,
			steps: []step{confirm(sep3), extend(at(2026, time.October, 3, 23, 0), at(2026, time.October, 3, 22, 0), 1)},
			now:   day(2026, time.October, 4),
			want:  "2026-11-03", original: "2026-10-03",
		},
		{
			name: "two one-month extensions", received: sep3,
			steps: []step{confirm(sep3),
				extend(day(2026, time.September, 10), day(2026, time.September, 10), 1),
				extend(day(2026, time.September, 30), day(2026, time.September, 30), 1)},
			now:  day(2026, time.October, 1),
			want: "2026-12-03", original: "2026-10-03",
		},
		{
			name: "pause after an extension moves both dates", received: sep3,
			steps: []step{confirm(sep3),
				extend(day(2026, time.September, 10), day(2026, time.September, 10), 2),
				pause(day(2026, time.October, 1)), resume(day(2026, time.October, 11))},
			now:  day(2026, time.October, 12),
			want: "2026-12-13", original: "2026-10-13", paused: 10,
		},
		{
			name: "a pause across the clock change counts calendar days", received: day(2026, time.October, 20),
			steps: []step{confirm(day(2026, time.October, 20)),
				pause(at(2026, time.October, 24, 0, 30)), resume(at(2026, time.October, 26, 0, 30))},
			now:  day(2026, time.October, 27),
			want: "2026-11-22", original: "2026-11-22", paused: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCase(t, Access, tt.received)
			for i, s := range tt.steps {
				if err := s(c); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			d := c.Deadline(tt.now)
			if tt.want == "" {
				if d.Started || !d.Due.IsZero() {
					t.Fatalf("Deadline = %+v, want not started", d)
				}
				return
			}
			if !d.Started {
				t.Fatalf("Deadline not started")
			}
			if got := d.Due.Format(time.DateOnly); got != tt.want {
				t.Errorf("Due = %s, want %s", got, tt.want)
			}
			if got := d.Original.Format(time.DateOnly); got != tt.original {
				t.Errorf("Original = %s, want %s", got, tt.original)
			}
			if d.PausedDays != tt.paused {
				t.Errorf("PausedDays = %d, want %d", d.PausedDays, tt.paused)
			}
		})
	}
}

func TestExtendRefused(t *testing.T) {
	sep3 := day(2026, time.September, 3)
	tests := []struct {
		name  string
		steps []step
		code  string
	}{
		{"told after the original due date", []step{confirm(sep3),
			extend(day(2026, time.October, 10), day(2026, time.October, 4), 2)}, call.Invalid},
		{"told just after midnight London time on the day after", []step{confirm(sep3),
			extend(at(2026, time.October, 4, 0, 5), at(2026, time.October, 4, 0, 1), 1)}, call.Invalid},
		{"more than two months at once", []step{confirm(sep3),
			extend(day(2026, time.September, 10), day(2026, time.September, 10), 3)}, call.Invalid},
		{"zero months", []step{confirm(sep3),
			extend(day(2026, time.September, 10), day(2026, time.September, 10), 0)}, call.Invalid},
		{"over two months in total", []step{confirm(sep3),
			extend(day(2026, time.September, 10), day(2026, time.September, 10), 2),
			extend(day(2026, time.September, 11), day(2026, time.September, 11), 1)}, call.Invalid},
		{"told in the future", []step{confirm(sep3),
			extend(day(2026, time.September, 10), day(2026, time.September, 12), 1)}, call.Invalid},
		{"before identity is confirmed", []step{
			extend(day(2026, time.September, 10), day(2026, time.September, 10), 1)}, call.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCase(t, Access, sep3)
			last := len(tt.steps) - 1
			for i, s := range tt.steps[:last] {
				if err := s(c); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			now := day(2026, time.October, 20)
			before, events := c.Deadline(now), len(c.Events)
			err := tt.steps[last](c)
			if got := call.ErrorCode(err); got != tt.code {
				t.Fatalf("error %v: code %q, want %q", err, got, tt.code)
			}
			if after := c.Deadline(now); after != before || len(c.Events) != events {
				t.Errorf("a refused extension changed the case: deadline %+v -> %+v", before, after)
			}
		})
	}
}

func TestOverdue(t *testing.T) {
	c := mustCase(t, Erasure, day(2026, time.September, 3))
	if err := c.ConfirmIdentity(day(2026, time.September, 3)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now     time.Time
		overdue bool
		left    int
	}{
		{day(2026, time.September, 3), false, 30},
		{at(2026, time.October, 3, 23, 59), false, 0},
		{at(2026, time.October, 4, 0, 0), true, -1},
		// 23:30 UTC on 3 October is already 4 October in London.
		{time.Date(2026, time.October, 3, 23, 30, 0, 0, time.UTC), true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.now.String(), func(t *testing.T) {
			d := c.Deadline(tt.now)
			if got := d.Overdue(tt.now); got != tt.overdue {
				t.Errorf("Overdue = %v, want %v", got, tt.overdue)
			}
			if got := d.DaysLeft(tt.now); got != tt.left {
				t.Errorf("DaysLeft = %d, want %d", got, tt.left)
			}
		})
	}
}
