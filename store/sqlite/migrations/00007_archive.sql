-- The compliance archive's metadata (see store.Archive): the directory of
-- users and contacts, archived items (call records, SMS messages,
-- recordings), legal holds, retention settings and resumable upload
-- sessions. Nothing personal is in the clear: names, numbers and texts are
-- only in the sealed columns (sealed by the node, stored byte for byte and
-- indexed nowhere); numbers are looked up by keyed pseudonym and texts by
-- keyed word tokens (store.ArchiveTokens), each in a table of its own.
-- Only tenants is referenced: an item's user, a contact's user and a
-- recording's call are checked (or not) by the store's code, so purging
-- one kind of item never waits on another.
-- Times are INTEGER unix nanoseconds UTC, NULL for the zero time.

-- +goose Up
CREATE TABLE archive_users (
	tenant        TEXT NOT NULL REFERENCES tenants (id),
	id            TEXT NOT NULL,
	sealed        BLOB,
	offboarded_at INTEGER,
	created_at    INTEGER,
	PRIMARY KEY (tenant, id)
) STRICT;

CREATE TABLE archive_user_numbers (
	tenant    TEXT NOT NULL REFERENCES tenants (id),
	user_id   TEXT NOT NULL,
	pseudonym BLOB NOT NULL,
	PRIMARY KEY (tenant, user_id, pseudonym)
) STRICT, WITHOUT ROWID;
CREATE INDEX archive_user_numbers_pseudonym ON archive_user_numbers (tenant, pseudonym);

CREATE TABLE archive_contacts (
	tenant     TEXT NOT NULL REFERENCES tenants (id),
	user_id    TEXT NOT NULL,
	id         TEXT NOT NULL,
	sealed     BLOB,
	created_at INTEGER,
	PRIMARY KEY (tenant, user_id, id)
) STRICT;

CREATE TABLE archive_contact_numbers (
	tenant     TEXT NOT NULL REFERENCES tenants (id),
	user_id    TEXT NOT NULL,
	contact_id TEXT NOT NULL,
	pseudonym  BLOB NOT NULL,
	PRIMARY KEY (tenant, user_id, contact_id, pseudonym)
) STRICT, WITHOUT ROWID;
CREATE INDEX archive_contact_numbers_pseudonym ON archive_contact_numbers (tenant, pseudonym);

CREATE TABLE archive_items (
	tenant      TEXT NOT NULL REFERENCES tenants (id),
	id          TEXT NOT NULL,
	client_id   TEXT NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('call', 'sms', 'recording')),
	user_id     TEXT NOT NULL,
	direction   TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
	started_at  INTEGER NOT NULL,
	duration_ns INTEGER NOT NULL,
	result      TEXT NOT NULL,
	sealed      BLOB,
	blob_id     TEXT NOT NULL,
	call_id     TEXT NOT NULL,
	size        INTEGER NOT NULL,
	sha256      TEXT NOT NULL,
	chain_day   TEXT NOT NULL,
	created_at  INTEGER,
	PRIMARY KEY (tenant, id),
	UNIQUE (tenant, client_id)
) STRICT;
CREATE INDEX archive_items_started ON archive_items (tenant, started_at, id);
CREATE INDEX archive_items_user ON archive_items (tenant, user_id, started_at);
CREATE INDEX archive_items_kind ON archive_items (tenant, kind, started_at);
CREATE INDEX archive_items_day ON archive_items (tenant, chain_day, id);

CREATE TABLE archive_item_parties (
	tenant    TEXT NOT NULL REFERENCES tenants (id),
	item_id   TEXT NOT NULL,
	pseudonym BLOB NOT NULL,
	PRIMARY KEY (tenant, item_id, pseudonym)
) STRICT, WITHOUT ROWID;
CREATE INDEX archive_item_parties_pseudonym ON archive_item_parties (tenant, pseudonym, item_id);

CREATE TABLE archive_item_tokens (
	tenant  TEXT NOT NULL REFERENCES tenants (id),
	item_id TEXT NOT NULL,
	token   BLOB NOT NULL,
	PRIMARY KEY (tenant, item_id, token)
) STRICT, WITHOUT ROWID;
CREATE INDEX archive_item_tokens_token ON archive_item_tokens (tenant, token, item_id);

CREATE TABLE archive_holds (
	tenant    TEXT NOT NULL REFERENCES tenants (id),
	id        TEXT NOT NULL,
	scope     TEXT NOT NULL CHECK (scope IN ('user', 'case', 'range')),
	user_id   TEXT NOT NULL,
	case_id   TEXT NOT NULL,
	from_at   INTEGER,
	to_at     INTEGER,
	reason    TEXT NOT NULL,
	placed_by TEXT NOT NULL,
	placed_at INTEGER,
	lifted_by TEXT NOT NULL DEFAULT '',
	lifted_at INTEGER,
	PRIMARY KEY (tenant, id)
) STRICT;

CREATE TABLE archive_retention (
	tenant   TEXT PRIMARY KEY REFERENCES tenants (id),
	settings BLOB NOT NULL -- JSON, opaque to the store
) STRICT;

CREATE TABLE archive_uploads (
	tenant      TEXT NOT NULL REFERENCES tenants (id),
	id          TEXT NOT NULL,
	item_id     TEXT NOT NULL,
	client_id   TEXT NOT NULL,
	state       BLOB,
	byte_offset INTEGER NOT NULL CHECK (byte_offset >= 0),
	created_at  INTEGER,
	updated_at  INTEGER,
	PRIMARY KEY (tenant, id),
	UNIQUE (tenant, client_id)
) STRICT;
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
