package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Models = (*DB)(nil)

// PutModel stores a new shadow model version, retiring the previous shadow
// (see store.Models). It locks the tenant's row (FOR NO KEY UPDATE, which
// foreign-key checks of other writes do not wait for), so the tenant's model
// writes queue across nodes: reading the highest version and inserting the
// next cannot interleave, nor can two writers both displace one shadow.
func (db *DB) PutModel(ctx context.Context, m store.Model) error {
	if err := store.CheckModel(m); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE`, m.Tenant).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return call.Errorf(call.NotFound, "tenant not found")
		}
		if err != nil {
			return err
		}
		var top int
		err = tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM models WHERE tenant = $1`, m.Tenant).Scan(&top)
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
		_, err = tx.Exec(ctx, `
			INSERT INTO models (tenant, version, status, model, report, trained_at, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			m.Tenant, m.Version, store.ModelShadow, m.Model, m.Report, ts(m.TrainedAt), ts(m.CreatedAt), m.CreatedBy)
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, append(changes, modelChange(m.Tenant, m.Version))...)
	})
	return fail("put model", "model", err)
}

// SetModelStatus sets a version's status, retiring the version it displaces
// (see store.Models). Like PutModel it first locks the tenant's row, so two
// concurrent promotions run one after the other and both succeed, the later
// one retiring the earlier.
func (db *DB) SetModelStatus(ctx context.Context, tenant string, version int, status string) error {
	if err := store.CheckModelStatus(status); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		// The lock first, in a statement of its own: the next statement's
		// snapshot then sees what a writer we waited for committed.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE`, tenant).Scan(&one)
		var cur string
		if err == nil {
			err = tx.QueryRow(ctx, `SELECT status FROM models WHERE tenant = $1 AND version = $2`, tenant, version).Scan(&cur)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return call.Errorf(call.NotFound, "model not found")
		}
		if err != nil {
			return err
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
		_, err = tx.Exec(ctx, `UPDATE models SET status = $1 WHERE tenant = $2 AND version = $3`, status, tenant, version)
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, append(changes, modelChange(tenant, version))...)
	})
	return fail("set model status", "model", err)
}

// displace retires the tenant's version other than version that has status
// (live or shadow; there is at most one) and returns its change, if any.
func displace(ctx context.Context, tx pgx.Tx, tenant string, version int, status string) ([]store.Change, error) {
	rows, err := tx.Query(ctx, `
		UPDATE models SET status = $1 WHERE tenant = $2 AND status = $3 AND version <> $4 RETURNING version`,
		store.ModelRetired, tenant, status, version)
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
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
	row := db.pool.QueryRow(ctx, `SELECT `+modelColumns+` FROM models WHERE tenant = $1 AND version = $2`, tenant, version)
	m, err := scanModel(row, true)
	return m, fail("model", "model", err)
}

// Models returns the tenant's versions, newest first, without model and
// report (Summary set).
func (db *DB) Models(ctx context.Context, tenant string) ([]store.Model, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT tenant, version, status, NULL::bytea, NULL::bytea, trained_at, created_at, created_by
		FROM models WHERE tenant = $1 ORDER BY version DESC`, tenant)
	if err != nil {
		return nil, fail("models", "model", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Model, error) { return scanModel(r, false) })
	if ms == nil && err == nil {
		ms = []store.Model{}
	}
	return ms, fail("models", "model", err)
}

// ActiveModels returns the tenant's live and shadow versions, whole.
func (db *DB) ActiveModels(ctx context.Context, tenant string) (live, shadow *store.Model, err error) {
	rows, err := db.pool.Query(ctx, `
		SELECT `+modelColumns+` FROM models WHERE tenant = $1 AND status IN ('live', 'shadow')`, tenant)
	if err != nil {
		return nil, nil, fail("active models", "model", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Model, error) { return scanModel(r, true) })
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
func scanModel(r pgx.Row, whole bool) (store.Model, error) {
	var m store.Model
	var trained, created *time.Time
	err := r.Scan(&m.Tenant, &m.Version, &m.Status, &m.Model, &m.Report, &trained, &created, &m.CreatedBy)
	m.TrainedAt, m.CreatedAt = timeOf(trained), timeOf(created)
	if !whole {
		m.Model, m.Report, m.Summary = nil, nil, true
	}
	return m, err
}

func modelChange(tenant string, version int) store.Change {
	return store.Change{Tenant: tenant, Kind: store.ChangeModel, Key: store.ModelChangeKey(version)}
}
