-- The compliance archive's metadata (see store.Archive): the same tables and
-- meaning as store/sqlite's 00007_archive.sql, with timestamptz for times.
-- Nothing personal is in the clear: names, numbers and texts are only in
-- the sealed columns (sealed by the node, stored byte for byte and indexed
-- nowhere); numbers are looked up by keyed pseudonym and texts by keyed
-- word tokens (store.ArchiveTokens), each in a table of its own. Only
-- tenants is referenced.

-- +goose Up
CREATE TABLE archive_users (
	tenant        text COLLATE "C" NOT NULL REFERENCES tenants (id),
	id            text COLLATE "C" NOT NULL,
	sealed        bytea,
	offboarded_at timestamptz,
	created_at    timestamptz,
	PRIMARY KEY (tenant, id)
);

CREATE TABLE archive_user_numbers (
	tenant    text COLLATE "C" NOT NULL REFERENCES tenants (id),
	user_id   text COLLATE "C" NOT NULL,
	pseudonym bytea NOT NULL,
	PRIMARY KEY (tenant, user_id, pseudonym)
);
CREATE INDEX archive_user_numbers_pseudonym ON archive_user_numbers (tenant, pseudonym);

CREATE TABLE archive_contacts (
	tenant     text COLLATE "C" NOT NULL REFERENCES tenants (id),
	user_id    text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	sealed     bytea,
	created_at timestamptz,
	PRIMARY KEY (tenant, user_id, id)
);

CREATE TABLE archive_contact_numbers (
	tenant     text COLLATE "C" NOT NULL REFERENCES tenants (id),
	user_id    text COLLATE "C" NOT NULL,
	contact_id text COLLATE "C" NOT NULL,
	pseudonym  bytea NOT NULL,
	PRIMARY KEY (tenant, user_id, contact_id, pseudonym)
);
CREATE INDEX archive_contact_numbers_pseudonym ON archive_contact_numbers (tenant, pseudonym);

CREATE TABLE archive_items (
	tenant      text COLLATE "C" NOT NULL REFERENCES tenants (id),
	id          text COLLATE "C" NOT NULL,
	client_id   text COLLATE "C" NOT NULL,
	kind        text NOT NULL CHECK (kind IN ('call', 'sms', 'recording')),
	user_id     text COLLATE "C" NOT NULL,
	direction   text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
	started_at  timestamptz NOT NULL,
	duration_ns bigint NOT NULL,
	result      text NOT NULL,
	sealed      bytea,
	blob_id     text NOT NULL,
	call_id     text NOT NULL,
	size        bigint NOT NULL,
	sha256      text NOT NULL,
	chain_day   text COLLATE "C" NOT NULL,
	created_at  timestamptz,
	PRIMARY KEY (tenant, id),
	UNIQUE (tenant, client_id)
);
CREATE INDEX archive_items_started ON archive_items (tenant, started_at, id);
CREATE INDEX archive_items_user ON archive_items (tenant, user_id, started_at);
CREATE INDEX archive_items_kind ON archive_items (tenant, kind, started_at);
CREATE INDEX archive_items_day ON archive_items (tenant, chain_day, id);

CREATE TABLE archive_item_parties (
	tenant    text COLLATE "C" NOT NULL REFERENCES tenants (id),
	item_id   text COLLATE "C" NOT NULL,
	pseudonym bytea NOT NULL,
	PRIMARY KEY (tenant, item_id, pseudonym)
);
CREATE INDEX archive_item_parties_pseudonym ON archive_item_parties (tenant, pseudonym, item_id);

CREATE TABLE archive_item_tokens (
	tenant  text COLLATE "C" NOT NULL REFERENCES tenants (id),
	item_id text COLLATE "C" NOT NULL,
	token   bytea NOT NULL,
	PRIMARY KEY (tenant, item_id, token)
);
CREATE INDEX archive_item_tokens_token ON archive_item_tokens (tenant, token, item_id);

CREATE TABLE archive_holds (
	tenant    text COLLATE "C" NOT NULL REFERENCES tenants (id),
	id        text COLLATE "C" NOT NULL,
	scope     text NOT NULL CHECK (scope IN ('user', 'case', 'range')),
	user_id   text COLLATE "C" NOT NULL,
	case_id   text NOT NULL,
	from_at   timestamptz,
	to_at     timestamptz,
	reason    text NOT NULL,
	placed_by text NOT NULL,
	placed_at timestamptz,
	lifted_by text NOT NULL DEFAULT '',
	lifted_at timestamptz,
	PRIMARY KEY (tenant, id)
);

CREATE TABLE archive_retention (
	tenant   text COLLATE "C" PRIMARY KEY REFERENCES tenants (id),
	settings bytea NOT NULL -- JSON, kept byte for byte, opaque to the store
);

CREATE TABLE archive_uploads (
	tenant      text COLLATE "C" NOT NULL REFERENCES tenants (id),
	id          text COLLATE "C" NOT NULL,
	item_id     text COLLATE "C" NOT NULL,
	client_id   text COLLATE "C" NOT NULL,
	state       bytea,
	byte_offset bigint NOT NULL CHECK (byte_offset >= 0),
	created_at  timestamptz,
	updated_at  timestamptz,
	PRIMARY KEY (tenant, id),
	UNIQUE (tenant, client_id)
);
CREATE INDEX archive_uploads_updated ON archive_uploads (tenant, updated_at);

-- +goose Down
DROP TABLE archive_uploads;
DROP TABLE archive_retention;
DROP TABLE archive_holds;
DROP TABLE archive_item_tokens;
DROP TABLE archive_item_parties;
DROP TABLE archive_items;
DROP TABLE archive_contact_numbers;
DROP TABLE archive_contacts;
DROP TABLE archive_user_numbers;
DROP TABLE archive_users;
