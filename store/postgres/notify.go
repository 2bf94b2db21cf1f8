package postgres

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// WaitChange blocks until the change log may hold a change with a seq above
// after, or ctx ends. When ctx ends it returns ctx's error, or, if the store
// was not listening at that moment (connection lost and not yet back), the
// connection's error, so that the caller knows it waited blind. Once the DB
// is closed it returns an error at once.
//
// The first call starts a listener: one dedicated connection (outside the
// pool, with the pool's settings) that LISTENs on ringfence_changes and
// serves every caller. Each write's NOTIFY carries its newest seq. On every
// (re)connection, after LISTEN, it reads the newest seq in the log, so a
// change committed while it was away wakes the callers that lack it as soon
// as it is back: nothing is missed across a lost connection. It reconnects
// with backoff (50 ms doubling to 2 s) until Close.
//
// A connection that dies silently (a network partition, not a server
// restart or a terminated backend, which close it at once) is noticed only
// by TCP keepalive; meanwhile callers' polling still finds every change.
func (db *DB) WaitChange(ctx context.Context, after int64) error {
	l := db.listen()
	if l == nil {
		return errClosed
	}
	for {
		l.mu.Lock()
		latest, err, wake := l.latest, l.err, l.wake
		l.mu.Unlock()
		switch {
		case latest > after:
			return nil
		case errors.Is(err, errClosed):
			return err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			l.mu.Lock()
			err := l.err
			l.mu.Unlock()
			if err != nil {
				return err
			}
			return ctx.Err()
		}
	}
}

// listener is the state behind WaitChange.
type listener struct {
	cfg  *pgx.ConnConfig
	stop context.CancelFunc
	done chan struct{}

	mu     sync.Mutex
	latest int64         // newest seq known committed
	err    error         // why it is not listening now; nil while it is (or before the first attempt)
	wake   chan struct{} // closed and replaced whenever latest or err changes
}

var errClosed = errors.New("postgres: wait change: store closed")

// listen returns the DB's listener, starting it on first use; nil once the
// DB is closed.
func (db *DB) listen() *listener {
	db.lisOnce.Do(func() {
		ctx, stop := context.WithCancel(context.Background())
		db.lis = &listener{cfg: db.pool.Config().ConnConfig.Copy(), stop: stop, done: make(chan struct{}), wake: make(chan struct{})}
		go db.lis.run(ctx)
	})
	return db.lis
}

// close stops the listener and waits for it; waiters then get errClosed.
func (l *listener) close() {
	l.stop()
	<-l.done
	l.mu.Lock()
	l.err = errClosed
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// set records the newest seq and the connection's state, waking waiters.
// A notification only raises the seq; a (re)connection sets it to the log's
// (exact: so a database restored to an older state cannot leave waiters
// woken for ever by a seq it no longer has).
func (l *listener) set(seq int64, err error, exact bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !exact {
		seq = max(seq, l.latest)
	}
	if seq == l.latest && (err == nil) == (l.err == nil) {
		return
	}
	l.latest, l.err = seq, err
	close(l.wake)
	l.wake = make(chan struct{})
}

func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	const first, most = 50 * time.Millisecond, 2 * time.Second
	backoff := first
	for {
		listened, err := l.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		l.set(0, err, false)
		if listened {
			backoff = first
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, most)
	}
}

// follow connects, listens and records notifications until the connection
// fails; listened reports whether it got as far as listening.
func (l *listener) follow(ctx context.Context) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+changesChannel); err != nil {
		return false, err
	}
	var last int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&last); err != nil {
		return false, err
	}
	l.set(last, nil, true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if seq, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			l.set(seq, nil, false)
		}
	}
}
