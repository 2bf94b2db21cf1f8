package velocity

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// base is aligned to every bucket width (10 s, 5 min, 1 h).
var base = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

const (
	callerA  = 441632960001
	callerB  = 441632960002
	callerC  = 441632960003
	dialledX = 442079460000
	dialledY = 442079460123
)

// ev is one hand-made event; at is an offset from base.
type ev struct {
	at      time.Duration
	caller  uint64
	dialled uint64
	user    uint64
	end     bool          // ObserveEnd instead of Observe
	dur     time.Duration // for end
}

func k(n uint64) Key { return Key{Tenant: 1, Num: n} }

func apply(w *Windows, evs []ev) {
	for _, e := range evs {
		if e.end {
			w.ObserveEnd(k(e.caller), base.Add(e.at), e.dur)
			continue
		}
		w.Observe(k(e.caller), k(e.dialled), e.user, base.Add(e.at))
	}
}

// calls returns a call from callerA to dialledX at each offset.
func calls(offsets ...time.Duration) []ev {
	var evs []ev
	for _, o := range offsets {
		evs = append(evs, ev{at: o, caller: callerA, dialled: dialledX})
	}
	return evs
}

func TestCounts(t *testing.T) {
	s, m, h := time.Second, time.Minute, time.Hour
	tests := []struct {
		name string
		evs  []ev
		at   time.Duration // query offset
		want Counts
	}{
		{
			name: "minute edges",
			evs:  calls(-60*s, -50*s, -1*s, 0),
			want: Counts{CallerMinute: 3, CallerHour: 4, CallerDay: 4, DistinctDialledHour: 1, SweepHour: 1, DistinctCallersTenMin: 1},
		},
		{
			name: "minute edge with query late in its bucket",
			evs:  calls(-50 * s),
			at:   9 * s, // event is at-59s: same buckets as at-50s
			want: Counts{CallerMinute: 1, CallerHour: 1, CallerDay: 1, DistinctDialledHour: 1, SweepHour: 1, DistinctCallersTenMin: 1},
		},
		{
			name: "minute bucket rounding drops the oldest part of the window",
			evs:  calls(-55 * s), // within (at-60s, at] but in the bucket that ends the window
			want: Counts{CallerMinute: 0, CallerHour: 1, CallerDay: 1, DistinctDialledHour: 1, SweepHour: 1, DistinctCallersTenMin: 1},
		},
		{
			name: "hour edges",
			evs:  calls(-h, -55*m),
			want: Counts{CallerHour: 1, CallerDay: 2, DistinctDialledHour: 1, SweepHour: 1, DistinctCallersTenMin: 0},
		},
		{
			name: "day edges",
			evs:  calls(-24*h, -23*h),
			want: Counts{CallerDay: 1},
		},
		{
			name: "query before the events",
			evs:  calls(0, s),
			at:   -2 * m,
			want: Counts{},
		},
		{
			name: "query long after the events",
			evs:  calls(0, s),
			at:   25 * h,
			want: Counts{},
		},
		{
			name: "distinct dialled exact edges",
			evs: []ev{
				{at: -h, caller: callerA, dialled: 1}, // exactly at-1h: out
				{at: -h + s, caller: callerA, dialled: 2},
				{at: -30 * m, caller: callerA, dialled: 3},
				{at: -20 * m, caller: callerA, dialled: 2},
				{at: -10 * m, caller: callerA, dialled: 4000},
			},
			want: Counts{CallerHour: 3, CallerDay: 5, DistinctDialledHour: 3, SweepHour: 2},
		},
		{
			name: "distinct users",
			evs: []ev{
				{at: -24 * h, caller: callerA, user: 7}, // out
				{at: -23 * h, caller: callerA, user: 8},
				{at: -h, caller: callerA, user: 9},
				{at: -m, caller: callerA, user: 8},
				{at: -s, caller: callerA, user: 0}, // none
			},
			want: Counts{CallerMinute: 1, CallerHour: 2, CallerDay: 4, DistinctUsersDay: 2},
		},
		{
			name: "sweep over a number block",
			evs: []ev{
				{at: -5 * m, caller: callerA, dialled: 441632960001},
				{at: -4 * m, caller: callerA, dialled: 441632960002},
				{at: -3 * m, caller: callerA, dialled: 441632960099},
				{at: -2 * m, caller: callerA, dialled: 441632960101},
				{at: -1 * m, caller: callerA, dialled: 441632960199},
				{at: -1 * m, caller: callerA, dialled: 441632960002}, // repeat
			},
			want: Counts{CallerHour: 6, CallerDay: 6, DistinctDialledHour: 5, SweepHour: 3},
		},
		{
			name: "distinct callers to the dialled number",
			evs: []ev{
				{at: -10 * m, caller: callerC, dialled: dialledX}, // exactly at-10m: out
				{at: -9 * m, caller: callerB, dialled: dialledX},
				{at: -5 * m, caller: callerA, dialled: dialledX},
				{at: -4 * m, caller: callerB, dialled: dialledX},
				{at: -3 * m, caller: 0, dialled: dialledX}, // withheld: skipped
				{at: -2 * m, caller: callerC, dialled: dialledY},
			},
			want: Counts{CallerHour: 1, CallerDay: 1, DistinctDialledHour: 1, SweepHour: 1, DistinctCallersTenMin: 2},
		},
		{
			name: "ended and short",
			evs: []ev{
				{at: -24 * h, caller: callerA, end: true, dur: s}, // out
				{at: -3 * h, caller: callerA, end: true, dur: 5 * s},
				{at: -2 * h, caller: callerA, end: true, dur: 30 * s},
				{at: -h, caller: callerA, end: true, dur: 10*s - 1},
				{at: -m, caller: callerA, end: true, dur: 10 * s},
			},
			want: Counts{EndedDay: 4, ShortDay: 2},
		},
		{
			name: "dialled unknown still counts for the caller",
			evs:  []ev{{at: -s, caller: callerA, dialled: 0, user: 3}},
			want: Counts{CallerMinute: 1, CallerHour: 1, CallerDay: 1, DistinctUsersDay: 1},
		},
		{
			name: "withheld caller records nothing",
			evs:  []ev{{at: -s, caller: 0, dialled: dialledX, user: 3}, {at: -s, caller: 0, end: true}},
			want: Counts{},
		},
		{
			name: "out of order",
			evs:  calls(-10*s, -50*m, -30*s, -2*h, -5*s, -23*h),
			want: Counts{CallerMinute: 3, CallerHour: 4, CallerDay: 6, DistinctDialledHour: 1, SweepHour: 1, DistinctCallersTenMin: 1},
		},
		{
			name: "late events older than each window are ignored by it",
			evs:  calls(0, -25*h, -61*m, -2*m, -55*m),
			want: Counts{CallerMinute: 1, CallerHour: 3, CallerDay: 4, DistinctDialledHour: 1, SweepHour: 1, DistinctCallersTenMin: 1},
		},
		{
			name: "late event ignored even when querying its own time",
			evs:  calls(0, -70*s),
			at:   -65 * s,
			// The sets remember dialledX and callerA at 0, after at.
			want: Counts{CallerMinute: 0, CallerHour: 1, CallerDay: 1},
		},
		{
			name: "the same event in a fresh Windows counts",
			evs:  calls(-70 * s),
			at:   -65 * s,
			want: Counts{CallerMinute: 1, CallerHour: 1, CallerDay: 1, DistinctDialledHour: 1, SweepHour: 1, DistinctCallersTenMin: 1},
		},
		{
			name: "latest sighting only",
			evs:  calls(-20*m, 30*m), // dialledX seen in the window and after at
			// The call at +30m is in at's day bucket, so the day counts it.
			want: Counts{CallerHour: 1, CallerDay: 2, DistinctDialledHour: 0, SweepHour: 0, DistinctCallersTenMin: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(Config{})
			apply(w, tt.evs)
			got := w.Counts(k(callerA), k(dialledX), base.Add(tt.at))
			if got != tt.want {
				t.Errorf("Counts:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSetCap(t *testing.T) {
	tests := []struct {
		name     string
		distinct int
		want     int
	}{
		{"below cap", 31, 31},
		{"at cap", setCap, setCap},
		{"saturates", 40, setCap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(Config{})
			for i := range tt.distinct {
				at := base.Add(time.Duration(i) * time.Second)
				w.Observe(k(callerA), k(441632960000+uint64(i)), uint64(i+1), at)
				w.Observe(k(uint64(1000+i)), k(dialledX), 0, at)
			}
			at := base.Add(time.Minute)
			c := w.Counts(k(callerA), k(dialledX), at)
			if c.DistinctDialledHour != tt.want || c.DistinctUsersDay != tt.want ||
				c.DistinctCallersTenMin != tt.want || c.SweepHour != tt.want {
				t.Errorf("got %+v, want distinct counts %d", c, tt.want)
			}
			// The newest value is always kept: a window holding only its
			// time counts it.
			at = base.Add(time.Duration(tt.distinct-1)*time.Second + time.Hour - 1)
			if c := w.Counts(k(callerA), Key{}, at); c.DistinctDialledHour != 1 {
				t.Errorf("newest dialled number lost: %+v", c)
			}
		})
	}
	t.Run("oldest replaced", func(t *testing.T) {
		w := New(Config{})
		for i := range setCap + 4 {
			w.Observe(k(callerA), k(uint64(100*(i+1))), 0, base.Add(time.Duration(i)*time.Minute))
		}
		// The 4 oldest (minutes 0-3) were replaced; a window starting after
		// minute 5 sees the values from minute 6 on.
		c := w.Counts(k(callerA), Key{}, base.Add(66*time.Minute))
		if want := setCap + 4 - 7; c.DistinctDialledHour != want {
			t.Errorf("DistinctDialledHour = %d, want %d", c.DistinctDialledHour, want)
		}
	})
}

func TestBucketSaturates(t *testing.T) {
	w := New(Config{})
	for range 70000 {
		w.Observe(k(callerA), k(dialledX), 0, base)
	}
	c := w.Counts(k(callerA), k(dialledX), base)
	if c.CallerMinute != 65535 || c.CallerDay != 65535 {
		t.Errorf("got %+v, want call counts saturated at 65535", c)
	}
}

func TestShortCallConfig(t *testing.T) {
	w := New(Config{ShortCall: time.Minute})
	w.ObserveEnd(k(callerA), base, 30*time.Second)
	w.ObserveEnd(k(callerA), base, 2*time.Minute)
	if c := w.Counts(k(callerA), Key{}, base); c.EndedDay != 2 || c.ShortDay != 1 {
		t.Errorf("got %+v, want EndedDay 2, ShortDay 1", c)
	}
}

func TestTenantsIsolated(t *testing.T) {
	w := New(Config{})
	a1, a2 := Key{Tenant: 1, Num: callerA}, Key{Tenant: 2, Num: callerA}
	x1, x2 := Key{Tenant: 1, Num: dialledX}, Key{Tenant: 2, Num: dialledX}
	w.Observe(a1, x1, 5, base)
	w.Observe(a1, x1, 6, base)
	w.ObserveEnd(a1, base, time.Second)
	if c := w.Counts(a2, x2, base); c != (Counts{}) {
		t.Errorf("tenant 2 sees tenant 1's events: %+v", c)
	}
	w.Observe(a2, x2, 0, base)
	want := Counts{CallerMinute: 1, CallerHour: 1, CallerDay: 1, DistinctDialledHour: 1, SweepHour: 1, DistinctCallersTenMin: 1}
	if c := w.Counts(a2, x2, base); c != want {
		t.Errorf("tenant 2: got %+v, want %+v", c, want)
	}
	if c := w.Counts(a1, x1, base); c.CallerMinute != 2 || c.DistinctUsersDay != 2 || c.EndedDay != 1 {
		t.Errorf("tenant 1: got %+v", c)
	}
}

// randomEvents makes a reproducible history over two days with out-of-order
// arrivals: mostly increasing times with jitter up to two minutes back.
func randomEvents(seed uint64, n, callers, dialled int) []ev {
	r := rand.New(rand.NewPCG(seed, 1))
	evs := make([]ev, n)
	now := time.Duration(0)
	for i := range evs {
		now += time.Duration(r.IntN(20)) * time.Second
		e := ev{
			at:      now - time.Duration(r.IntN(120))*time.Second,
			caller:  uint64(r.IntN(callers)), // 0 sometimes: withheld
			dialled: 441632960000 + uint64(r.IntN(dialled)),
			user:    uint64(r.IntN(4)),
		}
		if r.IntN(3) == 0 {
			e.end, e.dur = true, time.Duration(r.IntN(30))*time.Second
		}
		evs[i] = e
	}
	return evs
}

func TestReplayDeterminism(t *testing.T) {
	tests := []struct {
		name    string
		maxKeys int
	}{
		{"no eviction", 0},
		{"with eviction", 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := randomEvents(7, 20000, 60, 50)
			w1, w2 := New(Config{MaxKeys: tt.maxKeys}), New(Config{MaxKeys: tt.maxKeys})
			for i, e := range evs {
				at := base.Add(e.at)
				c1 := w1.Counts(k(e.caller), k(e.dialled), at)
				c2 := w2.Counts(k(e.caller), k(e.dialled), at)
				if c1 != c2 {
					t.Fatalf("step %d: %+v != %+v", i, c1, c2)
				}
				apply(w1, evs[i:i+1])
				apply(w2, evs[i:i+1])
			}
			if w1.Len() != w2.Len() || w1.Evictions() != w2.Evictions() {
				t.Errorf("Len %d/%d, Evictions %d/%d", w1.Len(), w2.Len(), w1.Evictions(), w2.Evictions())
			}
		})
	}
}

// TestAgainstReference checks in-order histories (no late events, sets below
// their cap) against a brute-force count over every event, using the
// documented semantics: call counts by whole buckets, distinct counts exact.
func TestAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var evs []ev
	now := time.Duration(0)
	for range 3000 {
		now += time.Duration(r.IntN(90)) * time.Second
		evs = append(evs, ev{
			at:      now,
			caller:  1 + uint64(r.IntN(8)),
			dialled: 441632960000 + uint64(r.IntN(300)),
			user:    uint64(r.IntN(6)),
			end:     r.IntN(2) == 0,
			dur:     time.Duration(r.IntN(20)) * time.Second,
		})
	}
	inBuckets := func(t, at, width time.Duration, n int) bool {
		q, b := floorDiv(int64(at), int64(width)), floorDiv(int64(t), int64(width))
		return b > q-int64(n) && b <= q
	}
	in := func(t, at, window time.Duration) bool { return t > at-window && t <= at }
	w := New(Config{MaxKeys: 1 << 12})
	for i, e := range evs {
		var want Counts
		dialled := map[uint64]bool{}
		users := map[uint64]bool{}
		callers := map[uint64]bool{}
		for _, p := range evs[:i] {
			if p.caller == e.caller && !p.end {
				want.CallerMinute += b2i(inBuckets(p.at, e.at, 10*time.Second, 6))
				want.CallerHour += b2i(inBuckets(p.at, e.at, 5*time.Minute, 12))
				want.CallerDay += b2i(inBuckets(p.at, e.at, time.Hour, 24))
				if in(p.at, e.at, time.Hour) {
					dialled[p.dialled] = true
				}
				if p.user != 0 && in(p.at, e.at, 24*time.Hour) {
					users[p.user] = true
				}
			}
			if p.caller == e.caller && p.end && inBuckets(p.at, e.at, time.Hour, 24) {
				want.EndedDay++
				want.ShortDay += b2i(p.dur < 10*time.Second)
			}
			if p.dialled == e.dialled && !p.end && in(p.at, e.at, 10*time.Minute) {
				callers[p.caller] = true
			}
		}
		want.DistinctDialledHour = min(len(dialled), setCap)
		want.DistinctUsersDay = len(users)
		want.DistinctCallersTenMin = len(callers)
		blocks := map[uint64]int{}
		for d := range dialled {
			blocks[d/100]++
			want.SweepHour = max(want.SweepHour, blocks[d/100])
		}
		if len(dialled) >= setCap {
			t.Fatalf("step %d: test history overflows a set", i)
		}
		if got := w.Counts(k(e.caller), k(e.dialled), base.Add(e.at)); got != want {
			t.Fatalf("step %d (%+v):\n got %+v\nwant %+v", i, e, got, want)
		}
		apply(w, evs[i:i+1])
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestEviction(t *testing.T) {
	tests := []struct {
		name    string
		maxKeys int
	}{
		{"tiny", 10},
		{"one shard", 100},
		{"many shards", 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(Config{MaxKeys: tt.maxKeys})
			hot := Key{Tenant: 9, Num: 1}
			for i := range 10 * tt.maxKeys {
				at := base.Add(time.Duration(i) * time.Millisecond)
				w.Observe(Key{Tenant: 1, Num: uint64(1e11 + i)}, Key{Tenant: 1, Num: uint64(2e11 + i)}, 0, at)
				w.Observe(hot, Key{}, 0, at)
				if n := w.Len(); n > tt.maxKeys {
					t.Fatalf("after %d keys: Len() = %d > MaxKeys %d", i, n, tt.maxKeys)
				}
			}
			if w.Evictions() == 0 {
				t.Error("no evictions")
			}
			if w.Len() < tt.maxKeys/2 {
				t.Errorf("Len() = %d, want most of MaxKeys %d used", w.Len(), tt.maxKeys)
			}
			// A key observed between every new key survives the flood.
			if c := w.Counts(hot, Key{}, base.Add(10*time.Duration(tt.maxKeys)*time.Millisecond)); c.CallerDay != 10*tt.maxKeys {
				t.Errorf("hot key: CallerDay = %d, want %d", c.CallerDay, 10*tt.maxKeys)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	w := New(Config{MaxKeys: 500})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 0))
			for i := range 5000 {
				caller, dialled := k(1+uint64(r.IntN(1000))), k(441632960000+uint64(r.IntN(200)))
				at := base.Add(time.Duration(i) * time.Second)
				switch i % 4 {
				case 0:
					w.ObserveEnd(caller, at, time.Duration(r.IntN(20))*time.Second)
				case 1:
					_ = w.Counts(caller, dialled, at)
				default:
					w.Observe(caller, dialled, uint64(r.IntN(5)), at)
				}
				if i%1000 == 0 {
					_, _ = w.Len(), w.Evictions()
				}
			}
		})
	}
	wg.Wait()
	if n := w.Len(); n > 500 {
		t.Errorf("Len() = %d > 500", n)
	}
}

func TestNoAllocs(t *testing.T) {
	w := New(Config{})
	for i := range 40 {
		w.Observe(k(callerA), k(441632960000+uint64(i)), uint64(i+1), base)
		w.Observe(k(uint64(1000+i)), k(dialledX), 0, base)
	}
	tests := []struct {
		name string
		f    func()
	}{
		{"Counts", func() { _ = w.Counts(k(callerA), k(dialledX), base) }},
		{"Counts unknown", func() { _ = w.Counts(k(7), k(8), base) }},
		{"Observe existing", func() { w.Observe(k(callerA), k(dialledX), 1, base) }},
		{"ObserveEnd existing", func() { w.ObserveEnd(k(callerA), base, time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.f); n != 0 {
				t.Errorf("%v allocs per run, want 0", n)
			}
		})
	}
}

// TestBytesPerKey measures the heap per key over 1M keys and checks the
// documented figures.
func TestBytesPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 1 GB")
	}
	const n = 1 << 20
	tests := []struct {
		name    string
		limit   int
		observe func(w *Windows, i int)
	}{
		{"typical", BytesPerKey, func(w *Windows, i int) {
			// A caller seen with one dialled number and one user ref; the
			// 16 dialled numbers are 16 more keys, negligible here.
			w.Observe(k(1e11+uint64(i)), k(dialledX+uint64(i%16)), uint64(i+1), base)
		}},
		{"full sets", MaxBytesPerKey, func(w *Windows, i int) {
			// Every key both caller and dialled number, each set full.
			for j := range setCap {
				w.Observe(k(uint64(i+1)), k(1e11+uint64(j)), uint64(j+1), base)
				w.Observe(k(1e11+uint64(j)), k(uint64(i+1)), 0, base)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := n
			if tt.name == "full sets" {
				keys = n / 32 // fewer, so the test stays quick; per-key cost is what matters
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			w := New(Config{MaxKeys: 2 * keys}) // room to spare: no eviction
			for i := range keys {
				tt.observe(w, i)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			per := float64(after.HeapAlloc-before.HeapAlloc) / float64(w.Len())
			t.Logf("%d keys: %.0f bytes/key", w.Len(), per)
			if per > float64(tt.limit) {
				t.Errorf("%.0f bytes/key, documented limit %d", per, tt.limit)
			}
			runtime.KeepAlive(w)
		})
	}
}
