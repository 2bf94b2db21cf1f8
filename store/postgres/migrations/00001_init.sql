-- The same tables and meaning as store/sqlite's first migration.
--
-- Times are timestamptz (microseconds, UTC on the way out), NULL for the zero
-- time except calls.started_at, which is the partition key and so NOT NULL
-- (the zero time is stored as 0001-01-01 and lands in calls_default).
-- Durations are bigint nanoseconds. Pseudonyms and sealed values are opaque
-- bytea. Identifiers sort bytewise (COLLATE "C"), as in SQLite, so pages and
-- cursors order the same on both backends.

-- +goose Up
CREATE TABLE tenants (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	region     text NOT NULL,
	keys       bytea,
	created_at timestamptz
);

CREATE TABLE api_keys (
	hash       bytea PRIMARY KEY,
	tenant     text COLLATE "C" NOT NULL REFERENCES tenants (id),
	name       text NOT NULL,
	created_at timestamptz
);

-- Call records are range-partitioned by month of started_at (UTC). The
-- partitions, named calls_YYYY_MM, are made by the application ahead of time
-- (DB.EnsurePartitions) or on demand by InsertCalls, and dropped whole by
-- retention (DB.DropPartitionsBefore); calls_default takes the rest (a clock
-- far off, the zero time).
--
-- A unique key on a partitioned table must contain the partition key, so
-- the key is (tenant, id, started_at). Its prefix (tenant, id) is the index
-- for reads and updates by record id, which probe every partition since they
-- do not know started_at. Deduplication stays correct because record ids are
-- unique (call.IDs: 48 bits of time, 80 random bits) and a retried batch
-- carries the very same rows, started_at included: a retried row routes to
-- the partition of its first copy and meets its key there.
CREATE TABLE calls (
	id                text COLLATE "C" NOT NULL,
	tenant            text COLLATE "C" NOT NULL REFERENCES tenants (id),
	ref               text NOT NULL,
	started_at        timestamptz NOT NULL,
	ingress           text NOT NULL,
	appliance         text NOT NULL,
	caller_pseudonym  bytea,
	dialled_pseudonym bytea,
	user_pseudonym    bytea,
	score             double precision NOT NULL,
	action            text NOT NULL,
	markers           text[] NOT NULL,
	verdict           bytea,
	sealed            bytea,
	end_duration      bigint, -- the end columns are NULL until reported
	end_result        text,
	end_egress        text,
	review            text NOT NULL,
	fraud_type        text NOT NULL,
	PRIMARY KEY (tenant, id, started_at)
) PARTITION BY RANGE (started_at);

CREATE TABLE calls_default PARTITION OF calls DEFAULT;

-- Indexes from the queries (store.Store.Calls, the API's and console's list):
-- newest id first per tenant is a backward scan of the key; a time range
-- prunes partitions and, when narrow, scans this index.
CREATE INDEX calls_tenant_started ON calls (tenant, started_at);
-- Filters on a rare action or a review status (block/flag queues, confirmed
-- fraud) would otherwise walk the key past every allowed or unreviewed
-- record. Partial, so the common insert (allowed, unreviewed) pays nothing.
CREATE INDEX calls_tenant_action ON calls (tenant, action, id) WHERE action <> 'allow';
CREATE INDEX calls_tenant_review ON calls (tenant, review, id) WHERE review <> 'unreviewed';

-- Labels name their record by (tenant, record_id) as in SQLite; a foreign key
-- to a partitioned calls would stop retention from dropping a partition, so
-- record_started_at (copied from the record) lets retention delete the labels
-- of the months it drops instead.
CREATE TABLE labels (
	id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant            text COLLATE "C" NOT NULL,
	record_id         text COLLATE "C" NOT NULL,
	record_started_at timestamptz NOT NULL,
	label             text NOT NULL,
	fraud_type        text NOT NULL,
	sealed            bytea,
	analyst           text NOT NULL,
	at                timestamptz
);
CREATE INDEX labels_record ON labels (tenant, record_id);
CREATE INDEX labels_record_started ON labels (record_started_at);

CREATE TABLE list_entries (
	tenant     text COLLATE "C" NOT NULL REFERENCES tenants (id),
	list       text COLLATE "C" NOT NULL,
	pseudonym  bytea NOT NULL,
	sealed     bytea,
	reason     text NOT NULL,
	expires_at timestamptz,
	created_at timestamptz,
	PRIMARY KEY (tenant, list, pseudonym)
);

CREATE TABLE routes (
	tenant    text COLLATE "C" NOT NULL REFERENCES tenants (id),
	id        text COLLATE "C" NOT NULL,
	kind      text NOT NULL,
	country   text NOT NULL,
	fail_open boolean NOT NULL,
	PRIMARY KEY (tenant, id)
);

CREATE TABLE policies (
	tenant  text COLLATE "C" PRIMARY KEY REFERENCES tenants (id),
	version integer NOT NULL,
	policy  jsonb NOT NULL -- JSON of call.Policy
);

CREATE TABLE links (
	tenant           text COLLATE "C" NOT NULL REFERENCES tenants (id),
	caller_pseudonym bytea NOT NULL,
	user_pseudonym   bytea NOT NULL,
	sealed           bytea,
	at               timestamptz,
	PRIMARY KEY (tenant, caller_pseudonym, user_pseudonym)
);

-- +goose Down
DROP TABLE links;
DROP TABLE policies;
DROP TABLE routes;
DROP TABLE list_entries;
DROP TABLE labels;
DROP TABLE calls;
DROP TABLE api_keys;
DROP TABLE tenants;
