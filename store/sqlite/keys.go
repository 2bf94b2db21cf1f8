package sqlite

import (
	"context"
	"database/sql"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.TenantKeys = (*DB)(nil)

// PutTenantKeys replaces a tenant's wrapped key set if it still equals old.
func (db *DB) PutTenantKeys(ctx context.Context, tenant string, keys, old []byte) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var cur []byte
		err := tx.QueryRowContext(ctx, `SELECT keys FROM tenants WHERE id = ? AND deleted_at IS NULL`, tenant).Scan(&cur)
		if err != nil {
			return notFound(err, "tenant")
		}
		if string(cur) != string(old) {
			return call.Errorf(call.Conflict, "tenant %s: keys changed meanwhile; retry", tenant)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tenants SET keys = ? WHERE id = ?`, keys, tenant); err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangeTenantKeys})
	})
	return fail("put tenant keys", "tenant", err)
}
