package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/store"
)

const (
	// changesLock is the advisory lock key that serialises appends to the
	// change log, so that seq order is commit order (see the migration).
	changesLock = 0x72666368_616e6701 // "rfchang" 1
	// changesChannel is the NOTIFY channel of the change log; the payload
	// is the newest seq of the notifying transaction.
	changesChannel = "ringfence_changes"
	// maxKeys bounds the keys of one multi-key read (ListEntriesOf).
	maxKeys = 1000
)

// appendChanges appends changes to the change log inside tx, in order, and
// notifies followers at commit. It takes the change log's advisory lock, held
// until tx ends, so call it last in the transaction. One round trip.
func (db *DB) appendChanges(ctx context.Context, tx pgx.Tx, changes ...store.Change) error {
	if len(changes) == 0 {
		return nil
	}
	tenants := make([]string, len(changes))
	kinds := make([]string, len(changes))
	keys := make([][]byte, len(changes))
	sealed := make([][]byte, len(changes))
	for i, c := range changes {
		tenants[i], kinds[i], keys[i], sealed[i] = c.Tenant, string(c.Kind), c.Key, c.Sealed
		if keys[i] == nil {
			keys[i] = []byte{}
		}
	}
	var b pgx.Batch
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, int64(changesLock))
	// Volatile expressions (the seq default) are evaluated after the sort,
	// so seqs follow the order of changes.
	b.Queue(`
		INSERT INTO changes (tenant, kind, key, sealed, at)
		SELECT c.tenant, c.kind, c.key, c.sealed, $5::timestamptz
		FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[]) WITH ORDINALITY AS c(tenant, kind, key, sealed, n)
		ORDER BY c.n`,
		tenants, kinds, keys, sealed, db.now())
	b.Queue(`SELECT pg_notify('` + changesChannel + `', currval(pg_get_serial_sequence('changes', 'seq'))::text)`)
	return tx.SendBatch(ctx, &b).Close()
}

// Changes returns up to limit changes with a seq above after, in seq order.
func (db *DB) Changes(ctx context.Context, after int64, n int) ([]store.Change, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT seq, tenant, kind, key, sealed, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2`,
		after, limit(n))
	if err != nil {
		return nil, fail("changes", "change", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Change, error) {
		var c store.Change
		var at time.Time
		err := r.Scan(&c.Seq, &c.Tenant, &c.Kind, &c.Key, &c.Sealed, &at)
		if len(c.Key) == 0 {
			c.Key = nil
		}
		c.At = at.UTC()
		return c, err
	})
	return cs, fail("changes", "change", err)
}

// LastChange returns the highest seq in the change log, 0 if it is empty.
func (db *DB) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	err := db.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq)
	return seq, fail("last change", "change", err)
}

// Counts returns how many rows the tenant has in each table.
func (db *DB) Counts(ctx context.Context, tenant string) (store.Counts, error) {
	var c store.Counts
	err := db.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM api_keys WHERE tenant = $1),
		(SELECT count(*) FROM calls WHERE tenant = $1),
		(SELECT count(*) FROM labels WHERE tenant = $1),
		(SELECT count(*) FROM list_entries WHERE tenant = $1),
		(SELECT count(*) FROM routes WHERE tenant = $1),
		(SELECT count(*) FROM policies WHERE tenant = $1),
		(SELECT count(*) FROM links WHERE tenant = $1)`, tenant).
		Scan(&c.APIKeys, &c.Calls, &c.Labels, &c.ListEntries, &c.Routes, &c.Policies, &c.Links)
	return c, fail("counts", "tenant", err)
}
