package postgres

import (
	"bytes"
	"context"
	"slices"
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
	changes := make([]store.Change, len(entries))
	for i, e := range entries {
		b.Queue(`
			INSERT INTO list_entries (tenant, list, pseudonym, sealed, reason, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (tenant, list, pseudonym) DO UPDATE SET sealed = excluded.sealed,
				reason = excluded.reason, expires_at = excluded.expires_at, created_at = excluded.created_at`,
			tenant, string(e.List), e.Pseudonym, e.Sealed, e.Reason, ts(e.ExpiresAt), ts(e.CreatedAt))
		changes[i] = store.Change{Tenant: tenant, Kind: store.ChangeListPut, Key: store.ListChangeKey(e.List, e.Pseudonym)}
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, changes...)
	})
	return fail("put list entries", "list entry", err)
}

// DeleteListEntry removes one entry; NotFound if absent.
func (db *DB) DeleteListEntry(ctx context.Context, tenant string, list call.ListKind, pseudonym []byte) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var sealed []byte
		err := tx.QueryRow(ctx,
			`DELETE FROM list_entries WHERE tenant = $1 AND list = $2 AND pseudonym = $3 RETURNING sealed`,
			tenant, string(list), pseudonym).Scan(&sealed)
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangeListDelete,
			Key: store.ListChangeKey(list, pseudonym), Sealed: sealed})
	})
	return fail("delete list entry", "list entry", err)
}

// ListEntriesOf returns the stored entries of one list among pseudonyms,
// ordered by pseudonym; Invalid for more than 1000 pseudonyms.
func (db *DB) ListEntriesOf(ctx context.Context, tenant string, list call.ListKind, pseudonyms [][]byte) ([]store.ListEntry, error) {
	if len(pseudonyms) > maxKeys {
		return nil, call.Errorf(call.Invalid, "at most %d pseudonyms at once", maxKeys)
	}
	if len(pseudonyms) == 0 {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `
		SELECT list, pseudonym, sealed, reason, expires_at, created_at FROM list_entries
		WHERE tenant = $1 AND list = $2 AND pseudonym = ANY($3) ORDER BY pseudonym`,
		tenant, string(list), pseudonyms)
	if err != nil {
		return nil, fail("list entries of", "list entry", err)
	}
	es, err := pgx.CollectRows(rows, scanEntry)
	return es, fail("list entries of", "list entry", err)
}

func scanEntry(r pgx.CollectableRow) (store.ListEntry, error) {
	var e store.ListEntry
	var expires, created *time.Time
	err := r.Scan(&e.List, &e.Pseudonym, &e.Sealed, &e.Reason, &expires, &created)
	e.ExpiresAt, e.CreatedAt = timeOf(expires), timeOf(created)
	return e, err
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
	es, err := pgx.CollectRows(rows, scanEntry)
	return es, fail("list entries", "list entry", err)
}

// PutLinks inserts customer links, ignoring ones already stored, in one
// transaction; only the links it inserts are changes.
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
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, &b)
		var changes []store.Change
		for _, l := range links {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return err
			}
			if tag.RowsAffected() > 0 {
				changes = append(changes, store.Change{Tenant: tenant, Kind: store.ChangeLinkPut,
					Key: store.LinkChangeKey(l.CallerPseudonym, l.UserPseudonym)})
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, changes...)
	})
	return fail("put links", "link", err)
}

// DeleteLinks removes every link of a caller pseudonym.
func (db *DB) DeleteLinks(ctx context.Context, tenant string, callerPseudonym []byte) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM links WHERE tenant = $1 AND caller_pseudonym = $2
			RETURNING user_pseudonym, sealed`, tenant, callerPseudonym)
		if err != nil {
			return err
		}
		changes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Change, error) {
			var user, sealed []byte
			err := r.Scan(&user, &sealed)
			return store.Change{Tenant: tenant, Kind: store.ChangeLinkDelete,
				Key: store.LinkChangeKey(callerPseudonym, user), Sealed: sealed}, err
		})
		if err != nil {
			return err
		}
		slices.SortFunc(changes, func(a, b store.Change) int { return bytes.Compare(a.Key, b.Key) })
		return db.appendChanges(ctx, tx, changes...)
	})
	return fail("delete links", "link", err)
}

// Link returns one customer link; NotFound if absent.
func (db *DB) Link(ctx context.Context, tenant string, callerPseudonym, userPseudonym []byte) (store.Link, error) {
	l := store.Link{CallerPseudonym: callerPseudonym, UserPseudonym: userPseudonym}
	var at *time.Time
	err := db.pool.QueryRow(ctx, `SELECT sealed, at FROM links
		WHERE tenant = $1 AND caller_pseudonym = $2 AND user_pseudonym = $3`, tenant, callerPseudonym, userPseudonym).
		Scan(&l.Sealed, &at)
	if err != nil {
		return store.Link{}, fail("link", "link", err)
	}
	l.At = timeOf(at)
	return l, nil
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
