package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

var _ store.Users = (*DB)(nil)

// PutUser stores a new console user (see store.Users).
func (db *DB) PutUser(ctx context.Context, u store.User) error {
	if err := store.CheckUser(u); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE id = ? AND deleted_at IS NULL`, u.Tenant).Scan(&one)
		if err != nil {
			return notFound(err, "tenant")
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO users (tenant, id, role, password_hash, created_at, disabled_at, failed_logins, locked_until)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			u.Tenant, u.ID, string(u.Role), u.PasswordHash, nanos(u.CreatedAt), nanos(u.DisabledAt), u.FailedLogins, nanos(u.LockedUntil))
		return err
	})
	return fail("put user", "user", err)
}

// User returns one user.
func (db *DB) User(ctx context.Context, tenant, id string) (store.User, error) {
	row := db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE tenant = ? AND id = ?`, tenant, id)
	u, err := scanUser(row)
	return u, fail("user", "user", notFound(err, "user"))
}

// Users returns the tenant's users ordered by id.
func (db *DB) Users(ctx context.Context, tenant string) ([]store.User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE tenant = ? ORDER BY id`, tenant)
	us, err := collect(rows, err, scanUser)
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
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE users SET role = ?, password_hash = ?, disabled_at = ?, failed_logins = ?, locked_until = ?
			WHERE tenant = ? AND id = ?`,
			string(u.Role), u.PasswordHash, nanos(u.DisabledAt), u.FailedLogins, nanos(u.LockedUntil), u.Tenant, u.ID)
		return mustAffect(res, err, "user")
	})
	return fail("update user", "user", err)
}

const userColumns = `tenant, id, role, password_hash, created_at, disabled_at, failed_logins, locked_until`

func scanUser(s scanner) (store.User, error) {
	var u store.User
	var role string
	var created, disabled, locked sql.NullInt64
	err := s.Scan(&u.Tenant, &u.ID, &role, &u.PasswordHash, &created, &disabled, &u.FailedLogins, &locked)
	u.Role = call.Role(role)
	u.CreatedAt, u.DisabledAt, u.LockedUntil = timeOf(created), timeOf(disabled), timeOf(locked)
	return u, err
}

// PutSession stores a new session of an enabled user (see store.Users).
func (db *DB) PutSession(ctx context.Context, s store.Session) error {
	if err := store.CheckSession(s); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `
			SELECT 1 FROM users u JOIN tenants t ON t.id = u.tenant
			WHERE u.tenant = ? AND u.id = ? AND u.disabled_at IS NULL AND t.deleted_at IS NULL`,
			s.Tenant, s.UserID).Scan(&one)
		if err != nil {
			return notFound(err, "user")
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO sessions (id_hash, tenant, user_id, csrf_secret, created_at, last_seen, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			s.IDHash[:], s.Tenant, s.UserID, s.CSRFSecret[:], nanos(s.CreatedAt), nanos(s.LastSeen), nanos(s.ExpiresAt))
		return err
	})
	return fail("put session", "session", err)
}

// Session returns a session by its token hash, expired or not.
func (db *DB) Session(ctx context.Context, idHash [32]byte) (store.Session, error) {
	row := db.read.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = ?`, idHash[:])
	s, err := scanSession(row)
	return s, fail("session", "session", notFound(err, "session"))
}

// TouchSession moves a live session's LastSeen forward and returns it (see
// store.Users).
func (db *DB) TouchSession(ctx context.Context, idHash [32]byte, lastSeen time.Time) (store.Session, error) {
	if lastSeen.IsZero() {
		return store.Session{}, call.Errorf(call.Invalid, "session: last seen is zero")
	}
	var s store.Session
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		seen := lastSeen.UnixNano()
		row := tx.QueryRowContext(ctx, `
			UPDATE sessions SET last_seen = max(coalesce(last_seen, ?), ?)
			WHERE id_hash = ? AND expires_at > ? AND EXISTS (
				SELECT 1 FROM users u
				WHERE u.tenant = sessions.tenant AND u.id = sessions.user_id AND u.disabled_at IS NULL)
			RETURNING `+sessionColumns,
			seen, seen, idHash[:], seen)
		var err error
		s, err = scanSession(row)
		return notFound(err, "session")
	})
	if err != nil {
		return store.Session{}, fail("touch session", "session", err)
	}
	return s, nil
}

// DeleteSession removes one session.
func (db *DB) DeleteSession(ctx context.Context, idHash [32]byte) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash[:])
		return mustAffect(res, err, "session")
	})
	return fail("delete session", "session", err)
}

// DeleteUserSessions removes every session of one user.
func (db *DB) DeleteUserSessions(ctx context.Context, tenant, userID string) (int64, error) {
	return db.deleteSessions(ctx, "delete user sessions",
		`DELETE FROM sessions WHERE tenant = ? AND user_id = ?`, tenant, userID)
}

// PurgeSessions removes the sessions expired by before.
func (db *DB) PurgeSessions(ctx context.Context, before time.Time) (int64, error) {
	return db.deleteSessions(ctx, "purge sessions", `DELETE FROM sessions WHERE expires_at <= ?`, nanos(before))
}

func (db *DB) deleteSessions(ctx context.Context, op, query string, args ...any) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fail(op, "session", err)
	}
	return n, nil
}

const sessionColumns = `id_hash, tenant, user_id, csrf_secret, created_at, last_seen, expires_at`

func scanSession(sc scanner) (store.Session, error) {
	var s store.Session
	var id, csrf []byte
	var created, seen, expires sql.NullInt64
	err := sc.Scan(&id, &s.Tenant, &s.UserID, &csrf, &created, &seen, &expires)
	copy(s.IDHash[:], id)
	copy(s.CSRFSecret[:], csrf)
	s.CreatedAt, s.LastSeen, s.ExpiresAt = timeOf(created), timeOf(seen), timeOf(expires)
	return s, err
}
