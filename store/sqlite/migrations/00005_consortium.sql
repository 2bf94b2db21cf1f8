-- The fraud-sharing consortium (see store.Consortium). Nothing here is
-- plaintext personal data: entries are keyed by the consortium pseudonym
-- (HMAC-SHA-256 under a key no tenant holds); a report's number is kept only
-- sealed under the reporting member's own data key, with that member's own
-- pseudonym beside it. Reason and resolution are codes, not free text.
-- Times are INTEGER unix nanoseconds UTC, NULL for the zero time.

-- +goose Up
CREATE TABLE consortia (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	terms       TEXT NOT NULL,
	reciprocity TEXT NOT NULL, -- JSON of store.Reciprocity
	expiry      INTEGER NOT NULL, -- nanoseconds
	created_at  INTEGER
) STRICT;

CREATE TABLE consortium_members (
	consortium TEXT NOT NULL REFERENCES consortia (id),
	tenant     TEXT NOT NULL REFERENCES tenants (id),
	joined_at  INTEGER,
	terms      TEXT NOT NULL,
	left_at    INTEGER,
	impact     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (consortium, tenant)
) STRICT, WITHOUT ROWID;

CREATE TABLE consortium_reports (
	id               TEXT PRIMARY KEY,
	consortium       TEXT NOT NULL REFERENCES consortia (id),
	tenant           TEXT NOT NULL REFERENCES tenants (id),
	pseudonym        BLOB NOT NULL,
	tenant_pseudonym BLOB,
	sealed           BLOB,
	fraud_type       TEXT NOT NULL,
	evidence         TEXT NOT NULL,
	note             BLOB,
	reported_at      INTEGER NOT NULL,
	withdrawn_at     INTEGER
) STRICT;
CREATE INDEX consortium_reports_entry ON consortium_reports (consortium, pseudonym);
CREATE INDEX consortium_reports_member ON consortium_reports (consortium, tenant, id);

CREATE TABLE consortium_disputes (
	id          TEXT PRIMARY KEY,
	consortium  TEXT NOT NULL REFERENCES consortia (id),
	pseudonym   BLOB NOT NULL,
	raised_by   TEXT NOT NULL, -- a member tenant id or "platform"
	reason      TEXT NOT NULL,
	state       TEXT NOT NULL,
	opened_at   INTEGER,
	resolved_at INTEGER,
	resolution  TEXT NOT NULL
) STRICT;
CREATE INDEX consortium_disputes_entry ON consortium_disputes (consortium, pseudonym);

-- +goose Down
DROP TABLE consortium_disputes;
DROP TABLE consortium_reports;
DROP TABLE consortium_members;
DROP TABLE consortia;
