package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
)

// FollowConfig tunes the change-feed follower. Zero values are useful
// defaults.
type FollowConfig struct {
	// Poll is the longest the follower goes without reading the change log
	// (the safety net under notifications, and the only trigger without
	// them); 0 => 500ms. Negative turns the follower off: the node then
	// sees only its own writes.
	Poll time.Duration
}

// Notifier wakes the follower when the store may hold new changes, so it
// need not wait for its next poll. store/postgres implements it with
// LISTEN/NOTIFY; the follower uses it when the store has it.
type Notifier interface {
	// WaitChange blocks until the store may hold a change with a seq above
	// after, or ctx ends. Then it returns ctx's error, or another error if
	// it could not have been notified meanwhile (its connection lost).
	WaitChange(ctx context.Context, after int64) error
}

// followBatch is how many changes the follower reads at once.
const followBatch = 1000

// follower applies the store's change log to the node's in-memory state:
// changes made by every node on the same store, this one's included (they
// are idempotent, and re-applying them settles races between a node's own
// writes and others'). See store's "Change feed" for the log's guarantees.
//
// It reads the log after the last seq it applied whenever the Notifier
// wakes it (store/postgres also wakes it when its listening connection is
// back and the log moved meanwhile) and at least every Poll; after a failed
// read it retries in 50 ms, doubling up to Poll. So a change committed while
// the store was unreachable is applied soon after it is back. Each change is applied by reading the changed object's
// current state back by key (or, for a deletion, opening the sealed value it
// carries to find the number to drop); runs of list puts are read in one
// query. A change that cannot be read is retried; one that can never be
// applied (a ciphertext this node's keys do not open, an unknown tenant) is
// logged and skipped.
//
// With SQLite (one process) the follower only polls: that is how a tenant
// made by `ringfence tenant create` beside a running server reaches it.
type follower struct {
	n      *Node
	poll   time.Duration
	notify Notifier // nil: poll only
	log    *slog.Logger
	last   atomic.Int64 // seq of the last change applied or skipped
	stop   context.CancelFunc
	done   chan struct{}
}

// startFollower starts following the change log after seq `after`.
func (n *Node) startFollower(after int64) *follower {
	f := &follower{n: n, poll: n.cfg.Follow.Poll, log: n.log.With("component", "follower"), done: make(chan struct{})}
	if f.poll == 0 {
		f.poll = 500 * time.Millisecond
	}
	f.notify, _ = n.store.(Notifier)
	f.last.Store(after)
	n.m.feedSeq(func() float64 { return float64(f.last.Load()) })
	ctx, stop := context.WithCancel(context.Background())
	f.stop = stop
	go f.run(ctx)
	return f
}

// close stops the follower and waits for it.
func (f *follower) close() {
	f.stop()
	<-f.done
}

func (f *follower) run(ctx context.Context) {
	defer close(f.done)
	const firstRetry = 50 * time.Millisecond
	retry := firstRetry
	failing, deaf := false, false
	for {
		err := f.catchUp(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && !failing:
			f.log.Warn("cannot read the change feed; retrying", "after", f.last.Load(), "err", err)
		case err == nil && failing:
			f.log.Info("reading the change feed again", "seq", f.last.Load())
		}
		failing = err != nil
		if failing {
			// Retry soon (a pool may hand out one connection that died
			// with the database), then less often, at most every Poll.
			wait := time.NewTimer(retry)
			select {
			case <-wait.C:
			case <-ctx.Done():
				wait.Stop()
				return
			}
			retry = min(2*retry, max(f.poll, firstRetry))
			continue
		}
		retry = firstRetry

		wait, cancel := context.WithTimeout(ctx, f.poll)
		if f.notify != nil {
			err := f.notify.WaitChange(wait, f.last.Load())
			switch {
			case ctx.Err() != nil:
			case err != nil && !errors.Is(err, context.DeadlineExceeded):
				if !deaf {
					f.log.Warn("not notified of changes; polling", "every", f.poll, "err", err)
				}
				deaf = true
			case deaf:
				f.log.Info("notified of changes again")
				deaf = false
			}
		} else {
			<-wait.Done()
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// catchUp applies every change after the last applied one.
func (f *follower) catchUp(ctx context.Context) error {
	for {
		cs, err := f.n.store.Changes(ctx, f.last.Load(), followBatch)
		if err != nil {
			return err
		}
		if err := f.apply(ctx, cs); err != nil {
			return err
		}
		if len(cs) < followBatch {
			return nil
		}
	}
}

// skipError marks a change that can never be applied.
type skipError struct{ err error }

func (e skipError) Error() string { return e.err.Error() }
func (e skipError) Unwrap() error { return e.err }

func skip(format string, args ...any) error { return skipError{fmt.Errorf(format, args...)} }

// errNotLoaded is why changes of a tenant this node could not load are
// skipped (the load's failure was logged).
var errNotLoaded = errors.New("tenant not loaded")

// apply applies cs in order, advancing the last applied seq; it stops at
// the first change that fails for a reason a retry may cure.
func (f *follower) apply(ctx context.Context, cs []store.Change) error {
	for i := 0; i < len(cs); {
		c := cs[i]
		n := 1
		var err error
		for try := 0; try < 2; try++ {
			if c.Kind == store.ChangeListPut {
				n, err = f.putEntries(ctx, cs[i:])
			} else {
				err = f.applyOne(ctx, c)
			}
			// A change reads the object's current state, which may be
			// sealed under a key version announced by a later change:
			// reopen the tenant's keys and try once more.
			if try > 0 || !errors.Is(err, seal.ErrDecrypt) || f.n.reopenKeys(ctx, c.Tenant) != nil {
				break
			}
		}
		var se skipError
		switch {
		case errors.Is(err, errNotLoaded):
			f.log.Debug("change of a tenant not loaded; skipped", "seq", c.Seq, "kind", c.Kind, "tenant", c.Tenant)
		case errors.As(err, &se) || errors.Is(err, seal.ErrDecrypt):
			f.log.Error("cannot apply a change; skipped", "seq", c.Seq, "kind", c.Kind, "tenant", c.Tenant, "err", err)
		case err != nil:
			return err
		}
		for _, done := range cs[i : i+n] {
			f.n.m.applied(time.Since(done.At))
		}
		f.last.Store(cs[i+n-1].Seq)
		i += n
	}
	return nil
}

// applyOne applies one change other than a list put.
func (f *follower) applyOne(ctx context.Context, c store.Change) error {
	n := f.n
	if c.Kind == store.ChangeTenant {
		return f.addTenant(ctx, c.Tenant)
	}
	if isConsortiumChange(c) {
		if n.cfg.Consortium == nil {
			return nil
		}
		return n.cfg.Consortium.Apply(ctx, c)
	}
	k, err := n.tenantKeys(c.Tenant)
	if err != nil {
		return skip("%w", errNotLoaded)
	}
	switch c.Kind {
	case store.ChangeAPIKey:
		if len(c.Key) != 32 {
			return skip("api key hash of %d bytes", len(c.Key))
		}
		// Authenticate reads a new key's holder on first use.
		n.mu.Lock()
		delete(n.apiKeys, [32]byte(c.Key))
		n.mu.Unlock()

	case store.ChangeListDelete:
		list, p, ok := c.ListKey()
		if !ok {
			return skip("malformed list key")
		}
		b, err := k.Open(c.Sealed, listAAD(c.Tenant, list, p))
		if c.Sealed == nil || errors.Is(err, seal.ErrRetiredKey) {
			// An erasure (only the pseudonym travels), or a copy
			// sealed under a key retired since.
			n.engine.ForgetListed(c.Tenant, list, matchPseudonym(k, p))
			return nil
		}
		if err != nil {
			return err
		}
		return n.engine.DeleteListEntry(c.Tenant, list, n.engine.Number(c.Tenant, string(b)))

	case store.ChangeRoutePut, store.ChangeRouteDelete:
		r, err := n.store.Route(ctx, c.Tenant, string(c.Key))
		switch {
		case call.ErrorCode(err) == call.NotFound:
			return n.engine.DeleteRoute(c.Tenant, string(c.Key))
		case err != nil:
			return err
		}
		return n.engine.PutRoute(c.Tenant, r)

	case store.ChangePolicy:
		p, err := n.store.Policy(ctx, c.Tenant)
		switch {
		case call.ErrorCode(err) == call.NotFound:
			return nil
		case err != nil:
			return err
		}
		return n.engine.SetPolicy(c.Tenant, p)

	case store.ChangeLinkPut:
		caller, user, ok := c.LinkKey()
		if !ok {
			return skip("malformed link key")
		}
		l, err := n.store.Link(ctx, c.Tenant, caller, user)
		switch {
		case call.ErrorCode(err) == call.NotFound:
			return nil // deleted since; its deletion follows
		case err != nil:
			return err
		}
		number, ref, err := openLink(c.Tenant, k, l)
		if err != nil {
			return skip("%w", err)
		}
		n.engine.Link(c.Tenant, n.engine.Number(c.Tenant, number), ref)

	case store.ChangeLinkDelete:
		caller, user, ok := c.LinkKey()
		if !ok {
			return skip("malformed link key")
		}
		number, _, err := openLink(c.Tenant, k, store.Link{CallerPseudonym: caller, UserPseudonym: user, Sealed: c.Sealed})
		if c.Sealed == nil || errors.Is(err, seal.ErrRetiredKey) {
			n.engine.ForgetLinks(c.Tenant, matchPseudonym(k, caller))
			return nil
		}
		if err != nil {
			return skip("%w", err)
		}
		n.engine.Unlink(c.Tenant, n.engine.Number(c.Tenant, number))

	case store.ChangeTenantKeys:
		return n.reopenKeys(ctx, c.Tenant)

	case store.ChangeModel:
		return n.loadModels(ctx, c.Tenant)

	case store.ChangeSubjectFlags:
		fl, err := n.store.SubjectFlags(ctx, c.Tenant, c.Key)
		if err != nil {
			return err
		}
		n.setFlags(fl)

	default:
		return skip("unknown change kind %q", c.Kind)
	}
	return nil
}

// matchPseudonym matches the E.164 numbers whose pseudonym is p.
func matchPseudonym(k *seal.TenantKeys, p []byte) func(string) bool {
	return func(e164 string) bool {
		q := k.Pseudonym(e164)
		return string(q[:]) == string(p)
	}
}

// addTenant loads a tenant made on another node (or by the CLI); one this
// node knows already is left as it is.
func (f *follower) addTenant(ctx context.Context, id string) error {
	t, err := f.n.store.Tenant(ctx, id)
	switch {
	case call.ErrorCode(err) == call.NotFound:
		return skip("tenant %q is not stored", id)
	case err != nil:
		return err
	case !t.DeletedAt.IsZero():
		f.n.drop(id)
		return nil
	}
	if _, err := f.n.tenantKeys(id); err == nil {
		return nil
	}
	if err := f.n.load(ctx, t); err != nil {
		return fmt.Errorf("load tenant %s: %w", id, err)
	}
	f.log.Info("tenant loaded from the change feed", "tenant", id)
	return nil
}

// putEntries applies the run of list puts of one tenant and list at the
// head of cs (at most followBatch, the most ListEntriesOf takes) with one
// read, and returns how many changes it covered.
func (f *follower) putEntries(ctx context.Context, cs []store.Change) (int, error) {
	n := f.n
	head := cs[0]
	list, _, _ := head.ListKey()
	var ps [][]byte
	count := 0
	for _, c := range cs {
		l, p, ok := c.ListKey()
		if c.Kind != store.ChangeListPut || c.Tenant != head.Tenant || l != list || !ok || count == followBatch {
			break
		}
		ps = append(ps, p)
		count++
	}
	if count == 0 {
		return 1, skip("malformed list key")
	}
	k, err := n.tenantKeys(head.Tenant)
	if err != nil {
		return count, skip("%w", errNotLoaded)
	}
	rows, err := n.store.ListEntriesOf(ctx, head.Tenant, list, ps)
	if err != nil {
		return count, err
	}
	entries := make([]call.ListEntry, 0, len(rows))
	reopened := false
	for _, r := range rows {
		e, err := n.openListEntry(head.Tenant, k, r)
		if errors.Is(err, seal.ErrDecrypt) && !reopened {
			// Sealed under a key version a later change announces.
			reopened = true
			if n.reopenKeys(ctx, head.Tenant) == nil {
				k, _ = n.tenantKeys(head.Tenant)
				e, err = n.openListEntry(head.Tenant, k, r)
			}
		}
		if err != nil {
			f.log.Error("cannot open a list entry; skipped", "tenant", head.Tenant, "list", list, "pseudonym", fmt.Sprintf("%x", r.Pseudonym), "err", err)
			continue
		}
		entries = append(entries, e)
	}
	return count, n.engine.PutListEntries(head.Tenant, entries...)
}
