// Package sqlite implements store.Store on an SQLite file (modernc.org/sqlite,
// no cgo). It is the single-node backend: one process owns the file.
//
// Writes go through a pool of one connection, so writers queue in Go instead
// of contending for SQLite's lock, and every transaction begins IMMEDIATE so
// it never has to upgrade a read lock. Reads use a separate pool of several
// query-only connections, which WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Store = (*DB)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// readConns is the size of the read pool.
const readConns = 4

// DB is an open SQLite store. Safe for concurrent use.
type DB struct {
	// Now stamps the change log (store.Change.At). Nil means time.Now. Set
	// it before use.
	Now func() time.Time

	write *sql.DB // one connection
	read  *sql.DB // query-only connections
}

// Open opens the database file at path, creating it (mode 0600) and its
// parent directory (0700) if needed, and applies any pending migrations.
//
// The file is in WAL mode with synchronous=FULL: a call returns after its
// commit is on disk, so even a power loss keeps every acknowledged write.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// SQLite gives its -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	f.Close()

	write, err := sql.Open("sqlite", dsn(path, "_pragma=journal_mode(WAL)", "_pragma=synchronous(FULL)", "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", dsn(path, "_pragma=query_only(1)"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)
	db := &DB{write: write, read: read}

	if err := migrate(ctx, write); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// dsn returns the driver's name for the file at path with the pragmas every
// connection needs plus params. secure_delete makes SQLite overwrite
// deleted content with zeros, so erased and purged rows do not linger in
// free space of the file. The path is escaped so no character in it
// can be read as part of the query.
func dsn(path string, params ...string) string {
	q := append([]string{"_pragma=busy_timeout(5000)", "_pragma=foreign_keys(1)", "_pragma=secure_delete(1)"}, params...)
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + strings.Join(q, "&")
}

// migrate applies the embedded migrations that the file lacks.
func migrate(ctx context.Context, db *sql.DB) error {
	p, err := newMigrations(db)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

func newMigrations(db *sql.DB) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
}

// Close closes both connection pools.
func (db *DB) Close() error {
	return errors.Join(db.read.Close(), db.write.Close())
}

func (db *DB) now() time.Time {
	if db.Now != nil {
		return db.Now()
	}
	return time.Now()
}

// inTx runs fn in a write transaction, committed if fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// fail returns err as a method's error: constraint violations become domain
// errors (a duplicate key is a Conflict on kind; a foreign key can only miss
// its tenant, since labels check their record first), domain errors pass
// unchanged and anything else is wrapped with op.
func fail(op, kind string, err error) error {
	var se *sqlite.Error
	var ce *call.Error
	switch {
	case err == nil, errors.As(err, &ce):
		return err
	case errors.As(err, &se):
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return call.Errorf(call.Conflict, "%s already exists", kind)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return call.Errorf(call.NotFound, "tenant not found")
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// notFound turns sql.ErrNoRows into a NotFound error naming kind.
func notFound(err error, kind string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return call.Errorf(call.NotFound, "%s not found", kind)
	}
	return err
}

// mustAffect returns NotFound naming kind if res changed no row.
func mustAffect(res sql.Result, err error, kind string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = call.Errorf(call.NotFound, "%s not found", kind)
	}
	return err
}

// nanos is the column value of t: unix nanoseconds, NULL for the zero time.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// timeOf is the inverse of nanos, in UTC.
func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
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

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect scans every row of rows with scan.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
