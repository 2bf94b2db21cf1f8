package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Privacy = (*DB)(nil)

// maxKeep bounds the pseudonyms PurgeCalls spares at once.
const maxKeep = 10000

// PutSubjectFlags stores a subject's flags and appends a ChangeSubjectFlags
// in the same transaction.
func (db *DB) PutSubjectFlags(ctx context.Context, f store.SubjectFlags) error {
	if len(f.Pseudonym) == 0 {
		return call.Errorf(call.Invalid, "subject flags: pseudonym required")
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO subject_flags (tenant, pseudonym, restricted, objected, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant, pseudonym) DO UPDATE SET restricted = excluded.restricted,
				objected = excluded.objected, updated_at = excluded.updated_at`,
			f.Tenant, f.Pseudonym, f.Restricted, f.Objected, nanos(f.UpdatedAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: f.Tenant, Kind: store.ChangeSubjectFlags, Key: f.Pseudonym})
	})
	return fail("put subject flags", "subject flags", err)
}

// SubjectFlags returns the stored flags of a pseudonym, or none set.
func (db *DB) SubjectFlags(ctx context.Context, tenant string, pseudonym []byte) (store.SubjectFlags, error) {
	f, err := scanFlags(db.read.QueryRowContext(ctx, `
		SELECT tenant, pseudonym, restricted, objected, updated_at FROM subject_flags
		WHERE tenant = ? AND pseudonym = ?`, tenant, pseudonym))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SubjectFlags{Tenant: tenant, Pseudonym: pseudonym}, nil
	}
	return f, fail("subject flags", "subject flags", err)
}

// SubjectFlagsOf returns up to limit stored flags ordered by pseudonym,
// after the pseudonym `after`.
func (db *DB) SubjectFlagsOf(ctx context.Context, tenant string, after []byte, n int) ([]store.SubjectFlags, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT tenant, pseudonym, restricted, objected, updated_at FROM subject_flags
		WHERE tenant = ? AND pseudonym > ? ORDER BY pseudonym LIMIT ?`, tenant, start(after), limit(n))
	fs, err := collect(rows, err, scanFlags)
	return fs, fail("subject flags of", "subject flags", err)
}

func scanFlags(s scanner) (store.SubjectFlags, error) {
	var f store.SubjectFlags
	var updated sql.NullInt64
	err := s.Scan(&f.Tenant, &f.Pseudonym, &f.Restricted, &f.Objected, &updated)
	f.UpdatedAt = timeOf(updated)
	return f, err
}

const caseColumns = `tenant, id, type, status, subject_pseudonym, user_pseudonym, sealed, data,
	received_at, due_at, closed_at, version`

// PutCase inserts a case at version 1 or updates one to the next version;
// Conflict otherwise.
func (db *DB) PutCase(ctx context.Context, c store.Case) error {
	switch {
	case c.ID == "":
		return call.Errorf(call.Invalid, "case: id required")
	case c.Version < 1:
		return call.Errorf(call.Invalid, "case: version must be at least 1")
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		args := []any{c.Tenant, c.ID, c.Type, c.Status, c.SubjectPseudonym, c.UserPseudonym, c.Sealed, c.Data,
			nanos(c.ReceivedAt), nanos(c.DueAt), nanos(c.ClosedAt), c.Version}
		var res sql.Result
		var err error
		if c.Version == 1 {
			res, err = tx.ExecContext(ctx, `INSERT INTO cases (`+caseColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING`, args...)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE cases SET type = ?3, status = ?4, subject_pseudonym = ?5,
				user_pseudonym = ?6, sealed = ?7, data = ?8, received_at = ?9, due_at = ?10, closed_at = ?11,
				version = ?12 WHERE tenant = ?1 AND id = ?2 AND version = ?12 - 1`, args...)
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return call.Errorf(call.Conflict, "case version must be one more than the stored version")
		}
		return nil
	})
	return fail("put case", "case", err)
}

// Case returns one case; NotFound if absent.
func (db *DB) Case(ctx context.Context, tenant, id string) (store.Case, error) {
	c, err := scanCase(db.read.QueryRowContext(ctx,
		`SELECT `+caseColumns+` FROM cases WHERE tenant = ? AND id = ?`, tenant, id))
	return c, fail("case", "case", notFound(err, "case"))
}

// Cases returns the cases matching f, newest id first.
func (db *DB) Cases(ctx context.Context, tenant string, f store.CaseFilter) ([]store.Case, error) {
	q := `SELECT ` + caseColumns + ` FROM cases WHERE tenant = ?`
	args := []any{tenant}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	if !f.DueBefore.IsZero() {
		q += ` AND due_at < ?`
		args = append(args, f.DueBefore.UnixNano())
	}
	if f.Before != "" {
		q += ` AND id < ?`
		args = append(args, f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(f.Limit))
	rows, err := db.read.QueryContext(ctx, q, args...)
	cs, err := collect(rows, err, scanCase)
	return cs, fail("cases", "case", err)
}

func scanCase(s scanner) (store.Case, error) {
	var c store.Case
	var received, due, closed sql.NullInt64
	err := s.Scan(&c.Tenant, &c.ID, &c.Type, &c.Status, &c.SubjectPseudonym, &c.UserPseudonym, &c.Sealed, &c.Data,
		&received, &due, &closed, &c.Version)
	c.ReceivedAt, c.DueAt, c.ClosedAt = timeOf(received), timeOf(due), timeOf(closed)
	return c, err
}

// checkHold returns Invalid unless h's scope is known and names what it
// needs.
func checkHold(h store.Hold) error {
	switch {
	case h.ID == "":
		return call.Errorf(call.Invalid, "hold: id required")
	case h.Scope == store.HoldSubject && len(h.SubjectPseudonym) == 0:
		return call.Errorf(call.Invalid, "hold: a subject hold needs a subject pseudonym")
	case h.Scope == store.HoldCase && h.CaseID == "":
		return call.Errorf(call.Invalid, "hold: a case hold needs a case id")
	case h.Scope != store.HoldTenant && h.Scope != store.HoldSubject && h.Scope != store.HoldCase:
		return call.Errorf(call.Invalid, "hold: scope must be tenant, subject or case")
	}
	return nil
}

// PutHold places a legal hold; Conflict if its id is stored.
func (db *DB) PutHold(ctx context.Context, h store.Hold) error {
	if err := checkHold(h); err != nil {
		return err
	}
	_, err := db.write.ExecContext(ctx, `
		INSERT INTO holds (tenant, id, scope, subject_pseudonym, case_id, reason, placed_by, placed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		h.Tenant, h.ID, h.Scope, h.SubjectPseudonym, h.CaseID, h.Reason, h.PlacedBy, nanos(h.PlacedAt))
	return fail("put hold", "hold", err)
}

// LiftHold lifts a hold; NotFound if absent, Conflict if lifted already.
func (db *DB) LiftHold(ctx context.Context, tenant, id, by string, at time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var lifted sql.NullInt64
		var liftedBy string
		err := tx.QueryRowContext(ctx, `SELECT lifted_by, lifted_at FROM holds WHERE tenant = ? AND id = ?`, tenant, id).
			Scan(&liftedBy, &lifted)
		if err != nil {
			return notFound(err, "hold")
		}
		if lifted.Valid || liftedBy != "" {
			return call.Errorf(call.Conflict, "hold lifted already")
		}
		_, err = tx.ExecContext(ctx, `UPDATE holds SET lifted_by = ?, lifted_at = ? WHERE tenant = ? AND id = ?`,
			by, nanos(at), tenant, id)
		return err
	})
	return fail("lift hold", "hold", err)
}

// Holds returns the tenant's holds ordered by id, only active ones if
// activeOnly.
func (db *DB) Holds(ctx context.Context, tenant string, activeOnly bool) ([]store.Hold, error) {
	q := `SELECT tenant, id, scope, subject_pseudonym, case_id, reason, placed_by, placed_at, lifted_by, lifted_at
		FROM holds WHERE tenant = ?`
	if activeOnly {
		q += ` AND lifted_at IS NULL AND lifted_by = ''`
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY id`, tenant)
	hs, err := collect(rows, err, func(s scanner) (store.Hold, error) {
		var h store.Hold
		var placed, lifted sql.NullInt64
		err := s.Scan(&h.Tenant, &h.ID, &h.Scope, &h.SubjectPseudonym, &h.CaseID, &h.Reason, &h.PlacedBy, &placed,
			&h.LiftedBy, &lifted)
		h.PlacedAt, h.LiftedAt = timeOf(placed), timeOf(lifted)
		return h, err
	})
	return hs, fail("holds", "hold", err)
}

// PutConsent appends a consent event.
func (db *DB) PutConsent(ctx context.Context, c store.Consent) error {
	if len(c.Pseudonym) == 0 || c.Purpose == "" {
		return call.Errorf(call.Invalid, "consent: pseudonym and purpose required")
	}
	_, err := db.write.ExecContext(ctx, `
		INSERT INTO consents (tenant, pseudonym, purpose, given, at, source) VALUES (?, ?, ?, ?, ?, ?)`,
		c.Tenant, c.Pseudonym, c.Purpose, c.Given, nanos(c.At), c.Source)
	return fail("put consent", "consent", err)
}

// Consents returns a pseudonym's consent history, oldest first.
func (db *DB) Consents(ctx context.Context, tenant string, pseudonym []byte) ([]store.Consent, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT tenant, pseudonym, purpose, given, at, source FROM consents
		WHERE tenant = ? AND pseudonym = ? ORDER BY at, id`, tenant, pseudonym)
	cs, err := collect(rows, err, func(s scanner) (store.Consent, error) {
		var c store.Consent
		var at sql.NullInt64
		err := s.Scan(&c.Tenant, &c.Pseudonym, &c.Purpose, &c.Given, &at, &c.Source)
		c.At = timeOf(at)
		return c, err
	})
	return cs, fail("consents", "consent", err)
}

// PutRetention stores the tenant's retention settings.
func (db *DB) PutRetention(ctx context.Context, tenant string, settings []byte) error {
	if settings == nil {
		settings = []byte{}
	}
	_, err := db.write.ExecContext(ctx, `INSERT INTO retention (tenant, settings) VALUES (?, ?)
		ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings`, tenant, settings)
	return fail("put retention", "retention settings", err)
}

// Retention returns the stored retention settings, nil if none.
func (db *DB) Retention(ctx context.Context, tenant string) ([]byte, error) {
	var settings []byte
	err := db.read.QueryRowContext(ctx, `SELECT settings FROM retention WHERE tenant = ?`, tenant).Scan(&settings)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return settings, fail("retention", "retention settings", err)
}

// subjectWhere is the condition on calls (or links, whose columns are
// named alike) matching a subject: a NULL parameter matches nothing.
const subjectWhere = `(caller_pseudonym = ? OR user_pseudonym = ?)`

// subjectArgs returns the pseudonyms as parameters of subjectWhere; Invalid
// if both are nil.
func subjectArgs(caller, user []byte) ([]any, error) {
	if len(caller) == 0 && len(user) == 0 {
		return nil, call.Errorf(call.Invalid, "subject: a caller or user pseudonym is required")
	}
	return []any{nilIfEmpty(caller), nilIfEmpty(user)}, nil
}

func nilIfEmpty(p []byte) any {
	if len(p) == 0 {
		return nil
	}
	return p
}

// SubjectCalls returns a page of the subject's call records by id.
func (db *DB) SubjectCalls(ctx context.Context, tenant string, caller, user []byte, after string, n int) ([]store.Call, error) {
	subj, err := subjectArgs(caller, user)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+callColumns+` FROM calls
		WHERE tenant = ? AND `+subjectWhere+` AND id > ? ORDER BY id LIMIT ?`,
		tenant, subj[0], subj[1], after, limit(n))
	cs, err := collect(rows, err, scanCall)
	return cs, fail("subject calls", "call record", err)
}

// SubjectListEntries returns every list entry of a pseudonym, by list.
func (db *DB) SubjectListEntries(ctx context.Context, tenant string, pseudonym []byte) ([]store.ListEntry, error) {
	if len(pseudonym) == 0 {
		return nil, nil
	}
	rows, err := db.read.QueryContext(ctx, `
		SELECT list, pseudonym, sealed, reason, expires_at, created_at FROM list_entries
		WHERE tenant = ? AND pseudonym = ? ORDER BY list`, tenant, pseudonym)
	es, err := collect(rows, err, scanEntry)
	return es, fail("subject list entries", "list entry", err)
}

// SubjectLinks returns every link of the subject, by (caller, user).
func (db *DB) SubjectLinks(ctx context.Context, tenant string, caller, user []byte) ([]store.Link, error) {
	subj, err := subjectArgs(caller, user)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT caller_pseudonym, user_pseudonym, sealed, at FROM links
		WHERE tenant = ? AND `+subjectWhere+` ORDER BY caller_pseudonym, user_pseudonym`, tenant, subj[0], subj[1])
	ls, err := collect(rows, err, func(s scanner) (store.Link, error) {
		var l store.Link
		var at sql.NullInt64
		err := s.Scan(&l.CallerPseudonym, &l.UserPseudonym, &l.Sealed, &at)
		l.At = timeOf(at)
		return l, err
	})
	return ls, fail("subject links", "link", err)
}

// EraseSubject deletes the subject's records, labels, list entries and
// links in one transaction (see store.Privacy).
func (db *DB) EraseSubject(ctx context.Context, tenant string, caller, user []byte) (store.Erased, error) {
	subj, err := subjectArgs(caller, user)
	if err != nil {
		return store.Erased{}, err
	}
	var e store.Erased
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		e = store.Erased{}
		res, err := tx.ExecContext(ctx, `DELETE FROM labels WHERE tenant = ?1 AND record_id IN
			(SELECT id FROM calls WHERE tenant = ?1 AND (caller_pseudonym = ?2 OR user_pseudonym = ?3))`,
			tenant, subj[0], subj[1])
		if e.Labels, err = affected(res, err); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM calls WHERE tenant = ? AND `+subjectWhere, tenant, subj[0], subj[1])
		if e.Calls, err = affected(res, err); err != nil {
			return err
		}
		var changes []store.Change
		for _, p := range [][]byte{caller, user} {
			if len(p) == 0 {
				continue
			}
			rows, err := tx.QueryContext(ctx, `DELETE FROM list_entries WHERE tenant = ? AND pseudonym = ?
				RETURNING list`, tenant, p)
			cs, err := collect(rows, err, func(s scanner) (store.Change, error) {
				var list call.ListKind
				err := s.Scan(&list)
				return store.Change{Tenant: tenant, Kind: store.ChangeListDelete, Key: store.ListChangeKey(list, p)}, err
			})
			if err != nil {
				return err
			}
			sortChanges(cs)
			e.ListEntries += int64(len(cs))
			changes = append(changes, cs...)
		}
		rows, err := tx.QueryContext(ctx, `DELETE FROM links WHERE tenant = ? AND `+subjectWhere+`
			RETURNING caller_pseudonym, user_pseudonym`, tenant, subj[0], subj[1])
		cs, err := collect(rows, err, func(s scanner) (store.Change, error) {
			var c, u []byte
			err := s.Scan(&c, &u)
			return store.Change{Tenant: tenant, Kind: store.ChangeLinkDelete, Key: store.LinkChangeKey(c, u)}, err
		})
		if err != nil {
			return err
		}
		sortChanges(cs)
		e.Links = int64(len(cs))
		changes = append(changes, cs...)
		if err := db.clearSealedCopies(ctx, tx, tenant, caller, user); err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, changes...)
	})
	return e, fail("erase subject", "subject", err)
}

// clearSealedCopies sets Sealed to NULL on the tenant's logged list and link
// deletions whose key names caller or user.
func (db *DB) clearSealedCopies(ctx context.Context, tx *sql.Tx, tenant string, caller, user []byte) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, kind, key FROM changes
		WHERE tenant = ? AND sealed IS NOT NULL AND kind IN (?, ?)`,
		tenant, store.ChangeListDelete, store.ChangeLinkDelete)
	seqs, err := collect(rows, err, func(s scanner) (int64, error) {
		var c store.Change
		if err := s.Scan(&c.Seq, &c.Kind, &c.Key); err != nil {
			return 0, err
		}
		if changeOfSubject(c, caller, user) {
			return c.Seq, nil
		}
		return 0, nil
	})
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		if seq == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE changes SET sealed = NULL WHERE seq = ?`, seq); err != nil {
			return err
		}
	}
	return nil
}

// changeOfSubject reports whether a list or link change's key names the
// subject as EraseSubject matches it: a list entry of either pseudonym, a
// link whose caller is caller or whose user is user.
func changeOfSubject(c store.Change, caller, user []byte) bool {
	is := func(p, subject []byte) bool { return len(subject) > 0 && bytes.Equal(p, subject) }
	switch c.Kind {
	case store.ChangeListDelete:
		_, p, ok := c.ListKey()
		return ok && (is(p, caller) || is(p, user))
	case store.ChangeLinkDelete:
		cp, up, ok := c.LinkKey()
		return ok && (is(cp, caller) || is(up, user))
	}
	return false
}

func sortChanges(cs []store.Change) {
	slices.SortFunc(cs, func(a, b store.Change) int { return bytes.Compare(a.Key, b.Key) })
}

// affected returns the rows res changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// PurgeCalls deletes up to limit records started before `before` whose
// caller and user pseudonyms are not in keep, with their labels (by the
// foreign key's cascade), oldest first.
func (db *DB) PurgeCalls(ctx context.Context, tenant string, before time.Time, keep [][]byte, n int) (int64, error) {
	if len(keep) > maxKeep {
		return 0, call.Errorf(call.Invalid, "purge: at most %d pseudonyms to keep", maxKeep)
	}
	var purged int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// The write connection's own temporary table: no other connection
		// sees it, and it is emptied before each use.
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS purge_keep (p BLOB PRIMARY KEY) WITHOUT ROWID`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM temp.purge_keep`); err != nil {
			return err
		}
		for _, p := range keep {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO temp.purge_keep (p) VALUES (?)`, p); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM calls WHERE rowid IN (
			SELECT rowid FROM calls WHERE tenant = ? AND started_at < ?
				AND (caller_pseudonym IS NULL OR caller_pseudonym NOT IN (SELECT p FROM temp.purge_keep))
				AND (user_pseudonym IS NULL OR user_pseudonym NOT IN (SELECT p FROM temp.purge_keep))
			ORDER BY started_at LIMIT ?)`, tenant, before.UnixNano(), limit(n))
		purged, err = affected(res, err)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM temp.purge_keep`)
		return err
	})
	return purged, fail("purge calls", "call record", err)
}

// PurgeChanges deletes the change-log rows stamped before `before` and
// raises the prune mark to the highest seq deleted.
func (db *DB) PurgeChanges(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var top sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM changes WHERE at < ?`, before.UnixNano()).Scan(&top)
		if err != nil || !top.Valid {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE at < ?`, before.UnixNano())
		if n, err = affected(res, err); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO changes_pruned (one, through) VALUES (1, ?)
			ON CONFLICT (one) DO UPDATE SET through = max(through, excluded.through)`, top.Int64)
		return err
	})
	return n, fail("purge changes", "change", err)
}

// ChangesPrunedThrough returns the highest seq PurgeChanges ever deleted.
func (db *DB) ChangesPrunedThrough(ctx context.Context) (int64, error) {
	var seq int64
	err := db.read.QueryRowContext(ctx, `SELECT coalesce(max(through), 0) FROM changes_pruned`).Scan(&seq)
	return seq, fail("changes pruned through", "change", err)
}

// SealedRows returns a page of one kind of sealed value (see
// store.Privacy). Rows: calls by record id; labels by their row id, zero
// padded to 20 digits; lists and links by their AADID.
func (db *DB) SealedRows(ctx context.Context, tenant, kind, after string, n int) ([]store.SealedRow, error) {
	var q string
	var args []any
	switch kind {
	case store.SealedCalls:
		q = `SELECT id, id, sealed FROM calls WHERE tenant = ? AND sealed IS NOT NULL AND id > ? ORDER BY id LIMIT ?`
		args = []any{tenant, after, limit(n)}
	case store.SealedCases:
		q = `SELECT id, id, sealed FROM cases WHERE tenant = ? AND sealed IS NOT NULL AND id > ? ORDER BY id LIMIT ?`
		args = []any{tenant, after, limit(n)}
	case store.SealedLabels:
		id, err := labelCursor(after)
		if err != nil {
			return nil, err
		}
		q = `SELECT printf('%020d', id), record_id, sealed FROM labels
			WHERE tenant = ? AND sealed IS NOT NULL AND id > ? ORDER BY id LIMIT ?`
		args = []any{tenant, id, limit(n)}
	case store.SealedLists:
		list, p, err := pairCursor(after, false)
		if err != nil {
			return nil, err
		}
		q = `SELECT list || '/' || lower(hex(pseudonym)), list || '/' || lower(hex(pseudonym)), sealed FROM list_entries
			WHERE tenant = ? AND sealed IS NOT NULL AND (list, pseudonym) > (?, ?) ORDER BY list, pseudonym LIMIT ?`
		args = []any{tenant, string(list), p, limit(n)}
	case store.SealedLinks:
		c, u, err := pairCursor(after, true)
		if err != nil {
			return nil, err
		}
		q = `SELECT lower(hex(caller_pseudonym)) || '/' || lower(hex(user_pseudonym)),
				lower(hex(caller_pseudonym)) || '/' || lower(hex(user_pseudonym)), sealed FROM links
			WHERE tenant = ? AND sealed IS NOT NULL AND (caller_pseudonym, user_pseudonym) > (?, ?)
			ORDER BY caller_pseudonym, user_pseudonym LIMIT ?`
		args = []any{tenant, c, u, limit(n)}
	default:
		return nil, call.Errorf(call.Invalid, "sealed rows: unknown kind")
	}
	rows, err := db.read.QueryContext(ctx, q, args...)
	rs, err := collect(rows, err, func(s scanner) (store.SealedRow, error) {
		r := store.SealedRow{Kind: kind}
		err := s.Scan(&r.Row, &r.AADID, &r.Sealed)
		return r, err
	})
	return rs, fail("sealed rows", "sealed row", err)
}

// labelCursor parses a label Row ("" is 0).
func labelCursor(row string) (int64, error) {
	if row == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(row, 10, 64)
	if err != nil || id < 0 {
		return 0, call.Errorf(call.Invalid, "sealed rows: malformed label row")
	}
	return id, nil
}

// pairCursor parses a list Row (list "/" hex pseudonym) or, if hexBoth, a
// link Row (hex caller "/" hex user); "" is before every row. The first
// part comes back as bytes either way.
func pairCursor(row string, hexBoth bool) (first, second []byte, err error) {
	if row == "" {
		return []byte{}, []byte{}, nil
	}
	a, b, ok := strings.Cut(row, "/")
	if !hexBoth {
		i := strings.LastIndexByte(row, '/')
		a, b, ok = row[:max(i, 0)], row[i+1:], i >= 0
	}
	if !ok {
		return nil, nil, call.Errorf(call.Invalid, "sealed rows: malformed row")
	}
	second, err = hex.DecodeString(b)
	if err == nil && hexBoth {
		first, err = hex.DecodeString(a)
	} else if err == nil {
		first = []byte(a)
	}
	if err != nil {
		return nil, nil, call.Errorf(call.Invalid, "sealed rows: malformed row")
	}
	return first, second, nil
}

// ReplaceSealed swaps sealed values that still hold their old value, in one
// transaction.
func (db *DB) ReplaceSealed(ctx context.Context, tenant string, rows []store.SealedRow, old [][]byte) (int, error) {
	stmts, err := replacements(rows, old)
	if err != nil {
		return 0, err
	}
	var replaced int
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		replaced = 0
		for i, r := range rows {
			args := append([]any{r.Sealed, tenant}, stmts[i].keys...)
			res, err := tx.ExecContext(ctx, stmts[i].query, append(args, old[i])...)
			n, err := affected(res, err)
			if err != nil {
				return err
			}
			replaced += int(n)
		}
		return nil
	})
	return replaced, fail("replace sealed", "sealed row", err)
}

// replacement is the update of one row's sealed value: the statement takes
// the new value, the tenant, keys, then the old value.
type replacement struct {
	query string
	keys  []any
}

// replacements parses rows into their updates; Invalid for a bad input.
func replacements(rows []store.SealedRow, old [][]byte) ([]replacement, error) {
	if len(rows) != len(old) {
		return nil, call.Errorf(call.Invalid, "replace sealed: rows and old values differ in number")
	}
	if len(rows) > maxKeys {
		return nil, call.Errorf(call.Invalid, "replace sealed: at most %d rows at once", maxKeys)
	}
	out := make([]replacement, len(rows))
	for i, r := range rows {
		if r.Row == "" {
			return nil, call.Errorf(call.Invalid, "replace sealed: row %d: locator required", i)
		}
		switch r.Kind {
		case store.SealedCalls:
			out[i] = replacement{`UPDATE calls SET sealed = ? WHERE tenant = ? AND id = ? AND sealed = ?`, []any{r.Row}}
		case store.SealedCases:
			out[i] = replacement{`UPDATE cases SET sealed = ? WHERE tenant = ? AND id = ? AND sealed = ?`, []any{r.Row}}
		case store.SealedLabels:
			id, err := labelCursor(r.Row)
			if err != nil {
				return nil, err
			}
			out[i] = replacement{`UPDATE labels SET sealed = ? WHERE tenant = ? AND id = ? AND sealed = ?`, []any{id}}
		case store.SealedLists:
			list, p, err := pairCursor(r.Row, false)
			if err != nil {
				return nil, err
			}
			out[i] = replacement{`UPDATE list_entries SET sealed = ? WHERE tenant = ? AND list = ? AND pseudonym = ? AND sealed = ?`,
				[]any{string(list), p}}
		case store.SealedLinks:
			c, u, err := pairCursor(r.Row, true)
			if err != nil {
				return nil, err
			}
			out[i] = replacement{`UPDATE links SET sealed = ? WHERE tenant = ? AND caller_pseudonym = ? AND user_pseudonym = ? AND sealed = ?`,
				[]any{c, u}}
		default:
			return nil, call.Errorf(call.Invalid, "replace sealed: row %d: unknown kind", i)
		}
	}
	return out, nil
}

// tenantTables are the tables DeleteTenantData empties of a tenant, in an
// order that respects foreign keys, each with the Counts field it fills
// (nil: not counted).
func tenantTables(c *store.Counts) []struct {
	table string
	n     *int64
} {
	return []struct {
		table string
		n     *int64
	}{
		{"labels", &c.Labels}, {"calls", &c.Calls}, {"list_entries", &c.ListEntries}, {"routes", &c.Routes},
		{"policies", &c.Policies}, {"links", &c.Links}, {"api_keys", &c.APIKeys},
		{"subject_flags", nil}, {"cases", nil}, {"holds", nil}, {"consents", nil}, {"retention", nil},
		{"models", nil},
		{"archive_item_parties", nil},
		{"archive_item_tokens", nil},
		{"archive_items", nil},
		{"archive_contact_numbers", nil},
		{"archive_contacts", nil},
		{"archive_user_numbers", nil},
		{"archive_users", nil},
		{"archive_holds", nil},
		{"archive_retention", nil},
		{"archive_uploads", nil},
		{"sessions", nil}, {"users", nil},
		{"changes", nil},
	}
}

// DeleteTenantData deletes every row of the tenant but its tenants row,
// which it marks deleted (see store.Privacy).
func (db *DB) DeleteTenantData(ctx context.Context, tenant string) (store.Counts, error) {
	var c store.Counts
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		c = store.Counts{}
		res, err := tx.ExecContext(ctx, `UPDATE tenants SET keys = NULL, deleted_at = coalesce(deleted_at, ?) WHERE id = ?`,
			db.now().UnixNano(), tenant)
		if err := mustAffect(res, err, "tenant"); err != nil {
			return err
		}
		for _, t := range tenantTables(&c) {
			res, err := tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %s WHERE tenant = ?`, t.table), tenant)
			n, err := affected(res, err)
			if err != nil {
				return err
			}
			if t.n != nil {
				*t.n = n
			}
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangeTenant})
	})
	return c, fail("delete tenant data", "tenant", err)
}
