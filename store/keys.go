package store

import "context"

// TenantKeys is the storage side of key rotation.
type TenantKeys interface {
	// PutTenantKeys replaces a tenant's wrapped key set (after a rotation,
	// a retirement or a format upgrade) if it still equals old (compare and
	// swap: Conflict if another writer changed it first), and appends a
	// ChangeTenantKeys in the same transaction so every node reopens the
	// tenant's keys. NotFound if the tenant is absent or offboarded.
	PutTenantKeys(ctx context.Context, tenant string, keys, old []byte) error
}

// ChangeTenantKeys announces PutTenantKeys; Key nil. Read the keys back
// with Tenant.
const ChangeTenantKeys ChangeKind = "tenant_keys"
