package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/ringfence/ringfence/store"
)

// HashSize is the size of an entry's Hash and Prev.
const HashSize = sha256.Size

// Domain labels, so an entry's hash can never be read as a checkpoint's
// signed message or the reverse.
const (
	entryDomain      = "ringfence audit entry v1"
	checkpointDomain = "ringfence audit checkpoint v1"
)

// Precision is the precision of every time the log hashes or signs: times
// are truncated to it before hashing, so they survive both stores
// (PostgreSQL keeps microseconds).
const Precision = time.Microsecond

// EntryHash returns SHA-256 over the canonical encoding of e (Seq, At,
// Tenant, Actor, Action, Object, Detail, then Prev; see docs/audit.md):
//
//	lp(domain) | u64(seq) | i64(unix nanos of at) | lp(tenant) | lp(actor) |
//	lp(action) | lp(object) | lp(detail) | lp(prev)
//
// where lp(x) is x's length as a big-endian uint32 followed by x, and the
// integers are big-endian. e.Hash is ignored.
func EntryHash(e store.AuditEntry) []byte {
	n := 4 + len(entryDomain) + 16 + 6*4 + len(e.Tenant) + len(e.Actor) + len(e.Action) + len(e.Object) + len(e.Detail) + len(e.Prev)
	b := make([]byte, 0, n)
	b = lp(b, []byte(entryDomain))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.At.UnixNano()))
	for _, f := range []string{e.Tenant, e.Actor, e.Action, e.Object, e.Detail} {
		b = lp(b, []byte(f))
	}
	b = lp(b, e.Prev)
	sum := sha256.Sum256(b)
	return sum[:]
}

// CheckpointMessage returns the bytes a checkpoint's Signature signs:
//
//	lp(domain) | u64(seq) | lp(hash) | i64(unix nanos of at) | lp(key id)
func CheckpointMessage(c store.AuditCheckpoint) []byte {
	b := make([]byte, 0, 4+len(checkpointDomain)+8+4+len(c.Hash)+8+4+len(c.KeyID))
	b = lp(b, []byte(checkpointDomain))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
	b = lp(b, c.Hash)
	b = binary.BigEndian.AppendUint64(b, uint64(c.At.UnixNano()))
	return lp(b, []byte(c.KeyID))
}

// lp appends x to b prefixed by its length (big-endian uint32).
func lp(b, x []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
	return append(b, x...)
}
