-- Console users and their sessions (see store.Users). A user is named by
-- its login id within its tenant; password_hash is the console's encoded
-- hash, opaque here. A session is keyed by the SHA-256 of its token, which
-- is never stored; deleting a user deletes its sessions.
-- Times are INTEGER unix nanoseconds UTC, NULL for the zero time.

-- +goose Up
CREATE TABLE users (
	tenant        TEXT NOT NULL REFERENCES tenants (id),
	id            TEXT NOT NULL,
	role          TEXT NOT NULL,
	password_hash BLOB NOT NULL,
	created_at    INTEGER,
	disabled_at   INTEGER,
	failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
	locked_until  INTEGER,
	PRIMARY KEY (tenant, id)
) STRICT;

CREATE TABLE sessions (
	id_hash     BLOB PRIMARY KEY CHECK (length(id_hash) = 32),
	tenant      TEXT NOT NULL,
	user_id     TEXT NOT NULL,
	csrf_secret BLOB NOT NULL CHECK (length(csrf_secret) = 32),
	created_at  INTEGER,
	last_seen   INTEGER,
	expires_at  INTEGER NOT NULL,
	FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX sessions_user ON sessions (tenant, user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
DROP TABLE users;
