package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// Partitions of calls are UTC months, named calls_YYYY_MM.
//
// A partition is made as a plain table and then attached, in one
// transaction: ATTACH PARTITION needs only a SHARE UPDATE EXCLUSIVE lock on
// calls, where CREATE TABLE ... PARTITION OF takes ACCESS EXCLUSIVE and so
// stalls every read and write of call records while it waits and runs. Both
// lock calls_default exclusively, since PostgreSQL checks that it holds no
// row of the new month; a query that cannot prune calls_default (a lookup by
// id, a list without a time range) waits for that moment. Rows of the month
// already in calls_default (a record that arrived before its month had a
// partition) move into the new table first; otherwise attaching would fail
// for good.
//
// Partition DDL runs under a transaction-scoped advisory lock, so nodes
// making or dropping partitions at once take turns, and with a lock timeout,
// so waiting behind a long query fails instead of queueing every other
// query on calls behind the DDL.
const (
	// partitionLock is the advisory lock key of partition DDL.
	partitionLock = 0x72666361_6c6c7301 // "rfcalls" 1
	// ddlLockTimeout bounds how long partition DDL waits for a table lock.
	ddlLockTimeout = "10s"
	// monthsBack and monthsAhead bound the months InsertCalls makes a
	// partition for on demand, counted from the month of DB.Now: a record
	// further off (a clock far wrong, an import of old history) goes to
	// calls_default until EnsurePartitions makes its month.
	monthsBack  = 24
	monthsAhead = 3
	// maxMonths bounds one EnsurePartitions call.
	maxMonths = 600
)

const partitionLayout = "calls_2006_01"

// monthOf returns the first instant of t's month in UTC.
func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// partitionName returns the partition of the month starting at m.
func partitionName(m time.Time) string { return m.Format(partitionLayout) }

// monthOfPartition is the inverse of partitionName; false for any other
// name (calls_default, or a table an operator attached by hand).
func monthOfPartition(name string) (time.Time, bool) {
	m, err := time.Parse(partitionLayout, name)
	return m, err == nil && partitionName(m) == name
}

// bound is m as a literal for a partition bound. DDL takes no parameters;
// the text is built from a time alone.
func bound(m time.Time) string { return "'" + m.Format("2006-01-02") + " 00:00:00+00'" }

func (db *DB) now() time.Time {
	if db.Now != nil {
		return db.Now()
	}
	return time.Now()
}

// EnsurePartitions makes the partition of every month from the one holding
// from to the one holding to, inclusive, that does not exist yet, moving in
// any of its rows held by the default partition. The node calls it ahead of
// time (say for this month and the next two), so that no insert has to wait
// for DDL. Invalid if the range spans more than 600 months or leaves the
// years 1 to 9999.
func (db *DB) EnsurePartitions(ctx context.Context, from, to time.Time) error {
	first, last := monthOf(from), monthOf(to)
	switch {
	case first.Year() < 1 || last.Year() > 9999:
		return call.Errorf(call.Invalid, "partitions: years must be 1 to 9999")
	case last.Before(first):
		return nil
	case (last.Year()-first.Year())*12+int(last.Month()-first.Month()) >= maxMonths:
		return call.Errorf(call.Invalid, "partitions: at most %d months at once", maxMonths)
	}
	for m := first; !m.After(last); m = m.AddDate(0, 1, 0) {
		if err := db.ensureMonth(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// ensureMonth makes the partition of month m unless it is known to exist.
func (db *DB) ensureMonth(ctx context.Context, m time.Time) error {
	db.mu.Lock()
	known := db.months[m]
	db.mu.Unlock()
	if known {
		return nil
	}
	name := partitionName(m)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockPartitions(ctx, tx); err != nil {
			return err
		}
		names, err := partitions(ctx, tx)
		if err != nil || slices.Contains(names, name) {
			return err
		}
		table, lo, hi := pgx.Identifier{name}.Sanitize(), bound(m), bound(m.AddDate(0, 1, 0))
		for _, q := range []string{
			`CREATE TABLE ` + table + ` (LIKE calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
			// Taken before the move so no insert lands in the month's range
			// of calls_default between the move and the attach (which
			// scans calls_default under this lock anyway).
			`LOCK TABLE calls_default IN ACCESS EXCLUSIVE MODE`,
			`WITH moved AS (
				DELETE FROM calls_default WHERE started_at >= ` + lo + ` AND started_at < ` + hi + `
				RETURNING ` + callColumnList + `)
			INSERT INTO ` + table + ` (` + callColumnList + `) SELECT ` + callColumnList + ` FROM moved`,
			`ALTER TABLE calls ATTACH PARTITION ` + table + ` FOR VALUES FROM (` + lo + `) TO (` + hi + `)`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: make partition %s: %w", name, err)
	}
	db.mu.Lock()
	db.months[m] = true
	db.mu.Unlock()
	return nil
}

// DropPartitionsBefore is retention for call records: it drops every month
// partition that ends at or before t (whole months entirely before t), and
// deletes the rows of calls_default that start before the month of t and
// the labels of every record so removed, in one transaction. Afterwards no
// record starting before t's month (UTC) remains and every later one does.
// It returns the names of the dropped partitions, oldest first.
//
// Dropping a partition locks calls exclusively for a moment (PostgreSQL
// gives no lighter way while a default partition exists); if a long query
// holds calls for more than ten seconds the call fails and can be retried.
func (db *DB) DropPartitionsBefore(ctx context.Context, t time.Time) ([]string, error) {
	cutoff := monthOf(t)
	var dropped []string
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		dropped = nil
		if err := lockPartitions(ctx, tx); err != nil {
			return err
		}
		names, err := partitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, name := range names {
			m, ok := monthOfPartition(name)
			if !ok || m.AddDate(0, 1, 0).After(cutoff) {
				continue
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{name}.Sanitize()); err != nil {
				return err
			}
			dropped = append(dropped, name)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM calls_default WHERE started_at < $1`, cutoff); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM labels WHERE record_started_at < $1`, cutoff)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: drop partitions: %w", err)
	}
	db.mu.Lock()
	for m := range db.months {
		if m.Before(cutoff) {
			delete(db.months, m)
		}
	}
	db.mu.Unlock()
	return dropped, nil
}

// lockPartitions takes the partition DDL lock for the rest of tx and bounds
// its waits for table locks.
func lockPartitions(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+ddlLockTimeout+`'`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(partitionLock))
	return err
}

// partitions returns the names of the partitions of calls in name order,
// calls_default included.
func partitions(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'calls'::regclass ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// loadMonths fills the cache of months that have a partition.
func (db *DB) loadMonths(ctx context.Context) error {
	names, err := partitions(ctx, db.pool)
	if err != nil {
		return fmt.Errorf("postgres: list partitions: %w", err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, name := range names {
		if m, ok := monthOfPartition(name); ok {
			db.months[m] = true
		}
	}
	return nil
}

// ensureFor makes on demand the partitions that calls need, for the months
// from monthsBack before the current one to monthsAhead after it; a record
// outside goes to calls_default.
func (db *DB) ensureFor(ctx context.Context, calls []store.Call) error {
	now := monthOf(db.now())
	lo, hi := now.AddDate(0, -monthsBack, 0), now.AddDate(0, monthsAhead, 0)
	var last time.Time
	for _, c := range calls {
		m := monthOf(c.StartedAt)
		if m.Equal(last) || m.Before(lo) || m.After(hi) {
			continue
		}
		last = m
		if err := db.ensureMonth(ctx, m); err != nil {
			return err
		}
	}
	return nil
}
