// Package redisvel shares velocity windows across ringfence nodes through
// Redis, without ever making a screened call wait on Redis.
//
// A node writes and reads Redis only from one background goroutine. Observe
// and ObserveEnd put the event on a bounded queue and return; Counts answers
// from a local cache of what Redis held for the key and asks, without
// waiting, for the key to be refreshed. Every Interval the goroutine writes
// the queued events in one pipelined round trip (INCRBY on per-bucket keys
// with EXPIRE, ZADD GT on capped sorted sets for the distinct counts) and
// then reads back the keys queried since the last tick in a second one.
//
// Numbers never reach Redis in clear: key names and set members are
// HMAC-SHA256 pseudonyms keyed by Config.Secret.
//
// The screening engine takes a *Shared as screen.Config.Shared and reads each
// count as the larger of its own windows and the shared one. See
// docs/velocity.md ("Velocity across nodes") for the staleness bound and the
// behaviour when Redis is down.
package redisvel

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfence/ringfence/velocity"
)

// Config sets up a Shared. Zero values are useful defaults except Addr and
// Secret.
type Config struct {
	Addr   string // Redis host:port, e.g. "127.0.0.1:6379"; required
	Prefix string // prefix of every Redis key; "" => "ringfence:vel:"
	// Secret keys the pseudonyms of numbers and user refs in Redis; at least
	// 16 bytes, the same on every node of the cluster.
	Secret []byte
	// Interval between flushes of queued events and refreshes of queried
	// keys; 0 => 100ms. The staleness bound is about twice this.
	Interval time.Duration
	// Timeout bounds each round trip to Redis (dial, write, read); 0 =>
	// 250ms. It delays only the background goroutine, never a call.
	Timeout time.Duration
	// Retry is the wait after a failure before reconnecting; 0 => 1s.
	Retry time.Duration
	// QueueLen bounds the events and the key requests buffered between
	// ticks; beyond it they are dropped (and counted). 0 => 65536.
	QueueLen int
	// MaxKeys bounds the keys cached; 0 => 65536. Idle is how long a key
	// not queried stays cached; 0 => 2 minutes.
	MaxKeys int
	Idle    time.Duration
	// ShortCall must equal velocity.Config.ShortCall; 0 => 10s.
	ShortCall time.Duration
	Logger    *slog.Logger // nil => discard
}

// Stats are counters for monitoring, all since Open.
type Stats struct {
	Up        bool   // the last round trip to Redis succeeded
	Flushed   uint64 // events written to Redis
	Dropped   uint64 // events not written: queue full, or Redis unavailable
	Refreshed uint64 // key reads from Redis
	Errors    uint64 // failed round trips and error replies
	Cached    int    // keys in the local cache
}

// Shared is the cluster-wide view of velocity windows, kept in Redis. It is
// safe for concurrent use; Observe, ObserveEnd and Counts never block on
// I/O. Create it with Open and stop it with Close.
type Shared struct {
	cfg    Config
	log    *slog.Logger
	events chan event
	want   chan want
	done   chan struct{}
	wg     sync.WaitGroup

	mu    sync.RWMutex
	cache map[velocity.Key]*snap

	up                                    atomic.Bool
	flushed, dropped, refreshed, failures atomic.Uint64

	// owned by the background goroutine
	conn     *conn
	nextDial time.Time
	lastWant map[velocity.Key]time.Time
}

type event struct {
	caller, dialled velocity.Key
	user            uint64
	at              int64 // Unix ns
	end, short      bool
}

type want struct {
	caller, dialled velocity.Key
	at              int64
}

// The rings mirror velocity's: same widths and lengths, so a count means
// the same from either source.
type ring struct {
	name  string
	width int64
	n     int64
}

var rings = [5]ring{
	{"m", int64(10 * time.Second), 6},
	{"h", int64(5 * time.Minute), 12},
	{"d", int64(time.Hour), 24},
	{"e", int64(time.Hour), 24}, // ended calls, by start time
	{"s", int64(time.Hour), 24}, // short calls, by start time
}

const (
	ringMinute, ringHour, ringDay, ringEnded, ringShort = 0, 1, 2, 3, 4

	dialledWindow = int64(time.Hour)
	usersWindow   = int64(24 * time.Hour)
	callersWindow = int64(10 * time.Minute)
	setCap        = 32
	ttlSlack      = 60 // seconds added to every EXPIRE
)

// snap is what Redis held for one key at the last refresh.
type snap struct {
	caller, dialled bool // which roles have been read in full
	rings           [5][]bucket
	dialledSet      []member // dialled numbers, as caller
	users           []member // user refs, as caller
	callers         []member // callers, as dialled number
}

type bucket struct{ b, n int64 }

type member struct {
	block, id uint64 // pseudonyms; block only for dialled numbers
	t         int64  // latest sighting, Unix µs
}

// Open checks cfg and starts the background goroutine. It does not wait for
// Redis: an unreachable server is retried in the background, and until it
// answers Counts returns zero counts.
func Open(cfg Config) (*Shared, error) {
	if cfg.Addr == "" {
		return nil, errors.New("redisvel: no Redis address")
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("redisvel: secret shorter than 16 bytes")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "ringfence:vel:"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 250 * time.Millisecond
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1 << 16
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 1 << 16
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 2 * time.Minute
	}
	if cfg.ShortCall <= 0 {
		cfg.ShortCall = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Shared{
		cfg:      cfg,
		log:      log.With("component", "redisvel"),
		events:   make(chan event, cfg.QueueLen),
		want:     make(chan want, cfg.QueueLen),
		done:     make(chan struct{}),
		cache:    make(map[velocity.Key]*snap),
		lastWant: make(map[velocity.Key]time.Time),
	}
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// Close stops the background goroutine, after one last flush of the queued
// events if Redis is up, and closes the connection.
func (s *Shared) Close() error {
	close(s.done)
	s.wg.Wait()
	return nil
}

// Observe queues a call start for Redis, like velocity.Windows.Observe. It
// never blocks; a full queue drops the event (Stats.Dropped).
func (s *Shared) Observe(caller, dialled velocity.Key, userRef uint64, at time.Time) {
	if caller.Num == 0 {
		return
	}
	s.enqueue(event{caller: caller, dialled: dialled, user: userRef, at: at.UnixNano()})
}

// ObserveEnd queues a call end, like velocity.Windows.ObserveEnd.
func (s *Shared) ObserveEnd(caller velocity.Key, at time.Time, duration time.Duration) {
	if caller.Num == 0 {
		return
	}
	s.enqueue(event{caller: caller, at: at.UnixNano(), end: true, short: duration < s.cfg.ShortCall})
}

func (s *Shared) enqueue(e event) {
	select {
	case s.events <- e:
	default:
		s.dropped.Add(1)
	}
}

// Counts reports the cluster-wide counts for a call from caller to dialled
// at at, as of the last refresh of each key, with the window rules of
// velocity.Windows.Counts (distinct sets to the microsecond). It never
// blocks on I/O: it reads the local cache and asks the background goroutine
// to refresh both keys. A key not yet cached (first query on this node, or
// Redis unavailable since before) counts zero.
func (s *Shared) Counts(caller, dialled velocity.Key, at time.Time) velocity.Counts {
	var c velocity.Counts
	t := at.UnixNano()
	s.mu.RLock()
	var cs, ds *snap
	if caller.Num != 0 {
		cs = s.cache[caller]
	}
	if dialled.Num != 0 {
		ds = s.cache[dialled]
	}
	s.mu.RUnlock()
	if cs != nil {
		c.CallerMinute = cs.sum(ringMinute, t)
		c.CallerHour = cs.sum(ringHour, t)
		c.CallerDay = cs.sum(ringDay, t)
		c.EndedDay = cs.sum(ringEnded, t)
		c.ShortDay = cs.sum(ringShort, t)
		c.DistinctDialledHour, c.SweepHour = sweep(cs.dialledSet, t-dialledWindow, t)
		c.DistinctUsersDay = count(cs.users, t-usersWindow, t)
	}
	if ds != nil {
		c.DistinctCallersTenMin = count(ds.callers, t-callersWindow, t)
	}
	if caller.Num != 0 || dialled.Num != 0 {
		select {
		case s.want <- want{caller: caller, dialled: dialled, at: t}:
		default:
		}
	}
	return c
}

// Stats reports the counters. It takes the cache lock briefly.
func (s *Shared) Stats() Stats {
	s.mu.RLock()
	n := len(s.cache)
	s.mu.RUnlock()
	return Stats{
		Up: s.up.Load(), Flushed: s.flushed.Load(), Dropped: s.dropped.Load(),
		Refreshed: s.refreshed.Load(), Errors: s.failures.Load(), Cached: n,
	}
}

func (p *snap) sum(r int, t int64) int {
	q := floorDiv(t, rings[r].width)
	n := int64(0)
	for _, b := range p.rings[r] {
		if b.b > q-rings[r].n && b.b <= q {
			n += b.n
		}
	}
	return int(n)
}

// in reports whether m was last seen in (from, to], given in ns.
func (m member) in(from, to int64) bool {
	ns := m.t * 1000
	return ns > from && ns <= to
}

func count(ms []member, from, to int64) int {
	n := 0
	for _, m := range ms {
		if m.in(from, to) {
			n++
		}
	}
	return min(n, setCap)
}

func sweep(ms []member, from, to int64) (n, best int) {
	for i, m := range ms {
		if !m.in(from, to) {
			continue
		}
		n++
		c := 1
		for _, o := range ms[i+1:] {
			if o.block == m.block && o.in(from, to) {
				c++
			}
		}
		best = max(best, c)
	}
	return min(n, setCap), min(best, setCap)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// run is the background goroutine: one tick every Interval.
func (s *Shared) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			s.flush(s.drainEvents())
			if s.conn != nil {
				s.conn.Close()
			}
			return
		case <-t.C:
			s.tick()
		}
	}
}

func (s *Shared) tick() {
	s.flush(s.drainEvents())
	wants := make(map[velocity.Key]*wanted)
	for n := len(s.want); n > 0; n-- {
		w := <-s.want
		s.addWant(wants, w.caller, w.at, true)
		s.addWant(wants, w.dialled, w.at, false)
	}
	s.evictIdle()
	s.refresh(wants)
}

type wanted struct {
	at              int64
	caller, dialled bool
}

func (s *Shared) addWant(m map[velocity.Key]*wanted, k velocity.Key, at int64, asCaller bool) {
	if k.Num == 0 {
		return
	}
	w := m[k]
	if w == nil {
		w = &wanted{at: at}
		m[k] = w
	}
	w.at = max(w.at, at)
	if asCaller {
		w.caller = true
	} else {
		w.dialled = true
	}
	s.lastWant[k] = time.Now()
}

func (s *Shared) evictIdle() {
	cut := time.Now().Add(-s.cfg.Idle)
	var old []velocity.Key
	for k, t := range s.lastWant {
		if t.Before(cut) {
			old = append(old, k)
			delete(s.lastWant, k)
		}
	}
	if len(old) == 0 {
		return
	}
	s.mu.Lock()
	for _, k := range old {
		delete(s.cache, k)
	}
	s.mu.Unlock()
}

func (s *Shared) drainEvents() []event {
	n := len(s.events)
	evs := make([]event, 0, n)
	for ; n > 0; n-- {
		evs = append(evs, <-s.events)
	}
	return evs
}

// connect returns the connection, dialling if it is down and the retry wait
// has passed; nil means Redis is unavailable for this tick.
func (s *Shared) connect() *conn {
	if s.conn != nil {
		return s.conn
	}
	if time.Now().Before(s.nextDial) {
		return nil
	}
	c, err := dial(s.cfg.Addr, s.cfg.Timeout)
	if err != nil {
		s.fail(err)
		return nil
	}
	s.conn = c
	return c
}

// exec runs the queued commands; on an I/O error it drops the connection
// and marks Redis down.
func (s *Shared) exec() []reply {
	rs, err := s.conn.exec(s.cfg.Timeout)
	if err != nil {
		s.conn.Close()
		s.conn = nil
		s.fail(err)
		return nil
	}
	if !s.up.Swap(true) {
		s.log.Info("redis velocity available: counts are cluster-wide", "addr", s.cfg.Addr)
	}
	for _, r := range rs {
		if r.Kind == '-' {
			s.failures.Add(1)
			s.log.Warn("redis velocity command failed", "err", errReply(r.Str))
		}
	}
	return rs
}

func (s *Shared) fail(err error) {
	s.failures.Add(1)
	s.nextDial = time.Now().Add(s.cfg.Retry)
	if s.up.Swap(false) || s.failures.Load() == 1 {
		s.log.Warn("redis velocity unavailable: screening on this node's counts only", "addr", s.cfg.Addr, "err", err)
	}
}

// zbatch is the members added to one sorted set in one flush.
type zbatch struct {
	window int64            // ns
	add    map[string]int64 // member -> latest time, Unix µs
}

// flush writes evs to Redis in one pipelined round trip.
func (s *Shared) flush(evs []event) {
	if len(evs) == 0 {
		return
	}
	c := s.connect()
	if c == nil {
		s.dropped.Add(uint64(len(evs)))
		return
	}
	incr := make(map[string]int64)
	ttl := make(map[string]int64)
	zs := make(map[string]*zbatch)
	zadd := func(key, m string, window, at int64) {
		z := zs[key]
		if z == nil {
			z = &zbatch{window: window, add: make(map[string]int64)}
			zs[key] = z
		}
		us := floorDiv(at, 1000)
		z.add[m] = max(z.add[m], us)
	}
	bump := func(id string, r int, at int64) {
		k := s.ringKey(id, r, floorDiv(at, rings[r].width))
		incr[k]++
		ttl[k] = (rings[r].n+1)*rings[r].width/int64(time.Second) + ttlSlack
	}
	for _, e := range evs {
		id := s.pseudo('n', e.caller.Tenant, e.caller.Num)
		if e.end {
			bump(id, ringEnded, e.at)
			if e.short {
				bump(id, ringShort, e.at)
			}
			continue
		}
		bump(id, ringMinute, e.at)
		bump(id, ringHour, e.at)
		bump(id, ringDay, e.at)
		if e.user != 0 {
			zadd(s.cfg.Prefix+id+":zu", s.pseudo('u', e.caller.Tenant, e.user), usersWindow, e.at)
		}
		if e.dialled.Num != 0 {
			did := s.pseudo('n', e.dialled.Tenant, e.dialled.Num)
			zadd(s.cfg.Prefix+id+":zd", s.pseudo('b', e.dialled.Tenant, e.dialled.Num/100)+did, dialledWindow, e.at)
			zadd(s.cfg.Prefix+did+":zc", id, callersWindow, e.at)
		}
	}
	for k, n := range incr {
		c.send("INCRBY", k, strconv.FormatInt(n, 10))
		c.send("EXPIRE", k, strconv.FormatInt(ttl[k], 10))
	}
	for k, z := range zs {
		args := []string{"ZADD", k, "GT"}
		newest := int64(math.MinInt64)
		for m, us := range z.add {
			args = append(args, strconv.FormatInt(us, 10), m)
			newest = max(newest, us)
		}
		c.send(args...)
		c.send("ZREMRANGEBYSCORE", k, "-inf", strconv.FormatInt(newest-z.window/1000, 10))
		c.send("ZREMRANGEBYRANK", k, "0", strconv.Itoa(-setCap-1))
		c.send("EXPIRE", k, strconv.FormatInt(z.window/int64(time.Second)+ttlSlack, 10))
	}
	if s.exec() == nil {
		s.dropped.Add(uint64(len(evs)))
		return
	}
	s.flushed.Add(uint64(len(evs)))
}

// refresh reads the wanted keys from Redis in one pipelined round trip and
// replaces their cache entries. A key cached in a role is read
// incrementally: only the buckets around the query time, which are the only
// ones other nodes can still be writing while the staleness bound is well
// under the shortest bucket (10 s).
func (s *Shared) refresh(wants map[velocity.Key]*wanted) {
	if len(wants) == 0 {
		return
	}
	c := s.connect()
	if c == nil {
		return
	}
	type plan struct {
		k        velocity.Key
		w        *wanted
		old      *snap
		buckets  [5][2]int64 // first and last bucket read, per ring
		mget, zs int         // reply indexes; -1 = not read
	}
	s.mu.RLock()
	plans := make([]plan, 0, len(wants))
	for k, w := range wants {
		old := s.cache[k]
		if old == nil && len(s.cache)+len(plans) >= s.cfg.MaxKeys {
			continue
		}
		plans = append(plans, plan{k: k, w: w, old: old, mget: -1, zs: -1})
	}
	s.mu.RUnlock()
	i := 0
	for p := range plans {
		pl := &plans[p]
		id := s.pseudo('n', pl.k.Tenant, pl.k.Num)
		if pl.w.caller {
			args := []string{"MGET"}
			for r, rg := range rings {
				q := floorDiv(pl.w.at, rg.width)
				from := q - rg.n + 1
				if pl.old != nil && pl.old.caller {
					from = q - 1
				}
				pl.buckets[r] = [2]int64{from, q + 1}
				for b := from; b <= q+1; b++ {
					args = append(args, s.ringKey(id, r, b))
				}
			}
			c.send(args...)
			c.send("ZRANGE", s.cfg.Prefix+id+":zd", "0", "-1", "WITHSCORES")
			c.send("ZRANGE", s.cfg.Prefix+id+":zu", "0", "-1", "WITHSCORES")
			pl.mget = i
			i += 3
		}
		if pl.w.dialled {
			c.send("ZRANGE", s.cfg.Prefix+id+":zc", "0", "-1", "WITHSCORES")
			pl.zs = i
			i++
		}
	}
	rs := s.exec()
	if rs == nil {
		return
	}
	s.refreshed.Add(uint64(len(plans)))
	fresh := make([]*snap, len(plans))
	for p, pl := range plans {
		n := &snap{}
		if pl.old != nil {
			*n = *pl.old
		}
		if pl.mget >= 0 {
			vals := rs[pl.mget].Arr
			j := 0
			for r, rg := range rings {
				from, to := pl.buckets[r][0], pl.buckets[r][1]
				q := to - 1
				var bs []bucket
				if n.caller {
					for _, b := range n.rings[r] {
						if b.b > q-rg.n && b.b < from {
							bs = append(bs, b)
						}
					}
				}
				for b := from; b <= to; b++ {
					if j < len(vals) && !vals[j].Nil {
						if v, err := strconv.ParseInt(vals[j].Str, 10, 64); err == nil && v > 0 {
							bs = append(bs, bucket{b, v})
						}
					}
					j++
				}
				n.rings[r] = bs
			}
			n.dialledSet = members(rs[pl.mget+1], true)
			n.users = members(rs[pl.mget+2], false)
			n.caller = true
		}
		if pl.zs >= 0 {
			n.callers = members(rs[pl.zs], false)
			n.dialled = true
		}
		fresh[p] = n
	}
	s.mu.Lock()
	for p, pl := range plans {
		s.cache[pl.k] = fresh[p]
	}
	s.mu.Unlock()
}

// members parses a ZRANGE WITHSCORES reply (member, score, ...).
func members(r reply, withBlock bool) []member {
	var out []member
	for i := 0; i+1 < len(r.Arr); i += 2 {
		m, sc := r.Arr[i].Str, r.Arr[i+1].Str
		f, err := strconv.ParseFloat(sc, 64)
		if err != nil {
			continue
		}
		var v member
		v.t = int64(f)
		if withBlock && len(m) == 32 {
			v.block, _ = strconv.ParseUint(m[:16], 16, 64)
			m = m[16:]
		}
		v.id, _ = strconv.ParseUint(m, 16, 64)
		out = append(out, v)
	}
	return out
}

func (s *Shared) ringKey(id string, r int, b int64) string {
	return s.cfg.Prefix + id + ":" + rings[r].name + ":" + strconv.FormatInt(b, 10)
}

// pseudo is the keyed pseudonym of (domain, tenant, value): 16 hex digits.
func (s *Shared) pseudo(domain byte, tenant uint32, v uint64) string {
	var b [13]byte
	b[0] = domain
	binary.BigEndian.PutUint32(b[1:], tenant)
	binary.BigEndian.PutUint64(b[5:], v)
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write(b[:])
	return hex.EncodeToString(m.Sum(nil)[:8])
}
