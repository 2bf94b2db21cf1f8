-- The change log (see store's "Change feed"): one row per object changed by
-- a write that nodes hold in memory, appended in the write's transaction,
-- with a NOTIFY on channel ringfence_changes carrying the newest seq.
--
-- A sequence hands out values in the order transactions ask, not the order
-- they commit, so a follower reading "after seq N" could see N+1 commit
-- before N and skip N for good. Writers therefore take a transaction-scoped
-- advisory lock just before appending (the last thing a write does), which
-- makes seq order commit order; the lock is held only for the append and
-- the commit.

-- +goose Up
CREATE TABLE changes (
	seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant text COLLATE "C" NOT NULL,
	kind   text NOT NULL,
	key    bytea NOT NULL, -- empty when the kind has none
	sealed bytea,
	at     timestamptz NOT NULL
);

-- +goose Down
DROP TABLE changes;
