package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.AuditLog = (*DB)(nil)

// hashSize is the size of an audit entry's Prev and Hash.
const hashSize = 32

// AppendAudit appends entries in one transaction, setting Seq and Prev and
// calling chain for each (see store.AuditLog). The chain head's row, read
// FOR UPDATE, serialises appends across connections and nodes: a second
// appender blocks on it until the first commits, then reads the head the
// first left (READ COMMITTED re-reads a row it waited for). The head is
// locked for the inserts and the commit only.
func (db *DB) AppendAudit(ctx context.Context, entries []store.AuditEntry, chain func(prev []byte, e *store.AuditEntry)) error {
	if len(entries) == 0 {
		return nil
	}
	for _, e := range entries {
		if e.At.IsZero() {
			return call.Errorf(call.Invalid, "audit entry time is missing")
		}
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var seq int64
		var prev []byte
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&seq, &prev); err != nil {
			return err
		}
		n := len(entries)
		seqs := make([]int64, n)
		ats := make([]time.Time, n)
		tenants, actors, actions, objects, details := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		prevs, hashes := make([][]byte, n), make([][]byte, n)
		for i := range entries {
			e := &entries[i]
			seq++
			e.Seq, e.Prev, e.Hash = seq, bytes.Clone(prev), nil
			chain(bytes.Clone(prev), e)
			if len(e.Hash) != hashSize {
				return call.Errorf(call.Invalid, "audit entry hash must be %d bytes", hashSize)
			}
			seqs[i], ats[i] = e.Seq, e.At
			tenants[i], actors[i], actions[i], objects[i], details[i] = e.Tenant, e.Actor, e.Action, e.Object, e.Detail
			prevs[i], hashes[i] = e.Prev, e.Hash
			prev = e.Hash
		}
		var b pgx.Batch
		b.Queue(`
			INSERT INTO audit_log (seq, at, tenant, actor, action, object, detail, prev, hash)
			SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
				$6::text[], $7::text[], $8::bytea[], $9::bytea[])`,
			seqs, ats, tenants, actors, actions, objects, details, prevs, hashes)
		b.Queue(`UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, seq, prev)
		return tx.SendBatch(ctx, &b).Close()
	})
	return fail("append audit", "audit entry", err)
}

const auditColumns = `seq, at, tenant, actor, action, object, detail, prev, hash`

// AuditEntries returns the entries matching f in ascending seq order.
func (db *DB) AuditEntries(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	add("seq > $%d", f.After)
	if f.Tenant != "" {
		add("tenant = $%d", f.Tenant)
	}
	if f.ActionPrefix != "" {
		add("starts_with(action, $%d)", f.ActionPrefix)
	}
	if f.Actor != "" {
		add("actor = $%d", f.Actor)
	}
	if !f.From.IsZero() {
		add("at >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("at < $%d", f.To)
	}
	args = append(args, limit(f.Limit))
	rows, err := db.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_log
		WHERE `+strings.Join(where, " AND ")+fmt.Sprintf(` ORDER BY seq LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fail("audit entries", "audit entry", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEntry, error) { return scanAuditEntry(r) })
	return es, fail("audit entries", "audit entry", err)
}

// LastAuditEntry returns the entry with the highest seq; NotFound if none.
func (db *DB) LastAuditEntry(ctx context.Context) (store.AuditEntry, error) {
	e, err := scanAuditEntry(db.pool.QueryRow(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq DESC LIMIT 1`))
	return e, fail("last audit entry", "audit entry", err)
}

func scanAuditEntry(r pgx.Row) (store.AuditEntry, error) {
	var e store.AuditEntry
	err := r.Scan(&e.Seq, &e.At, &e.Tenant, &e.Actor, &e.Action, &e.Object, &e.Detail, &e.Prev, &e.Hash)
	e.At = e.At.UTC()
	return e, err
}

// PutAuditCheckpoint stores a checkpoint of a stored entry (see
// store.AuditLog).
func (db *DB) PutAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	if c.At.IsZero() {
		return call.Errorf(call.Invalid, "audit checkpoint time is missing")
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var hash []byte
		if err := tx.QueryRow(ctx, `SELECT hash FROM audit_log WHERE seq = $1`, c.Seq).Scan(&hash); err != nil {
			return fail("put audit checkpoint", "audit entry", err)
		}
		if !bytes.Equal(hash, c.Hash) {
			return call.Errorf(call.Invalid, "checkpoint hash does not match audit entry %d", c.Seq)
		}
		_, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, at, signature, key_id) VALUES ($1, $2, $3, $4, $5)`,
			c.Seq, c.Hash, c.At, c.Signature, c.KeyID)
		return err
	})
	return fail("put audit checkpoint", "audit checkpoint", err)
}

const checkpointColumns = `seq, hash, at, signature, key_id`

// AuditCheckpoints returns up to n checkpoints with a seq above after.
func (db *DB) AuditCheckpoints(ctx context.Context, after int64, n int) ([]store.AuditCheckpoint, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+checkpointColumns+` FROM audit_checkpoints
		WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit(n))
	if err != nil {
		return nil, fail("audit checkpoints", "audit checkpoint", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditCheckpoint, error) { return scanAuditCheckpoint(r) })
	return cs, fail("audit checkpoints", "audit checkpoint", err)
}

// LastAuditCheckpoint returns the checkpoint with the highest seq; NotFound
// if none.
func (db *DB) LastAuditCheckpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	c, err := scanAuditCheckpoint(db.pool.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`))
	return c, fail("last audit checkpoint", "audit checkpoint", err)
}

func scanAuditCheckpoint(r pgx.Row) (store.AuditCheckpoint, error) {
	var c store.AuditCheckpoint
	err := r.Scan(&c.Seq, &c.Hash, &c.At, &c.Signature, &c.KeyID)
	c.At = c.At.UTC()
	return c, err
}

// PurgeAuditBefore deletes the entries below a checkpointed seq (see
// store.AuditLog).
func (db *DB) PurgeAuditBefore(ctx context.Context, seq int64) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (
			SELECT 1 FROM audit_checkpoints c JOIN audit_log l ON l.seq = c.seq WHERE c.seq = $1)`, seq).Scan(&ok)
		if err != nil {
			return err
		}
		if !ok {
			return call.Errorf(call.Invalid, "no checkpointed audit entry at seq %d", seq)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM audit_log WHERE seq < $1`, seq)
		n = tag.RowsAffected()
		return err
	})
	return n, fail("purge audit", "audit entry", err)
}
