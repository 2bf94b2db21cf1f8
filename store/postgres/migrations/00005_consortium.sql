-- The fraud-sharing consortium: the same tables and meaning as store/sqlite's
-- 00005_consortium.sql. Nothing here is plaintext personal data: entries are
-- keyed by the consortium pseudonym; a report's number is kept only sealed
-- under the reporting member's own data key.

-- +goose Up
CREATE TABLE consortia (
	id          text COLLATE "C" PRIMARY KEY,
	name        text NOT NULL,
	terms       text NOT NULL,
	reciprocity jsonb NOT NULL, -- JSON of store.Reciprocity
	expiry      bigint NOT NULL, -- nanoseconds
	created_at  timestamptz
);

CREATE TABLE consortium_members (
	consortium text COLLATE "C" NOT NULL REFERENCES consortia (id),
	tenant     text COLLATE "C" NOT NULL REFERENCES tenants (id),
	joined_at  timestamptz,
	terms      text NOT NULL,
	left_at    timestamptz,
	impact     bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (consortium, tenant)
);

CREATE TABLE consortium_reports (
	id               text COLLATE "C" PRIMARY KEY,
	consortium       text COLLATE "C" NOT NULL REFERENCES consortia (id),
	tenant           text COLLATE "C" NOT NULL REFERENCES tenants (id),
	pseudonym        bytea NOT NULL,
	tenant_pseudonym bytea,
	sealed           bytea,
	fraud_type       text NOT NULL,
	evidence         text NOT NULL,
	note             bytea,
	reported_at      timestamptz NOT NULL,
	withdrawn_at     timestamptz
);
CREATE INDEX consortium_reports_entry ON consortium_reports (consortium, pseudonym);
CREATE INDEX consortium_reports_member ON consortium_reports (consortium, tenant, id);

CREATE TABLE consortium_disputes (
	id          text COLLATE "C" PRIMARY KEY,
	consortium  text COLLATE "C" NOT NULL REFERENCES consortia (id),
	pseudonym   bytea NOT NULL,
	raised_by   text NOT NULL, -- a member tenant id or "platform"
	reason      text NOT NULL,
	state       text NOT NULL,
	opened_at   timestamptz,
	resolved_at timestamptz,
	resolution  text NOT NULL
);
CREATE INDEX consortium_disputes_entry ON consortium_disputes (consortium, pseudonym);

-- +goose Down
DROP TABLE consortium_disputes;
DROP TABLE consortium_reports;
DROP TABLE consortium_members;
DROP TABLE consortia;
