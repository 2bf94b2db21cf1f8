package store

import (
	"context"
	"time"

	"github.com/ringfence/ringfence/call"
)

// Users is the storage of the web console's users and their sessions.
//
// Users are the tenant's staff, named by login id (not callers' personal
// data; nothing is sealed). The console hashes passwords itself (argon2id)
// and the store keeps the encoded hash as opaque bytes.
//
// Sessions live in the store, not in a node's memory, so every node of a
// cluster accepts a session any node issued. A session is keyed by the
// SHA-256 of its random token: the token itself is never stored, so a copy
// of the database opens no session.
//
// Neither users nor sessions are in the change feed: nodes read them from
// the store when they need them, and no write here appends a Change.
// Privacy.DeleteTenantData deletes a tenant's users and sessions.
type Users interface {
	// PutUser stores a new user. Invalid if CheckUser rejects u; Conflict
	// if the tenant has a user with u.ID; NotFound if the tenant is absent
	// or offboarded.
	PutUser(ctx context.Context, u User) error
	// User returns one user; NotFound if absent.
	User(ctx context.Context, tenant, id string) (User, error)
	// Users returns the tenant's users ordered by id (empty, not an error,
	// for an unknown tenant).
	Users(ctx context.Context, tenant string) ([]User, error)
	// UpdateUser sets the role, password hash, DisabledAt, FailedLogins and
	// LockedUntil of the stored user u.Tenant/u.ID (CreatedAt is kept).
	// Invalid if CheckUser rejects u; NotFound if the user is absent. It
	// does not end the user's sessions: call DeleteUserSessions after a
	// password change or when disabling.
	//
	// It is a plain overwrite: two nodes counting failed logins of one user
	// at once may lose one count.
	UpdateUser(ctx context.Context, u User) error

	// PutSession stores a new session. Invalid if CheckSession rejects s;
	// Conflict if s.IDHash is stored already; NotFound if the tenant has no
	// user s.UserID or that user is disabled.
	PutSession(ctx context.Context, s Session) error
	// Session returns the session with the token hash, expired or not
	// (callers compare ExpiresAt with their clock, or use TouchSession);
	// NotFound if absent.
	Session(ctx context.Context, idHash [32]byte) (Session, error)
	// TouchSession is the check a request makes: it sets the session's
	// LastSeen to lastSeen (never moving it back) and returns the session
	// as stored afterwards. NotFound if the session is absent, expired
	// (ExpiresAt not after lastSeen) or its user is disabled or absent.
	TouchSession(ctx context.Context, idHash [32]byte, lastSeen time.Time) (Session, error)
	// DeleteSession removes one session (logout); NotFound if absent.
	DeleteSession(ctx context.Context, idHash [32]byte) error
	// DeleteUserSessions removes every session of one user and returns how
	// many it removed (0 for an unknown user, not an error).
	DeleteUserSessions(ctx context.Context, tenant, userID string) (int64, error)
	// PurgeSessions removes every session, of every tenant, whose ExpiresAt
	// is not after before, and returns how many it removed.
	PurgeSessions(ctx context.Context, before time.Time) (int64, error)
}

// User is a console user of a tenant.
type User struct {
	Tenant       string
	ID           string    // login name: 1 to 64 of a-z 0-9 . _ -
	Role         call.Role // any role but call.Integration, which is for machines
	PasswordHash []byte    // encoded password hash (opaque to the store); not empty
	CreatedAt    time.Time
	DisabledAt   time.Time // zero unless disabled
	FailedLogins int       // consecutive failed logins; 0 or more
	LockedUntil  time.Time // zero unless locked out
}

// Session is a console login session.
type Session struct {
	IDHash     [32]byte // SHA-256 of the session token (the token is never stored)
	Tenant     string
	UserID     string
	CSRFSecret [32]byte // random secret the console derives its forms' CSRF tokens from
	CreatedAt  time.Time
	LastSeen   time.Time
	ExpiresAt  time.Time // absolute end of the session; not zero
}

// MaxUserID is the longest user id.
const MaxUserID = 64

// CheckUserID returns an Invalid error unless id is 1 to MaxUserID
// characters, each a lowercase ASCII letter, a digit, '.', '_' or '-'.
func CheckUserID(id string) error {
	if len(id) == 0 || len(id) > MaxUserID {
		return call.Errorf(call.Invalid, "user: id must be 1 to %d characters", MaxUserID)
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return call.Errorf(call.Invalid, "user: id may hold only a-z, 0-9, '.', '_' and '-'")
		}
	}
	return nil
}

// CheckUser returns an Invalid error if u breaks PutUser's rules on its own
// (tenant, id, role, password hash, failed logins). Backends call it first.
func CheckUser(u User) error {
	if u.Tenant == "" {
		return call.Errorf(call.Invalid, "user: tenant is empty")
	}
	if err := CheckUserID(u.ID); err != nil {
		return err
	}
	if r, err := call.ParseRole(string(u.Role)); err != nil || r == call.Integration {
		return call.Errorf(call.Invalid, "user: role must be admin, analyst, auditor, privacy_officer or compliance_officer")
	}
	if len(u.PasswordHash) == 0 {
		return call.Errorf(call.Invalid, "user: password hash is empty")
	}
	if u.FailedLogins < 0 {
		return call.Errorf(call.Invalid, "user: failed logins must be 0 or more")
	}
	return nil
}

// CheckSession returns an Invalid error if s breaks PutSession's rules on
// its own (tenant, user id, a zero id hash, no expiry). Backends call it
// first.
func CheckSession(s Session) error {
	switch {
	case s.Tenant == "":
		return call.Errorf(call.Invalid, "session: tenant is empty")
	case s.IDHash == [32]byte{}:
		return call.Errorf(call.Invalid, "session: id hash is zero")
	case s.ExpiresAt.IsZero():
		return call.Errorf(call.Invalid, "session: expiry is zero")
	}
	return CheckUserID(s.UserID)
}
