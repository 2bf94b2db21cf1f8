package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// CreateTenant stores a new tenant; Conflict if the id exists.
func (db *DB) CreateTenant(ctx context.Context, t store.Tenant) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			`INSERT INTO tenants (id, name, region, keys, created_at) VALUES ($1, $2, $3, $4, $5)`,
			t.ID, t.Name, t.Region, t.Keys, ts(t.CreatedAt))
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
	var created, deleted *time.Time
	err := db.pool.QueryRow(ctx, `SELECT name, region, keys, created_at, deleted_at FROM tenants WHERE id = $1`, id).
		Scan(&t.Name, &t.Region, &t.Keys, &created, &deleted)
	t.CreatedAt, t.DeletedAt = timeOf(created), timeOf(deleted)
	return t, fail("tenant", "tenant", err)
}

// Tenants returns every tenant ordered by id.
func (db *DB) Tenants(ctx context.Context) ([]store.Tenant, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, name, region, keys, created_at, deleted_at FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fail("tenants", "tenant", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Tenant, error) {
		var t store.Tenant
		var created, deleted *time.Time
		err := r.Scan(&t.ID, &t.Name, &t.Region, &t.Keys, &created, &deleted)
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
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			`INSERT INTO api_keys (hash, tenant, name, role, created_at) VALUES ($1, $2, $3, $4, $5)`,
			k.Hash[:], k.Tenant, k.Name, role, ts(k.CreatedAt))
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: k.Tenant, Kind: store.ChangeAPIKey, Key: k.Hash[:]})
	})
	return fail("add api key", "api key", err)
}

// APIKeys returns the tenant's API keys ordered by hash.
func (db *DB) APIKeys(ctx context.Context, tenant string) ([]store.APIKey, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT hash, tenant, name, role, created_at FROM api_keys WHERE tenant = $1 ORDER BY hash`, tenant)
	if err != nil {
		return nil, fail("api keys", "api key", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.APIKey, error) {
		var k store.APIKey
		var hash []byte
		var created *time.Time
		err := r.Scan(&hash, &k.Tenant, &k.Name, &k.Role, &created)
		copy(k.Hash[:], hash)
		k.CreatedAt = timeOf(created)
		return k, err
	})
	return ks, fail("api keys", "api key", err)
}

// TenantByAPIKey returns the tenant id owning the key hash; NotFound if none.
func (db *DB) TenantByAPIKey(ctx context.Context, hash [32]byte) (string, error) {
	var tenant string
	err := db.pool.QueryRow(ctx, `SELECT tenant FROM api_keys WHERE hash = $1`, hash[:]).Scan(&tenant)
	return tenant, fail("tenant by api key", "api key", err)
}

// PutRoute inserts or replaces a route.
func (db *DB) PutRoute(ctx context.Context, tenant string, r call.Route) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO routes (tenant, id, kind, country, fail_open) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant, id) DO UPDATE SET
				kind = excluded.kind, country = excluded.country, fail_open = excluded.fail_open`,
			tenant, r.ID, string(r.Kind), r.Country, r.FailOpen)
		if err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangeRoutePut, Key: []byte(r.ID)})
	})
	return fail("put route", "route", err)
}

// DeleteRoute removes a route; NotFound if absent.
func (db *DB) DeleteRoute(ctx context.Context, tenant, id string) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM routes WHERE tenant = $1 AND id = $2`, tenant, id)
		if err := mustAffect(tag, err, "route"); err != nil {
			return err
		}
		return db.appendChanges(ctx, tx, store.Change{Tenant: tenant, Kind: store.ChangeRouteDelete, Key: []byte(id)})
	})
	return fail("delete route", "route", err)
}

// Route returns one route; NotFound if absent.
func (db *DB) Route(ctx context.Context, tenant, id string) (call.Route, error) {
	r := call.Route{ID: id}
	err := db.pool.QueryRow(ctx,
		`SELECT kind, country, fail_open FROM routes WHERE tenant = $1 AND id = $2`, tenant, id).
		Scan(&r.Kind, &r.Country, &r.FailOpen)
	if err != nil {
		return call.Route{}, fail("route", "route", err)
	}
	return r, nil
}

// Routes returns the tenant's routes ordered by id.
func (db *DB) Routes(ctx context.Context, tenant string) ([]call.Route, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT id, kind, country, fail_open FROM routes WHERE tenant = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fail("routes", "route", err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (call.Route, error) {
		var rt call.Route
		err := r.Scan(&rt.ID, &rt.Kind, &rt.Country, &rt.FailOpen)
		return rt, err
	})
	return rs, fail("routes", "route", err)
}

// PutPolicy stores the tenant's policy if p.Version is exactly one more than
// the stored version (or the tenant has none); Conflict otherwise, NotFound
// if the tenant does not exist.
func (db *DB) PutPolicy(ctx context.Context, tenant string, p call.Policy) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fail("put policy", "policy", err)
	}
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO policies (tenant, version, policy) VALUES ($1, $2, $3)
			ON CONFLICT (tenant) DO UPDATE SET version = excluded.version, policy = excluded.policy
			WHERE policies.version = excluded.version - 1`,
			tenant, p.Version, string(body))
		if err == nil && tag.RowsAffected() == 0 {
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
	var body []byte
	err := db.pool.QueryRow(ctx, `SELECT policy FROM policies WHERE tenant = $1`, tenant).Scan(&body)
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	return p, fail("policy", "policy", err)
}
