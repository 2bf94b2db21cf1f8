package httpapi

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ringfence/ringfence/call"
)

// limiter is a set of token buckets, one per key (an API key, a client
// address), refilled at rate per second up to burst. Buckets that have
// refilled completely are swept once a minute, so a stream of new keys
// (addresses) cannot grow it without bound for longer than that.
type limiter struct {
	rate, burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	b := float64(burst)
	if b <= 0 {
		b = 2 * rate
	}
	return &limiter{rate: rate, burst: max(b, 1), buckets: map[string]*bucket{}}
}

// take takes a token from key's bucket and returns 0, or how long to wait
// for one when the bucket is empty. A nil limiter never limits.
func (l *limiter) take(key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		full := time.Duration(l.burst / l.rate * float64(time.Second))
		for k, b := range l.buckets {
			if now.Sub(b.last) > full {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// tooMany answers 429 with Retry-After in whole seconds, rounded up.
func tooMany(w http.ResponseWriter, wait time.Duration, what string) {
	w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	writeError(w, call.Errorf(call.Overloaded, "%s exceeded; retry after the time in Retry-After", what))
}

// LimitPerSource wraps h with a rate limit per client address (the TCP
// peer's IP: a proxy in front counts as one source): over rate requests
// per second (bursts of up to burst), requests get 429 with Retry-After.
// It guards everything behind it, signed-in or not, so it also slows
// credential guessing. rate <= 0 returns h unchanged.
func LimitPerSource(h http.Handler, rate float64, burst int) http.Handler {
	l := newLimiter(rate, burst)
	if l == nil {
		return h
	}
	what := "the rate limit of " + strconv.FormatFloat(rate, 'g', -1, 64) + " requests/s per client address"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			src = r.RemoteAddr
		}
		if wait := l.take(src, time.Now()); wait > 0 {
			tooMany(w, wait, what)
			return
		}
		h.ServeHTTP(w, r)
	})
}
