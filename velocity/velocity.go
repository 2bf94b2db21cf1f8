// Package velocity keeps bounded-memory, event-time sliding windows over call
// events: how often a caller calls, how many distinct numbers and user refs it
// is seen with, whether it sweeps a number block, how many distinct callers
// reach one number, and how many of its calls ended short.
//
// Time is event time only: every event carries the call's start time as
// supplied by the caller of this package, and the package never reads the
// clock. Replaying the same events in the same order into a fresh Windows
// yields the same Counts at every step.
//
// Windows is safe for concurrent use. Keys are spread over a power-of-two
// number of shards (up to 256) by a hash of the key; each shard has its own
// lock, so there is no global lock on the hot path.
//
// Call counts (CallerMinute, CallerHour, CallerDay, EndedDay, ShortDay) are
// kept in rings of time buckets; distinct counts are kept in small capped sets
// of (value, last-seen time) pairs. See docs/velocity.md for the granularity,
// the error bounds and the measured memory per key.
package velocity

import (
	"math"
	"sync"
	"time"
)

// Key identifies a telephone number within a tenant. Num is the E.164
// number's digits as an integer (+441632960001 -> 441632960001); 0 means
// unknown or withheld.
type Key struct {
	Tenant uint32
	Num    uint64
}

// Config sets the limits of a Windows. The zero value is usable.
type Config struct {
	// MaxKeys bounds the keys held (callers and dialled numbers together,
	// across all tenants; a number seen in both roles is one key). 0 means
	// 1<<20. The bound is split evenly over the shards, so a Windows holds at
	// most MaxKeys keys and never grows past it; when a shard is full, a new
	// key evicts an old one by CLOCK (see Windows).
	MaxKeys int
	// ShortCall is the duration below which an ended call counts as short.
	// 0 means 10s.
	ShortCall time.Duration
}

// Counts is what a Windows observed for one call's caller and dialled number,
// in windows ending at the call's start time. Every field is 0 when the key is
// unknown, withheld (Num 0) or has no events in the window.
type Counts struct {
	// Calls from the caller in the last minute, hour and 24 hours. Bucketed:
	// see Windows.Counts.
	CallerMinute, CallerHour, CallerDay int
	// Distinct dialled numbers the caller called in the last hour (at most 32).
	DistinctDialledHour int
	// Distinct user refs presented with the caller in the last 24 hours (at
	// most 32).
	DistinctUsersDay int
	// Largest number of distinct dialled numbers the caller called in the last
	// hour that share all but the last two digits (Num/100 equal): an
	// enumeration sweep over a number block (at most 32).
	SweepHour int
	// Distinct callers to the dialled number in the last 10 minutes (at most
	// 32).
	DistinctCallersTenMin int
	// Calls by the caller with a reported end in the last 24 hours (by start
	// time), and how many of those were shorter than Config.ShortCall.
	// Bucketed like CallerDay.
	EndedDay, ShortDay int
}

const (
	maxShards   = 256
	minPerShard = 64 // fewer shards for a small MaxKeys, so each holds this many
	chunkSize   = 64 // entries are allocated this many at a time
)

// Windows holds the sliding windows of every key. Create it with New.
//
// Memory is bounded: at most Config.MaxKeys keys, each with fixed-size rings
// and three sets of at most 32 values. When a shard is full, a new key evicts
// one chosen by CLOCK (second chance): keys are kept in a circular array with
// a "seen again" bit, set whenever Observe or ObserveEnd touches an existing
// key; the hand clears set bits as it passes and evicts the first key whose bit
// is clear. A new key starts with its bit clear, so a flood of one-off numbers
// evicts other one-off numbers before keys that keep calling. Counts does not
// touch the bit, so reads never write. The policy approximates
// least-recently-observed eviction and is deterministic for a given sequence.
// Each shard holds MaxKeys/shards keys, so eviction in a busy shard can start
// before Len reaches MaxKeys.
//
// A Windows is safe for concurrent use. Observe updates the caller's and the
// dialled number's keys under their own shards' locks one after the other, so
// a concurrent Counts may see one updated and not yet the other.
//
// Event times must lie within the range of time.Time.UnixNano (years 1678 to
// 2262). An event far in the future moves its key's latest time there, after
// which that key's real events are late until the key is evicted; the caller
// should reject implausible start times before observing them.
type Windows struct {
	shards []shard
	mask   uint64
	short  int64 // Config.ShortCall in nanoseconds
}

type shard struct {
	mu        sync.RWMutex
	index     map[Key]int32
	chunks    [][]entry
	n         int // entries in use
	limit     int // entries allowed
	hand      int // CLOCK hand, in [0, n)
	evictions uint64
	_         [64]byte // keep neighbouring shards' locks off one cache line
}

// New returns an empty Windows configured by cfg.
func New(cfg Config) *Windows {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 1 << 20
	}
	if cfg.ShortCall <= 0 {
		cfg.ShortCall = 10 * time.Second
	}
	n := maxShards
	for n > 1 && cfg.MaxKeys/n < minPerShard {
		n /= 2
	}
	w := &Windows{shards: make([]shard, n), mask: uint64(n - 1), short: int64(cfg.ShortCall)}
	for i := range w.shards {
		w.shards[i].index = make(map[Key]int32)
		w.shards[i].limit = min(cfg.MaxKeys/n, math.MaxInt32)
	}
	return w
}

// Observe records the start of a call from caller to dialled at event time
// at, presented with userRef (a hash of the tenant's user id; 0 = none).
//
// The call counts toward the caller's call counts, distinct dialled numbers,
// sweep and distinct user refs, and toward the dialled number's distinct
// callers. A caller with Num 0 (withheld) has no identity and nothing is
// recorded, for either key; a dialled Num 0 is not recorded as a dialled
// number, but the call still counts for the caller.
//
// Events may arrive out of order. An event lands in the bucket of its own
// time; it is ignored by a window when it is older than that window measured
// from the latest event time already observed for the same key (in either
// role), and it moves that latest time forward when it is newer. Observe
// allocates only when a key is new or a set grows.
func (w *Windows) Observe(caller, dialled Key, userRef uint64, at time.Time) {
	if caller.Num == 0 {
		return
	}
	t := at.UnixNano()
	s := w.shard(caller)
	s.mu.Lock()
	e := s.entry(caller, t)
	e.advance(t)
	e.addCall(t)
	if dialled.Num != 0 && t > e.head-dialledWindow {
		e.dialled.add(dialled.Num, t)
	}
	if userRef != 0 && t > e.head-usersWindow {
		e.users.add(userRef, t)
	}
	s.mu.Unlock()

	if dialled.Num == 0 {
		return
	}
	s = w.shard(dialled)
	s.mu.Lock()
	e = s.entry(dialled, t)
	e.advance(t)
	if t > e.head-callersWindow {
		e.callers.add(caller.Num, t)
	}
	s.mu.Unlock()
}

// ObserveEnd records that a call by caller, which started at event time at,
// ended after duration. It counts toward EndedDay and, when duration is
// shorter than Config.ShortCall, toward ShortDay, in the bucket of the start
// time. Late events are treated as in Observe. A caller with Num 0 is ignored.
func (w *Windows) ObserveEnd(caller Key, at time.Time, duration time.Duration) {
	if caller.Num == 0 {
		return
	}
	t := at.UnixNano()
	s := w.shard(caller)
	s.mu.Lock()
	e := s.entry(caller, t)
	e.advance(t)
	e.addEnd(t, int64(duration) < w.short)
	s.mu.Unlock()
}

// Counts reports what was observed before a call from caller to dialled
// starting at at, in windows ending at at. Call it before observing the call
// itself, or the call counts itself.
//
// Distinct counts are exact over (at-window, at], up to the cap of 32 values
// per set; each set remembers only the latest sighting of a value, so a value
// seen both inside the window and after at is not counted. Call counts are
// rounded to whole buckets (minute: 10 s, hour: 5 min, day: 1 h): an event at
// t counts when its bucket is one of the window's buckets ending with the
// bucket that holds at. So an event at exactly at-window never counts, an
// event no older than window minus one bucket always counts, and one in
// between may be missed; an event later than at in at's own bucket counts if
// it was already observed.
//
// Counts only reads; it does not allocate and does not affect eviction.
func (w *Windows) Counts(caller, dialled Key, at time.Time) Counts {
	t := at.UnixNano()
	var c Counts
	if caller.Num != 0 {
		s := w.shard(caller)
		s.mu.RLock()
		if i, ok := s.index[caller]; ok {
			s.at(i).callerCounts(&c, t)
		}
		s.mu.RUnlock()
	}
	if dialled.Num != 0 {
		s := w.shard(dialled)
		s.mu.RLock()
		if i, ok := s.index[dialled]; ok {
			c.DistinctCallersTenMin = s.at(i).callers.count(t-callersWindow, t)
		}
		s.mu.RUnlock()
	}
	return c
}

// Len reports the number of keys held. It is at most Config.MaxKeys.
func (w *Windows) Len() int {
	n := 0
	for i := range w.shards {
		s := &w.shards[i]
		s.mu.RLock()
		n += s.n
		s.mu.RUnlock()
	}
	return n
}

// Evictions reports how many keys have been evicted to make room for new ones.
func (w *Windows) Evictions() uint64 {
	var n uint64
	for i := range w.shards {
		s := &w.shards[i]
		s.mu.RLock()
		n += s.evictions
		s.mu.RUnlock()
	}
	return n
}

// shard returns the shard that holds k.
func (w *Windows) shard(k Key) *shard {
	h := k.Num + uint64(k.Tenant)*0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return &w.shards[h&w.mask]
}

// at returns entry i. The caller holds s.mu.
func (s *shard) at(i int32) *entry {
	return &s.chunks[i/chunkSize][i%chunkSize]
}

// entry returns k's entry, creating it (with latest event time t) and
// evicting another key if k is new and the shard is full. The caller holds
// s.mu for writing.
func (s *shard) entry(k Key, t int64) *entry {
	if i, ok := s.index[k]; ok {
		e := s.at(i)
		e.ref = true
		return e
	}
	var i int32
	if s.n < s.limit {
		i = int32(s.n)
		s.n++
		if s.n > len(s.chunks)*chunkSize {
			s.chunks = append(s.chunks, make([]entry, min(chunkSize, s.limit-int(i))))
		}
	} else {
		i = s.victim()
		delete(s.index, s.at(i).key)
		s.evictions++
	}
	e := s.at(i)
	*e = entry{key: k, head: t}
	s.index[k] = i
	return e
}

// victim advances the CLOCK hand to the first entry not seen again since the
// hand last passed it and returns that entry's index. It stops within one
// revolution plus one step.
func (s *shard) victim() int32 {
	for {
		i := s.hand
		s.hand++
		if s.hand == s.n {
			s.hand = 0
		}
		e := s.at(int32(i))
		if !e.ref {
			return int32(i)
		}
		e.ref = false
	}
}

// BytesPerKey is the heap memory one key takes in a Windows, measured for a
// typical key (a caller seen with one dialled number and one user ref): a
// 280-byte entry plus its share of the shard's index map and chunk slack.
// TestBytesPerKey measures it over 1M keys (about 344 bytes; between 327 and
// 363 from 100k to 1.5M keys, as the index maps grow in steps). A key whose
// three sets are all full (32 values each) takes up to MaxBytesPerKey.
// Multiply by Config.MaxKeys to size a deployment.
const (
	BytesPerKey    = 350
	MaxBytesPerKey = 2048
)
