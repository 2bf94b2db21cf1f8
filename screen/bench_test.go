package screen_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/screen"
)

// Sizes of the benchmark engine's state (the budget is stated for 1M-entry
// lists).
const (
	benchDeny       = 1_000_000
	benchDNO        = 100_000
	benchAllow      = 100_000
	benchPopulation = 100_000 // callers already seen
)

// Number ranges the benchmark lists and callers are drawn from, as E.164
// digits. The lists are generated numerically: a list entry needs only
// E164 (call.Number.Key reads nothing else).
const (
	denyBase    = 441130000000 // +44113 0xxxxxx
	dnoBase     = 448000000000 // +44800 0xxxxxx: the tenant's published numbers
	allowBase   = 447500000000 // +447500 xxxxxx
	popBase     = 447400000000 // +4474xx mobiles
	coldBase    = 447900000000 // +4479 mobiles never seen before the cold run
	dialledBase = 442079460100 // +4420 7946 01xx: the tenant's direct lines
)

// benchCaller is one member of the warm population: raw strings as a
// front end receives them.
type benchCaller struct {
	raw, from string
	pai       []string
	verstat   string
	user      string
}

type benchEnv struct {
	e         *screen.Engine
	pop       []benchCaller
	dialled   []string // raw dialled numbers
	ingresses []string
	clock     atomic.Int64 // event time, Unix ns; moves 1 ms a call
	cold      atomic.Uint64
}

var (
	benchOnce sync.Once
	benchE    *benchEnv
)

func e164(digits uint64) string { return "+" + strconv.FormatUint(digits, 10) }

// env builds the benchmark engine once (about a million list entries and a
// warm population): every variant shares it.
func env(b *testing.B) *benchEnv {
	benchOnce.Do(func() {
		start := time.Now()
		benchE = newBenchEnv(b)
		b.Logf("benchmark engine built in %v", time.Since(start).Round(time.Millisecond))
	})
	return benchE
}

func newBenchEnv(b *testing.B) *benchEnv {
	e := screen.New(screen.Config{})
	e.SetTenant(call.Tenant{ID: tid, Name: "Bank", Region: "GB"}, call.DefaultPolicy())
	for _, r := range testRoutes {
		if err := e.PutRoute(tid, r); err != nil {
			b.Fatal(err)
		}
	}
	put := func(kind call.ListKind, base uint64, n int, reason string) {
		const batch = 10_000
		entries := make([]call.ListEntry, 0, batch)
		for i := 0; i < n; i++ {
			entries = append(entries, call.ListEntry{List: kind, Number: call.Number{E164: e164(base + uint64(i))}, Reason: reason})
			if len(entries) == batch || i == n-1 {
				if err := e.PutListEntries(tid, entries...); err != nil {
					b.Fatal(err)
				}
				entries = entries[:0]
			}
		}
		if got := e.ListLen(tid, kind); got != n {
			b.Fatalf("%s list holds %d entries, want %d", kind, got, n)
		}
	}
	put(call.DenyList, denyBase, benchDeny, "confirmed fraud")
	put(call.DNOList, dnoBase, benchDNO, "")
	put(call.AllowList, allowBase, benchAllow, "staff")

	env := &benchEnv{e: e, ingresses: []string{"dom", "dom", "dom", "dom", "dom", "dom", "dom", "dom", "intl-fr", "intl"}}
	for i := range 10 {
		env.dialled = append(env.dialled, "0800 000 000"+strconv.Itoa(i)) // published, on the DNO list
	}
	for i := range 90 {
		d := strconv.FormatUint(dialledBase+uint64(i), 10)
		env.dialled = append(env.dialled, "0"+d[2:4]+" "+d[4:8]+" "+d[8:]) // "020 7946 01xx"
	}
	r := rand.New(rand.NewPCG(1, 2))
	verstats := []string{"", "", "", "TN-Validation-Passed-A", "No-TN-Validation", "tn_validation_passed_b"}
	for i := range benchPopulation {
		digits := popBase + uint64(i)*97
		switch {
		case i%100 == 0: // some callers are listed
			digits = denyBase + uint64(r.IntN(benchDeny))
		case i%200 == 1:
			digits = allowBase + uint64(r.IntN(benchAllow))
		case i%1000 == 2:
			digits = dnoBase + uint64(r.IntN(benchDNO))
		}
		num := e164(digits)
		c := benchCaller{verstat: verstats[r.IntN(len(verstats))]}
		switch i % 3 { // the formats front ends send
		case 0:
			c.raw = num
		case 1:
			c.raw = "0" + num[3:]
		case 2:
			c.raw = "tel:" + num
		}
		if i%2 == 0 {
			c.from = "<sip:" + num + "@carrier.example>;tag=" + strconv.Itoa(i)
			c.pai = []string{"<sip:" + num + "@carrier.example;user=phone>"}
		}
		if i%4 != 3 {
			c.user = "cust-" + strconv.Itoa(i)
		}
		env.pop = append(env.pop, c)
	}
	// Warm up: every caller seen once in the last day, so its numbers are
	// normalised and cached and the velocity windows hold it.
	env.clock.Store(t0.Add(-24 * time.Hour).UnixNano())
	for i := range env.pop {
		if _, err := env.screenOne(&env.pop[i], env.dialled[i%len(env.dialled)], env.ingresses[i%len(env.ingresses)], int64(time.Second)*86400/benchPopulation); err != nil {
			b.Fatal(err)
		}
	}
	return env
}

// screenOne is the measured work: build the call from raw strings, evaluate
// it, record the verdict and count it.
func (env *benchEnv) screenOne(bc *benchCaller, dialled, ingress string, step int64) (call.Verdict, error) {
	e := env.e
	c := call.Call{
		Tenant:    tid,
		Caller:    e.Number(tid, bc.raw),
		Dialled:   e.Number(tid, dialled),
		StartedAt: time.Unix(0, env.clock.Add(step)),
		Ingress:   ingress,
		UserRef:   bc.user,
		Signalling: call.Signalling{
			From:    bc.from,
			PAI:     bc.pai,
			Verstat: bc.verstat,
		},
	}
	live, shadow, err := e.Evaluate(context.Background(), &c)
	if err != nil {
		return live, err
	}
	c.Verdict, c.Shadow = live, shadow
	e.Observe(&c)
	return live, nil
}

// BenchmarkEvaluate measures the per-call path of a front end: normalise
// the raw caller and dialled numbers, evaluate, observe. The engine holds a
// 1M-entry deny list, 100k DNO and 100k allow entries, and a warm
// population of 100k callers.
func BenchmarkEvaluate(b *testing.B) {
	b.Run("warm", func(b *testing.B) {
		env := env(b)
		r := rand.New(rand.NewPCG(3, 4))
		idx := make([]int32, b.N) // draw outside the timed loop
		for i := range idx {
			idx[i] = int32(r.IntN(len(env.pop)))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			j := idx[i]
			if _, err := env.screenOne(&env.pop[j], env.dialled[j%100], env.ingresses[j%10], int64(time.Millisecond)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold-caller", func(b *testing.B) {
		env := env(b)
		callers := make([]benchCaller, b.N) // every caller new to the engine
		for i := range callers {
			num := e164(coldBase + env.cold.Add(1)*13)
			callers[i] = benchCaller{raw: num, from: "<sip:" + num + "@carrier.example>", user: "new-" + num[1:]}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := env.screenOne(&callers[i], env.dialled[i%100], "dom", int64(time.Millisecond)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		env := env(b)
		var seed atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(seed.Add(1), 5))
			for pb.Next() {
				j := r.IntN(len(env.pop))
				if _, err := env.screenOne(&env.pop[j], env.dialled[j%100], env.ingresses[j%10], int64(time.Millisecond)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkEvaluatePercentiles times each warm call separately and reports
// the median and tail (the budget is p99 <= 50 µs).
func BenchmarkEvaluatePercentiles(b *testing.B) {
	env := env(b)
	r := rand.New(rand.NewPCG(6, 7))
	idx := make([]int32, b.N)
	for i := range idx {
		idx[i] = int32(r.IntN(len(env.pop)))
	}
	took := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := idx[i]
		start := time.Now()
		_, err := env.screenOne(&env.pop[j], env.dialled[j%100], env.ingresses[j%10], int64(time.Millisecond))
		took[i] = time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	at := func(q float64) float64 {
		return float64(took[min(len(took)-1, int(q*float64(len(took))))].Nanoseconds())
	}
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
	b.ReportMetric(at(0.999), "p99.9-ns")
}
