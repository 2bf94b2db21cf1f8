package store

import (
	"context"
	"time"
)

// AuditLog is the storage of the append-only, hash-chained audit log (see
// package audit, which computes the hashes, signs checkpoints and verifies
// the chain). Implementations are safe for concurrent use, by several
// processes on one database as well.
//
// Entries have dense seqs 1, 2, 3, ...: AppendAudit serialises appends (in
// SQLite the one write connection, in PostgreSQL a lock on the chain's head
// row held until commit), so every entry's Prev is the Hash of the entry
// with the seq before it, whichever process appended either. The chain head
// is kept apart from the entries, so deleting the newest entries does not
// make the next append reuse their seqs: the gap stays visible.
//
// The tables refuse updates, and deletes other than a purge, where the
// database can say so (triggers): tampering then needs the rights to drop
// them, which verification is for.
type AuditLog interface {
	// AppendAudit appends entries, in order, in one transaction. For each
	// entry it sets Seq (the next seq) and Prev (the previous entry's Hash,
	// 32 zero bytes before the first entry) in place, then calls chain,
	// which must set e.Hash to 32 bytes (Invalid otherwise, and nothing is
	// stored). chain runs while appends are serialised: keep it to pure
	// computation. On error no entry is stored, though the entries may have
	// been filled in.
	AppendAudit(ctx context.Context, entries []AuditEntry, chain func(prev []byte, e *AuditEntry)) error
	// AuditEntries returns the entries matching f in ascending seq order.
	AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// LastAuditEntry returns the entry with the highest seq; NotFound if the
	// log is empty.
	LastAuditEntry(ctx context.Context) (AuditEntry, error)

	// PutAuditCheckpoint stores a signed checkpoint. NotFound if no entry
	// has c.Seq, Invalid if that entry's Hash is not c.Hash, Conflict if a
	// checkpoint with c.Seq is stored already. The store does not check the
	// signature.
	PutAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// AuditCheckpoints returns up to limit checkpoints with a seq above
	// after, in seq order (limit below 1 means 100, capped at 1000).
	AuditCheckpoints(ctx context.Context, after int64, limit int) ([]AuditCheckpoint, error)
	// LastAuditCheckpoint returns the checkpoint with the highest seq;
	// NotFound if there is none.
	LastAuditCheckpoint(ctx context.Context) (AuditCheckpoint, error)

	// PurgeAuditBefore deletes every entry with a seq below seq and returns
	// how many it deleted. seq must be the seq of a stored checkpoint whose
	// entry is still stored (Invalid otherwise), so the retained log starts
	// at a signed hash and still verifies. Checkpoints are kept.
	PurgeAuditBefore(ctx context.Context, seq int64) (int64, error)
}

// AuditEntry is one entry of the audit log. No field holds personal data:
// Object names ids (record ids, case ids, key names), never a phone number.
type AuditEntry struct {
	Seq    int64     // 1, 2, 3, ... set by AppendAudit
	At     time.Time // when it happened, UTC; kept to the microsecond
	Tenant string    // "" for a platform-level action
	Actor  string    // who: "key:<name>", "user:<id>", "operator", "system"
	Action string    // what: "call.read", "dsar.export", "keys.rotate", ...
	Object string    // on what: ids, never phone numbers
	Detail string    // JSON (or empty), no personal data
	Prev   []byte    // Hash of the entry before, 32 zero bytes for seq 1
	Hash   []byte    // SHA-256 over the entry and Prev (package audit)
}

// AuditFilter selects audit entries. Zero fields do not filter (so Tenant ""
// selects every tenant's entries and the platform's).
type AuditFilter struct {
	Tenant       string
	ActionPrefix string    // e.g. "dsar." or "call.read"
	Actor        string    // exact
	From, To     time.Time // At in [From, To)
	After        int64     // only seqs above this (paging cursor)
	Limit        int       // 0 => 100; at most 1000
}

// AuditCheckpoint is a signed statement that the entry with Seq had Hash,
// made at At: Signature is Ed25519 over the encoding package audit defines,
// by the key named KeyID.
type AuditCheckpoint struct {
	Seq       int64
	Hash      []byte
	At        time.Time
	Signature []byte
	KeyID     string
}
