-- Times are INTEGER unix nanoseconds UTC, NULL for the zero time; durations
-- are INTEGER nanoseconds. Pseudonyms and sealed values are opaque BLOBs.

-- +goose Up
CREATE TABLE tenants (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	region     TEXT NOT NULL,
	keys       BLOB,
	created_at INTEGER
) STRICT;

CREATE TABLE api_keys (
	hash       BLOB PRIMARY KEY,
	tenant     TEXT NOT NULL REFERENCES tenants (id),
	name       TEXT NOT NULL,
	created_at INTEGER
) STRICT;

-- Records are keyed by (tenant, id), so a retried batch is deduplicated and
-- every lookup and page is an index range; the table itself is a plain rowid
-- table, so an insert touches three b-trees (table, key, started_at).
CREATE TABLE calls (
	id                TEXT NOT NULL,
	tenant            TEXT NOT NULL REFERENCES tenants (id),
	ref               TEXT NOT NULL,
	started_at        INTEGER,
	ingress           TEXT NOT NULL,
	appliance         TEXT NOT NULL,
	caller_pseudonym  BLOB,
	dialled_pseudonym BLOB,
	user_pseudonym    BLOB,
	score             REAL NOT NULL,
	action            TEXT NOT NULL,
	markers           TEXT NOT NULL, -- comma-joined marker codes
	verdict           BLOB,
	sealed            BLOB,
	end_duration      INTEGER,       -- the end columns are NULL until reported
	end_result        TEXT,
	end_egress        TEXT,
	review            TEXT NOT NULL,
	fraud_type        TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX calls_tenant_id ON calls (tenant, id);
CREATE INDEX calls_tenant_started ON calls (tenant, started_at);

CREATE TABLE labels (
	id         INTEGER PRIMARY KEY,
	tenant     TEXT NOT NULL,
	record_id  TEXT NOT NULL,
	label      TEXT NOT NULL,
	fraud_type TEXT NOT NULL,
	sealed     BLOB,
	analyst    TEXT NOT NULL,
	at         INTEGER,
	FOREIGN KEY (tenant, record_id) REFERENCES calls (tenant, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX labels_record ON labels (tenant, record_id);

CREATE TABLE list_entries (
	tenant     TEXT NOT NULL REFERENCES tenants (id),
	list       TEXT NOT NULL,
	pseudonym  BLOB NOT NULL,
	sealed     BLOB,
	reason     TEXT NOT NULL,
	expires_at INTEGER,
	created_at INTEGER,
	PRIMARY KEY (tenant, list, pseudonym)
) STRICT, WITHOUT ROWID;

CREATE TABLE routes (
	tenant    TEXT NOT NULL REFERENCES tenants (id),
	id        TEXT NOT NULL,
	kind      TEXT NOT NULL,
	country   TEXT NOT NULL,
	fail_open INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE policies (
	tenant  TEXT PRIMARY KEY REFERENCES tenants (id),
	version INTEGER NOT NULL,
	policy  TEXT NOT NULL -- JSON of call.Policy
) STRICT;

CREATE TABLE links (
	tenant           TEXT NOT NULL REFERENCES tenants (id),
	caller_pseudonym BLOB NOT NULL,
	user_pseudonym   BLOB NOT NULL,
	sealed           BLOB,
	at               INTEGER,
	PRIMARY KEY (tenant, caller_pseudonym, user_pseudonym)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE links;
DROP TABLE policies;
DROP TABLE routes;
DROP TABLE list_entries;
DROP TABLE labels;
DROP TABLE calls;
DROP TABLE api_keys;
DROP TABLE tenants;
