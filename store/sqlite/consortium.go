package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Consortium = (*DB)(nil)

// PutConsortium inserts or replaces a consortium's settings.
func (db *DB) PutConsortium(ctx context.Context, c store.ConsortiumInfo) error {
	policy, err := json.Marshal(c.Reciprocity)
	if err != nil {
		return fail("put consortium", "consortium", err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO consortia (id, name, terms, reciprocity, expiry, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, terms = excluded.terms,
				reciprocity = excluded.reciprocity, expiry = excluded.expiry, created_at = excluded.created_at`,
			c.ID, c.Name, c.Terms, string(policy), int64(c.Expiry), nanos(c.CreatedAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Kind: store.ChangeConsortium, Key: []byte(c.ID)})
	})
	return fail("put consortium", "consortium", err)
}

// ConsortiumInfo returns one consortium; NotFound if absent.
func (db *DB) ConsortiumInfo(ctx context.Context, id string) (store.ConsortiumInfo, error) {
	c := store.ConsortiumInfo{ID: id}
	var policy string
	var expiry int64
	var created sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT name, terms, reciprocity, expiry, created_at FROM consortia WHERE id = ?`, id).
		Scan(&c.Name, &c.Terms, &policy, &expiry, &created)
	if err != nil {
		return store.ConsortiumInfo{}, fail("consortium", "consortium", notFound(err, "consortium"))
	}
	c.Expiry, c.CreatedAt = time.Duration(expiry), timeOf(created)
	if err := json.Unmarshal([]byte(policy), &c.Reciprocity); err != nil {
		return store.ConsortiumInfo{}, fail("consortium", "consortium", err)
	}
	return c, nil
}

// hasConsortium returns NotFound unless the consortium exists.
func hasConsortium(ctx context.Context, tx *sql.Tx, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM consortia WHERE id = ?`, id).Scan(&one)
	return notFound(err, "consortium")
}

// JoinConsortium records a tenant's opt-in (or a former member's return).
func (db *DB) JoinConsortium(ctx context.Context, m store.Membership) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := hasConsortium(ctx, tx, m.Consortium); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO consortium_members (consortium, tenant, joined_at, terms, left_at) VALUES (?, ?, ?, ?, NULL)
			ON CONFLICT (consortium, tenant) DO UPDATE SET joined_at = excluded.joined_at,
				terms = excluded.terms, left_at = NULL
			WHERE consortium_members.left_at IS NOT NULL`,
			m.Consortium, m.Tenant, nanos(m.JoinedAt), m.Terms)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return call.Errorf(call.Conflict, "tenant is a member already")
		}
		return db.appendChanges(ctx, tx, memberChange(m.Consortium, m.Tenant))
	})
	return fail("join consortium", "membership", err)
}

func memberChange(consortium, tenant string) store.Change {
	return store.Change{Tenant: tenant, Kind: store.ChangeConsortiumMember, Key: store.ConsortiumChangeKey(consortium, []byte(tenant))}
}

func entryChanges(consortium string, pseudonyms [][]byte) []store.Change {
	slices.SortFunc(pseudonyms, bytes.Compare)
	pseudonyms = slices.CompactFunc(pseudonyms, bytes.Equal)
	cs := make([]store.Change, len(pseudonyms))
	for i, p := range pseudonyms {
		cs[i] = store.Change{Kind: store.ChangeConsortiumEntry, Key: store.ConsortiumChangeKey(consortium, p)}
	}
	return cs
}

// LeaveConsortium ends an active membership and withdraws the member's live
// reports.
func (db *DB) LeaveConsortium(ctx context.Context, consortium, tenant string, at time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE consortium_members SET left_at = ?
			WHERE consortium = ? AND tenant = ? AND left_at IS NULL`, nanos(at), consortium, tenant)
		if err := mustAffect(res, err, "membership"); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE consortium_reports SET withdrawn_at = ?
			WHERE consortium = ? AND tenant = ? AND withdrawn_at IS NULL RETURNING pseudonym`, nanos(at), consortium, tenant)
		ps, err := collect(rows, err, func(s scanner) ([]byte, error) {
			var p []byte
			return p, s.Scan(&p)
		})
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, append([]store.Change{memberChange(consortium, tenant)}, entryChanges(consortium, ps)...)...)
	})
	return fail("leave consortium", "membership", err)
}

// Memberships returns every membership of a consortium ordered by tenant.
func (db *DB) Memberships(ctx context.Context, consortium string) ([]store.Membership, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT tenant, joined_at, terms, left_at, impact
		FROM consortium_members WHERE consortium = ? ORDER BY tenant`, consortium)
	ms, err := collect(rows, err, func(s scanner) (store.Membership, error) {
		m := store.Membership{Consortium: consortium}
		var joined, left sql.NullInt64
		err := s.Scan(&m.Tenant, &joined, &m.Terms, &left, &m.Impact)
		m.JoinedAt, m.LeftAt = timeOf(joined), timeOf(left)
		return m, err
	})
	return ms, fail("memberships", "membership", err)
}

// AddConsortiumImpact adds to members' impact counters.
func (db *DB) AddConsortiumImpact(ctx context.Context, consortium string, impact map[string]int64) error {
	if len(impact) == 0 {
		return nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for tenant, n := range impact {
			if _, err := tx.ExecContext(ctx, `UPDATE consortium_members SET impact = impact + ?
				WHERE consortium = ? AND tenant = ?`, n, consortium, tenant); err != nil {
				return err
			}
		}
		return nil
	})
	return fail("add consortium impact", "membership", err)
}

// AddConsortiumReport stores a report of an active member.
func (db *DB) AddConsortiumReport(ctx context.Context, r store.ConsortiumReport) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM consortium_members
			WHERE consortium = ? AND tenant = ? AND left_at IS NULL`, r.Consortium, r.Tenant).Scan(&one)
		if err != nil {
			return notFound(err, "membership")
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO consortium_reports (id, consortium, tenant, pseudonym,
			tenant_pseudonym, sealed, fraud_type, evidence, note, reported_at, withdrawn_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Consortium, r.Tenant, r.Pseudonym, r.TenantPseudonym, r.Sealed, r.FraudType, r.Evidence,
			r.Note, r.ReportedAt.UnixNano(), nanos(r.WithdrawnAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, entryChanges(r.Consortium, [][]byte{r.Pseudonym})...)
	})
	return fail("add consortium report", "report", err)
}

const reportColumns = `id, consortium, tenant, pseudonym, tenant_pseudonym, sealed, fraud_type, evidence, note, reported_at, withdrawn_at`

func scanReport(s scanner) (store.ConsortiumReport, error) {
	var r store.ConsortiumReport
	var reported int64
	var withdrawn sql.NullInt64
	err := s.Scan(&r.ID, &r.Consortium, &r.Tenant, &r.Pseudonym, &r.TenantPseudonym, &r.Sealed,
		&r.FraudType, &r.Evidence, &r.Note, &reported, &withdrawn)
	r.ReportedAt, r.WithdrawnAt = time.Unix(0, reported).UTC(), timeOf(withdrawn)
	return r, err
}

// WithdrawConsortiumReport marks the tenant's live report withdrawn.
func (db *DB) WithdrawConsortiumReport(ctx context.Context, consortium, tenant, id string, at time.Time) (store.ConsortiumReport, error) {
	var r store.ConsortiumReport
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = scanReport(tx.QueryRowContext(ctx, `UPDATE consortium_reports SET withdrawn_at = ?
			WHERE consortium = ? AND tenant = ? AND id = ? AND withdrawn_at IS NULL RETURNING `+reportColumns,
			nanos(at), consortium, tenant, id))
		if err != nil {
			return notFound(err, "report")
		}
		return db.appendChanges(ctx, tx, entryChanges(consortium, [][]byte{r.Pseudonym})...)
	})
	if err != nil {
		return store.ConsortiumReport{}, fail("withdraw consortium report", "report", err)
	}
	return r, nil
}

// ConsortiumReports returns the reports matching f, ordered by id.
func (db *DB) ConsortiumReports(ctx context.Context, consortium string, f store.ReportFilter) ([]store.ConsortiumReport, error) {
	where := []string{"consortium = ?", "id > ?"}
	args := []any{consortium, f.After}
	if f.Pseudonym != nil {
		where, args = append(where, "pseudonym = ?"), append(args, f.Pseudonym)
	}
	if f.Tenant != "" {
		where, args = append(where, "tenant = ?"), append(args, f.Tenant)
	}
	if f.Live {
		where = append(where, "withdrawn_at IS NULL")
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+reportColumns+` FROM consortium_reports WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id LIMIT ?`, append(args, limit(f.Limit))...)
	rs, err := collect(rows, err, scanReport)
	return rs, fail("consortium reports", "report", err)
}

// OpenConsortiumDispute stores a new open dispute.
func (db *DB) OpenConsortiumDispute(ctx context.Context, d store.ConsortiumDispute) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := hasConsortium(ctx, tx, d.Consortium); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO consortium_disputes (id, consortium, pseudonym, raised_by,
			reason, state, opened_at, resolved_at, resolution) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, '')`,
			d.ID, d.Consortium, d.Pseudonym, d.RaisedBy, d.Reason, string(store.DisputeOpen), nanos(d.OpenedAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, entryChanges(d.Consortium, [][]byte{d.Pseudonym})...)
	})
	return fail("open consortium dispute", "dispute", err)
}

const disputeColumns = `id, consortium, pseudonym, raised_by, reason, state, opened_at, resolved_at, resolution`

func scanDispute(s scanner) (store.ConsortiumDispute, error) {
	var d store.ConsortiumDispute
	var opened, resolved sql.NullInt64
	err := s.Scan(&d.ID, &d.Consortium, &d.Pseudonym, &d.RaisedBy, &d.Reason, &d.State, &opened, &resolved, &d.Resolution)
	d.OpenedAt, d.ResolvedAt = timeOf(opened), timeOf(resolved)
	return d, err
}

// ResolveConsortiumDispute closes an open dispute; accepting one deletes the
// reports of its pseudonym.
func (db *DB) ResolveConsortiumDispute(ctx context.Context, consortium, id string, state store.DisputeState, resolution string, at time.Time) (store.ConsortiumDispute, error) {
	if state != store.DisputeUpheld && state != store.DisputeAccepted {
		return store.ConsortiumDispute{}, call.Errorf(call.Invalid, "state: must be upheld or accepted")
	}
	var d store.ConsortiumDispute
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanDispute(tx.QueryRowContext(ctx, `SELECT `+disputeColumns+` FROM consortium_disputes
			WHERE consortium = ? AND id = ?`, consortium, id))
		if err != nil {
			return notFound(err, "dispute")
		}
		if d.State != store.DisputeOpen {
			return call.Errorf(call.Conflict, "dispute is resolved already")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE consortium_disputes SET state = ?, resolved_at = ?, resolution = ?
			WHERE id = ?`, string(state), nanos(at), resolution, id); err != nil {
			return err
		}
		if state == store.DisputeAccepted {
			if _, err := tx.ExecContext(ctx, `DELETE FROM consortium_reports WHERE consortium = ? AND pseudonym = ?`,
				consortium, d.Pseudonym); err != nil {
				return err
			}
		}
		d.State, d.ResolvedAt, d.Resolution = state, at.UTC(), resolution
		return db.appendChanges(ctx, tx, entryChanges(consortium, [][]byte{d.Pseudonym})...)
	})
	if err != nil {
		return store.ConsortiumDispute{}, fail("resolve consortium dispute", "dispute", err)
	}
	return d, nil
}

// ConsortiumDisputes returns the disputes matching f, ordered by id.
func (db *DB) ConsortiumDisputes(ctx context.Context, consortium string, f store.DisputeFilter) ([]store.ConsortiumDispute, error) {
	where := []string{"consortium = ?"}
	args := []any{consortium}
	if f.Pseudonym != nil {
		where, args = append(where, "pseudonym = ?"), append(args, f.Pseudonym)
	}
	if f.Open {
		where, args = append(where, "state = ?"), append(args, string(store.DisputeOpen))
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+disputeColumns+` FROM consortium_disputes WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id`, args...)
	ds, err := collect(rows, err, scanDispute)
	return ds, fail("consortium disputes", "dispute", err)
}

// PurgeConsortium deletes expired reports and returns how many.
func (db *DB) PurgeConsortium(ctx context.Context, consortium string, lastBefore, hardBefore time.Time) (int, error) {
	var n int
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			DELETE FROM consortium_reports WHERE consortium = ?1 AND (
				reported_at < ?3
				OR (withdrawn_at IS NOT NULL AND withdrawn_at < ?2)
				OR pseudonym IN (SELECT pseudonym FROM consortium_reports WHERE consortium = ?1
					GROUP BY pseudonym HAVING max(CASE WHEN withdrawn_at IS NULL THEN reported_at END) < ?2))
			RETURNING pseudonym`, consortium, lastBefore.UnixNano(), hardBefore.UnixNano())
		ps, err := collect(rows, err, func(s scanner) ([]byte, error) {
			var p []byte
			return p, s.Scan(&p)
		})
		if err != nil {
			return err
		}
		n = len(ps)
		return db.appendChanges(ctx, tx, entryChanges(consortium, ps)...)
	})
	if err != nil {
		return 0, fail("purge consortium", "report", err)
	}
	return n, nil
}
