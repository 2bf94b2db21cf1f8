package httpapi

import (
	"sync"
	"time"
)

// bucket is a token bucket for one tenant.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// limit takes a token from the tenant's bucket and returns 0, or how long
// to wait for one when the bucket is empty.
func (s *Server) limit(tenant string) time.Duration {
	rate := s.cfg.RatePerKey
	if rate <= 0 {
		return 0
	}
	burst := float64(s.cfg.Burst)
	if burst <= 0 {
		burst = 2 * rate
	}
	v, _ := s.limits.LoadOrStore(tenant, &bucket{tokens: burst, last: time.Now()})
	b := v.(*bucket)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second))
}
