-- Privacy operations (see store.Privacy): subject flags, rights cases, legal
-- holds, consent history, retention settings; API key roles; offboarded
-- tenants; the change log's prune mark.
--
-- Call records get no index by caller or user pseudonym: on random 32-byte
-- keys two such indexes cut the recorder's insert rate by about 40%
-- (BenchmarkInsertCalls/batch=256: ~12.7k to ~7.5k records/s on the
-- development machine). So SubjectCalls and EraseSubject scan the tenant's
-- records (by their tenant index); an erasure holds the write lock for that
-- scan. PostgreSQL, the cluster backend, has the indexes.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE tenants ADD COLUMN deleted_at INTEGER;

-- Access, portability and erasure find links by user as well as by caller.
CREATE INDEX links_tenant_user ON links (tenant, user_pseudonym);

CREATE TABLE subject_flags (
	tenant     TEXT NOT NULL REFERENCES tenants (id),
	pseudonym  BLOB NOT NULL,
	restricted INTEGER NOT NULL,
	objected   INTEGER NOT NULL,
	updated_at INTEGER,
	PRIMARY KEY (tenant, pseudonym)
) STRICT, WITHOUT ROWID;

CREATE TABLE cases (
	tenant            TEXT NOT NULL REFERENCES tenants (id),
	id                TEXT NOT NULL,
	type              TEXT NOT NULL,
	status            TEXT NOT NULL,
	subject_pseudonym BLOB,
	user_pseudonym    BLOB,
	sealed            BLOB,
	data              BLOB,
	received_at       INTEGER,
	due_at            INTEGER,
	closed_at         INTEGER,
	version           INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT;

CREATE TABLE holds (
	tenant            TEXT NOT NULL REFERENCES tenants (id),
	id                TEXT NOT NULL,
	scope             TEXT NOT NULL,
	subject_pseudonym BLOB,
	case_id           TEXT NOT NULL,
	reason            TEXT NOT NULL,
	placed_by         TEXT NOT NULL,
	placed_at         INTEGER,
	lifted_by         TEXT NOT NULL DEFAULT '',
	lifted_at         INTEGER,
	PRIMARY KEY (tenant, id)
) STRICT;

CREATE TABLE consents (
	id        INTEGER PRIMARY KEY,
	tenant    TEXT NOT NULL REFERENCES tenants (id),
	pseudonym BLOB NOT NULL,
	purpose   TEXT NOT NULL,
	given     INTEGER NOT NULL,
	at        INTEGER,
	source    TEXT NOT NULL
) STRICT;
CREATE INDEX consents_subject ON consents (tenant, pseudonym, at, id);

CREATE TABLE retention (
	tenant   TEXT PRIMARY KEY REFERENCES tenants (id),
	settings BLOB NOT NULL -- JSON, opaque to the store
) STRICT;

-- One row: the highest seq PurgeChanges ever deleted.
CREATE TABLE changes_pruned (
	one     INTEGER PRIMARY KEY CHECK (one = 1),
	through INTEGER NOT NULL
) STRICT;

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
ALTER TABLE tenants DROP COLUMN deleted_at;
ALTER TABLE api_keys DROP COLUMN role;
