package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// CreateTenant stores a new tenant; Conflict if the id exists.
func (db *DB) CreateTenant(ctx context.Context, t store.Tenant) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO tenants (id, name, region, keys, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Region, t.Keys, nanos(t.CreatedAt))
	return fail("create tenant", "tenant", err)
}

// Tenants returns every tenant ordered by id.
func (db *DB) Tenants(ctx context.Context) ([]store.Tenant, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, name, region, keys, created_at FROM tenants ORDER BY id`)
	ts, err := collect(rows, err, func(s scanner) (store.Tenant, error) {
		var t store.Tenant
		var created sql.NullInt64
		err := s.Scan(&t.ID, &t.Name, &t.Region, &t.Keys, &created)
		t.CreatedAt = timeOf(created)
		return t, err
	})
	return ts, fail("tenants", "tenant", err)
}

// AddAPIKey stores the hash of a tenant's API key; Conflict if the hash is
// stored already, NotFound if the tenant is not.
func (db *DB) AddAPIKey(ctx context.Context, k store.APIKey) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO api_keys (hash, tenant, name, created_at) VALUES (?, ?, ?, ?)`,
		k.Hash[:], k.Tenant, k.Name, nanos(k.CreatedAt))
	return fail("add api key", "api key", err)
}

// TenantByAPIKey returns the tenant id owning the key hash; NotFound if none.
func (db *DB) TenantByAPIKey(ctx context.Context, hash [32]byte) (string, error) {
	var tenant string
	err := db.read.QueryRowContext(ctx, `SELECT tenant FROM api_keys WHERE hash = ?`, hash[:]).Scan(&tenant)
	return tenant, fail("tenant by api key", "api key", notFound(err, "api key"))
}

// PutRoute inserts or replaces a route.
func (db *DB) PutRoute(ctx context.Context, tenant string, r call.Route) error {
	_, err := db.write.ExecContext(ctx, `
		INSERT INTO routes (tenant, id, kind, country, fail_open) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant, id) DO UPDATE SET
			kind = excluded.kind, country = excluded.country, fail_open = excluded.fail_open`,
		tenant, r.ID, r.Kind, r.Country, r.FailOpen)
	return fail("put route", "route", err)
}

// DeleteRoute removes a route; NotFound if absent.
func (db *DB) DeleteRoute(ctx context.Context, tenant, id string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM routes WHERE tenant = ? AND id = ?`, tenant, id)
	return fail("delete route", "route", mustAffect(res, err, "route"))
}

// Routes returns the tenant's routes ordered by id.
func (db *DB) Routes(ctx context.Context, tenant string) ([]call.Route, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, kind, country, fail_open FROM routes WHERE tenant = ? ORDER BY id`, tenant)
	rs, err := collect(rows, err, func(s scanner) (call.Route, error) {
		var r call.Route
		err := s.Scan(&r.ID, &r.Kind, &r.Country, &r.FailOpen)
		return r, err
	})
	return rs, fail("routes", "route", err)
}

// PutPolicy stores the tenant's policy if p.Version is exactly one more than
// the stored version (or the tenant has none); Conflict otherwise.
func (db *DB) PutPolicy(ctx context.Context, tenant string, p call.Policy) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fail("put policy", "policy", err)
	}
	res, err := db.write.ExecContext(ctx, `
		INSERT INTO policies (tenant, version, policy) VALUES (?, ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET version = excluded.version, policy = excluded.policy
		WHERE policies.version = excluded.version - 1`,
		tenant, p.Version, string(body))
	if err != nil {
		return fail("put policy", "policy", err)
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = call.Errorf(call.Conflict, "policy version must be one more than the stored version")
	}
	return fail("put policy", "policy", err)
}

// Policy returns the tenant's current policy; NotFound if none stored.
func (db *DB) Policy(ctx context.Context, tenant string) (call.Policy, error) {
	var p call.Policy
	var body string
	err := db.read.QueryRowContext(ctx, `SELECT policy FROM policies WHERE tenant = ?`, tenant).Scan(&body)
	if err == nil {
		err = json.Unmarshal([]byte(body), &p)
	}
	return p, fail("policy", "policy", notFound(err, "policy"))
}
