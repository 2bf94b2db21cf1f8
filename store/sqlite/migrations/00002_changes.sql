-- The change log (see store's "Change feed"): one row per object changed by
-- a write that nodes hold in memory, appended in the write's transaction.
-- AUTOINCREMENT so a seq is never reused, even after the newest rows are
-- deleted; writes are serialised (one write connection), so seq order is
-- commit order.

-- +goose Up
CREATE TABLE changes (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	tenant TEXT NOT NULL,
	kind   TEXT NOT NULL,
	key    BLOB NOT NULL, -- empty when the kind has none
	sealed BLOB,
	at     INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE changes;
