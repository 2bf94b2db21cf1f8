package node

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// RecorderConfig tunes the recorder. Zero values are useful defaults.
type RecorderConfig struct {
	Batch  int           // records per transaction at most; 0 => 512
	Queue  int           // records waiting at most before Screen blocks; 0 => 65536
	Linger time.Duration // under load, wait this long for a batch to fill; 0 => 2ms, negative => never
	Grace  time.Duration // on Close with the store failing, keep retrying this long; 0 => 30s
}

// recorder writes screened calls to the store off the request path with
// group commit: it takes the first waiting record, drains whatever else is
// already queued (up to Batch) and commits them in one transaction. Under
// light load a record is committed at once; under load (more than one
// record waiting) it lingers up to Linger for the batch to fill, so one
// fsync covers more records, and batches also grow while a commit runs.
//
// A failed commit (store unavailable, disk full) is retried with backoff
// until it succeeds, while screening goes on from memory and new records
// wait in the queue. Only when the queue is full while the store is failing
// are new records dropped, so that calls are still answered: each is
// counted in ringfence_records_lost_total and logged (at most every 10 s).
// A full queue with a working but slow store applies back-pressure instead
// (enqueue waits; the front ends' overload policy answers). On Close,
// records still unwritten after Grace are counted lost the same way.
type recorder struct {
	cfg   RecorderConfig
	store store.Store
	seal  func(*call.Call) (store.Call, error)
	link  func(tenant string, caller call.Number, userRef string, at time.Time) (store.Link, error)
	log   *slog.Logger
	m     *metrics
	// pending holds the newest unwritten version of each record by id, so
	// reads and call-end updates see records still in the queue.
	pending sync.Map // id -> *call.Call

	in   chan item
	done chan struct{}
	mu   sync.RWMutex // held for reading while sending, for writing to close

	failing  atomic.Bool  // the last commit attempt failed
	closedAt atomic.Int64 // unix ns when close began (set under mu); 0 while open
	lost     atomic.Int64 // records and call-end updates dropped
	lostLog  atomic.Int64 // unix ns of the last log line about losses
}

type item struct {
	c    *call.Call    // a new record, or with end set, the record whose end changed
	end  bool          // c carries a call-end update for an existing record
	link bool          // also store the call's new customer link
	ack  chan struct{} // a sync marker: closed once everything before it is committed
}

func (n *Node) startRecorder() *recorder {
	cfg := n.cfg.Recorder
	if cfg.Batch <= 0 {
		cfg.Batch = 512
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1 << 16
	}
	if cfg.Linger == 0 {
		cfg.Linger = 2 * time.Millisecond
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	r := &recorder{
		cfg: cfg, store: n.store, seal: n.sealCall, link: n.sealLink,
		log: n.log.With("component", "recorder"), m: n.m,
		in: make(chan item, cfg.Queue), done: make(chan struct{}),
	}
	n.m.recorderState(
		func() float64 { return float64(len(r.in)) },
		func() float64 { return float64(r.lost.Load()) },
		func() float64 {
			if r.failing.Load() {
				return 1
			}
			return 0
		})
	go r.run()
	return r
}

// enqueue hands a new record (or, with end, a call-end update of c) to the
// recorder. While the queue is full it waits until ctx ends (Overloaded),
// unless the store is failing: then c is dropped and counted lost, and
// enqueue returns nil so the call is still answered. c must not change
// afterwards.
func (r *recorder) enqueue(ctx context.Context, c *call.Call, end, link bool) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closedAt.Load() != 0 {
		return call.Errorf(call.Unavailable, "shutting down")
	}
	it := item{c: c, end: end, link: link}
	r.pending.Store(c.ID, c)
	select {
	case r.in <- it:
		return nil
	default:
	}
	if r.failing.Load() {
		r.pending.CompareAndDelete(c.ID, c)
		r.drop(1, "store unavailable and recorder queue full")
		return nil
	}
	select {
	case r.in <- it:
		return nil
	case <-ctx.Done():
		r.pending.CompareAndDelete(c.ID, c)
		return call.Errorf(call.Overloaded, "recorder queue full; retry later")
	}
}

// lookup returns the newest queued version of a tenant's record, if any.
func (r *recorder) lookup(tenant, id string) *call.Call {
	if v, ok := r.pending.Load(id); ok && v.(*call.Call).Tenant == tenant {
		return v.(*call.Call)
	}
	return nil
}

// sync waits until every record queued before it is committed.
// Unavailable at once while the store is failing: a caller that must not
// acknowledge before its write is stored (a label) fails fast instead of
// waiting out the outage.
func (r *recorder) sync(ctx context.Context) error {
	if r.failing.Load() {
		return call.Errorf(call.Unavailable, "the store is not accepting writes; retry later")
	}
	ack := make(chan struct{})
	r.mu.RLock()
	if r.closedAt.Load() != 0 {
		r.mu.RUnlock()
		return call.Errorf(call.Unavailable, "shutting down")
	}
	select {
	case r.in <- item{ack: ack}:
	case <-ctx.Done():
		r.mu.RUnlock()
		return ctx.Err()
	}
	r.mu.RUnlock()
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drop counts n records lost and logs it, at most once every 10 s.
func (r *recorder) drop(n int, why string) {
	total := r.lost.Add(int64(n))
	now := time.Now().UnixNano()
	last := r.lostLog.Load()
	if now-last >= int64(10*time.Second) && r.lostLog.CompareAndSwap(last, now) {
		r.log.Error("call records lost: "+why, "lost_total", total)
	}
}

// close stops taking records, commits every queued one (giving up on them
// after Grace if the store keeps failing) and returns.
func (r *recorder) close() error {
	r.mu.Lock()
	if r.closedAt.Load() == 0 {
		r.closedAt.Store(time.Now().UnixNano())
		close(r.in)
	}
	r.mu.Unlock()
	<-r.done
	return nil
}

func (r *recorder) run() {
	defer close(r.done)
	batch := make([]item, 0, r.cfg.Batch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for it := range r.in {
		batch = append(batch[:0], it)
		open := r.drain(&batch)
		if open && r.cfg.Linger > 0 && len(batch) > 1 && len(batch) < r.cfg.Batch && !hasAck(batch) {
			linger.Reset(r.cfg.Linger)
		fill:
			for len(batch) < r.cfg.Batch {
				select {
				case it, ok := <-r.in:
					if !ok {
						break fill
					}
					batch = append(batch, it)
					if it.ack != nil {
						break fill
					}
				case <-linger.C:
					break fill
				}
			}
			linger.Stop()
		}
		r.commit(batch)
	}
}

// drain appends what is already queued to batch, up to Batch, and reports
// whether the queue is still open.
func (r *recorder) drain(batch *[]item) bool {
	for len(*batch) < r.cfg.Batch {
		select {
		case it, ok := <-r.in:
			if !ok {
				return false
			}
			*batch = append(*batch, it)
		default:
			return true
		}
	}
	return true
}

func hasAck(batch []item) bool {
	for _, it := range batch {
		if it.ack != nil {
			return true
		}
	}
	return false
}

// commit writes one batch, retrying until it succeeds (or, once closing,
// until Grace has passed), then releases any sync markers in it.
func (r *recorder) commit(batch []item) {
	rows := make([]store.Call, 0, len(batch))
	var ends []store.CallEnd
	links := map[string][]store.Link{}
	for _, it := range batch {
		if it.c == nil {
			continue
		}
		if it.end {
			e := it.c.End
			ends = append(ends, store.CallEnd{Tenant: it.c.Tenant, ID: it.c.ID, End: store.End{Duration: e.Duration, Result: e.Result, Egress: e.Egress}})
			continue
		}
		row, err := r.seal(it.c)
		if err != nil {
			r.log.Error("cannot seal record; dropped", "record", it.c.ID, "err", err)
			r.lost.Add(1)
			continue
		}
		rows = append(rows, row)
		if it.link {
			if l, err := r.link(it.c.Tenant, it.c.Caller, it.c.UserRef, it.c.StartedAt); err == nil {
				links[it.c.Tenant] = append(links[it.c.Tenant], l)
			}
		}
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		err := r.write(rows, ends, links)
		if err == nil {
			r.failing.Store(false)
			r.m.committed(len(rows), time.Since(start))
			break
		}
		r.failing.Store(true)
		if c := r.closedAt.Load(); c != 0 && time.Since(time.Unix(0, c)) > r.cfg.Grace {
			r.drop(len(rows)+len(ends), "store still failing at shutdown")
			break
		}
		wait := min(time.Duration(1<<min(attempt, 6))*10*time.Millisecond, time.Second)
		if attempt < 3 || attempt%30 == 0 { // then about every 30 s
			r.log.Error("commit failed; retrying", "records", len(rows), "attempt", attempt+1, "wait", wait, "err", err)
		}
		time.Sleep(wait)
	}
	for _, it := range batch {
		if it.c != nil {
			r.pending.CompareAndDelete(it.c.ID, it.c)
		}
		if it.ack != nil {
			close(it.ack)
		}
	}
}

func (r *recorder) write(rows []store.Call, ends []store.CallEnd, links map[string][]store.Link) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(rows) > 0 {
		if err := r.store.InsertCalls(ctx, rows); err != nil {
			return err
		}
	}
	if err := r.store.UpdateCallEnds(ctx, ends); err != nil {
		return err
	}
	for tenant, ls := range links {
		if err := r.store.PutLinks(ctx, tenant, ls); err != nil {
			return err
		}
	}
	return nil
}
