package sqlite

import (
	"context"
	"database/sql"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// PutListEntries inserts or replaces entries (keyed by tenant, list and
// pseudonym) in one transaction.
func (db *DB) PutListEntries(ctx context.Context, tenant string, entries []store.ListEntry) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
			INSERT INTO list_entries (tenant, list, pseudonym, sealed, reason, expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, list, pseudonym) DO UPDATE SET sealed = excluded.sealed,
				reason = excluded.reason, expires_at = excluded.expires_at, created_at = excluded.created_at`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range entries {
			_, err := stmt.ExecContext(ctx, tenant, e.List, e.Pseudonym, e.Sealed, e.Reason, nanos(e.ExpiresAt), nanos(e.CreatedAt))
			if err != nil {
				return err
			}
		}
		return nil
	})
	return fail("put list entries", "list entry", err)
}

// DeleteListEntry removes one entry; NotFound if absent.
func (db *DB) DeleteListEntry(ctx context.Context, tenant string, list call.ListKind, pseudonym []byte) error {
	res, err := db.write.ExecContext(ctx,
		`DELETE FROM list_entries WHERE tenant = ? AND list = ? AND pseudonym = ?`, tenant, list, pseudonym)
	return fail("delete list entry", "list entry", mustAffect(res, err, "list entry"))
}

// ListEntries returns up to limit entries of one list ordered by pseudonym,
// starting after the pseudonym `after` (nil: from the start). A limit of 0
// means 100; it is at most 1000.
func (db *DB) ListEntries(ctx context.Context, tenant string, list call.ListKind, after []byte, n int) ([]store.ListEntry, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT list, pseudonym, sealed, reason, expires_at, created_at FROM list_entries
		WHERE tenant = ? AND list = ? AND pseudonym > ? ORDER BY pseudonym LIMIT ?`,
		tenant, list, start(after), limit(n))
	es, err := collect(rows, err, func(s scanner) (store.ListEntry, error) {
		var e store.ListEntry
		var expires, created sql.NullInt64
		err := s.Scan(&e.List, &e.Pseudonym, &e.Sealed, &e.Reason, &expires, &created)
		e.ExpiresAt, e.CreatedAt = timeOf(expires), timeOf(created)
		return e, err
	})
	return es, fail("list entries", "list entry", err)
}

// PutLinks inserts customer links, ignoring ones already stored.
func (db *DB) PutLinks(ctx context.Context, tenant string, links []store.Link) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
			INSERT INTO links (tenant, caller_pseudonym, user_pseudonym, sealed, at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, l := range links {
			if _, err := stmt.ExecContext(ctx, tenant, l.CallerPseudonym, l.UserPseudonym, l.Sealed, nanos(l.At)); err != nil {
				return err
			}
		}
		return nil
	})
	return fail("put links", "link", err)
}

// DeleteLinks removes every link of a caller pseudonym.
func (db *DB) DeleteLinks(ctx context.Context, tenant string, callerPseudonym []byte) error {
	_, err := db.write.ExecContext(ctx,
		`DELETE FROM links WHERE tenant = ? AND caller_pseudonym = ?`, tenant, callerPseudonym)
	return fail("delete links", "link", err)
}

// Links returns up to limit links ordered by (caller, user) pseudonym,
// starting after the given pair (nil: from the start). A limit of 0 means
// 100; it is at most 1000.
func (db *DB) Links(ctx context.Context, tenant string, afterCaller, afterUser []byte, n int) ([]store.Link, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT caller_pseudonym, user_pseudonym, sealed, at FROM links
		WHERE tenant = ? AND (caller_pseudonym, user_pseudonym) > (?, ?)
		ORDER BY caller_pseudonym, user_pseudonym LIMIT ?`,
		tenant, start(afterCaller), start(afterUser), limit(n))
	ls, err := collect(rows, err, func(s scanner) (store.Link, error) {
		var l store.Link
		var at sql.NullInt64
		err := s.Scan(&l.CallerPseudonym, &l.UserPseudonym, &l.Sealed, &at)
		l.At = timeOf(at)
		return l, err
	})
	return ls, fail("links", "link", err)
}

// start is a paging cursor as a column value: nil becomes the empty blob,
// which sorts below every pseudonym (a NULL would match nothing).
func start(after []byte) []byte {
	if after == nil {
		return []byte{}
	}
	return after
}
