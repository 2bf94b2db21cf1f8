package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Users = (*DB)(nil)

// PutUser stores a new console user (see store.Users). It holds a share
// lock on the tenant's row, so an offboarding (DeleteTenantData) running at
// the same time either waits and then deletes the new user, or goes first
// and makes this NotFound.
func (db *DB) PutUser(ctx context.Context, u store.User) error {
	if err := store.CheckUser(u); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL FOR SHARE`, u.Tenant).Scan(&one)
		if err != nil {
			return fail("put user", "tenant", err)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO users (tenant, id, role, password_hash, created_at, disabled_at, failed_logins, locked_until)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			u.Tenant, u.ID, string(u.Role), u.PasswordHash, ts(u.CreatedAt), ts(u.DisabledAt), u.FailedLogins, ts(u.LockedUntil))
		return err
	})
	return fail("put user", "user", err)
}

// User returns one user.
func (db *DB) User(ctx context.Context, tenant, id string) (store.User, error) {
	row := db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE tenant = $1 AND id = $2`, tenant, id)
	u, err := scanUser(row)
	return u, fail("user", "user", err)
}

// Users returns the tenant's users ordered by id.
func (db *DB) Users(ctx context.Context, tenant string) ([]store.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE tenant = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fail("users", "user", err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if us == nil && err == nil {
		us = []store.User{}
	}
	return us, fail("users", "user", err)
}

// UpdateUser overwrites a user's mutable fields (see store.Users).
func (db *DB) UpdateUser(ctx context.Context, u store.User) error {
	if err := store.CheckUser(u); err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `
		UPDATE users SET role = $1, password_hash = $2, disabled_at = $3, failed_logins = $4, locked_until = $5
		WHERE tenant = $6 AND id = $7`,
		string(u.Role), u.PasswordHash, ts(u.DisabledAt), u.FailedLogins, ts(u.LockedUntil), u.Tenant, u.ID)
	return fail("update user", "user", mustAffect(tag, err, "user"))
}

const userColumns = `tenant, id, role, password_hash, created_at, disabled_at, failed_logins, locked_until`

func scanUser(r pgx.Row) (store.User, error) {
	var u store.User
	var role string
	var created, disabled, locked *time.Time
	err := r.Scan(&u.Tenant, &u.ID, &role, &u.PasswordHash, &created, &disabled, &u.FailedLogins, &locked)
	u.Role = call.Role(role)
	u.CreatedAt, u.DisabledAt, u.LockedUntil = timeOf(created), timeOf(disabled), timeOf(locked)
	return u, err
}

// PutSession stores a new session of an enabled user (see store.Users). It
// holds a share lock on the user's row, so disabling the user at the same
// time (UpdateUser, then DeleteUserSessions) either waits for this session
// and then deletes it, or goes first and makes this NotFound.
func (db *DB) PutSession(ctx context.Context, s store.Session) error {
	if err := store.CheckSession(s); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `
			SELECT 1 FROM users u JOIN tenants t ON t.id = u.tenant
			WHERE u.tenant = $1 AND u.id = $2 AND u.disabled_at IS NULL AND t.deleted_at IS NULL
			FOR SHARE OF u`,
			s.Tenant, s.UserID).Scan(&one)
		if err != nil {
			return fail("put session", "user", err)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO sessions (id_hash, tenant, user_id, csrf_secret, created_at, last_seen, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			s.IDHash[:], s.Tenant, s.UserID, s.CSRFSecret[:], ts(s.CreatedAt), ts(s.LastSeen), ts(s.ExpiresAt))
		return err
	})
	return fail("put session", "session", err)
}

// Session returns a session by its token hash, expired or not.
func (db *DB) Session(ctx context.Context, idHash [32]byte) (store.Session, error) {
	row := db.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = $1`, idHash[:])
	s, err := scanSession(row)
	return s, fail("session", "session", err)
}

// TouchSession moves a live session's LastSeen forward and returns it (see
// store.Users).
func (db *DB) TouchSession(ctx context.Context, idHash [32]byte, lastSeen time.Time) (store.Session, error) {
	if lastSeen.IsZero() {
		return store.Session{}, call.Errorf(call.Invalid, "session: last seen is zero")
	}
	row := db.pool.QueryRow(ctx, `
		UPDATE sessions SET last_seen = greatest(last_seen, $1)
		WHERE id_hash = $2 AND expires_at > $1 AND EXISTS (
			SELECT 1 FROM users u
			WHERE u.tenant = sessions.tenant AND u.id = sessions.user_id AND u.disabled_at IS NULL)
		RETURNING `+sessionColumns,
		lastSeen, idHash[:])
	s, err := scanSession(row)
	if err != nil {
		return store.Session{}, fail("touch session", "session", err)
	}
	return s, nil
}

// DeleteSession removes one session.
func (db *DB) DeleteSession(ctx context.Context, idHash [32]byte) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash[:])
	return fail("delete session", "session", mustAffect(tag, err, "session"))
}

// DeleteUserSessions removes every session of one user.
func (db *DB) DeleteUserSessions(ctx context.Context, tenant, userID string) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE tenant = $1 AND user_id = $2`, tenant, userID)
	if err != nil {
		return 0, fail("delete user sessions", "session", err)
	}
	return tag.RowsAffected(), nil
}

// PurgeSessions removes the sessions expired by before.
func (db *DB) PurgeSessions(ctx context.Context, before time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, ts(before))
	if err != nil {
		return 0, fail("purge sessions", "session", err)
	}
	return tag.RowsAffected(), nil
}

const sessionColumns = `id_hash, tenant, user_id, csrf_secret, created_at, last_seen, expires_at`

func scanSession(r pgx.Row) (store.Session, error) {
	var s store.Session
	var id, csrf []byte
	var created, seen, expires *time.Time
	err := r.Scan(&id, &s.Tenant, &s.UserID, &csrf, &created, &seen, &expires)
	copy(s.IDHash[:], id)
	copy(s.CSRFSecret[:], csrf)
	s.CreatedAt, s.LastSeen, s.ExpiresAt = timeOf(created), timeOf(seen), timeOf(expires)
	return s, err
}
