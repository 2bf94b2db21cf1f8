package stir

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// entry is one cached x5u resource: a certificate ready for verification,
// or a failure. Entries are immutable once stored, except used.
type entry struct {
	url string

	// A certificate.
	cert      *x509.Certificate
	pub       *ecdsa.PublicKey // nil when the key is not P-256
	spc       string
	notBefore time.Time // validity of the chain to the root
	notAfter  time.Time
	profile   []Reason // profile and trust findings, Passport -1, time-independent
	trusted   bool     // the certificate chains to a configured root

	// A failure (cert == nil).
	fail Reason

	expires time.Time // fresh until (max-age, or the negative TTL)
	retryAt time.Time // no refetch before (after a failed refresh)
	used    int64     // last use, Unix nanoseconds; accessed atomically
}

func (e *entry) touch(now time.Time) { atomic.StoreInt64(&e.used, now.UnixNano()) }

// withRetry returns a copy of a certificate entry that will not be refetched
// before t.
func (e *entry) withRetry(t time.Time) *entry {
	c := &entry{
		url: e.url, cert: e.cert, pub: e.pub, spc: e.spc, notBefore: e.notBefore, notAfter: e.notAfter,
		profile: e.profile, trusted: e.trusted, fail: e.fail, expires: e.expires, retryAt: t,
	}
	c.used = atomic.LoadInt64(&e.used)
	return c
}

// lookup returns the cached entry for u. When fetch is set it starts a
// background fetch when there is none, it is a failure that has expired, or
// it is a certificate past its freshness (which is still returned, within
// MaxStale). A nil entry means the certificate is not available.
func (v *Verifier) lookup(u string, fetch bool) *entry {
	v.mu.RLock()
	e := v.cache[u]
	v.mu.RUnlock()
	now := v.now()
	if !fetch {
		if e == nil || (e.cert == nil && !now.Before(e.expires)) || (e.cert != nil && !now.Before(e.expires.Add(v.cfg.MaxStale))) {
			return nil
		}
		e.touch(now)
		return e
	}
	if e == nil {
		v.stats.misses.Add(1)
		v.startFetch(u)
		return nil
	}
	e.touch(now)
	if e.cert == nil {
		if now.Before(e.expires) {
			v.stats.negativeHits.Add(1)
			return e
		}
		v.stats.misses.Add(1)
		v.startFetch(u)
		return nil
	}
	if now.Before(e.expires) {
		v.stats.hits.Add(1)
		return e
	}
	if !now.Before(e.expires.Add(v.cfg.MaxStale)) {
		v.stats.misses.Add(1)
		v.startFetch(u)
		return nil
	}
	v.stats.stale.Add(1)
	if !now.Before(e.retryAt) {
		v.startFetch(u)
	}
	return e
}

// startFetch fetches u in the background unless a fetch of u is in flight,
// the verifier is closed, or MaxFetches fetches are running (the next call
// that needs u tries again).
func (v *Verifier) startFetch(u string) {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	if _, ok := v.inflight[u]; ok {
		v.mu.Unlock()
		return
	}
	select {
	case v.sem <- struct{}{}:
	default:
		v.mu.Unlock()
		v.stats.dropped.Add(1)
		return
	}
	if len(v.inflight) == 0 {
		v.idle = make(chan struct{})
	}
	v.inflight[u] = struct{}{}
	v.stats.fetches.Add(1)
	v.wg.Add(1)
	v.mu.Unlock()
	go func() {
		defer v.wg.Done()
		_ = v.fetch(v.ctx, u)
		<-v.sem
		v.mu.Lock()
		delete(v.inflight, u)
		if len(v.inflight) == 0 {
			close(v.idle)
		}
		v.mu.Unlock()
	}()
}

// fetch gets u and stores the outcome: the certificate, or the failure.
func (v *Verifier) fetch(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.FetchTimeout)
	certs, ttl, err := v.get(ctx, u)
	cancel()
	now := v.now()
	if err != nil {
		v.stats.fetchErrors.Add(1)
		v.log.Warn("stir: certificate fetch failed", "x5u", u, "err", err)
		v.mu.Lock()
		if old := v.cache[u]; old != nil && old.cert != nil && now.Before(old.expires.Add(v.cfg.MaxStale)) {
			// Keep serving the certificate we had; try again later.
			v.cache[u] = old.withRetry(now.Add(v.cfg.NegativeTTL))
		} else {
			e := &entry{url: u, fail: fatal(CodeFetchFailed, err.Error()), expires: now.Add(v.cfg.NegativeTTL)}
			e.touch(now)
			v.store(e)
		}
		v.mu.Unlock()
		return err
	}
	e := v.prepare(u, certs)
	e.expires = now.Add(ttl)
	e.retryAt = e.expires
	e.touch(now)
	v.mu.Lock()
	v.store(e)
	v.mu.Unlock()
	return nil
}

// store puts e in the cache. When the cache is full it evicts the least
// recently used entry that cannot verify a call (a failure, or a certificate
// without a trusted chain) or, when there is none, the least recently used
// entry: x5u URLs that lead nowhere, which anyone can put in a PASSporT,
// never push out the certificates of real carriers. Callers hold v.mu.
func (v *Verifier) store(e *entry) {
	if _, ok := v.cache[e.url]; !ok && len(v.cache) >= v.cfg.CacheSize {
		var oldest, oldestWeak *entry
		for _, c := range v.cache {
			used := atomic.LoadInt64(&c.used)
			if oldest == nil || used < atomic.LoadInt64(&oldest.used) {
				oldest = c
			}
			if !c.trusted && (oldestWeak == nil || used < atomic.LoadInt64(&oldestWeak.used)) {
				oldestWeak = c
			}
		}
		victim := oldest
		if oldestWeak != nil {
			victim = oldestWeak
		}
		if victim != nil {
			delete(v.cache, victim.url)
			v.stats.evictions.Add(1)
		}
	}
	v.cache[e.url] = e
}

// prepare checks a fetched certificate once, so that each call only
// compares times and verifies a signature.
func (v *Verifier) prepare(u string, certs []*x509.Certificate) *entry {
	leaf := certs[0]
	e := &entry{url: u, cert: leaf, spc: SPC(leaf)}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
		e.pub = k
	}
	profile := CheckCertificateAs(leaf, EndEntity, time.Time{})
	inter := v.cfg.Intermediates
	if len(certs) > 1 {
		if inter != nil {
			inter = inter.Clone()
		} else {
			inter = x509.NewCertPool()
		}
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
	}
	var trust []Reason
	e.notBefore, e.notAfter, trust = CheckChain(leaf, inter, v.cfg.Roots)
	e.trusted = len(trust) == 0
	profile = append(profile, trust...)
	if v.cfg.StrictProfile {
		for i := range profile {
			profile[i].Severity = Fatal
		}
	}
	e.profile = profile
	return e
}

var (
	errTooLarge = errors.New("response larger than the size limit")
	errNoCert   = errors.New("response holds no certificate")
)

// get fetches an x5u resource and returns its certificates and how long to
// cache them.
func (v *Verifier) get(ctx context.Context, u string) ([]*x509.Certificate, time.Duration, error) {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" || (pu.Scheme != "https" && !(pu.Scheme == "http" && v.cfg.AllowHTTP)) {
		return nil, 0, fmt.Errorf("x5u %q is not an acceptable URL", u)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/pem-certificate-chain, application/x-pem-file, application/pkix-cert;q=0.9, */*;q=0.5")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if resp.ContentLength > v.cfg.MaxCertBytes {
		return nil, 0, fmt.Errorf("%w (%d bytes, limit %d)", errTooLarge, resp.ContentLength, v.cfg.MaxCertBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, v.cfg.MaxCertBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the response: %w", err)
	}
	if int64(len(body)) > v.cfg.MaxCertBytes {
		return nil, 0, fmt.Errorf("%w (limit %d)", errTooLarge, v.cfg.MaxCertBytes)
	}
	certs, err := ParseCertificates(body)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errNoCert, err)
	}
	return certs, v.ttl(resp.Header.Values("Cache-Control")), nil
}

// ttl is how long a fetched certificate stays fresh: Cache-Control max-age
// (no-cache and no-store count as 0), clamped to [MinTTL, MaxTTL];
// DefaultTTL when the response says nothing.
func (v *Verifier) ttl(cc []string) time.Duration {
	d, set := time.Duration(0), false
	for _, line := range cc {
		for _, dir := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				d, set = 0, true
			case "max-age":
				if n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64); err == nil && n >= 0 && !set {
					if n > int64(v.cfg.MaxTTL/time.Second) {
						n = int64(v.cfg.MaxTTL / time.Second)
					}
					d, set = time.Duration(n)*time.Second, true
				}
			}
		}
	}
	if !set {
		return v.cfg.DefaultTTL
	}
	return min(max(d, v.cfg.MinTTL), v.cfg.MaxTTL)
}

func (v *Verifier) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("more than 3 redirects")
	}
	if req.URL.Scheme != "https" && !(req.URL.Scheme == "http" && v.cfg.AllowHTTP) {
		return fmt.Errorf("redirect to a %s URL refused", req.URL.Scheme)
	}
	return nil
}
