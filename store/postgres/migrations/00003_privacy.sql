-- Privacy operations (see store.Privacy), as in store/sqlite's third
-- migration: subject flags, rights cases, legal holds, consent history,
-- retention settings; API key roles; offboarded tenants; the change log's
-- prune mark; and the indexes that find a data subject's call records
-- without scanning the tenant's (on calls, made on every partition).

-- +goose Up
ALTER TABLE api_keys ADD COLUMN role text NOT NULL DEFAULT 'admin';
ALTER TABLE tenants ADD COLUMN deleted_at timestamptz;

CREATE INDEX calls_tenant_caller ON calls (tenant, caller_pseudonym);
CREATE INDEX calls_tenant_user ON calls (tenant, user_pseudonym);
CREATE INDEX links_tenant_user ON links (tenant, user_pseudonym);

CREATE TABLE subject_flags (
	tenant     text COLLATE "C" NOT NULL REFERENCES tenants (id),
	pseudonym  bytea NOT NULL,
	restricted boolean NOT NULL,
	objected   boolean NOT NULL,
	updated_at timestamptz,
	PRIMARY KEY (tenant, pseudonym)
);

CREATE TABLE cases (
	tenant            text COLLATE "C" NOT NULL REFERENCES tenants (id),
	id                text COLLATE "C" NOT NULL,
	type              text NOT NULL,
	status            text NOT NULL,
	subject_pseudonym bytea,
	user_pseudonym    bytea,
	sealed            bytea,
	data              bytea, -- JSON, kept byte for byte
	received_at       timestamptz,
	due_at            timestamptz,
	closed_at         timestamptz,
	version           integer NOT NULL,
	PRIMARY KEY (tenant, id)
);

CREATE TABLE holds (
	tenant            text COLLATE "C" NOT NULL REFERENCES tenants (id),
	id                text COLLATE "C" NOT NULL,
	scope             text NOT NULL,
	subject_pseudonym bytea,
	case_id           text NOT NULL,
	reason            text NOT NULL,
	placed_by         text NOT NULL,
	placed_at         timestamptz,
	lifted_by         text NOT NULL DEFAULT '',
	lifted_at         timestamptz,
	PRIMARY KEY (tenant, id)
);

CREATE TABLE consents (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant    text COLLATE "C" NOT NULL REFERENCES tenants (id),
	pseudonym bytea NOT NULL,
	purpose   text NOT NULL,
	given     boolean NOT NULL,
	at        timestamptz,
	source    text NOT NULL
);
CREATE INDEX consents_subject ON consents (tenant, pseudonym, at, id);

CREATE TABLE retention (
	tenant   text COLLATE "C" PRIMARY KEY REFERENCES tenants (id),
	settings bytea NOT NULL -- JSON, opaque to the store, kept byte for byte
);

-- One row: the highest seq PurgeChanges ever deleted.
CREATE TABLE changes_pruned (
	one     integer PRIMARY KEY CHECK (one = 1),
	through bigint NOT NULL
);

CREATE INDEX changes_at ON changes (at);
CREATE INDEX changes_tenant ON changes (tenant, seq);

-- +goose Down
DROP INDEX changes_tenant;
DROP INDEX changes_at;
DROP TABLE changes_pruned;
DROP TABLE retention;
DROP TABLE consents;
DROP TABLE holds;
DROP TABLE cases;
DROP TABLE subject_flags;
DROP INDEX links_tenant_user;
DROP INDEX calls_tenant_user;
DROP INDEX calls_tenant_caller;
ALTER TABLE tenants DROP COLUMN deleted_at;
ALTER TABLE api_keys DROP COLUMN role;
