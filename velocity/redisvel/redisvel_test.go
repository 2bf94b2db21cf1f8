package redisvel_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/screen"
	"github.com/ringfence/ringfence/velocity"
	"github.com/ringfence/ringfence/velocity/redisvel"
)

var _ screen.SharedVelocity = (*redisvel.Shared)(nil)

const redisAddr = "127.0.0.1:6379"

var secret = []byte("test secret, 32 bytes long......")

// needRedis skips the test when Redis is not reachable, unless CI=true.
func needRedis(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", redisAddr, time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s unreachable (CI=true, not skipping): %v", redisAddr, err)
		}
		t.Skipf("Redis at %s unreachable, skipping (set CI=true to fail instead): %v", redisAddr, err)
	}
	c.Close()
}

// prefix returns a random key prefix and deletes its keys after the test.
func prefix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	p := "rftest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		if n := redisvel.DeletePrefix(redisAddr, p); n < 0 {
			t.Errorf("cleanup of %s failed", p)
		}
	})
	return p
}

func open(t *testing.T, addr, p string) *redisvel.Shared {
	t.Helper()
	s, err := redisvel.Open(redisvel.Config{Addr: addr, Prefix: p, Secret: secret, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// staleness is the bound documented for Interval 20ms, Timeout 200ms:
// two ticks plus two round trips at their timeout.
const staleness = 2*20*time.Millisecond + 2*200*time.Millisecond

// eventually polls f until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > within {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func TestSharedAcrossNodes(t *testing.T) {
	needRedis(t)
	p := prefix(t)
	a, b := open(t, redisAddr, p), open(t, redisAddr, p)
	t0 := time.Now().Truncate(time.Minute).Add(30 * time.Second)
	caller := velocity.Key{Tenant: 1, Num: 447400123456}
	for i := range 5 {
		dialled := velocity.Key{Tenant: 1, Num: 442079460100 + uint64(i)}
		a.Observe(caller, dialled, uint64(100+i), t0.Add(time.Duration(i)*time.Second))
		a.ObserveEnd(caller, t0.Add(time.Duration(i)*time.Second), 3*time.Second)
	}
	victim := velocity.Key{Tenant: 1, Num: 442079460100}
	q := t0.Add(10 * time.Second)
	want := velocity.Counts{CallerMinute: 5, CallerHour: 5, CallerDay: 5, DistinctDialledHour: 5,
		DistinctUsersDay: 5, SweepHour: 5, DistinctCallersTenMin: 1, EndedDay: 5, ShortDay: 5}
	var got velocity.Counts
	took := eventually(t, staleness, func() bool {
		got = b.Counts(caller, victim, q)
		return got == want
	})
	t.Logf("seen on B after %v (bound %v): %+v", took, staleness, got)
	// Other tenant, same number: nothing.
	if c := b.Counts(velocity.Key{Tenant: 2, Num: caller.Num}, victim, q); c.CallerMinute != 0 {
		t.Errorf("tenant 2 sees tenant 1's calls: %+v", c)
	}
	// Windows move with the query time.
	later := q.Add(2 * time.Minute)
	eventually(t, staleness, func() bool {
		c := b.Counts(caller, victim, later)
		return c.CallerMinute == 0 && c.CallerHour == 5 && c.DistinctCallersTenMin == 1
	})
	// No number in clear in Redis.
	for _, k := range redisvel.Keys(redisAddr, p) {
		if strings.Contains(k, "447400123456") || strings.Contains(k, "442079460100") {
			t.Errorf("number in clear in key %q", k)
		}
	}
	if st := a.Stats(); !st.Up || st.Flushed != 10 || st.Dropped != 0 {
		t.Errorf("A stats %+v", st)
	}
}

// Two engines sharing one Redis: a caller spreading calls over both trips
// the per-minute marker on B although B alone saw too few calls.
func TestEnginesShareVelocity(t *testing.T) {
	needRedis(t)
	p := prefix(t)
	t0 := time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second)
	engine := func() *screen.Engine {
		e := screen.New(screen.Config{Shared: open(t, redisAddr, p), Thresholds: screen.Thresholds{CallsPerMinute: 4},
			Now: func() time.Time { return t0 }})
		e.SetTenant(call.Tenant{ID: "bank", Region: "GB"}, call.DefaultPolicy())
		if err := e.PutRoute("bank", call.Route{ID: "dom", Kind: call.Domestic, Country: "GB"}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := engine(), engine()
	mk := func(e *screen.Engine, i int) *call.Call {
		return &call.Call{Tenant: "bank", Caller: e.Number("bank", "+447400123456"), Dialled: e.Number("bank", "+442079460100"),
			StartedAt: t0.Add(time.Duration(i) * time.Second), Ingress: "dom"}
	}
	observe := func(e *screen.Engine, c *call.Call) call.Verdict {
		v, _, err := e.Evaluate(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		c.Verdict = v
		e.Observe(c)
		return v
	}
	for i := range 3 {
		observe(a, mk(a, i))
	}
	observe(b, mk(b, 3)) // B alone: one call
	has := func(v call.Verdict) bool {
		for _, m := range v.Markers {
			if m.Code == "velocity.caller_minute" {
				return true
			}
		}
		return false
	}
	eventually(t, staleness, func() bool {
		v, _, err := b.Evaluate(context.Background(), mk(b, 4))
		return err == nil && has(v)
	})
}

// Redis unreachable: Counts answers at once (zero shared counts), the engine
// answers from its own windows, and nothing blocks.
func TestRedisDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	s := open(t, closed, "rftest:down:")
	e := screen.New(screen.Config{Shared: s, Thresholds: screen.Thresholds{CallsPerMinute: 3}})
	e.SetTenant(call.Tenant{ID: "bank", Region: "GB"}, call.DefaultPolicy())
	if err := e.PutRoute("bank", call.Route{ID: "dom", Kind: call.Domestic, Country: "GB"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	var last call.Verdict
	for i := range 4 {
		c := &call.Call{Tenant: "bank", Caller: e.Number("bank", "+447400123456"), Dialled: e.Number("bank", "+442079460100"),
			StartedAt: t0.Add(time.Duration(i) * time.Second), Ingress: "dom"}
		v, _, err := e.Evaluate(context.Background(), c)
		if err != nil {
			t.Fatalf("Evaluate with Redis down: %v", err)
		}
		c.Verdict = v
		e.Observe(c)
		last = v
	}
	found := false
	for _, m := range last.Markers {
		found = found || m.Code == "velocity.caller_minute"
	}
	if !found {
		t.Errorf("local counts lost with Redis down: markers %v", last.Markers)
	}
	// Let the background goroutine try (and fail) to reach Redis meanwhile.
	eventually(t, 5*time.Second, func() bool { return s.Stats().Errors > 0 })
	caller := velocity.Key{Tenant: 1, Num: 447400123456}
	var worst time.Duration
	for i := range 1000 {
		start := time.Now()
		s.Observe(caller, velocity.Key{Tenant: 1, Num: 1}, 0, t0)
		s.Counts(caller, velocity.Key{Tenant: 1, Num: uint64(i + 1)}, t0)
		worst = max(worst, time.Since(start))
	}
	if worst > 5*time.Millisecond { // microseconds normally; generous for -race on a shared machine
		t.Errorf("Observe+Counts took up to %v with Redis down", worst)
	}
	t.Logf("worst Observe+Counts with Redis down: %v; stats %+v", worst, s.Stats())
	if st := s.Stats(); st.Up || st.Dropped == 0 {
		t.Errorf("stats with Redis down: %+v", st)
	}
}
