// Package screen is ringfence's risk engine: it turns a call into markers,
// the markers into a score, and the score into an action under the tenant's
// policy. Evaluation is pure CPU over in-memory state; nothing here waits on
// disk or network. State changes (lists, routes, policy, labels) arrive
// through the Engine's setters, from the store at start and from the API or
// the change feed afterwards.
package screen

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/numbering"
	"github.com/ringfence/ringfence/velocity"
)

// Config tunes the engine. Zero values are useful defaults.
type Config struct {
	NumberCache int // numbers memoised by the normaliser; 0 => 1<<20
	Velocity    velocity.Config
	MaxLinks    int           // caller-to-customer links (and as many candidates) kept per tenant; 0 => 1<<20
	LinkAfter   time.Duration // time between the two verified calls that link a number to a customer; 0 => 20h
	Thresholds  Thresholds
	Shaken      ShakenVerifier   // verifies Identity headers; nil => no shaken.* markers
	Now         func() time.Time // clock for evaluation timestamps; nil => time.Now
	// Shared, when set, is a velocity source shared by the cluster's nodes
	// (velocity/redisvel). The engine observes every call into it as well as
	// into its own windows, and reads each count as the larger of the two.
	// Its methods must not block: they are on the per-call path. nil => this
	// node's windows only.
	Shared SharedVelocity
	// Consortium, when set, is the fraud-sharing consortium's view
	// (*consortium.View); nil => no consortium.* markers.
	Consortium ConsortiumView
}

// SharedVelocity is velocity state shared across nodes, read and written
// without waiting on the network. *velocity.Windows satisfies it too.
type SharedVelocity interface {
	Observe(caller, dialled velocity.Key, userRef uint64, at time.Time)
	ObserveEnd(caller velocity.Key, at time.Time, duration time.Duration)
	Counts(caller, dialled velocity.Key, at time.Time) velocity.Counts
}

// combined is this node's windows plus the shared source: each count is the
// larger of the two. The shared source holds this node's own calls once
// flushed, so adding would count them twice; max never overcounts and is
// right whenever one side holds every call of the key (the SBC hashing by
// caller, or a fresh shared view).
type combined struct {
	local  *velocity.Windows
	shared SharedVelocity
}

func (c combined) Observe(caller, dialled velocity.Key, userRef uint64, at time.Time) {
	c.local.Observe(caller, dialled, userRef, at)
	c.shared.Observe(caller, dialled, userRef, at)
}

func (c combined) ObserveEnd(caller velocity.Key, at time.Time, d time.Duration) {
	c.local.ObserveEnd(caller, at, d)
	c.shared.ObserveEnd(caller, at, d)
}

func (c combined) Counts(caller, dialled velocity.Key, at time.Time) velocity.Counts {
	l, s := c.local.Counts(caller, dialled, at), c.shared.Counts(caller, dialled, at)
	return velocity.Counts{
		CallerMinute:          max(l.CallerMinute, s.CallerMinute),
		CallerHour:            max(l.CallerHour, s.CallerHour),
		CallerDay:             max(l.CallerDay, s.CallerDay),
		DistinctDialledHour:   max(l.DistinctDialledHour, s.DistinctDialledHour),
		DistinctUsersDay:      max(l.DistinctUsersDay, s.DistinctUsersDay),
		SweepHour:             max(l.SweepHour, s.SweepHour),
		DistinctCallersTenMin: max(l.DistinctCallersTenMin, s.DistinctCallersTenMin),
		EndedDay:              max(l.EndedDay, s.EndedDay),
		ShortDay:              max(l.ShortDay, s.ShortDay),
	}
}

// Engine evaluates calls. Safe for concurrent use.
type Engine struct {
	cfg  Config
	now  func() time.Time
	norm *numbering.Normaliser
	win  SharedVelocity // *velocity.Windows, or combined with Config.Shared

	mu      sync.RWMutex
	tenants map[string]*tenant

	models sync.Map // tenant id -> *modelSet (model.go); read without locking
}

// New returns an engine with no tenants.
func New(cfg Config) *Engine {
	cfg.Thresholds = cfg.Thresholds.withDefaults()
	if cfg.MaxLinks <= 0 {
		cfg.MaxLinks = 1 << 20
	}
	if cfg.LinkAfter <= 0 {
		cfg.LinkAfter = 20 * time.Hour
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	local := velocity.New(cfg.Velocity)
	var win SharedVelocity = local
	if cfg.Shared != nil {
		win = combined{local: local, shared: cfg.Shared}
	}
	e := &Engine{
		cfg:     cfg,
		now:     now,
		norm:    numbering.New(cfg.NumberCache),
		win:     win,
		tenants: make(map[string]*tenant),
	}
	e.norm.Warm()
	return e
}

func (e *Engine) tenant(id string) *tenant {
	e.mu.RLock()
	t := e.tenants[id]
	e.mu.RUnlock()
	return t
}

func (e *Engine) mustTenant(id string) (*tenant, error) {
	if t := e.tenant(id); t != nil {
		return t, nil
	}
	return nil, call.Errorf(call.NotFound, "unknown tenant %q", id)
}

// Number normalises a raw number presented on one of the tenant's calls,
// reading national formats in the tenant's home region.
func (e *Engine) Number(tenantID, raw string) call.Number {
	region := "GB"
	if t := e.tenant(tenantID); t != nil {
		t.mu.RLock() // SetTenant may replace info
		region = t.info.Region
		t.mu.RUnlock()
	}
	return e.norm.Number(raw, region)
}

// Evaluate returns the verdict for c under the tenant's live policy, and the
// shadow policy's verdict if one is set. When the tenant has a live model
// (SetModels) the model scores the live verdict, and a shadow model makes a
// shadow verdict too (see SetModels). It reads state and changes nothing,
// so it can replay stored calls; call Observe afterwards to count the call in
// the velocity windows. The error is a *call.Error with code NotFound when
// the tenant is unknown.
func (e *Engine) Evaluate(ctx context.Context, c *call.Call) (live call.Verdict, shadow *call.Verdict, err error) {
	start := time.Now()
	t, err := e.mustTenant(c.Tenant)
	if err != nil {
		return call.Verdict{}, nil, err
	}
	var ev eval
	ev.e, ev.t, ev.c = e, t, c
	ev.collect()

	t.mu.RLock()
	policy := t.policy
	t.mu.RUnlock()
	at := e.now()
	if ms := e.modelsOf(c.Tenant, t); ms != nil {
		live, shadow = ev.modelVerdicts(policy, ms)
	} else {
		live = policy.apply(ev.found[:ev.n])
		if policy.Shadow != nil {
			s := policy.Shadow.apply(ev.found[:ev.n])
			shadow = &s
		}
	}
	live.EvaluatedAt, live.Shaken = at, ev.stir
	if shadow != nil {
		shadow.EvaluatedAt = at
	}
	live.Elapsed = time.Since(start)
	return live, shadow, nil
}

// Observe counts c (already evaluated) in the velocity windows and learns
// customer links. A link (caller number belongs to the customer id) needs
// evidence a fraudster rarely produces: two calls with the same number and
// customer id, each allowed and free of spoofing signs, at least LinkAfter
// apart in event time (a social engineer calls once or twice in one
// sitting). A fraud label forgets the number's links and candidates. It
// reports whether a link was established (and so is worth storing).
func (e *Engine) Observe(c *call.Call) (newLink bool) {
	t := e.tenant(c.Tenant)
	if t == nil {
		return false
	}
	e.win.Observe(t.key(c.Caller), t.key(c.Dialled), userHash(c.UserRef), c.StartedAt)
	if c.UserRef == "" || c.Verdict.Action != call.Allow || spoofed(c.Verdict.Markers) {
		return false
	}
	return t.observeLink(c.Caller.Key(), userHash(c.UserRef), c.StartedAt, e.cfg.LinkAfter, e.cfg.MaxLinks)
}

// ObserveEnd counts a call-end (duration known) for the short-call share.
func (e *Engine) ObserveEnd(c *call.Call) {
	t := e.tenant(c.Tenant)
	if t == nil || c.End == nil {
		return
	}
	e.win.ObserveEnd(t.key(c.Caller), c.StartedAt, c.End.Duration)
}

// apply weighs the activated signals under p and picks the action.
func (p *policy) apply(found []call.Marker) call.Verdict {
	v := call.Verdict{Policy: p.version, Action: call.Allow}
	logit := p.prior
	v.Markers = make([]call.Marker, len(found))
	for i, m := range found {
		if w, ok := p.weights[m.Code]; ok {
			m.Weight = w
		}
		v.Markers[i] = m
		logit += m.Weight
		if a, ok := p.actions[m.Code]; ok && a.Rank() > v.Action.Rank() {
			v.Action = a
		}
	}
	p.decide(&v, logit)
	return v
}

// decide sets v's score from its log-odds and raises its action by the
// policy's thresholds.
func (p *policy) decide(v *call.Verdict, logit float64) {
	v.Score = 1 / (1 + math.Exp(-logit))
	switch {
	case v.Score >= p.blockAt:
		v.Action = call.Block
	case v.Score >= p.flagAt && v.Action != call.Block:
		v.Action = call.Flag
	}
}

// userHash is FNV-1a 64 of a user ref; 0 means none.
func userHash(ref string) uint64 {
	if ref == "" {
		return 0
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(ref); i++ {
		h ^= uint64(ref[i])
		h *= 1099511628211
	}
	return h | 1
}

// NumberIn normalises a raw number read in the given region.
func (e *Engine) NumberIn(raw, region string) call.Number { return e.norm.Number(raw, region) }
