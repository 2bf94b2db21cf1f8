package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// memLog is a stored audit log held in memory, entries in seq order (seqs
// unique, as the store's primary key makes them). It serves Verify's reads
// the way the store does; Verify filters on nothing but After and Limit.
type memLog struct {
	entries []store.AuditEntry
	cps     []store.AuditCheckpoint
}

func (m *memLog) AuditEntries(_ context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []store.AuditEntry
	for _, e := range m.entries {
		if e.Seq > f.After && len(out) < min(limit, 1000) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memLog) AuditCheckpoints(_ context.Context, after int64, limit int) ([]store.AuditCheckpoint, error) {
	var out []store.AuditCheckpoint
	for _, c := range m.cps {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

// fuzzLog records 12 entries through a Log on a real SQLite file, with
// signed checkpoints at seqs 4 and 9, and returns what the store holds.
func fuzzLog(f *testing.F) (*memLog, ed25519.PrivateKey) {
	f.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "audit.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	key := audit.KeyFromSecret(bytes.Repeat([]byte{7}, 32))
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	log := audit.New(db, key, "audit-1", func() time.Time { at = at.Add(time.Second); return at })
	for i := range 12 {
		ev := audit.Event{Tenant: []string{"acme", "bank", ""}[i%3], Actor: audit.UserActor("u1"),
			Action: []string{audit.ActionCallRead, audit.ActionListWrite, audit.ActionDSARExport}[i%3],
			Object: "rec-" + string(rune('a'+i)), Detail: map[string]int{"i": i}}
		if err := log.Record(ctx, ev); err != nil {
			f.Fatal(err)
		}
		if i == 3 || i == 8 {
			if _, err := log.Checkpoint(ctx); err != nil {
				f.Fatal(err)
			}
		}
	}
	m := &memLog{}
	if m.entries, err = db.AuditEntries(ctx, store.AuditFilter{Limit: 1000}); err != nil {
		f.Fatal(err)
	}
	if m.cps, err = db.AuditCheckpoints(ctx, 0, 1000); err != nil {
		f.Fatal(err)
	}
	if len(m.entries) != 12 || len(m.cps) != 2 {
		f.Fatalf("%d entries, %d checkpoints", len(m.entries), len(m.cps))
	}
	return m, key
}

// FuzzVerify tampers with a real log as someone with the database file
// could (edit, rewrite with a fresh hash, delete, renumber, swap, insert a
// well-formed entry, truncate, drop the head, rewrite the chain from an
// entry on, drop or corrupt a checkpoint) and runs Verify. Checks: no
// panic and no error (the reads cannot fail); Verify reports a break
// exactly when the log is not a valid one by validLog's plain definition;
// a break names a known kind and a seq within the log's reach. Corpus:
// the seeds below and testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	for _, ops := range [][]byte{
		{},
		{0, 5, 1},            // edit entry 5
		{1, 5, 0},            // delete entry 5
		{2, 5, 0},            // delete entry 5, renumber
		{3, 5, 0},            // swap 5 and 6
		{4, 5, 0},            // insert after 5
		{5, 10, 0},           // truncate after 10 (past the last checkpoint)
		{5, 6, 0},            // truncate after 6
		{6, 3, 0},            // drop entries before 4 (as a purge does)
		{6, 2, 0},            // drop entries before 3
		{7, 11, 2},           // rewrite the chain from 11 on
		{7, 6, 0},            // rewrite the chain from 6 on
		{8, 0, 0}, {8, 1, 1}, // drop or corrupt a checkpoint
		{9, 12, 3},          // rewrite entry 12 with a fresh hash
		{8, 1, 0, 7, 10, 4}, // drop the last checkpoint, then rewrite from 10
	} {
		f.Add(ops)
	}
	orig, key := fuzzLog(f)
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, ops []byte) {
		m := tamper(orig, key, ops)
		rep, err := audit.Verify(context.Background(), m, pub)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		valid := validLog(m, pub)
		if rep.OK() != valid {
			t.Fatalf("Verify says %s; the log is valid: %v\n%s", rep, valid, describe(m))
		}
		if rep.OK() {
			if len(m.entries) > 0 && (rep.Last != m.entries[len(m.entries)-1].Seq || rep.Entries != int64(len(m.entries))) {
				t.Fatalf("Verify says %s of %d entries", rep, len(m.entries))
			}
			return
		}
		b := rep.Break
		switch b.Kind {
		case audit.Edited, audit.Reordered, audit.Inserted, audit.Deleted, audit.Truncated, audit.BadSignature:
		default:
			t.Fatalf("break of kind %q", b.Kind)
		}
		reach := int64(len(orig.entries) + len(ops)/3 + 1) // inserts add at most one each
		if b.Seq < 1 || b.Seq > reach || b.Detail == "" {
			t.Fatalf("break %s", b)
		}
	})
}

// tamper applies ops, three bytes each (op, entry index, argument), to a
// copy of orig.
func tamper(orig *memLog, key ed25519.PrivateKey, ops []byte) *memLog {
	m := &memLog{entries: slices.Clone(orig.entries), cps: slices.Clone(orig.cps)}
	for i := range m.entries {
		e := &m.entries[i]
		e.Prev, e.Hash = bytes.Clone(e.Prev), bytes.Clone(e.Hash)
	}
	rehash := func(from int) { // rewrite the chain from index from on
		for i := from; i < len(m.entries); i++ {
			if i > 0 {
				m.entries[i].Prev = m.entries[i-1].Hash
			}
			m.entries[i].Hash = audit.EntryHash(m.entries[i])
		}
	}
	for ; len(ops) >= 3; ops = ops[3:] {
		if len(m.entries) == 0 {
			break
		}
		i, arg := int(ops[1])%len(m.entries), ops[2]
		switch ops[0] % 10 {
		case 0: // edit a field in place
			editEntry(&m.entries[i], arg)
		case 1: // delete
			m.entries = slices.Delete(m.entries, i, i+1)
		case 2: // delete and renumber the later entries
			m.entries = slices.Delete(m.entries, i, i+1)
			for j := i; j < len(m.entries); j++ {
				m.entries[j].Seq--
			}
		case 3: // swap two entries' contents, keeping their seqs
			if j := i + 1; j < len(m.entries) {
				a, b := m.entries[i], m.entries[j]
				a.Seq, b.Seq = b.Seq, a.Seq
				m.entries[i], m.entries[j] = b, a
			}
		case 4: // insert a well-formed entry after i, renumbering
			e := store.AuditEntry{Seq: m.entries[i].Seq + 1, At: m.entries[i].At, Actor: "operator",
				Action: "keys.rotate", Object: "forged", Prev: m.entries[i].Hash}
			e.Hash = audit.EntryHash(e)
			for j := i + 1; j < len(m.entries); j++ {
				m.entries[j].Seq++
			}
			m.entries = slices.Insert(m.entries, i+1, e)
		case 5: // truncate after i
			m.entries = m.entries[:i+1]
		case 6: // drop the entries before i
			m.entries = m.entries[i:]
		case 7: // edit i and rewrite the chain from it on
			editEntry(&m.entries[i], arg)
			rehash(i)
		case 8: // drop or corrupt a checkpoint
			if len(m.cps) > 0 {
				c := int(arg) % len(m.cps)
				if arg%2 == 0 {
					m.cps = slices.Delete(m.cps, c, c+1)
				} else {
					sig := bytes.Clone(m.cps[c].Signature)
					sig[10] ^= 1
					m.cps[c].Signature = sig
				}
			}
		case 9: // edit i and give it a fresh hash (the next entry still links to the old one)
			editEntry(&m.entries[i], arg)
			m.entries[i].Hash = audit.EntryHash(m.entries[i])
		}
	}
	return m
}

// editEntry changes one field of e, chosen by arg.
func editEntry(e *store.AuditEntry, arg byte) {
	switch arg % 8 {
	case 0:
		e.Tenant += "x"
	case 1:
		e.Actor = "user:u2"
	case 2:
		e.Action = "call.unmask"
	case 3:
		e.Object += "!"
	case 4:
		e.Detail = `{"i":-1}`
	case 5:
		e.At = e.At.Add(audit.Precision)
	case 6:
		e.Prev = append(bytes.Clone(e.Prev[:31]), e.Prev[31]^1)
	case 7:
		e.Hash = append(bytes.Clone(e.Hash[:31]), e.Hash[31]^1)
	}
}

// validLog is the definition Verify implements, written plainly: every
// checkpoint is signed by pub; the entries have consecutive seqs from 1,
// or from a seq a checkpoint vouches for (a purged log); each entry's
// hash is its fields' and links to the entry before (32 zero bytes before
// seq 1); a checkpoint at an entry has its hash; and no checkpoint is
// after the last entry.
func validLog(m *memLog, pub ed25519.PublicKey) bool {
	cps := map[int64]store.AuditCheckpoint{}
	for _, c := range m.cps {
		if !ed25519.Verify(pub, audit.CheckpointMessage(c), c.Signature) {
			return false
		}
		cps[c.Seq] = c
	}
	if len(m.entries) == 0 {
		return len(m.cps) == 0
	}
	first := m.entries[0]
	prev := make([]byte, audit.HashSize)
	if first.Seq != 1 {
		c, ok := cps[first.Seq]
		if !ok || !bytes.Equal(c.Hash, first.Hash) {
			return false
		}
		prev = first.Prev
	}
	for i, e := range m.entries {
		if e.Seq != first.Seq+int64(i) || !bytes.Equal(e.Hash, audit.EntryHash(e)) || !bytes.Equal(e.Prev, prev) {
			return false
		}
		if c, ok := cps[e.Seq]; ok && !bytes.Equal(c.Hash, e.Hash) {
			return false
		}
		prev = e.Hash
	}
	last := m.entries[len(m.entries)-1].Seq
	for _, c := range m.cps {
		if c.Seq > last {
			return false
		}
	}
	return true
}

// describe lists a log's seqs, hashes and links for a failure message.
func describe(m *memLog) string {
	var b strings.Builder
	for _, e := range m.entries {
		fmt.Fprintf(&b, "seq %d: prev %x, hash %x (fields give it: %v)\n", e.Seq, e.Prev[:4], e.Hash[:4], bytes.Equal(e.Hash, audit.EntryHash(e)))
	}
	for _, c := range m.cps {
		fmt.Fprintf(&b, "checkpoint at %d: hash %x\n", c.Seq, c.Hash[:4])
	}
	return b.String()
}
