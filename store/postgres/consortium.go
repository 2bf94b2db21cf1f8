package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO consortia (id, name, terms, reciprocity, expiry, created_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, terms = excluded.terms,
				reciprocity = excluded.reciprocity, expiry = excluded.expiry, created_at = excluded.created_at`,
			c.ID, c.Name, c.Terms, string(policy), int64(c.Expiry), ts(c.CreatedAt))
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
	var policy []byte
	var expiry int64
	var created *time.Time
	err := db.pool.QueryRow(ctx, `SELECT name, terms, reciprocity::text, expiry, created_at FROM consortia WHERE id = $1`, id).
		Scan(&c.Name, &c.Terms, &policy, &expiry, &created)
	if err != nil {
		return store.ConsortiumInfo{}, fail("consortium", "consortium", err)
	}
	c.Expiry, c.CreatedAt = time.Duration(expiry), timeOf(created)
	if err := json.Unmarshal(policy, &c.Reciprocity); err != nil {
		return store.ConsortiumInfo{}, fail("consortium", "consortium", err)
	}
	return c, nil
}

// hasConsortium returns NotFound unless the consortium exists.
func hasConsortium(ctx context.Context, tx pgx.Tx, id string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM consortia WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return call.Errorf(call.NotFound, "consortium not found")
	}
	return err
}

// JoinConsortium records a tenant's opt-in (or a former member's return).
func (db *DB) JoinConsortium(ctx context.Context, m store.Membership) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := hasConsortium(ctx, tx, m.Consortium); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO consortium_members (consortium, tenant, joined_at, terms, left_at) VALUES ($1, $2, $3, $4, NULL)
			ON CONFLICT (consortium, tenant) DO UPDATE SET joined_at = excluded.joined_at,
				terms = excluded.terms, left_at = NULL
			WHERE consortium_members.left_at IS NOT NULL`,
			m.Consortium, m.Tenant, ts(m.JoinedAt), m.Terms)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
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

func collectBytes(rows pgx.Rows, err error) ([][]byte, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
		var p []byte
		return p, r.Scan(&p)
	})
}

// LeaveConsortium ends an active membership and withdraws the member's live
// reports.
func (db *DB) LeaveConsortium(ctx context.Context, consortium, tenant string, at time.Time) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE consortium_members SET left_at = $1
			WHERE consortium = $2 AND tenant = $3 AND left_at IS NULL`, ts(at), consortium, tenant)
		if err := mustAffect(tag, err, "membership"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE consortium_reports SET withdrawn_at = $1
			WHERE consortium = $2 AND tenant = $3 AND withdrawn_at IS NULL RETURNING pseudonym`, ts(at), consortium, tenant)
		ps, err := collectBytes(rows, err)
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, append([]store.Change{memberChange(consortium, tenant)}, entryChanges(consortium, ps)...)...)
	})
	return fail("leave consortium", "membership", err)
}

// Memberships returns every membership of a consortium ordered by tenant.
func (db *DB) Memberships(ctx context.Context, consortium string) ([]store.Membership, error) {
	rows, err := db.pool.Query(ctx, `SELECT tenant, joined_at, terms, left_at, impact
		FROM consortium_members WHERE consortium = $1 ORDER BY tenant`, consortium)
	if err != nil {
		return nil, fail("memberships", "membership", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Membership, error) {
		m := store.Membership{Consortium: consortium}
		var joined, left *time.Time
		err := r.Scan(&m.Tenant, &joined, &m.Terms, &left, &m.Impact)
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
	tenants := make([]string, 0, len(impact))
	counts := make([]int64, 0, len(impact))
	for t, n := range impact {
		tenants, counts = append(tenants, t), append(counts, n)
	}
	_, err := db.pool.Exec(ctx, `UPDATE consortium_members m SET impact = m.impact + u.n
		FROM unnest($2::text[], $3::bigint[]) AS u(tenant, n)
		WHERE m.consortium = $1 AND m.tenant = u.tenant`, consortium, tenants, counts)
	return fail("add consortium impact", "membership", err)
}

// AddConsortiumReport stores a report of an active member.
func (db *DB) AddConsortiumReport(ctx context.Context, r store.ConsortiumReport) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM consortium_members
			WHERE consortium = $1 AND tenant = $2 AND left_at IS NULL FOR SHARE`, r.Consortium, r.Tenant).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return call.Errorf(call.NotFound, "membership not found")
		} else if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO consortium_reports (`+reportColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			r.ID, r.Consortium, r.Tenant, r.Pseudonym, r.TenantPseudonym, r.Sealed, r.FraudType, r.Evidence,
			r.Note, r.ReportedAt, ts(r.WithdrawnAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, entryChanges(r.Consortium, [][]byte{r.Pseudonym})...)
	})
	return fail("add consortium report", "report", err)
}

const reportColumns = `id, consortium, tenant, pseudonym, tenant_pseudonym, sealed, fraud_type, evidence, note, reported_at, withdrawn_at`

func scanReport(r pgx.Row) (store.ConsortiumReport, error) {
	var c store.ConsortiumReport
	var reported time.Time
	var withdrawn *time.Time
	err := r.Scan(&c.ID, &c.Consortium, &c.Tenant, &c.Pseudonym, &c.TenantPseudonym, &c.Sealed,
		&c.FraudType, &c.Evidence, &c.Note, &reported, &withdrawn)
	c.ReportedAt, c.WithdrawnAt = reported.UTC(), timeOf(withdrawn)
	return c, err
}

// WithdrawConsortiumReport marks the tenant's live report withdrawn.
func (db *DB) WithdrawConsortiumReport(ctx context.Context, consortium, tenant, id string, at time.Time) (store.ConsortiumReport, error) {
	var r store.ConsortiumReport
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanReport(tx.QueryRow(ctx, `UPDATE consortium_reports SET withdrawn_at = $1
			WHERE consortium = $2 AND tenant = $3 AND id = $4 AND withdrawn_at IS NULL RETURNING `+reportColumns,
			ts(at), consortium, tenant, id))
		if err != nil {
			return err
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
	where := []string{"consortium = $1", "id > $2"}
	args := []any{consortium, f.After}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Pseudonym != nil {
		add("pseudonym = ?", f.Pseudonym)
	}
	if f.Tenant != "" {
		add("tenant = ?", f.Tenant)
	}
	if f.Live {
		where = append(where, "withdrawn_at IS NULL")
	}
	args = append(args, limit(f.Limit))
	rows, err := db.pool.Query(ctx, `SELECT `+reportColumns+` FROM consortium_reports WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fail("consortium reports", "report", err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ConsortiumReport, error) { return scanReport(r) })
	return rs, fail("consortium reports", "report", err)
}

// OpenConsortiumDispute stores a new open dispute.
func (db *DB) OpenConsortiumDispute(ctx context.Context, d store.ConsortiumDispute) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := hasConsortium(ctx, tx, d.Consortium); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO consortium_disputes (`+disputeColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, '')`,
			d.ID, d.Consortium, d.Pseudonym, d.RaisedBy, d.Reason, string(store.DisputeOpen), ts(d.OpenedAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, entryChanges(d.Consortium, [][]byte{d.Pseudonym})...)
	})
	return fail("open consortium dispute", "dispute", err)
}

const disputeColumns = `id, consortium, pseudonym, raised_by, reason, state, opened_at, resolved_at, resolution`

func scanDispute(r pgx.Row) (store.ConsortiumDispute, error) {
	var d store.ConsortiumDispute
	var opened, resolved *time.Time
	err := r.Scan(&d.ID, &d.Consortium, &d.Pseudonym, &d.RaisedBy, &d.Reason, &d.State, &opened, &resolved, &d.Resolution)
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
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		d, err = scanDispute(tx.QueryRow(ctx, `SELECT `+disputeColumns+` FROM consortium_disputes
			WHERE consortium = $1 AND id = $2 FOR UPDATE`, consortium, id))
		if err != nil {
			return err
		}
		if d.State != store.DisputeOpen {
			return call.Errorf(call.Conflict, "dispute is resolved already")
		}
		if _, err := tx.Exec(ctx, `UPDATE consortium_disputes SET state = $1, resolved_at = $2, resolution = $3
			WHERE id = $4`, string(state), ts(at), resolution, id); err != nil {
			return err
		}
		if state == store.DisputeAccepted {
			if _, err := tx.Exec(ctx, `DELETE FROM consortium_reports WHERE consortium = $1 AND pseudonym = $2`,
				consortium, d.Pseudonym); err != nil {
				return err
			}
		}
		d.State, d.ResolvedAt, d.Resolution = state, at.UTC().Truncate(time.Microsecond), resolution
		return db.appendChanges(ctx, tx, entryChanges(consortium, [][]byte{d.Pseudonym})...)
	})
	if err != nil {
		return store.ConsortiumDispute{}, fail("resolve consortium dispute", "dispute", err)
	}
	return d, nil
}

// ConsortiumDisputes returns the disputes matching f, ordered by id.
func (db *DB) ConsortiumDisputes(ctx context.Context, consortium string, f store.DisputeFilter) ([]store.ConsortiumDispute, error) {
	where := []string{"consortium = $1"}
	args := []any{consortium}
	if f.Pseudonym != nil {
		args = append(args, f.Pseudonym)
		where = append(where, "pseudonym = $"+strconv.Itoa(len(args)))
	}
	if f.Open {
		args = append(args, string(store.DisputeOpen))
		where = append(where, "state = $"+strconv.Itoa(len(args)))
	}
	rows, err := db.pool.Query(ctx, `SELECT `+disputeColumns+` FROM consortium_disputes WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id`, args...)
	if err != nil {
		return nil, fail("consortium disputes", "dispute", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ConsortiumDispute, error) { return scanDispute(r) })
	return ds, fail("consortium disputes", "dispute", err)
}

// PurgeConsortium deletes expired reports and returns how many.
func (db *DB) PurgeConsortium(ctx context.Context, consortium string, lastBefore, hardBefore time.Time) (int, error) {
	var n int
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			DELETE FROM consortium_reports WHERE consortium = $1 AND (
				reported_at < $3
				OR (withdrawn_at IS NOT NULL AND withdrawn_at < $2)
				OR pseudonym IN (SELECT pseudonym FROM consortium_reports WHERE consortium = $1
					GROUP BY pseudonym HAVING max(reported_at) FILTER (WHERE withdrawn_at IS NULL) < $2))
			RETURNING pseudonym`, consortium, lastBefore, hardBefore)
		ps, err := collectBytes(rows, err)
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
