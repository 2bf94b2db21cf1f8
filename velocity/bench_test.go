package velocity

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// warm returns a Windows whose callerA has called n distinct numbers in one
// block (with n user refs) within the last hour, and whose dialledX has been
// called by n distinct callers in the last ten minutes.
func warm(n int) *Windows {
	w := New(Config{})
	for i := range n {
		at := base.Add(time.Duration(i-n) * time.Second)
		w.Observe(k(callerA), k(441632960000+uint64(i)), uint64(i+1), at)
		w.ObserveEnd(k(callerA), at, time.Duration(i)*time.Second)
		w.Observe(k(1000+uint64(i)), k(dialledX), 0, at)
	}
	return w
}

func BenchmarkCounts(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
	}{
		{"warm key", 3},
		{"full sets", setCap},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := warm(bc.n)
			b.ReportAllocs()
			var c Counts
			for b.Loop() {
				c = w.Counts(k(callerA), k(dialledX), base)
			}
			if c.CallerDay != bc.n {
				b.Fatalf("CallerDay = %d, want %d", c.CallerDay, bc.n)
			}
		})
	}
	b.Run("unknown key", func(b *testing.B) {
		w := warm(3)
		b.ReportAllocs()
		for b.Loop() {
			_ = w.Counts(k(7), k(8), base)
		}
	})
}

func BenchmarkObserve(b *testing.B) {
	b.Run("existing key", func(b *testing.B) {
		w := warm(3)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			// Event time moves forward 1 ms a call, so the rings advance.
			w.Observe(k(callerA), k(dialledX), 1, base.Add(time.Duration(i)*time.Millisecond))
			i++
		}
	})
	b.Run("existing key full sets", func(b *testing.B) {
		w := warm(setCap)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			w.Observe(k(callerA), k(dialledX), 1, base.Add(time.Duration(i)*time.Millisecond))
			i++
		}
	})
	b.Run("end existing key", func(b *testing.B) {
		w := warm(3)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			w.ObserveEnd(k(callerA), base.Add(time.Duration(i)*time.Millisecond), time.Second)
			i++
		}
	})
	b.Run("new keys at capacity", func(b *testing.B) {
		const maxKeys = 1 << 16
		w := New(Config{MaxKeys: maxKeys})
		for i := range maxKeys {
			w.Observe(k(1e11+uint64(i)), k(dialledX), 0, base)
		}
		b.ReportAllocs()
		i := maxKeys
		for b.Loop() {
			// A new caller (and a known dialled number): one eviction a call.
			w.Observe(k(1e11+uint64(i)), k(dialledX), uint64(i), base)
			i++
		}
		b.ReportMetric(float64(w.Evictions())/float64(b.N), "evictions/op")
	})
}

// BenchmarkParallel screens and records calls from many goroutines, as the
// engine does: Counts for the call, then Observe and ObserveEnd.
func BenchmarkParallel(b *testing.B) {
	for _, bc := range []struct {
		name    string
		callers int
		maxKeys int
	}{
		{"10k callers", 10_000, 1 << 20},
		{"1M callers at capacity", 1 << 20, 1 << 18},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := New(Config{MaxKeys: bc.maxKeys})
			b.ReportAllocs()
			b.SetParallelism(4)
			var seed atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(seed.Add(1), 2))
				i := 0
				for pb.Next() {
					caller := k(1e11 + uint64(r.IntN(bc.callers)))
					dialled := k(dialledX + uint64(r.IntN(1000)))
					at := base.Add(time.Duration(i) * time.Millisecond)
					_ = w.Counts(caller, dialled, at)
					w.Observe(caller, dialled, uint64(r.IntN(100)), at)
					if i%2 == 0 {
						w.ObserveEnd(caller, at, 30*time.Second)
					}
					i++
				}
			})
		})
	}
}

// BenchmarkMemory reports the heap per key after inserting 1M typical keys.
func BenchmarkMemory(b *testing.B) {
	const n = 1 << 20
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w := New(Config{MaxKeys: 2 * n})
		for i := range n {
			w.Observe(k(1e11+uint64(i)), k(dialledX+uint64(i%16)), uint64(i+1), base)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(w.Len()), "bytes/key")
		runtime.KeepAlive(w)
	}
}
