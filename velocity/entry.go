package velocity

import (
	"math"
	"time"
)

// Window lengths and bucket widths, in nanoseconds of event time.
const (
	minuteWidth = int64(10 * time.Second) // 6 buckets: 1 minute
	hourWidth   = int64(5 * time.Minute)  // 12 buckets: 1 hour
	dayWidth    = int64(time.Hour)        // 24 buckets: 24 hours

	dialledWindow = int64(time.Hour)
	usersWindow   = int64(24 * time.Hour)
	callersWindow = int64(10 * time.Minute)

	setCap = 32 // values kept per distinct set
)

// entry is everything kept about one key, in both roles: as a caller (call
// rings, end rings, dialled numbers, user refs) and as a dialled number
// (callers). It is a fixed 280 bytes plus the overflow of its sets.
//
// The rings are indexed by absolute bucket number modulo their length. Each
// ring holds only buckets in (b(head)-len, b(head)], where b(head) is the
// bucket of head in that ring's width; when head moves on, advance clears the
// slots of the buckets that enter that range, which held the buckets that
// left it. Bucket counts saturate at 65535.
type entry struct {
	key  Key
	head int64 // latest event time seen for the key, Unix ns

	minute [6]uint16
	hour   [12]uint16
	day    [24]uint16
	ended  [24]uint16
	short  [24]uint16
	ref    bool // observed again since the CLOCK hand last passed

	dialled set // dialled numbers (as caller)
	users   set // user refs (as caller)
	callers set // caller numbers (as dialled number)
}

// advance moves head forward to t, if t is later, clearing buckets that
// leave the rings.
func (e *entry) advance(t int64) {
	if t <= e.head {
		return
	}
	shiftRing(e.minute[:], floorDiv(e.head, minuteWidth), floorDiv(t, minuteWidth))
	shiftRing(e.hour[:], floorDiv(e.head, hourWidth), floorDiv(t, hourWidth))
	from, to := floorDiv(e.head, dayWidth), floorDiv(t, dayWidth)
	shiftRing(e.day[:], from, to)
	shiftRing(e.ended[:], from, to)
	shiftRing(e.short[:], from, to)
	e.head = t
}

// addCall counts a call started at t. The caller has advanced e to t.
func (e *entry) addCall(t int64) {
	addRing(e.minute[:], floorDiv(t, minuteWidth), floorDiv(e.head, minuteWidth))
	addRing(e.hour[:], floorDiv(t, hourWidth), floorDiv(e.head, hourWidth))
	addRing(e.day[:], floorDiv(t, dayWidth), floorDiv(e.head, dayWidth))
}

// addEnd counts the end of a call started at t. The caller has advanced e.
func (e *entry) addEnd(t int64, short bool) {
	b, h := floorDiv(t, dayWidth), floorDiv(e.head, dayWidth)
	addRing(e.ended[:], b, h)
	if short {
		addRing(e.short[:], b, h)
	}
}

// callerCounts fills the caller fields of c for windows ending at t.
func (e *entry) callerCounts(c *Counts, t int64) {
	c.CallerMinute = sumRing(e.minute[:], floorDiv(t, minuteWidth), floorDiv(e.head, minuteWidth))
	c.CallerHour = sumRing(e.hour[:], floorDiv(t, hourWidth), floorDiv(e.head, hourWidth))
	q, h := floorDiv(t, dayWidth), floorDiv(e.head, dayWidth)
	c.CallerDay = sumRing(e.day[:], q, h)
	c.EndedDay = sumRing(e.ended[:], q, h)
	c.ShortDay = sumRing(e.short[:], q, h)
	c.DistinctDialledHour, c.SweepHour = e.dialled.sweep(t-dialledWindow, t)
	c.DistinctUsersDay = e.users.count(t-usersWindow, t)
}

// The ring functions take absolute bucket numbers: a ring of n slots keeps
// bucket b in slot b mod n and holds the buckets in (h-n, h], where h is the
// bucket of the entry's head.

// shiftRing clears the slots of the buckets in (from, to], which enter the
// ring as the head moves from bucket from to bucket to.
func shiftRing(r []uint16, from, to int64) {
	n := int64(len(r))
	if to-from >= n {
		clear(r)
		return
	}
	for i, b := mod(from+1, n), from+1; b <= to; b++ {
		r[i] = 0
		if i++; i == n {
			i = 0
		}
	}
}

// addRing counts one event in bucket b, unless b is older than the ring.
func addRing(r []uint16, b, h int64) {
	n := int64(len(r))
	if b <= h-n {
		return
	}
	if i := mod(b, n); r[i] < math.MaxUint16 {
		r[i]++
	}
}

// sumRing adds up the buckets held that fall in the window (q-n, q].
func sumRing(r []uint16, q, h int64) int {
	n := int64(len(r))
	from, to := max(q, h)-n+1, min(q, h)
	if from > to {
		return 0
	}
	i, j := mod(from, n), mod(to, n)+1 // slots [i, j), wrapping when j <= i
	if j <= i {
		return sum(r[i:]) + sum(r[:j])
	}
	return sum(r[i:j])
}

func sum(r []uint16) int {
	s := 0
	for _, v := range r {
		s += int(v)
	}
	return s
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

// pair is one value of a set and the latest event time it was seen at.
type pair struct {
	v uint64 // 0 only in an empty set's first pair
	t int64  // Unix ns
}

// in reports whether p holds a value last seen in (from, to].
func (p pair) in(from, to int64) bool {
	return p.v != 0 && p.t > from && p.t <= to
}

// set holds up to setCap distinct values with their last-seen times. The
// first value lives inline; the rest are allocated when a second distinct
// value appears. Values are never removed, only replaced, so first is set
// whenever rest is non-empty.
type set struct {
	first pair
	rest  *[]pair // len < setCap
}

func (s *set) more() []pair {
	if s.rest == nil {
		return nil
	}
	return *s.rest
}

// add records v seen at t. When the set is full and v is new, v replaces the
// value seen longest ago, unless t is older still.
func (s *set) add(v uint64, t int64) {
	switch s.first.v {
	case 0:
		s.first = pair{v, t}
		return
	case v:
		s.first.t = max(s.first.t, t)
		return
	}
	oldest := &s.first
	more := s.more()
	for i := range more {
		p := &more[i]
		if p.v == v {
			p.t = max(p.t, t)
			return
		}
		if p.t < oldest.t {
			oldest = p
		}
	}
	switch {
	case len(more) < setCap-1:
		if s.rest == nil {
			s.rest = new([]pair)
		}
		*s.rest = append(*s.rest, pair{v, t})
	case t > oldest.t:
		*oldest = pair{v, t}
	}
}

// count reports how many values were last seen in (from, to].
func (s *set) count(from, to int64) int {
	n := 0
	if s.first.in(from, to) {
		n = 1
	}
	for _, p := range s.more() {
		if p.in(from, to) {
			n++
		}
	}
	return n
}

// sweep reports how many values were last seen in (from, to], and the
// largest number of those that share v/100: the most numbers dialled in one
// block of a hundred.
func (s *set) sweep(from, to int64) (n, best int) {
	var blocks [setCap]uint64
	if s.first.in(from, to) {
		blocks[0] = s.first.v / 100
		n = 1
	}
	for _, p := range s.more() {
		if p.in(from, to) {
			blocks[n] = p.v / 100
			n++
		}
	}
	for i := 0; i < n && n-i > best; i++ {
		c := 1
		for _, b := range blocks[i+1 : n] {
			if b == blocks[i] {
				c++
			}
		}
		best = max(best, c)
	}
	return n, best
}
