-- The audit log (see store.AuditLog and package audit): entries with dense
-- seqs, each carrying the hash of the one before; the chain's head (the
-- newest seq and hash), kept in its own one-row table so that deleting the
-- newest entries does not let the next append reuse their seqs; and signed
-- checkpoints. Times are INTEGER unix nanoseconds UTC. No foreign keys: the
-- log outlives the tenants it names, and tenant '' is the platform.
--
-- Triggers make the tables append-only for anyone who does not drop them
-- first: no update, and no delete of an entry unless a checkpoint above it
-- exists (a purge, store.AuditLog.PurgeAuditBefore). Verification catches
-- whoever does drop them.

-- +goose Up
CREATE TABLE audit_log (
	seq    INTEGER PRIMARY KEY,
	at     INTEGER NOT NULL,
	tenant TEXT NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	object TEXT NOT NULL,
	detail TEXT NOT NULL,
	prev   BLOB NOT NULL,
	hash   BLOB NOT NULL
) STRICT;
CREATE INDEX audit_log_tenant ON audit_log (tenant, seq);

CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE audit_checkpoints (
	seq       INTEGER PRIMARY KEY,
	hash      BLOB NOT NULL,
	at        INTEGER NOT NULL,
	signature BLOB NOT NULL,
	key_id    TEXT NOT NULL
) STRICT;

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq > OLD.seq)
BEGIN
	SELECT RAISE(ABORT, 'audit entries are deleted only below a checkpoint');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP TABLE audit_log;
