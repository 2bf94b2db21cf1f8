package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"slices"

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
		changes := make([]store.Change, len(entries))
		for i, e := range entries {
			_, err := stmt.ExecContext(ctx, tenant, e.List, e.Pseudonym, e.Sealed, e.Reason, nanos(e.ExpiresAt), nanos(e.CreatedAt))
			if err != nil {
				return err
			}
			changes[i] = store.Change{Tenant: tenant, Kind: store.ChangeListPut, Key: store.ListChangeKey(e.List, e.Pseudonym)}
		}
		return db.appendChanges(ctx, tx, changes...)
	})
	return fail("put list entries", "list entry", err)
}

// DeleteListEntry removes one entry; NotFound if absent.
func (db *DB) DeleteListEntry(ctx context.Context, tenant string, list call.ListKind, pseudonym []byte) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var sealed []byte
		err := tx.QueryRowContext(ctx,
			`DELETE FROM list_entries WHERE tenant = ? AND list = ? AND pseudonym = ? RETURNING sealed`,
			tenant, list, pseudonym).Scan(&sealed)
		if err != nil {
			return notFound(err, "list entry")
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
	// One statement on one read connection, run per key: SQLite answers a
	// primary-key probe in microseconds, so an IN list saves nothing.
	conn, err := db.read.Conn(ctx)
	if err != nil {
		return nil, fail("list entries of", "list entry", err)
	}
	defer conn.Close()
	stmt, err := conn.PrepareContext(ctx, `
		SELECT list, pseudonym, sealed, reason, expires_at, created_at FROM list_entries
		WHERE tenant = ? AND list = ? AND pseudonym = ?`)
	if err != nil {
		return nil, fail("list entries of", "list entry", err)
	}
	defer stmt.Close()
	var out []store.ListEntry
	for _, p := range slices.SortedFunc(slices.Values(pseudonyms), bytes.Compare) {
		if len(out) > 0 && bytes.Equal(out[len(out)-1].Pseudonym, p) {
			continue
		}
		e, err := scanEntry(stmt.QueryRowContext(ctx, tenant, list, p))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fail("list entries of", "list entry", err)
		default:
			out = append(out, e)
		}
	}
	return out, nil
}

func scanEntry(s scanner) (store.ListEntry, error) {
	var e store.ListEntry
	var expires, created sql.NullInt64
	err := s.Scan(&e.List, &e.Pseudonym, &e.Sealed, &e.Reason, &expires, &created)
	e.ExpiresAt, e.CreatedAt = timeOf(expires), timeOf(created)
	return e, err
}

// ListEntries returns up to limit entries of one list ordered by pseudonym,
// starting after the pseudonym `after` (nil: from the start). A limit of 0
// means 100; it is at most 1000.
func (db *DB) ListEntries(ctx context.Context, tenant string, list call.ListKind, after []byte, n int) ([]store.ListEntry, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT list, pseudonym, sealed, reason, expires_at, created_at FROM list_entries
		WHERE tenant = ? AND list = ? AND pseudonym > ? ORDER BY pseudonym LIMIT ?`,
		tenant, list, start(after), limit(n))
	es, err := collect(rows, err, scanEntry)
	return es, fail("list entries", "list entry", err)
}

// PutLinks inserts customer links, ignoring ones already stored; only the
// links it inserts are changes.
func (db *DB) PutLinks(ctx context.Context, tenant string, links []store.Link) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
			INSERT INTO links (tenant, caller_pseudonym, user_pseudonym, sealed, at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		var changes []store.Change
		for _, l := range links {
			res, err := stmt.ExecContext(ctx, tenant, l.CallerPseudonym, l.UserPseudonym, l.Sealed, nanos(l.At))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				changes = append(changes, store.Change{Tenant: tenant, Kind: store.ChangeLinkPut,
					Key: store.LinkChangeKey(l.CallerPseudonym, l.UserPseudonym)})
			}
		}
		return db.appendChanges(ctx, tx, changes...)
	})
	return fail("put links", "link", err)
}

// DeleteLinks removes every link of a caller pseudonym.
func (db *DB) DeleteLinks(ctx context.Context, tenant string, callerPseudonym []byte) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `DELETE FROM links WHERE tenant = ? AND caller_pseudonym = ?
			RETURNING user_pseudonym, sealed`, tenant, callerPseudonym)
		changes, err := collect(rows, err, func(s scanner) (store.Change, error) {
			var user, sealed []byte
			err := s.Scan(&user, &sealed)
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
	var at sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT sealed, at FROM links
		WHERE tenant = ? AND caller_pseudonym = ? AND user_pseudonym = ?`, tenant, callerPseudonym, userPseudonym).
		Scan(&l.Sealed, &at)
	if err != nil {
		return store.Link{}, fail("link", "link", notFound(err, "link"))
	}
	l.At = timeOf(at)
	return l, nil
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
