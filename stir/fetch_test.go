package stir

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fetchEnv is an env with a fake clock for the cache.
func fetchEnv(t *testing.T, cfg Config) (*env, *fakeClock) {
	clock := &fakeClock{t: callTime}
	cfg.Now = clock.Now
	return newEnv(t, cfg), clock
}

// verifyAt verifies id as a fresh call at the clock's time.
func (e *env) verifyAt(t *testing.T, clock *fakeClock, x5u string) Result {
	t.Helper()
	now := clock.Now()
	id := passport(t, e.sp.key, PPTShaken, x5u, claimsFor(caller, dialled, now, "A"))
	return e.v.Verify([]string{id}, caller, dialled, now)
}

func TestFetchSizeLimit(t *testing.T) {
	e, clock := fetchEnv(t, Config{MaxCertBytes: 4 << 10})
	big := append(e.sp.pem(), bytes.Repeat([]byte("# padding\n"), 1000)...)
	x5u := e.cs.put("/big.pem", big, nil)
	if r := e.verifyAt(t, clock, x5u); r.Status != Unverified {
		t.Fatalf("%s", describe(r))
	}
	wait(t, e.v)
	r := e.verifyAt(t, clock, x5u)
	if r.Status != Failed || !r.HasFatal(CodeFetchFailed) || !strings.Contains(reasonText(r, CodeFetchFailed), "larger than") {
		t.Fatalf("%s", describe(r))
	}
	if err := e.v.Fetch(context.Background(), x5u); !errors.Is(err, errTooLarge) {
		t.Errorf("Fetch: %v", err)
	}
	// The same certificate within the limit is fine.
	if r := e.verifyAt(t, clock, e.x5u); r.Status != Unverified {
		t.Fatalf("%s", describe(r))
	}
	wait(t, e.v)
	if r := e.verifyAt(t, clock, e.x5u); r.Status != Verified {
		t.Fatalf("%s", describe(r))
	}
}

func TestFetchTimeout(t *testing.T) {
	e, clock := fetchEnv(t, Config{FetchTimeout: 50 * time.Millisecond})
	x5u := e.cs.URL + "/slow"
	start := time.Now()
	if r := e.verifyAt(t, clock, x5u); r.Status != Unverified {
		t.Fatalf("%s", describe(r))
	}
	if d := time.Since(start); d > 40*time.Millisecond {
		t.Errorf("Verify took %v: it must not wait for the fetch", d)
	}
	wait(t, e.v)
	r := e.verifyAt(t, clock, x5u)
	if r.Status != Failed || !r.HasFatal(CodeFetchFailed) {
		t.Fatalf("%s", describe(r))
	}
}

func TestFetchHTTP(t *testing.T) {
	plain := newCertServer(t, false)
	t.Run("refused by default", func(t *testing.T) {
		e, clock := fetchEnv(t, Config{})
		x5u := plain.put("/sp.pem", e.sp.pem(), nil)
		r := e.verifyAt(t, clock, x5u)
		if r.Status != Failed || !r.HasFatal(CodeInsecureX5U) {
			t.Fatalf("%s", describe(r))
		}
		if err := e.v.Fetch(context.Background(), x5u); err == nil {
			t.Error("Fetch of an http URL succeeded")
		}
		wait(t, e.v)
		if n := plain.count("/sp.pem"); n != 0 {
			t.Errorf("%d requests to the http server", n)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		e, clock := fetchEnv(t, Config{AllowHTTP: true})
		x5u := plain.put("/sp2.pem", e.sp.pem(), nil)
		e.verifyAt(t, clock, x5u)
		wait(t, e.v)
		if r := e.verifyAt(t, clock, x5u); r.Status != Verified {
			t.Fatalf("%s", describe(r))
		}
	})
	t.Run("redirect to http refused", func(t *testing.T) {
		e, clock := fetchEnv(t, Config{})
		target := plain.put("/sp3.pem", e.sp.pem(), nil)
		x5u := e.cs.put("/moved.pem", nil, http.Header{"Location": {target}})
		e.cs.setStatus("/moved.pem", http.StatusFound)
		e.verifyAt(t, clock, x5u)
		wait(t, e.v)
		r := e.verifyAt(t, clock, x5u)
		if !r.HasFatal(CodeFetchFailed) || !strings.Contains(reasonText(r, CodeFetchFailed), "redirect") {
			t.Fatalf("%s", describe(r))
		}
		if n := plain.count("/sp3.pem"); n != 0 {
			t.Errorf("followed the redirect to http")
		}
	})
	t.Run("not a URL", func(t *testing.T) {
		e, clock := fetchEnv(t, Config{})
		r := e.verifyAt(t, clock, "ftp://example.com/sp.pem")
		if !r.HasFatal(CodeInsecureX5U) {
			t.Fatalf("%s", describe(r))
		}
		r = e.verifyAt(t, clock, "https://")
		if !r.HasFatal(CodeInsecureX5U) {
			t.Fatalf("%s", describe(r))
		}
	})
}

func TestFetchNegativeCache(t *testing.T) {
	e, clock := fetchEnv(t, Config{NegativeTTL: time.Minute})
	x5u := e.cs.put("/flaky.pem", e.sp.pem(), nil)
	e.cs.setStatus("/flaky.pem", http.StatusServiceUnavailable)

	e.verifyAt(t, clock, x5u)
	wait(t, e.v)
	for range 3 {
		r := e.verifyAt(t, clock, x5u)
		if r.Status != Failed || !r.HasFatal(CodeFetchFailed) || !strings.Contains(reasonText(r, CodeFetchFailed), "503") {
			t.Fatalf("%s", describe(r))
		}
		clock.Add(10 * time.Second)
	}
	wait(t, e.v)
	if n := e.cs.count("/flaky.pem"); n != 1 {
		t.Fatalf("%d requests within the negative TTL, want 1", n)
	}
	if s := e.v.Stats(); s.NegativeHits != 3 || s.FetchErrors != 1 {
		t.Errorf("stats %+v", s)
	}

	e.cs.setStatus("/flaky.pem", 0)
	clock.Add(31 * time.Second) // past the negative TTL
	if r := e.verifyAt(t, clock, x5u); r.Status != Unverified {
		t.Fatalf("after the negative TTL: %s", describe(r))
	}
	wait(t, e.v)
	if r := e.verifyAt(t, clock, x5u); r.Status != Verified {
		t.Fatalf("after the retry: %s", describe(r))
	}
	if n := e.cs.count("/flaky.pem"); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestFetchMaxAge(t *testing.T) {
	e, clock := fetchEnv(t, Config{})
	x5u := e.cs.put("/aged.pem", e.sp.pem(), http.Header{"Cache-Control": {"public, max-age=600"}})
	e.verifyAt(t, clock, x5u)
	wait(t, e.v)

	clock.Add(599 * time.Second)
	if r := e.verifyAt(t, clock, x5u); r.Status != Verified {
		t.Fatalf("%s", describe(r))
	}
	wait(t, e.v)
	if n := e.cs.count("/aged.pem"); n != 1 {
		t.Fatalf("refetched within max-age: %d requests", n)
	}

	// Past max-age: the cached certificate still verifies the call while a
	// background refresh runs.
	clock.Add(2 * time.Second)
	if r := e.verifyAt(t, clock, x5u); r.Status != Verified {
		t.Fatalf("stale: %s", describe(r))
	}
	wait(t, e.v)
	if n := e.cs.count("/aged.pem"); n != 2 {
		t.Fatalf("%d requests after max-age, want 2", n)
	}
	if s := e.v.Stats(); s.Stale != 1 {
		t.Errorf("stats %+v", s)
	}

	// A failed refresh keeps the old certificate and backs off.
	e.cs.setStatus("/aged.pem", http.StatusNotFound)
	clock.Add(601 * time.Second)
	for range 3 {
		if r := e.verifyAt(t, clock, x5u); r.Status != Verified {
			t.Fatalf("refresh failed: %s", describe(r))
		}
		wait(t, e.v)
	}
	if n := e.cs.count("/aged.pem"); n != 3 {
		t.Fatalf("%d requests, want 3 (one failed refresh, then back-off)", n)
	}

	// Beyond MaxStale the certificate is no longer used.
	clock.Add(25 * time.Hour)
	if r := e.verifyAt(t, clock, x5u); r.Status != Unverified {
		t.Fatalf("beyond MaxStale: %s", describe(r))
	}
	wait(t, e.v)
}

func TestTTL(t *testing.T) {
	v := newVerifier(t, Config{})
	for _, tc := range []struct {
		cc   []string
		want time.Duration
	}{
		{nil, time.Hour},
		{[]string{"max-age=600"}, 10 * time.Minute},
		{[]string{"public", "max-age=\"7200\""}, 2 * time.Hour},
		{[]string{"max-age=5"}, time.Minute},
		{[]string{"max-age=0"}, time.Minute},
		{[]string{"no-store"}, time.Minute},
		{[]string{"no-cache, max-age=3600"}, time.Minute},
		{[]string{"max-age=31536000"}, 24 * time.Hour},
		{[]string{"max-age=99999999999999999999"}, time.Hour},
		{[]string{"private, MAX-AGE=120"}, 2 * time.Minute},
	} {
		if got := v.ttl(tc.cc); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.cc, got, tc.want)
		}
	}
}

func TestCacheEvicts(t *testing.T) {
	e, clock := fetchEnv(t, Config{CacheSize: 2})
	var urls []string
	for _, name := range []string{"/a.pem", "/b.pem", "/c.pem"} {
		urls = append(urls, e.cs.put(name, e.sp.pem(), nil))
	}
	for _, u := range urls[:2] {
		e.warm(t, u)
		clock.Add(time.Second)
	}
	e.verifyAt(t, clock, urls[0]) // a is now more recently used than b
	clock.Add(time.Second)
	e.warm(t, urls[2]) // evicts b
	if s := e.v.Stats(); s.Entries != 2 || s.Evictions != 1 {
		t.Fatalf("stats %+v", s)
	}
	// b last: its refetch evicts another entry.
	for _, c := range []struct {
		i    int
		want Status
	}{{0, Verified}, {2, Verified}, {1, Unverified}} {
		if r := e.verifyAt(t, clock, urls[c.i]); r.Status != c.want {
			t.Errorf("%s: %s, want %s", urls[c.i], r.Status, c.want)
		}
	}
	wait(t, e.v)
}

func TestCacheKeepsTrustedCertificates(t *testing.T) {
	e, clock := fetchEnv(t, Config{CacheSize: 3})
	e.warm(t, e.x5u)
	clock.Add(time.Second)
	// Junk x5u, as anyone can put in a PASSporT: failures and a
	// certificate from an unknown root.
	stranger := newRoot(t, "Stranger").sp(t, "6666")
	e.warm(t, e.cs.put("/stranger.pem", stranger.pem(), nil))
	for i := range 5 {
		clock.Add(time.Second)
		e.v.Fetch(context.Background(), e.cs.URL+"/missing-"+string(rune('a'+i)))
	}
	if s := e.v.Stats(); s.Entries != 3 || s.Evictions != 4 {
		t.Fatalf("stats %+v", s)
	}
	if r := e.verifyAt(t, clock, e.x5u); r.Status != Verified {
		t.Fatalf("trusted certificate evicted by junk: %s", describe(r))
	}
}

func TestFetchBadBody(t *testing.T) {
	e, clock := fetchEnv(t, Config{})
	x5u := e.cs.put("/junk.pem", []byte("<html>not a certificate</html>"), nil)
	e.verifyAt(t, clock, x5u)
	wait(t, e.v)
	if r := e.verifyAt(t, clock, x5u); !r.HasFatal(CodeFetchFailed) {
		t.Fatalf("%s", describe(r))
	}
	// DER instead of PEM is accepted.
	der := e.cs.put("/sp.der", e.sp.cert.Raw, nil)
	e.verifyAt(t, clock, der)
	wait(t, e.v)
	if r := e.verifyAt(t, clock, der); r.Status != Failed || !r.HasFatal(CodeUntrustedCert) {
		// A bare DER leaf carries no intermediate.
		t.Fatalf("%s", describe(r))
	}
}

func TestFetchLimitsConcurrency(t *testing.T) {
	e, clock := fetchEnv(t, Config{MaxFetches: 1, FetchTimeout: time.Minute})
	slow := e.cs.URL + "/slow"
	e.verifyAt(t, clock, slow) // occupies the only fetch slot
	r := e.verifyAt(t, clock, e.x5u)
	if r.Status != Unverified {
		t.Fatalf("%s", describe(r))
	}
	if s := e.v.Stats(); s.Dropped != 1 || s.Fetches != 1 {
		t.Errorf("stats %+v", s)
	}
	// Close cancels the slow fetch and returns.
	done := make(chan struct{})
	go func() { e.v.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the fetch in flight")
	}
	// After Close, Verify still answers and starts nothing.
	if r := e.verifyAt(t, clock, e.x5u); r.Status != Unverified {
		t.Fatalf("%s", describe(r))
	}
	if s := e.v.Stats(); s.Fetches != 1 {
		t.Errorf("fetch started after Close: %+v", s)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	e, clock := fetchEnv(t, Config{FetchTimeout: time.Minute})
	e.verifyAt(t, clock, e.cs.URL+"/slow")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.v.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait: %v", err)
	}
}

func reasonText(r Result, c Code) string {
	for _, x := range r.Reasons {
		if x.Code == c {
			return x.Text
		}
	}
	return ""
}
