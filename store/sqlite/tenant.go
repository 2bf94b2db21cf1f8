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
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO tenants (id, name, region, keys, created_at) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Region, t.Keys, nanos(t.CreatedAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: t.ID, Kind: store.ChangeTenant})
	})
	return fail("create tenant", "tenant", err)
}

// Tenant returns one tenant; NotFound if absent.
func (db *DB) Tenant(ctx context.Context, id string) (store.Tenant, error) {
	t := store.Tenant{ID: id}
	var created, deleted sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT name, region, keys, created_at, deleted_at FROM tenants WHERE id = ?`, id).
		Scan(&t.Name, &t.Region, &t.Keys, &created, &deleted)
	t.CreatedAt, t.DeletedAt = timeOf(created), timeOf(deleted)
	return t, fail("tenant", "tenant", notFound(err, "tenant"))
}

// Tenants returns every tenant ordered by id.
func (db *DB) Tenants(ctx context.Context) ([]store.Tenant, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, name, region, keys, created_at, deleted_at FROM tenants ORDER BY id`)
	ts, err := collect(rows, err, func(s scanner) (store.Tenant, error) {
		var t store.Tenant
		var created, deleted sql.NullInt64
		err := s.Scan(&t.ID, &t.Name, &t.Region, &t.Keys, &created, &deleted)
		t.CreatedAt, t.DeletedAt = timeOf(created), timeOf(deleted)
		return t, err
	})
	return ts, fail("tenants", "tenant", err)
}

// AddAPIKey stores the hash of a tenant's API key and its role; Conflict if
// the hash is stored already, NotFound if the tenant is not, Invalid if the
// role is neither "" nor a call.Role.
func (db *DB) AddAPIKey(ctx context.Context, k store.APIKey) error {
	role, err := store.KeyRole(k.Role)
	if err != nil {
		return err
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO api_keys (hash, tenant, name, role, created_at) VALUES (?, ?, ?, ?, ?)`,
			k.Hash[:], k.Tenant, k.Name, role, nanos(k.CreatedAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: k.Tenant, Kind: store.ChangeAPIKey, Key: k.Hash[:]})
	})
	return fail("add api key", "api key", err)
}

// APIKeys returns the tenant's API keys ordered by hash.
func (db *DB) APIKeys(ctx context.Context, tenant string) ([]store.APIKey, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT hash, tenant, name, role, created_at FROM api_keys WHERE tenant = ? ORDER BY hash`, tenant)
	ks, err := collect(rows, err, func(s scanner) (store.APIKey, error) {
		var k store.APIKey
		var hash []byte
		var created sql.NullInt64
		err := s.Scan(&hash, &k.Tenant, &k.Name, &k.Role, &created)
		copy(k.Hash[:], hash)
		k.CreatedAt = timeOf(created)
		return k, err
	})
	return ks, fail("api keys", "api key", err)
}

// TenantByAPIKey returns the tenant id owning the key hash; NotFound if none.
func (db *DB) TenantByAPIKey(ctx context.Context, hash [32]byte) (string, error) {
	var tenant string
	err := db.read.QueryRowContext(ctx, `SELECT tenant FROM api_keys WHERE hash = ?`, hash[:]).Scan(&tenant)
	return tenant, fail("tenant by api key", "api key", notFound(err, "api key"))
}

// PutRoute inserts or replaces a route.
func (db *DB) PutRoute(ctx context.Context, tenant string, r call.Route) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO routes (tenant, id, kind, country, fail_open) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant, id) DO UPDATE SET
				kind = excluded.kind, country = excluded.country, fail_open = excluded.fail_open`,
			tenant, r.ID, r.Kind, r.Country, r.FailOpen)
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangeRoutePut, Key: []byte(r.ID)})
	})
	return fail("put route", "route", err)
}

// DeleteRoute removes a route; NotFound if absent.
func (db *DB) DeleteRoute(ctx context.Context, tenant, id string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM routes WHERE tenant = ? AND id = ?`, tenant, id)
		if err := mustAffect(res, err, "route"); err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangeRouteDelete, Key: []byte(id)})
	})
	return fail("delete route", "route", err)
}

// Route returns one route; NotFound if absent.
func (db *DB) Route(ctx context.Context, tenant, id string) (call.Route, error) {
	r := call.Route{ID: id}
	err := db.read.QueryRowContext(ctx,
		`SELECT kind, country, fail_open FROM routes WHERE tenant = ? AND id = ?`, tenant, id).
		Scan(&r.Kind, &r.Country, &r.FailOpen)
	if err != nil {
		return call.Route{}, fail("route", "route", notFound(err, "route"))
	}
	return r, nil
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
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO policies (tenant, version, policy) VALUES (?, ?, ?)
			ON CONFLICT (tenant) DO UPDATE SET version = excluded.version, policy = excluded.policy
			WHERE policies.version = excluded.version - 1`,
			tenant, p.Version, string(body))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = call.Errorf(call.Conflict, "policy version must be one more than the stored version")
		}
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangePolicy})
	})
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
