package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// PutListEntries inserts or replaces entries (keyed by tenant, list and
// pseudonym) in one transaction, in order (one pipelined batch), so a later
// entry for the same key wins.
func (db *DB) PutListEntries(ctx context.Context, tenant string, entries []store.ListEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, e := range entries {
		b.Queue(`
			INSERT INTO list_entries (tenant, list, pseudonym, sealed, reason, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (tenant, list, pseudonym) DO UPDATE SET sealed = excluded.sealed,
				reason = excluded.reason, expires_at = excluded.expires_at, created_at = excluded.created_at`,
			tenant, string(e.List), e.Pseudonym, e.Sealed, e.Reason, ts(e.ExpiresAt), ts(e.CreatedAt))
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() })
	return fail("put list entries", "list entry", err)
}

// DeleteListEntry removes one entry; NotFound if absent.
func (db *DB) DeleteListEntry(ctx context.Context, tenant string, list call.ListKind, pseudonym []byte) error {
	tag, err := db.pool.Exec(ctx,
		`DELETE FROM list_entries WHERE tenant = $1 AND list = $2 AND pseudonym = $3`, tenant, string(list), pseudonym)
	return fail("delete list entry", "list entry", mustAffect(tag, err, "list entry"))
}

// ListEntries returns up to limit entries of one list ordered by pseudonym,
// starting after the pseudonym `after` (nil: from the start). A limit of 0
// means 100; it is at most 1000.
func (db *DB) ListEntries(ctx context.Context, tenant string, list call.ListKind, after []byte, n int) ([]store.ListEntry, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT list, pseudonym, sealed, reason, expires_at, created_at FROM list_entries
		WHERE tenant = $1 AND list = $2 AND pseudonym > $3 ORDER BY pseudonym LIMIT $4`,
		tenant, string(list), start(after), limit(n))
	if err != nil {
		return nil, fail("list entries", "list entry", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ListEntry, error) {
		var e store.ListEntry
		var expires, created *time.Time
		err := r.Scan(&e.List, &e.Pseudonym, &e.Sealed, &e.Reason, &expires, &created)
		e.ExpiresAt, e.CreatedAt = timeOf(expires), timeOf(created)
		return e, err
	})
	return es, fail("list entries", "list entry", err)
}

// PutLinks inserts customer links, ignoring ones already stored, in one
// transaction.
func (db *DB) PutLinks(ctx context.Context, tenant string, links []store.Link) error {
	if len(links) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, l := range links {
		b.Queue(`
			INSERT INTO links (tenant, caller_pseudonym, user_pseudonym, sealed, at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`,
			tenant, l.CallerPseudonym, l.UserPseudonym, l.Sealed, ts(l.At))
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() })
	return fail("put links", "link", err)
}

// DeleteLinks removes every link of a caller pseudonym.
func (db *DB) DeleteLinks(ctx context.Context, tenant string, callerPseudonym []byte) error {
	_, err := db.pool.Exec(ctx,
		`DELETE FROM links WHERE tenant = $1 AND caller_pseudonym = $2`, tenant, callerPseudonym)
	return fail("delete links", "link", err)
}

// Links returns up to limit links ordered by (caller, user) pseudonym,
// starting after the given pair (nil: from the start). A limit of 0 means
// 100; it is at most 1000.
func (db *DB) Links(ctx context.Context, tenant string, afterCaller, afterUser []byte, n int) ([]store.Link, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT caller_pseudonym, user_pseudonym, sealed, at FROM links
		WHERE tenant = $1 AND (caller_pseudonym, user_pseudonym) > ($2, $3)
		ORDER BY caller_pseudonym, user_pseudonym LIMIT $4`,
		tenant, start(afterCaller), start(afterUser), limit(n))
	if err != nil {
		return nil, fail("links", "link", err)
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Link, error) {
		var l store.Link
		var at *time.Time
		err := r.Scan(&l.CallerPseudonym, &l.UserPseudonym, &l.Sealed, &at)
		l.At = timeOf(at)
		return l, err
	})
	return ls, fail("links", "link", err)
}
