-- Versioned models of the learned signal (see store.Models). A model and its
-- evaluation report are opaque JSON, kept byte for byte; neither holds
-- personal data. The partial unique indexes make a second live or shadow
-- version of a tenant impossible whatever a writer does.
-- Times are INTEGER unix nanoseconds UTC, NULL for the zero time.

-- +goose Up
CREATE TABLE models (
	tenant     TEXT NOT NULL REFERENCES tenants (id),
	version    INTEGER NOT NULL CHECK (version > 0),
	status     TEXT NOT NULL CHECK (status IN ('shadow', 'live', 'retired')),
	model      BLOB NOT NULL, -- JSON
	report     BLOB,          -- JSON, NULL when none
	trained_at INTEGER,
	created_at INTEGER,
	created_by TEXT NOT NULL,
	PRIMARY KEY (tenant, version)
) STRICT;
CREATE UNIQUE INDEX models_live ON models (tenant) WHERE status = 'live';
CREATE UNIQUE INDEX models_shadow ON models (tenant) WHERE status = 'shadow';

-- +goose Down
DROP TABLE models;
