// Package postgres implements store.Store on PostgreSQL (github.com/jackc/pgx/v5),
// the cluster backend: several nodes share one database.
//
// Call records are range-partitioned by month of their start time (see
// migrations/00001_init.sql); DB.EnsurePartitions makes months ahead of time,
// InsertCalls makes the ones it touches on demand, and DB.DropPartitionsBefore
// is retention, which drops a month whole. Every other table is as in
// store/sqlite, with timestamptz for times: they keep microseconds, so a time
// reads back truncated to the microsecond (SQLite keeps nanoseconds).
//
// Writes append to the change log (see store's "Change feed") in their
// transaction, serialised by an advisory lock so that seq order is commit
// order, and NOTIFY ringfence_changes at commit; DB.WaitChange listens.
//
// Errors follow store's contract: a unique violation is a Conflict, a
// foreign-key violation (only a tenant can be missing) and a missing row are
// NotFound, matched by SQLSTATE; anything else is wrapped with the method.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Store = (*DB)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// SQLSTATE codes the store maps to domain errors.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// DB is an open PostgreSQL store. Safe for concurrent use, by many nodes on
// one database as well.
type DB struct {
	// Now tells InsertCalls which months are near enough to get a partition
	// on demand (see InsertCalls), and stamps the change log
	// (store.Change.At). Nil means time.Now. Set it before use.
	Now func() time.Time

	pool *pgxpool.Pool

	mu     sync.Mutex
	months map[time.Time]bool // months known to have a partition

	lisOnce sync.Once
	lis     *listener // follows the change log's NOTIFY; nil until WaitChange
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string, as pgx reads it) and applies any pending migrations. Nodes starting
// together migrate one at a time (a session advisory lock), so a migration
// never runs twice.
func Open(ctx context.Context, dsn string) (*DB, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db := &DB{pool: pool, months: map[time.Time]bool{}}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if err := db.loadMonths(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// migrate applies the embedded migrations that the database lacks, through
// a database/sql handle on the pool.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	p, err := newMigrations(sqlDB)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// newMigrations returns a goose provider of the embedded migrations, with no
// global goose state.
func newMigrations(db *sql.DB) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
}

// Close stops the change listener, if WaitChange started one, and closes
// the connection pool, waiting for connections in use.
func (db *DB) Close() error {
	db.lisOnce.Do(func() {}) // no listener starts after this
	if db.lis != nil {
		db.lis.close()
	}
	db.pool.Close()
	return nil
}

// inTx runs fn in a transaction, committed if fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, fn)
}

// fail returns err as a method's error: constraint violations become domain
// errors (a duplicate key is a Conflict on kind; a foreign key can only miss
// its tenant, since labels check their record first), a missing row is
// NotFound on kind, domain errors pass unchanged and anything else is wrapped
// with op. Messages name kinds only, never a value.
func fail(op, kind string, err error) error {
	var pe *pgconn.PgError
	var ce *call.Error
	switch {
	case err == nil, errors.As(err, &ce):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return call.Errorf(call.NotFound, "%s not found", kind)
	case errors.As(err, &pe):
		switch pe.Code {
		case uniqueViolation:
			return call.Errorf(call.Conflict, "%s already exists", kind)
		case foreignKeyViolation:
			return call.Errorf(call.NotFound, "tenant not found")
		}
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// hasCode reports whether err is a PostgreSQL error with SQLSTATE code.
func hasCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// mustAffect returns NotFound naming kind if tag shows no row changed.
func mustAffect(tag pgconn.CommandTag, err error, kind string) error {
	if err == nil && tag.RowsAffected() == 0 {
		err = call.Errorf(call.NotFound, "%s not found", kind)
	}
	return err
}

// ts is the column value of t: NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeOf is the inverse of ts, in UTC.
func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// limit applies store.CallFilter's page size rule: 0 => 100, at most 1000.
// The list and link pages use it too.
func limit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// start is a paging cursor as a column value: nil becomes the empty bytea,
// which sorts below every pseudonym (a NULL would match nothing).
func start(after []byte) []byte {
	if after == nil {
		return []byte{}
	}
	return after
}
