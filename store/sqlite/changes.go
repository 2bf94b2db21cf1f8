package sqlite

import (
	"context"
	"database/sql"

	"github.com/ringfence/ringfence/store"
)

// maxKeys bounds the keys of one multi-key read (ListEntriesOf).
const maxKeys = 1000

// appendChanges appends changes to the change log inside tx, in order,
// stamped with the store's clock. Writes are serialised on the one write
// connection, so seqs follow commit order.
func (db *DB) appendChanges(ctx context.Context, tx *sql.Tx, changes ...store.Change) error {
	if len(changes) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO changes (tenant, kind, key, sealed, at) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	at := db.now().UnixNano()
	for _, c := range changes {
		key := c.Key
		if key == nil {
			key = []byte{}
		}
		if _, err := stmt.ExecContext(ctx, c.Tenant, string(c.Kind), key, c.Sealed, at); err != nil {
			return err
		}
	}
	return nil
}

// Changes returns up to limit changes with a seq above after, in seq order.
func (db *DB) Changes(ctx context.Context, after int64, n int) ([]store.Change, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT seq, tenant, kind, key, sealed, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`,
		after, limit(n))
	cs, err := collect(rows, err, func(s scanner) (store.Change, error) {
		var c store.Change
		var at sql.NullInt64
		err := s.Scan(&c.Seq, &c.Tenant, &c.Kind, &c.Key, &c.Sealed, &at)
		if len(c.Key) == 0 {
			c.Key = nil
		}
		c.At = timeOf(at)
		return c, err
	})
	return cs, fail("changes", "change", err)
}

// LastChange returns the highest seq in the change log, 0 if it is empty.
func (db *DB) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	err := db.read.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq)
	return seq, fail("last change", "change", err)
}

// Counts returns how many rows the tenant has in each table.
func (db *DB) Counts(ctx context.Context, tenant string) (store.Counts, error) {
	var c store.Counts
	err := db.read.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM api_keys WHERE tenant = ?1),
		(SELECT count(*) FROM calls WHERE tenant = ?1),
		(SELECT count(*) FROM labels WHERE tenant = ?1),
		(SELECT count(*) FROM list_entries WHERE tenant = ?1),
		(SELECT count(*) FROM routes WHERE tenant = ?1),
		(SELECT count(*) FROM policies WHERE tenant = ?1),
		(SELECT count(*) FROM links WHERE tenant = ?1)`, tenant).
		Scan(&c.APIKeys, &c.Calls, &c.Labels, &c.ListEntries, &c.Routes, &c.Policies, &c.Links)
	return c, fail("counts", "tenant", err)
}
