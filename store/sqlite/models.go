package sqlite

import (
	"context"
	"database/sql"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Models = (*DB)(nil)

// PutModel stores a new shadow model version, retiring the previous shadow
// (see store.Models). Writes are serialised on the one write connection, so
// reading the highest version and inserting the next cannot interleave.
func (db *DB) PutModel(ctx context.Context, m store.Model) error {
	if err := store.CheckModel(m); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE id = ? AND deleted_at IS NULL`, m.Tenant).Scan(&one)
		if err != nil {
			return notFound(err, "tenant")
		}
		var top int
		err = tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM models WHERE tenant = ?`, m.Tenant).Scan(&top)
		if err != nil {
			return err
		}
		if m.Version != top+1 {
			return call.Errorf(call.Conflict, "model version must be one more than the stored version %d", top)
		}
		changes, err := displace(ctx, tx, m.Tenant, m.Version, store.ModelShadow)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO models (tenant, version, status, model, report, trained_at, created_at, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			m.Tenant, m.Version, store.ModelShadow, m.Model, blob(m.Report), nanos(m.TrainedAt), nanos(m.CreatedAt), m.CreatedBy)
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, append(changes, modelChange(m.Tenant, m.Version))...)
	})
	return fail("put model", "model", err)
}

// SetModelStatus sets a version's status, retiring the version it displaces
// (see store.Models).
func (db *DB) SetModelStatus(ctx context.Context, tenant string, version int, status string) error {
	if err := store.CheckModelStatus(status); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT status FROM models WHERE tenant = ? AND version = ?`, tenant, version).Scan(&cur)
		if err != nil {
			return notFound(err, "model")
		}
		if cur == status {
			return nil
		}
		var changes []store.Change
		if status != store.ModelRetired {
			if changes, err = displace(ctx, tx, tenant, version, status); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE models SET status = ? WHERE tenant = ? AND version = ?`, status, tenant, version)
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, append(changes, modelChange(tenant, version))...)
	})
	return fail("set model status", "model", err)
}

// displace retires the tenant's version other than version that has status
// (live or shadow; there is at most one) and returns its change, if any.
func displace(ctx context.Context, tx *sql.Tx, tenant string, version int, status string) ([]store.Change, error) {
	rows, err := tx.QueryContext(ctx, `
		UPDATE models SET status = ? WHERE tenant = ? AND status = ? AND version <> ? RETURNING version`,
		store.ModelRetired, tenant, status, version)
	versions, err := collect(rows, err, func(s scanner) (int, error) {
		var v int
		return v, s.Scan(&v)
	})
	if err != nil {
		return nil, err
	}
	var changes []store.Change
	for _, v := range versions {
		changes = append(changes, modelChange(tenant, v))
	}
	return changes, nil
}

// Model returns one version with its model and report.
func (db *DB) Model(ctx context.Context, tenant string, version int) (store.Model, error) {
	row := db.read.QueryRowContext(ctx, `SELECT `+modelColumns+` FROM models WHERE tenant = ? AND version = ?`, tenant, version)
	m, err := scanModel(row, true)
	return m, fail("model", "model", notFound(err, "model"))
}

// Models returns the tenant's versions, newest first, without model and
// report (Summary set).
func (db *DB) Models(ctx context.Context, tenant string) ([]store.Model, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT tenant, version, status, NULL, NULL, trained_at, created_at, created_by
		FROM models WHERE tenant = ? ORDER BY version DESC`, tenant)
	ms, err := collect(rows, err, func(s scanner) (store.Model, error) { return scanModel(s, false) })
	if ms == nil && err == nil {
		ms = []store.Model{}
	}
	return ms, fail("models", "model", err)
}

// ActiveModels returns the tenant's live and shadow versions, whole.
func (db *DB) ActiveModels(ctx context.Context, tenant string) (live, shadow *store.Model, err error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT `+modelColumns+` FROM models WHERE tenant = ? AND status IN ('live', 'shadow')`, tenant)
	ms, err := collect(rows, err, func(s scanner) (store.Model, error) { return scanModel(s, true) })
	if err != nil {
		return nil, nil, fail("active models", "model", err)
	}
	for i := range ms {
		if ms[i].Status == store.ModelLive {
			live = &ms[i]
		} else {
			shadow = &ms[i]
		}
	}
	return live, shadow, nil
}

const modelColumns = `tenant, version, status, model, report, trained_at, created_at, created_by`

// scanModel scans modelColumns; whole says whether model and report were
// selected (else Summary is set).
func scanModel(s scanner, whole bool) (store.Model, error) {
	var m store.Model
	var trained, created sql.NullInt64
	err := s.Scan(&m.Tenant, &m.Version, &m.Status, &m.Model, &m.Report, &trained, &created, &m.CreatedBy)
	m.TrainedAt, m.CreatedAt = timeOf(trained), timeOf(created)
	if !whole {
		m.Model, m.Report, m.Summary = nil, nil, true
	}
	return m, err
}

func modelChange(tenant string, version int) store.Change {
	return store.Change{Tenant: tenant, Kind: store.ChangeModel, Key: store.ModelChangeKey(version)}
}

// blob is b as a column value: NULL when nil.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}
