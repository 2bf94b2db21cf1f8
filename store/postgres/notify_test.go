package postgres

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
)

// waitFor calls WaitChange until it reports a change above after, retrying
// while the listener is away; it fails tb after limit.
func waitFor(tb testing.TB, db *DB, after int64, limit time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(tb.Context(), deadline)
		err := db.WaitChange(ctx, after)
		cancel()
		if err == nil {
			return time.Since(start)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			time.Sleep(20 * time.Millisecond) // not listening: reconnecting
		}
	}
	tb.Fatalf("no change above %d within %v", after, limit)
	return 0
}

// TestWaitChange checks the listener: a write on another handle wakes a
// waiter at once; a waiter for a change it has seen waits; and after the
// listener's connection is lost (its backend terminated, reconnection
// refused for a while), a change committed meanwhile still wakes it once it
// is back.
func TestWaitChange(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	follower := mustOpen(t, dsn)
	defer follower.Close()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "1") // one known backend, spared below
	u.RawQuery = q.Encode()
	writer := mustOpen(t, u.String())
	defer writer.Close()

	if err := writer.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Acme", Region: "GB"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, follower, 0, 5*time.Second) // listening, and has read the newest seq
	last, err := follower.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = follower.WaitChange(short, last)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitChange with nothing new = %v; want the deadline", err)
	}

	for i := range 5 {
		start := time.Now()
		if err := writer.PutRoute(ctx, "acme", call.Route{ID: "r" + string(rune('a'+i)), Kind: call.Domestic}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, follower, last, time.Second)
		t.Logf("write and notification in %v", time.Since(start))
		if last, err = follower.LastChange(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Lose the listener's connection and keep it out.
	name := u.Path[1:]
	other := *u
	other.Path, other.RawQuery = "/postgres", ""
	admin, err := pgx.Connect(ctx, other.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var writerPID uint32
	if err := writer.pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&writerPID); err != nil {
		t.Fatal(err)
	}
	db := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(context.Background(), `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> $2`, name, writerPID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := follower.WaitChange(short, last)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("while away: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WaitChange did not report the lost connection: %v", err)
		}
	}
	if err := writer.PutRoute(ctx, "acme", call.Route{ID: "while-away", Kind: call.Domestic}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, follower, last, 10*time.Second)
	t.Logf("caught up %v after reconnection was allowed", took)
	// The pool may hand out one connection that died with the others; a
	// follower retries.
	cs, err := follower.Changes(ctx, last, 10)
	if err != nil {
		cs, err = follower.Changes(ctx, last, 10)
	}
	if err != nil || len(cs) != 1 || string(cs[0].Key) != "while-away" {
		t.Fatalf("Changes after reconnecting = %+v, %v", cs, err)
	}
}

// TestWaitChangeAfterClose checks that a closed store refuses to wait.
func TestWaitChangeAfterClose(t *testing.T) {
	db := mustOpen(t, pgtest.NewDatabase(t))
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	db.WaitChange(short, 0)
	cancel()
	db.Close()
	if err := db.WaitChange(t.Context(), 0); err == nil {
		t.Error("WaitChange on a closed store: no error")
	}
	db2 := mustOpen(t, pgtest.NewDatabase(t))
	db2.Close()
	if err := db2.WaitChange(t.Context(), 0); err == nil {
		t.Error("WaitChange on a store closed before any wait: no error")
	}
}
