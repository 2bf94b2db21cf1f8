package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"strings"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.AuditLog = (*DB)(nil)

// hashSize is the size of an audit entry's Prev and Hash.
const hashSize = 32

// AppendAudit appends entries in one transaction, setting Seq and Prev and
// calling chain for each (see store.AuditLog). The one write connection
// serialises appends; the chain head is read and advanced in the same
// transaction.
func (db *DB) AppendAudit(ctx context.Context, entries []store.AuditEntry, chain func(prev []byte, e *store.AuditEntry)) error {
	if len(entries) == 0 {
		return nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var seq int64
		var prev []byte
		if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &prev); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `
			INSERT INTO audit_log (seq, at, tenant, actor, action, object, detail, prev, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range entries {
			e := &entries[i]
			if e.At.IsZero() {
				return call.Errorf(call.Invalid, "audit entry time is missing")
			}
			seq++
			e.Seq, e.Prev, e.Hash = seq, bytes.Clone(prev), nil
			chain(bytes.Clone(prev), e)
			if len(e.Hash) != hashSize {
				return call.Errorf(call.Invalid, "audit entry hash must be %d bytes", hashSize)
			}
			if _, err := stmt.ExecContext(ctx, e.Seq, e.At.UnixNano(), e.Tenant, e.Actor, e.Action, e.Object, e.Detail, e.Prev, e.Hash); err != nil {
				return err
			}
			prev = e.Hash
		}
		_, err = tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, seq, prev)
		return err
	})
	return fail("append audit", "audit entry", err)
}

// AuditEntries returns the entries matching f in ascending seq order.
func (db *DB) AuditEntries(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	add("seq > ?", f.After)
	if f.Tenant != "" {
		add("tenant = ?", f.Tenant)
	}
	if f.ActionPrefix != "" {
		where = append(where, "substr(action, 1, length(?)) = ?")
		args = append(args, f.ActionPrefix, f.ActionPrefix)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if !f.From.IsZero() {
		add("at >= ?", f.From.UnixNano())
	}
	if !f.To.IsZero() {
		add("at < ?", f.To.UnixNano())
	}
	args = append(args, limit(f.Limit))
	rows, err := db.read.QueryContext(ctx, `
		SELECT seq, at, tenant, actor, action, object, detail, prev, hash FROM audit_log
		WHERE `+strings.Join(where, " AND ")+` ORDER BY seq LIMIT ?`, args...)
	es, err := collect(rows, err, scanAuditEntry)
	return es, fail("audit entries", "audit entry", err)
}

// LastAuditEntry returns the entry with the highest seq; NotFound if none.
func (db *DB) LastAuditEntry(ctx context.Context) (store.AuditEntry, error) {
	e, err := scanAuditEntry(db.read.QueryRowContext(ctx, `
		SELECT seq, at, tenant, actor, action, object, detail, prev, hash FROM audit_log
		ORDER BY seq DESC LIMIT 1`))
	return e, fail("last audit entry", "audit entry", notFound(err, "audit entry"))
}

func scanAuditEntry(s scanner) (store.AuditEntry, error) {
	var e store.AuditEntry
	var at sql.NullInt64
	err := s.Scan(&e.Seq, &at, &e.Tenant, &e.Actor, &e.Action, &e.Object, &e.Detail, &e.Prev, &e.Hash)
	e.At = timeOf(at)
	return e, err
}

// PutAuditCheckpoint stores a checkpoint of a stored entry (see
// store.AuditLog).
func (db *DB) PutAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if c.At.IsZero() {
			return call.Errorf(call.Invalid, "audit checkpoint time is missing")
		}
		var hash []byte
		err := tx.QueryRowContext(ctx, `SELECT hash FROM audit_log WHERE seq = ?`, c.Seq).Scan(&hash)
		if err != nil {
			return notFound(err, "audit entry")
		}
		if !bytes.Equal(hash, c.Hash) {
			return call.Errorf(call.Invalid, "checkpoint hash does not match audit entry %d", c.Seq)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, at, signature, key_id) VALUES (?, ?, ?, ?, ?)`,
			c.Seq, c.Hash, c.At.UnixNano(), c.Signature, c.KeyID)
		return err
	})
	return fail("put audit checkpoint", "audit checkpoint", err)
}

// AuditCheckpoints returns up to n checkpoints with a seq above after.
func (db *DB) AuditCheckpoints(ctx context.Context, after int64, n int) ([]store.AuditCheckpoint, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT seq, hash, at, signature, key_id FROM audit_checkpoints WHERE seq > ? ORDER BY seq LIMIT ?`,
		after, limit(n))
	cs, err := collect(rows, err, scanAuditCheckpoint)
	return cs, fail("audit checkpoints", "audit checkpoint", err)
}

// LastAuditCheckpoint returns the checkpoint with the highest seq; NotFound
// if none.
func (db *DB) LastAuditCheckpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	c, err := scanAuditCheckpoint(db.read.QueryRowContext(ctx, `
		SELECT seq, hash, at, signature, key_id FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`))
	return c, fail("last audit checkpoint", "audit checkpoint", notFound(err, "audit checkpoint"))
}

func scanAuditCheckpoint(s scanner) (store.AuditCheckpoint, error) {
	var c store.AuditCheckpoint
	var at sql.NullInt64
	err := s.Scan(&c.Seq, &c.Hash, &at, &c.Signature, &c.KeyID)
	c.At = timeOf(at)
	return c, err
}

// PurgeAuditBefore deletes the entries below a checkpointed seq (see
// store.AuditLog).
func (db *DB) PurgeAuditBefore(ctx context.Context, seq int64) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var ok bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (
			SELECT 1 FROM audit_checkpoints c JOIN audit_log l ON l.seq = c.seq WHERE c.seq = ?)`, seq).Scan(&ok)
		if err != nil {
			return err
		}
		if !ok {
			return call.Errorf(call.Invalid, "no checkpointed audit entry at seq %d", seq)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_log WHERE seq < ?`, seq)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, fail("purge audit", "audit entry", err)
}
