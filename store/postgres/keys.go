package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.TenantKeys = (*DB)(nil)

// PutTenantKeys replaces a tenant's wrapped key set if it still equals old.
func (db *DB) PutTenantKeys(ctx context.Context, tenant string, keys, old []byte) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var cur []byte
		err := tx.QueryRow(ctx, `SELECT keys FROM tenants WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, tenant).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			return call.Errorf(call.NotFound, "tenant not found")
		}
		if err != nil {
			return err
		}
		if string(cur) != string(old) {
			return call.Errorf(call.Conflict, "tenant %s: keys changed meanwhile; retry", tenant)
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants SET keys = $1 WHERE id = $2`, keys, tenant); err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangeTenantKeys})
	})
	return fail("put tenant keys", "tenant", err)
}
