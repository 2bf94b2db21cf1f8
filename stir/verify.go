package stir

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxIdentities is the most Identity header values Verify looks at for one
// call; further values are reported (malformed, warning) and ignored.
const MaxIdentities = 8

// Config configures a Verifier. Zero values take the defaults in
// parentheses.
type Config struct {
	// Roots are the trusted STI-CA root certificates (the STI-PA's list).
	// With none, every certificate is untrusted (untrusted_cert). Neither
	// pool may be modified after New.
	Roots *x509.CertPool
	// Intermediates are extra STI-CA intermediates for chain building,
	// beside those an x5u resource carries after its first certificate.
	Intermediates *x509.CertPool

	Freshness    time.Duration // (60s) iat must be within this of the call's start
	FetchTimeout time.Duration // (2s) one certificate fetch, connection to last byte
	MaxCertBytes int64         // (64 KiB) largest x5u response accepted
	AllowHTTP    bool          // fetch x5u over plain http too (https only by default)

	CacheSize   int           // (1024) certificates and failures cached, by URL; failures and untrusted certificates evicted first, least recently used first
	DefaultTTL  time.Duration // (1h) freshness of a certificate whose response has no max-age
	MinTTL      time.Duration // (1m) floor for max-age (no-cache and no-store count as 0)
	MaxTTL      time.Duration // (24h) ceiling for max-age
	NegativeTTL time.Duration // (60s) how long a failed fetch is remembered before retrying
	// MaxStale (24h) is how long past its freshness a certificate is still
	// used while its background refresh has not succeeded.
	MaxStale   time.Duration
	MaxFetches int // (8) background fetches at once; more are dropped and retried by a later call

	// StrictProfile makes every certificate profile finding fatal; by
	// default only those that undermine the signature are (see
	// CheckCertificate).
	StrictProfile bool

	HTTPClient *http.Client     // (a client with no timeout of its own) used for x5u fetches
	Now        func() time.Time // (time.Now) clock for cache freshness; calls carry their own time
	Log        *slog.Logger     // (discard) fetch failures are logged at Warn
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Freshness, 60*time.Second)
	def(&c.FetchTimeout, 2*time.Second)
	def(&c.DefaultTTL, time.Hour)
	def(&c.MinTTL, time.Minute)
	def(&c.MaxTTL, 24*time.Hour)
	def(&c.NegativeTTL, 60*time.Second)
	def(&c.MaxStale, 24*time.Hour)
	if c.MaxCertBytes <= 0 {
		c.MaxCertBytes = 64 << 10
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 1024
	}
	if c.MaxFetches <= 0 {
		c.MaxFetches = 8
	}
	if c.MinTTL > c.MaxTTL {
		c.MinTTL = c.MaxTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Verifier verifies the Identity headers of calls. It is safe for concurrent
// use. Verify never blocks on the network: certificates are fetched in
// background goroutines that Close stops.
type Verifier struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}

	mu       sync.RWMutex
	cache    map[string]*entry
	inflight map[string]struct{}
	idle     chan struct{} // closed when inflight becomes empty
	closed   bool

	stats struct {
		hits, stale, negativeHits, misses        atomic.Uint64
		fetches, fetchErrors, dropped, evictions atomic.Uint64
	}
}

// New returns a Verifier for cfg. It starts no goroutine until a
// certificate is needed.
func New(cfg Config) *Verifier {
	cfg = cfg.withDefaults()
	v := &Verifier{
		cfg:      cfg,
		log:      cfg.Log,
		now:      cfg.Now,
		sem:      make(chan struct{}, cfg.MaxFetches),
		cache:    make(map[string]*entry),
		inflight: make(map[string]struct{}),
		idle:     make(chan struct{}),
	}
	close(v.idle)
	v.ctx, v.cancel = context.WithCancel(context.Background())
	c := &http.Client{}
	if cfg.HTTPClient != nil {
		cc := *cfg.HTTPClient
		c = &cc
	}
	if c.CheckRedirect == nil {
		c.CheckRedirect = v.checkRedirect
	}
	v.client = c
	return v
}

// Close stops the background fetches, cancelling those in flight, and
// waits for them to end. Verify keeps working afterwards with what is
// cached, but starts no fetch. Close always returns nil.
func (v *Verifier) Close() error {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	v.cancel()
	v.wg.Wait()
	return nil
}

// Wait blocks until no background fetch is in flight or ctx is done, and
// returns ctx's error in the latter case. Tests and the CLI use it to let a
// fetch that Verify started complete.
func (v *Verifier) Wait(ctx context.Context) error {
	v.mu.RLock()
	idle := v.idle
	v.mu.RUnlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Fetch fetches the certificate at x5u now and caches the outcome, as a
// background fetch would; it returns the fetch error, if any. Use it to warm
// the cache with known STI-SP certificates at start.
func (v *Verifier) Fetch(ctx context.Context, x5u string) error {
	if err := x5uAllowed(x5u, v.cfg.AllowHTTP); err != "" {
		return errors.New("stir: " + err)
	}
	v.stats.fetches.Add(1)
	return v.fetch(ctx, x5u)
}

// Stats are the Verifier's cache and fetch counters since New.
type Stats struct {
	Entries      int    // cached certificates and failures
	Hits         uint64 // fresh certificate found
	Stale        uint64 // certificate past its freshness used (refresh started)
	NegativeHits uint64 // cached failure found
	Misses       uint64 // nothing usable cached: the PASSporT was Unverified
	Fetches      uint64 // fetches started (background and Fetch)
	FetchErrors  uint64
	Dropped      uint64 // fetches not started because MaxFetches were running
	Evictions    uint64
}

// Stats returns the current counters.
func (v *Verifier) Stats() Stats {
	v.mu.RLock()
	n := len(v.cache)
	v.mu.RUnlock()
	return Stats{
		Entries: n, Hits: v.stats.hits.Load(), Stale: v.stats.stale.Load(),
		NegativeHits: v.stats.negativeHits.Load(), Misses: v.stats.misses.Load(),
		Fetches: v.stats.fetches.Load(), FetchErrors: v.stats.fetchErrors.Load(),
		Dropped: v.stats.dropped.Load(), Evictions: v.stats.evictions.Load(),
	}
}

// Status is the outcome of verifying a call, or one PASSporT.
type Status string

const (
	// Absent: the call has no shaken PASSporT (no Identity header, or only
	// PASSporTs of other types).
	Absent Status = "absent"
	// Verified: a shaken PASSporT passed every check: signature, trusted
	// certificate valid at the call's start, fresh iat, orig and dest.
	Verified Status = "verified"
	// Failed: no shaken PASSporT verified and at least one has a fatal
	// finding (or an Identity header could not be read at all).
	Failed Status = "failed"
	// Unverified: nothing fatal found, but the certificate (of the shaken
	// PASSporT, or of a div PASSporT its dest depends on) is not cached
	// yet; a background fetch was started and a later call will find it.
	Unverified Status = "unverified"
	// Ignored (a Passport's Status only): a PASSporT type this verifier
	// does not check.
	Ignored Status = "ignored"
)

// Result is the outcome of Verify for one call. It is plain data, safe to
// store (JSON) with the call's signalling; no Text holds a phone number.
type Result struct {
	Status Status `json:"status"`
	// Attest and OrigID are the attestation ("A", "B", "C") and origid of
	// the verified shaken PASSporT (the best attestation if several
	// verified); empty unless Status is Verified. Claimed values of
	// PASSporTs that did not verify are in Passports.
	Attest string `json:"attest,omitempty"`
	OrigID string `json:"origid,omitempty"`
	// Reasons lists every finding, fatal or not, in PASSporT order; each
	// names its PASSporT by index in Passports.
	Reasons []Reason `json:"reasons,omitempty"`
	// Passports has one entry per Identity header value, in order.
	Passports []Passport `json:"passports,omitempty"`
}

// Has reports whether a finding with code c was reported.
func (r Result) Has(c Code) bool {
	for _, x := range r.Reasons {
		if x.Code == c {
			return true
		}
	}
	return false
}

// HasFatal reports whether a fatal finding with code c was reported.
func (r Result) HasFatal(c Code) bool {
	for _, x := range r.Reasons {
		if x.Code == c && x.Severity == Fatal {
			return true
		}
	}
	return false
}

// ReasonHeaders returns the RFC 9410 Reason header field values for the
// failed PASSporTs: one per failed PASSporT, with the SIP cause of its first
// fatal finding that has one and the PASSporT's compact form as ppi.
func (r Result) ReasonHeaders() []string {
	var out []string
	for i := range r.Passports {
		p := &r.Passports[i]
		if p.Status != Failed {
			continue
		}
		for _, x := range r.Reasons {
			if x.Passport == i && x.Severity == Fatal && x.Cause != 0 {
				out = append(out, ReasonHeader(x.Cause, p.Sig))
				break
			}
		}
	}
	return out
}

// work is the state of one PASSporT during Verify.
type work struct {
	d         decoded
	rs        reasons
	readable  bool // decoded: the PASSporT could be read
	candidate bool // counts for the call's status (shaken or unreadable)
	pending   bool // certificate not available yet
	status    Status
}

// Verify checks the Identity header values of one call: orig and dest are
// the caller's and the dialled number (E.164, a leading '+' optional; an
// empty one is not compared), at the call's start (zero: Config.Now). Values
// may each hold several comma-separated Identity values; at most
// MaxIdentities are looked at.
//
// Verify never waits on the network. When a needed certificate is not
// cached it starts a background fetch and reports the PASSporT Unverified
// (reason cert_pending); a later call finds it cached. A call without
// Identity values returns Result{Status: Absent} without allocating. Checks
// that need no certificate (syntax, alg, iat, orig, dest) are made first:
// a PASSporT failing them is Failed whether or not its certificate is
// cached, and does not trigger a fetch.
func (v *Verifier) Verify(identity []string, orig, dest string, at time.Time) Result {
	if len(identity) == 0 {
		return Result{Status: Absent}
	}
	var vbuf [MaxIdentities]string
	values := vbuf[:0]
	var extra int
	for _, h := range identity {
		values = splitValues(values, h)
		if len(values) > MaxIdentities {
			extra += len(values) - MaxIdentities
			values = values[:MaxIdentities]
		}
	}
	if len(values) == 0 {
		return Result{Status: Absent}
	}
	if at.IsZero() {
		at = v.now()
	}
	var wbuf [MaxIdentities]work
	ws := wbuf[:len(values)]
	for i, h := range values {
		v.check(&ws[i], h, orig, at)
	}
	v.resolveDest(ws, dest)
	for i := range ws {
		w := &ws[i]
		if w.readable && w.status != Ignored && !w.rs.has(CodeInsecureX5U) && w.d.p.X5U != "" {
			v.certificate(w, at, !w.rs.fatal())
		}
	}
	for i := range ws {
		w := &ws[i]
		switch {
		case w.status == Ignored:
		case w.rs.fatal():
			w.status = Failed
		case w.pending:
			w.status = Unverified
		default:
			w.status = Verified
		}
	}
	v.promotePending(ws, dest)
	return v.result(ws, extra)
}

// check parses, decodes and checks one PASSporT's claims against the call.
func (v *Verifier) check(w *work, h, orig string, at time.Time) {
	id, err := ParseIdentity(h)
	if err != nil {
		w.candidate = true
		if errors.Is(err, ErrCompactForm) {
			w.rs.add(fatal(CodeCompactForm, "compact form PASSporT: full form required"))
		} else {
			w.rs.add(fatal(CodeMalformed, strings.TrimPrefix(err.Error(), "stir: ")))
		}
		return
	}
	if !decode(id, &w.d, &w.rs) {
		w.candidate = id.PPT == "" || id.PPT == PPTShaken
		return
	}
	w.readable = true
	p := &w.d.p
	switch p.PPT {
	case PPTShaken:
		w.candidate = true
	case PPTDiv:
	default:
		w.status = Ignored
		name := p.PPT
		if name == "" {
			name = "(none)"
		}
		w.rs.add(warn(CodeUnsupportedPPT, "PASSporT type "+quoteShort(name)+" not verified"))
		return
	}
	if p.IAT > 0 {
		d := at.Sub(time.Unix(p.IAT, 0))
		switch {
		case d > v.cfg.Freshness:
			w.rs.add(fatal(CodeStaleIat, "iat is "+seconds(d)+" before the call's start (limit "+seconds(v.cfg.Freshness)+")"))
		case d < -v.cfg.Freshness:
			w.rs.add(fatal(CodeStaleIat, "iat is "+seconds(-d)+" after the call's start (limit "+seconds(v.cfg.Freshness)+")"))
		}
	}
	if orig != "" && p.OrigTN != "" && !sameTN(p.OrigTN, orig) {
		w.rs.add(fatal(CodeOrigMismatch, "orig.tn is not the caller's number"))
	}
	if p.X5U != "" {
		if msg := x5uAllowed(p.X5U, v.cfg.AllowHTTP); msg != "" {
			w.rs.add(fatal(CodeInsecureX5U, msg))
		}
	}
}

// resolveDest checks the dialled number against the shaken PASSporTs' dest,
// following div PASSporTs (RFC 8946): a div PASSporT whose div claim is a
// number reached so far adds its dest. A div PASSporT that continues no
// chain gets div_mismatch. Only div PASSporTs without a fatal finding count.
func (v *Verifier) resolveDest(ws []work, dest string) {
	var reach [64]string
	n := 0
	add := func(tns []string) {
		for _, t := range tns {
			if n < len(reach) {
				reach[n] = t
				n++
			}
		}
	}
	reached := func(tns []string) bool {
		for _, t := range tns {
			for _, r := range reach[:n] {
				if t == r {
					return true
				}
			}
		}
		return false
	}
	for i := range ws {
		if w := &ws[i]; w.readable && w.d.p.PPT == PPTShaken {
			add(w.d.p.DestTN)
		}
	}
	var linked [MaxIdentities]bool
	for changed := true; changed; {
		changed = false
		for i := range ws {
			w := &ws[i]
			if linked[i] || !w.readable || w.d.p.PPT != PPTDiv || w.rs.fatal() {
				continue
			}
			if reached(w.d.p.DivTN) {
				linked[i], changed = true, true
				add(w.d.p.DestTN)
			}
		}
	}
	for i := range ws {
		w := &ws[i]
		if !w.readable || w.status == Ignored {
			continue
		}
		switch w.d.p.PPT {
		case PPTDiv:
			if !linked[i] && !w.rs.fatal() {
				w.rs.add(fatal(CodeDivMismatch, "div claim continues no diversion from a shaken PASSporT's dest"))
			}
		case PPTShaken:
			if dest == "" || len(w.d.p.DestTN) == 0 {
				continue
			}
			if !reachedCall(reach[:n], dest) {
				w.rs.add(fatal(CodeDestMismatch, "the dialled number is not in dest.tn (nor reached through a div PASSporT)"))
			}
		}
	}
}

func reachedCall(reach []string, dest string) bool {
	for _, r := range reach {
		if sameTN(r, dest) {
			return true
		}
	}
	return false
}

// promotePending makes a shaken PASSporT that would verify Unverified when
// its dest is reached only through a div PASSporT that is itself Unverified,
// or Failed when that div PASSporT failed on its certificate or signature.
func (v *Verifier) promotePending(ws []work, dest string) {
	if dest == "" {
		return
	}
	for i := range ws {
		w := &ws[i]
		if w.status != Verified || w.d.p.PPT != PPTShaken || reachedCall(w.d.p.DestTN, dest) {
			continue
		}
		// Dest was reached through div PASSporTs: rebuild the chain with the
		// verified ones only.
		reach := append([]string(nil), w.d.p.DestTN...)
		for changed := true; changed; {
			changed = false
			for j := range ws {
				d := &ws[j]
				if d.status != Verified || d.d.p.PPT != PPTDiv || !contains(reach, d.d.p.DivTN) || contains(reach, d.d.p.DestTN) {
					continue
				}
				reach = append(reach, d.d.p.DestTN...)
				changed = true
			}
		}
		if reachedCall(reach, dest) {
			continue
		}
		pending := false
		for j := range ws {
			if d := &ws[j]; d.status == Unverified && d.d.p.PPT == PPTDiv {
				pending = true
			}
		}
		if pending {
			w.status = Unverified
			w.rs.add(warn(CodeCertPending, "dest depends on a div PASSporT whose certificate is not cached yet"))
		} else {
			w.status = Failed
			w.rs.add(fatal(CodeDestMismatch, "dest is reached only through a div PASSporT that failed"))
		}
	}
}

func contains(set, tns []string) bool {
	for _, t := range tns {
		for _, s := range set {
			if s == t {
				return true
			}
		}
	}
	return false
}

// certificate finds the PASSporT's certificate in the cache and, when it is
// there, checks it and the signature. When it is not, a fetch is started if
// fetch is set (the PASSporT has no fatal finding yet) and the PASSporT is
// pending.
func (v *Verifier) certificate(w *work, at time.Time, fetch bool) {
	p := &w.d.p
	e := v.lookup(p.X5U, fetch)
	if e == nil {
		if fetch {
			w.pending = true
			w.rs.add(warn(CodeCertPending, "certificate not cached yet: fetch started"))
		}
		return
	}
	if e.cert == nil {
		w.rs.add(e.fail)
		return
	}
	p.SPC = e.spc
	for _, r := range e.profile {
		w.rs.add(r)
	}
	switch {
	case at.Before(e.notBefore):
		w.rs.add(fatal(CodeCertValidity, "certificate chain not valid before "+e.notBefore.UTC().Format(time.RFC3339)))
	case at.After(e.notAfter):
		w.rs.add(fatal(CodeCertValidity, "certificate chain expired at "+e.notAfter.UTC().Format(time.RFC3339)))
	}
	if e.pub == nil {
		return // cert_key already says why the signature cannot be checked
	}
	ok, err := verifyES256(e.pub, w.d.signing, w.d.sig)
	switch {
	case err != nil:
		w.rs.add(fatal(CodeBadSignature, err.Error()))
	case !ok:
		w.rs.add(fatal(CodeBadSignature, "ES256 signature does not verify with the x5u certificate's key"))
	}
}

// result assembles the call's Result from the per-PASSporT work.
func (v *Verifier) result(ws []work, extra int) Result {
	nr := 0
	for i := range ws {
		nr += ws[i].rs.len()
	}
	if extra > 0 {
		nr++
	}
	res := Result{Passports: make([]Passport, len(ws))}
	if nr > 0 {
		res.Reasons = make([]Reason, 0, nr)
	}
	var best *Passport
	anyCandidate, anyPending := false, false
	for i := range ws {
		w := &ws[i]
		p := w.d.p
		p.Index = i
		p.Status = w.status
		res.Passports[i] = p
		for j := range w.rs.len() {
			r := *w.rs.at(j)
			r.Passport = i
			res.Reasons = append(res.Reasons, r)
		}
		if !w.candidate {
			continue
		}
		anyCandidate = true
		if w.status == Unverified {
			anyPending = true
		}
		if w.status == Verified && (best == nil || p.Attest < best.Attest) {
			best = &res.Passports[i]
		}
	}
	if extra > 0 {
		res.Reasons = append(res.Reasons, warn(CodeMalformed, strconv.Itoa(extra)+" Identity values beyond the first "+strconv.Itoa(MaxIdentities)+" ignored"))
	}
	switch {
	case !anyCandidate:
		res.Status = Absent
	case best != nil:
		res.Status, res.Attest, res.OrigID = Verified, best.Attest, best.OrigID
	case anyPending:
		res.Status = Unverified
	default:
		res.Status = Failed
	}
	return res
}

// x5uAllowed returns why x5u may not be fetched, "" when it may.
func x5uAllowed(x5u string, allowHTTP bool) string {
	switch {
	case len(x5u) > 8 && strings.EqualFold(x5u[:8], "https://"):
		return ""
	case len(x5u) > 7 && strings.EqualFold(x5u[:7], "http://"):
		if allowHTTP {
			return ""
		}
		return "x5u is an http URL: only https is fetched"
	}
	return "x5u is not an https URL"
}

func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
