-- The audit log: the same tables and meaning as store/sqlite's 00004, with
-- timestamptz times (microseconds, which package audit hashes at).
--
-- Appends are serialised by the chain head's one row, read FOR UPDATE and
-- updated in the appending transaction: a second appender waits for the
-- first to commit and then reads the head it left, so seqs are dense and
-- every Prev is the Hash before it, across any number of nodes. No foreign
-- keys: the log outlives the tenants it names, and tenant '' is the
-- platform.
--
-- Triggers make the tables append-only for anyone who does not drop them
-- first: no update or truncate, and no delete of an entry unless a
-- checkpoint above it exists (a purge). Verification catches whoever does
-- drop them.

-- +goose Up
CREATE TABLE audit_log (
	seq    bigint PRIMARY KEY,
	at     timestamptz NOT NULL,
	tenant text COLLATE "C" NOT NULL,
	actor  text COLLATE "C" NOT NULL,
	action text COLLATE "C" NOT NULL,
	object text NOT NULL,
	detail text NOT NULL,
	prev   bytea NOT NULL,
	hash   bytea NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant, seq);

CREATE TABLE audit_head (
	id   integer PRIMARY KEY CHECK (id = 1),
	seq  bigint NOT NULL,
	hash bytea NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE audit_checkpoints (
	seq       bigint PRIMARY KEY,
	hash      bytea NOT NULL,
	at        timestamptz NOT NULL,
	signature bytea NOT NULL,
	key_id    text NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_log' THEN
		IF EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq > OLD.seq) THEN
			RETURN OLD;
		END IF;
	END IF;
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP FUNCTION audit_append_only();
