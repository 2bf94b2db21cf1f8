package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO subject_flags (tenant, pseudonym, restricted, objected, updated_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant, pseudonym) DO UPDATE SET restricted = excluded.restricted,
				objected = excluded.objected, updated_at = excluded.updated_at`,
			f.Tenant, f.Pseudonym, f.Restricted, f.Objected, ts(f.UpdatedAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: f.Tenant, Kind: store.ChangeSubjectFlags, Key: f.Pseudonym})
	})
	return fail("put subject flags", "subject flags", err)
}

// SubjectFlags returns the stored flags of a pseudonym, or none set.
func (db *DB) SubjectFlags(ctx context.Context, tenant string, pseudonym []byte) (store.SubjectFlags, error) {
	f, err := scanFlags(db.pool.QueryRow(ctx, `
		SELECT tenant, pseudonym, restricted, objected, updated_at FROM subject_flags
		WHERE tenant = $1 AND pseudonym = $2`, tenant, pseudonym))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.SubjectFlags{Tenant: tenant, Pseudonym: pseudonym}, nil
	}
	return f, fail("subject flags", "subject flags", err)
}

// SubjectFlagsOf returns up to limit stored flags ordered by pseudonym,
// after the pseudonym `after`.
func (db *DB) SubjectFlagsOf(ctx context.Context, tenant string, after []byte, n int) ([]store.SubjectFlags, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT tenant, pseudonym, restricted, objected, updated_at FROM subject_flags
		WHERE tenant = $1 AND pseudonym > $2 ORDER BY pseudonym LIMIT $3`, tenant, start(after), limit(n))
	if err != nil {
		return nil, fail("subject flags of", "subject flags", err)
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SubjectFlags, error) { return scanFlags(r) })
	return fs, fail("subject flags of", "subject flags", err)
}

func scanFlags(s scanner) (store.SubjectFlags, error) {
	var f store.SubjectFlags
	var updated *time.Time
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
	args := []any{c.Tenant, c.ID, c.Type, c.Status, c.SubjectPseudonym, c.UserPseudonym, c.Sealed, c.Data,
		ts(c.ReceivedAt), ts(c.DueAt), ts(c.ClosedAt), c.Version}
	q := `INSERT INTO cases (` + caseColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (tenant, id) DO NOTHING`
	if c.Version > 1 {
		q = `UPDATE cases SET type = $3, status = $4, subject_pseudonym = $5, user_pseudonym = $6, sealed = $7,
			data = $8, received_at = $9, due_at = $10, closed_at = $11, version = $12
			WHERE tenant = $1 AND id = $2 AND version = $12 - 1`
	}
	tag, err := db.pool.Exec(ctx, q, args...)
	if err == nil && tag.RowsAffected() == 0 {
		err = call.Errorf(call.Conflict, "case version must be one more than the stored version")
	}
	return fail("put case", "case", err)
}

// Case returns one case; NotFound if absent.
func (db *DB) Case(ctx context.Context, tenant, id string) (store.Case, error) {
	c, err := scanCase(db.pool.QueryRow(ctx, `SELECT `+caseColumns+` FROM cases WHERE tenant = $1 AND id = $2`, tenant, id))
	return c, fail("case", "case", err)
}

// Cases returns the cases matching f, newest id first.
func (db *DB) Cases(ctx context.Context, tenant string, f store.CaseFilter) ([]store.Case, error) {
	q := `SELECT ` + caseColumns + ` FROM cases WHERE tenant = $1`
	args := []any{tenant}
	add := func(cond string, arg any) {
		args = append(args, arg)
		q += " AND " + strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if !f.DueBefore.IsZero() {
		add("due_at < ?", f.DueBefore)
	}
	if f.Before != "" {
		add("id < ?", f.Before)
	}
	args = append(args, limit(f.Limit))
	q += ` ORDER BY id DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fail("cases", "case", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Case, error) { return scanCase(r) })
	return cs, fail("cases", "case", err)
}

func scanCase(s scanner) (store.Case, error) {
	var c store.Case
	var received, due, closed *time.Time
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
	_, err := db.pool.Exec(ctx, `
		INSERT INTO holds (tenant, id, scope, subject_pseudonym, case_id, reason, placed_by, placed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		h.Tenant, h.ID, h.Scope, h.SubjectPseudonym, h.CaseID, h.Reason, h.PlacedBy, ts(h.PlacedAt))
	return fail("put hold", "hold", err)
}

// LiftHold lifts a hold; NotFound if absent, Conflict if lifted already.
func (db *DB) LiftHold(ctx context.Context, tenant, id, by string, at time.Time) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var lifted *time.Time
		var liftedBy string
		err := tx.QueryRow(ctx, `SELECT lifted_by, lifted_at FROM holds WHERE tenant = $1 AND id = $2 FOR UPDATE`,
			tenant, id).Scan(&liftedBy, &lifted)
		if err != nil {
			return err
		}
		if lifted != nil || liftedBy != "" {
			return call.Errorf(call.Conflict, "hold lifted already")
		}
		_, err = tx.Exec(ctx, `UPDATE holds SET lifted_by = $1, lifted_at = $2 WHERE tenant = $3 AND id = $4`,
			by, ts(at), tenant, id)
		return err
	})
	return fail("lift hold", "hold", err)
}

// Holds returns the tenant's holds ordered by id, only active ones if
// activeOnly.
func (db *DB) Holds(ctx context.Context, tenant string, activeOnly bool) ([]store.Hold, error) {
	q := `SELECT tenant, id, scope, subject_pseudonym, case_id, reason, placed_by, placed_at, lifted_by, lifted_at
		FROM holds WHERE tenant = $1`
	if activeOnly {
		q += ` AND lifted_at IS NULL AND lifted_by = ''`
	}
	rows, err := db.pool.Query(ctx, q+` ORDER BY id`, tenant)
	if err != nil {
		return nil, fail("holds", "hold", err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Hold, error) {
		var h store.Hold
		var placed, lifted *time.Time
		err := r.Scan(&h.Tenant, &h.ID, &h.Scope, &h.SubjectPseudonym, &h.CaseID, &h.Reason, &h.PlacedBy, &placed,
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
	_, err := db.pool.Exec(ctx, `
		INSERT INTO consents (tenant, pseudonym, purpose, given, at, source) VALUES ($1, $2, $3, $4, $5, $6)`,
		c.Tenant, c.Pseudonym, c.Purpose, c.Given, ts(c.At), c.Source)
	return fail("put consent", "consent", err)
}

// Consents returns a pseudonym's consent history, oldest first.
func (db *DB) Consents(ctx context.Context, tenant string, pseudonym []byte) ([]store.Consent, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT tenant, pseudonym, purpose, given, at, source FROM consents
		WHERE tenant = $1 AND pseudonym = $2 ORDER BY at NULLS FIRST, id`, tenant, pseudonym)
	if err != nil {
		return nil, fail("consents", "consent", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Consent, error) {
		var c store.Consent
		var at *time.Time
		err := r.Scan(&c.Tenant, &c.Pseudonym, &c.Purpose, &c.Given, &at, &c.Source)
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
	_, err := db.pool.Exec(ctx, `INSERT INTO retention (tenant, settings) VALUES ($1, $2)
		ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings`, tenant, settings)
	return fail("put retention", "retention settings", err)
}

// Retention returns the stored retention settings, nil if none.
func (db *DB) Retention(ctx context.Context, tenant string) ([]byte, error) {
	var settings []byte
	err := db.pool.QueryRow(ctx, `SELECT settings FROM retention WHERE tenant = $1`, tenant).Scan(&settings)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return settings, fail("retention", "retention settings", err)
}

// subjectArgs returns the pseudonyms as parameters (nil for NULL, which
// matches nothing); Invalid if both are nil.
func subjectArgs(caller, user []byte) (any, any, error) {
	if len(caller) == 0 && len(user) == 0 {
		return nil, nil, call.Errorf(call.Invalid, "subject: a caller or user pseudonym is required")
	}
	return nilIfEmpty(caller), nilIfEmpty(user), nil
}

func nilIfEmpty(p []byte) any {
	if len(p) == 0 {
		return nil
	}
	return p
}

// SubjectCalls returns a page of the subject's call records by id.
func (db *DB) SubjectCalls(ctx context.Context, tenant string, caller, user []byte, after string, n int) ([]store.Call, error) {
	c, u, err := subjectArgs(caller, user)
	if err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+callColumnList+` FROM calls
		WHERE tenant = $1 AND (caller_pseudonym = $2 OR user_pseudonym = $3) AND id > $4 ORDER BY id LIMIT $5`,
		tenant, c, u, after, limit(n))
	if err != nil {
		return nil, fail("subject calls", "call record", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Call, error) { return scanCall(r) })
	return cs, fail("subject calls", "call record", err)
}

// SubjectListEntries returns every list entry of a pseudonym, by list.
func (db *DB) SubjectListEntries(ctx context.Context, tenant string, pseudonym []byte) ([]store.ListEntry, error) {
	if len(pseudonym) == 0 {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `
		SELECT list, pseudonym, sealed, reason, expires_at, created_at FROM list_entries
		WHERE tenant = $1 AND pseudonym = $2 ORDER BY list`, tenant, pseudonym)
	if err != nil {
		return nil, fail("subject list entries", "list entry", err)
	}
	es, err := pgx.CollectRows(rows, scanEntry)
	return es, fail("subject list entries", "list entry", err)
}

// SubjectLinks returns every link of the subject, by (caller, user).
func (db *DB) SubjectLinks(ctx context.Context, tenant string, caller, user []byte) ([]store.Link, error) {
	c, u, err := subjectArgs(caller, user)
	if err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT caller_pseudonym, user_pseudonym, sealed, at FROM links
		WHERE tenant = $1 AND (caller_pseudonym = $2 OR user_pseudonym = $3)
		ORDER BY caller_pseudonym, user_pseudonym`, tenant, c, u)
	if err != nil {
		return nil, fail("subject links", "link", err)
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Link, error) {
		var l store.Link
		var at *time.Time
		err := r.Scan(&l.CallerPseudonym, &l.UserPseudonym, &l.Sealed, &at)
		l.At = timeOf(at)
		return l, err
	})
	return ls, fail("subject links", "link", err)
}

// EraseSubject deletes the subject's records, labels, list entries and
// links in one transaction (see store.Privacy).
func (db *DB) EraseSubject(ctx context.Context, tenant string, caller, user []byte) (store.Erased, error) {
	c, u, err := subjectArgs(caller, user)
	if err != nil {
		return store.Erased{}, err
	}
	var e store.Erased
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		e = store.Erased{}
		rows, err := tx.Query(ctx, `DELETE FROM calls WHERE tenant = $1 AND (caller_pseudonym = $2 OR user_pseudonym = $3)
			RETURNING id`, tenant, c, u)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		e.Calls = int64(len(ids))
		if len(ids) > 0 {
			tag, err := tx.Exec(ctx, `DELETE FROM labels WHERE tenant = $1 AND record_id = ANY($2)`, tenant, ids)
			if err != nil {
				return err
			}
			e.Labels = tag.RowsAffected()
		}
		var changes []store.Change
		for _, p := range [][]byte{caller, user} {
			if len(p) == 0 {
				continue
			}
			rows, err := tx.Query(ctx, `DELETE FROM list_entries WHERE tenant = $1 AND pseudonym = $2 RETURNING list`, tenant, p)
			if err != nil {
				return err
			}
			cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Change, error) {
				var list call.ListKind
				err := r.Scan(&list)
				return store.Change{Tenant: tenant, Kind: store.ChangeListDelete, Key: store.ListChangeKey(list, p)}, err
			})
			if err != nil {
				return err
			}
			sortChanges(cs)
			e.ListEntries += int64(len(cs))
			changes = append(changes, cs...)
		}
		rows, err = tx.Query(ctx, `DELETE FROM links WHERE tenant = $1 AND (caller_pseudonym = $2 OR user_pseudonym = $3)
			RETURNING caller_pseudonym, user_pseudonym`, tenant, c, u)
		if err != nil {
			return err
		}
		cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Change, error) {
			var cp, up []byte
			err := r.Scan(&cp, &up)
			return store.Change{Tenant: tenant, Kind: store.ChangeLinkDelete, Key: store.LinkChangeKey(cp, up)}, err
		})
		if err != nil {
			return err
		}
		sortChanges(cs)
		e.Links = int64(len(cs))
		changes = append(changes, cs...)
		if err := clearSealedCopies(ctx, tx, tenant, caller, user); err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, changes...)
	})
	return e, fail("erase subject", "subject", err)
}

// clearSealedCopies sets Sealed to NULL on the tenant's logged list and link
// deletions whose key names the subject.
func clearSealedCopies(ctx context.Context, tx pgx.Tx, tenant string, caller, user []byte) error {
	rows, err := tx.Query(ctx, `SELECT seq, kind, key FROM changes
		WHERE tenant = $1 AND sealed IS NOT NULL AND kind IN ($2, $3)`,
		tenant, string(store.ChangeListDelete), string(store.ChangeLinkDelete))
	if err != nil {
		return err
	}
	changes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Change, error) {
		var c store.Change
		err := r.Scan(&c.Seq, &c.Kind, &c.Key)
		return c, err
	})
	if err != nil {
		return err
	}
	var seqs []int64
	for _, c := range changes {
		if changeOfSubject(c, caller, user) {
			seqs = append(seqs, c.Seq)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	_, err = tx.Exec(ctx, `UPDATE changes SET sealed = NULL WHERE seq = ANY($1)`, seqs)
	return err
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

// PurgeCalls deletes up to limit records started before `before` whose
// caller and user pseudonyms are not in keep, with their labels, oldest
// first.
func (db *DB) PurgeCalls(ctx context.Context, tenant string, before time.Time, keep [][]byte, n int) (int64, error) {
	if len(keep) > maxKeep {
		return 0, call.Errorf(call.Invalid, "purge: at most %d pseudonyms to keep", maxKeep)
	}
	if keep == nil {
		keep = [][]byte{} // NULL would match nothing
	}
	var purged int64
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM calls WHERE (tenant, id, started_at) IN (
			SELECT tenant, id, started_at FROM calls WHERE tenant = $1 AND started_at < $2
				AND (caller_pseudonym IS NULL OR caller_pseudonym <> ALL($3::bytea[]))
				AND (user_pseudonym IS NULL OR user_pseudonym <> ALL($3::bytea[]))
			ORDER BY started_at LIMIT $4)
			RETURNING id`, tenant, before, keep, limit(n))
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(ids) == 0 {
			return err
		}
		purged = int64(len(ids))
		_, err = tx.Exec(ctx, `DELETE FROM labels WHERE tenant = $1 AND record_id = ANY($2)`, tenant, ids)
		return err
	})
	if err != nil {
		purged = 0
	}
	return purged, fail("purge calls", "call record", err)
}

// PurgeChanges deletes the change-log rows stamped before `before` and
// raises the prune mark to the highest seq deleted.
func (db *DB) PurgeChanges(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var top *int64
		err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM changes WHERE at < $1 RETURNING seq)
			SELECT count(*), max(seq) FROM gone`, before).Scan(&n, &top)
		if err != nil || top == nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO changes_pruned (one, through) VALUES (1, $1)
			ON CONFLICT (one) DO UPDATE SET through = greatest(changes_pruned.through, excluded.through)`, *top)
		return err
	})
	if err != nil {
		n = 0
	}
	return n, fail("purge changes", "change", err)
}

// ChangesPrunedThrough returns the highest seq PurgeChanges ever deleted.
func (db *DB) ChangesPrunedThrough(ctx context.Context) (int64, error) {
	var seq int64
	err := db.pool.QueryRow(ctx, `SELECT coalesce(max(through), 0) FROM changes_pruned`).Scan(&seq)
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
		q = `SELECT id, id, sealed FROM calls WHERE tenant = $1 AND sealed IS NOT NULL AND id > $2 ORDER BY id LIMIT $3`
		args = []any{tenant, after, limit(n)}
	case store.SealedCases:
		q = `SELECT id, id, sealed FROM cases WHERE tenant = $1 AND sealed IS NOT NULL AND id > $2 ORDER BY id LIMIT $3`
		args = []any{tenant, after, limit(n)}
	case store.SealedLabels:
		id, err := labelCursor(after)
		if err != nil {
			return nil, err
		}
		q = `SELECT lpad(id::text, 20, '0'), record_id, sealed FROM labels
			WHERE tenant = $1 AND sealed IS NOT NULL AND id > $2 ORDER BY id LIMIT $3`
		args = []any{tenant, id, limit(n)}
	case store.SealedLists:
		list, p, err := pairCursor(after, false)
		if err != nil {
			return nil, err
		}
		q = `SELECT list || '/' || encode(pseudonym, 'hex'), list || '/' || encode(pseudonym, 'hex'), sealed
			FROM list_entries WHERE tenant = $1 AND sealed IS NOT NULL AND (list, pseudonym) > ($2, $3)
			ORDER BY list, pseudonym LIMIT $4`
		args = []any{tenant, string(list), p, limit(n)}
	case store.SealedLinks:
		c, u, err := pairCursor(after, true)
		if err != nil {
			return nil, err
		}
		q = `SELECT encode(caller_pseudonym, 'hex') || '/' || encode(user_pseudonym, 'hex'),
				encode(caller_pseudonym, 'hex') || '/' || encode(user_pseudonym, 'hex'), sealed
			FROM links WHERE tenant = $1 AND sealed IS NOT NULL AND (caller_pseudonym, user_pseudonym) > ($2, $3)
			ORDER BY caller_pseudonym, user_pseudonym LIMIT $4`
		args = []any{tenant, c, u, limit(n)}
	default:
		return nil, call.Errorf(call.Invalid, "sealed rows: unknown kind")
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fail("sealed rows", "sealed row", err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SealedRow, error) {
		s := store.SealedRow{Kind: kind}
		err := r.Scan(&s.Row, &s.AADID, &s.Sealed)
		return s, err
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
// transaction (one pipelined batch).
func (db *DB) ReplaceSealed(ctx context.Context, tenant string, rows []store.SealedRow, old [][]byte) (int, error) {
	if len(rows) != len(old) {
		return 0, call.Errorf(call.Invalid, "replace sealed: rows and old values differ in number")
	}
	if len(rows) > maxKeys {
		return 0, call.Errorf(call.Invalid, "replace sealed: at most %d rows at once", maxKeys)
	}
	var b pgx.Batch
	for i, r := range rows {
		if r.Row == "" {
			return 0, call.Errorf(call.Invalid, "replace sealed: row %d: locator required", i)
		}
		switch r.Kind {
		case store.SealedCalls:
			b.Queue(`UPDATE calls SET sealed = $1 WHERE tenant = $2 AND id = $3 AND sealed = $4`, r.Sealed, tenant, r.Row, old[i])
		case store.SealedCases:
			b.Queue(`UPDATE cases SET sealed = $1 WHERE tenant = $2 AND id = $3 AND sealed = $4`, r.Sealed, tenant, r.Row, old[i])
		case store.SealedLabels:
			id, err := labelCursor(r.Row)
			if err != nil {
				return 0, err
			}
			b.Queue(`UPDATE labels SET sealed = $1 WHERE tenant = $2 AND id = $3 AND sealed = $4`, r.Sealed, tenant, id, old[i])
		case store.SealedLists:
			list, p, err := pairCursor(r.Row, false)
			if err != nil {
				return 0, err
			}
			b.Queue(`UPDATE list_entries SET sealed = $1 WHERE tenant = $2 AND list = $3 AND pseudonym = $4 AND sealed = $5`,
				r.Sealed, tenant, string(list), p, old[i])
		case store.SealedLinks:
			c, u, err := pairCursor(r.Row, true)
			if err != nil {
				return 0, err
			}
			b.Queue(`UPDATE links SET sealed = $1 WHERE tenant = $2 AND caller_pseudonym = $3 AND user_pseudonym = $4 AND sealed = $5`,
				r.Sealed, tenant, c, u, old[i])
		default:
			return 0, call.Errorf(call.Invalid, "replace sealed: row %d: unknown kind", i)
		}
	}
	if len(rows) == 0 {
		return 0, nil
	}
	var replaced int
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		replaced = 0
		br := tx.SendBatch(ctx, &b)
		for range rows {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return err
			}
			replaced += int(tag.RowsAffected())
		}
		return br.Close()
	})
	if err != nil {
		replaced = 0
	}
	return replaced, fail("replace sealed", "sealed row", err)
}

// DeleteTenantData deletes every row of the tenant but its tenants row,
// which it marks deleted (see store.Privacy).
func (db *DB) DeleteTenantData(ctx context.Context, tenant string) (store.Counts, error) {
	var c store.Counts
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		c = store.Counts{}
		tag, err := tx.Exec(ctx, `UPDATE tenants SET keys = NULL, deleted_at = coalesce(deleted_at, $1) WHERE id = $2`,
			db.now(), tenant)
		if err := mustAffect(tag, err, "tenant"); err != nil {
			return err
		}
		for _, t := range []struct {
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
		} {
			tag, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{t.table}.Sanitize()+` WHERE tenant = $1`, tenant)
			if err != nil {
				return err
			}
			if t.n != nil {
				*t.n = tag.RowsAffected()
			}
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangeTenant})
	})
	if err != nil {
		c = store.Counts{}
	}
	return c, fail("delete tenant data", "tenant", err)
}
