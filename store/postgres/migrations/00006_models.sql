-- Versioned models of the learned signal: the same table and meaning as
-- store/sqlite's 00006_models.sql. A model and its report are opaque JSON
-- kept byte for byte (bytea, not jsonb, which would reorder keys). The
-- partial unique indexes make a second live or shadow version of a tenant
-- impossible whatever a writer does; the writers also lock the tenant's row
-- so that concurrent promotions queue instead of failing.

-- +goose Up
CREATE TABLE models (
	tenant     text COLLATE "C" NOT NULL REFERENCES tenants (id),
	version    integer NOT NULL CHECK (version > 0),
	status     text NOT NULL CHECK (status IN ('shadow', 'live', 'retired')),
	model      bytea NOT NULL, -- JSON
	report     bytea,          -- JSON, NULL when none
	trained_at timestamptz,
	created_at timestamptz,
	created_by text NOT NULL,
	PRIMARY KEY (tenant, version)
);
CREATE UNIQUE INDEX models_live ON models (tenant) WHERE status = 'live';
CREATE UNIQUE INDEX models_shadow ON models (tenant) WHERE status = 'shadow';

-- +goose Down
DROP TABLE models;
