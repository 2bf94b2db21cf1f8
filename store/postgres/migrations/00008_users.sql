-- Console users and their sessions: the same tables and meaning as
-- store/sqlite's 00008_users.sql. A session is keyed by the SHA-256 of its
-- token, which is never stored; deleting a user deletes its sessions.

-- +goose Up
CREATE TABLE users (
	tenant        text COLLATE "C" NOT NULL REFERENCES tenants (id),
	id            text COLLATE "C" NOT NULL,
	role          text NOT NULL,
	password_hash bytea NOT NULL,
	created_at    timestamptz,
	disabled_at   timestamptz,
	failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
	locked_until  timestamptz,
	PRIMARY KEY (tenant, id)
);

CREATE TABLE sessions (
	id_hash     bytea PRIMARY KEY CHECK (length(id_hash) = 32),
	tenant      text COLLATE "C" NOT NULL,
	user_id     text COLLATE "C" NOT NULL,
	csrf_secret bytea NOT NULL CHECK (length(csrf_secret) = 32),
	created_at  timestamptz,
	last_seen   timestamptz,
	expires_at  timestamptz NOT NULL,
	FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, id) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (tenant, user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
DROP TABLE users;
