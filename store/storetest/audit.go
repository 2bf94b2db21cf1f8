package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// RunAudit runs the conformance suite of store.AuditLog. Each subtest calls
// open for a fresh, empty store and closes it when done if it has a Close
// method.
func RunAudit(t *testing.T, open func(t *testing.T) store.AuditLog) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.AuditLog)
	}{
		{"Empty", testAuditEmpty},
		{"AppendChain", testAuditAppendChain},
		{"AppendRejected", testAuditAppendRejected},
		{"Filters", testAuditFilters},
		{"PageLimits", testAuditPageLimits},
		{"ConcurrentAppends", testAuditConcurrentAppends},
		{"Checkpoints", testAuditCheckpoints},
		{"Purge", testAuditPurge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if c, ok := s.(interface{ Close() error }); ok {
				defer func() {
					if err := c.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}()
			}
			tt.fn(t, s)
		})
	}
}

// testChain is the suite's chain function: SHA-256 over prev, the seq and
// the fields. Any 32-byte function serves; the store must not care.
func testChain(prev []byte, e *store.AuditEntry) {
	h := sha256.New()
	h.Write(prev)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(e.Seq)))
	for _, f := range []string{e.Tenant, e.Actor, e.Action, e.Object, e.Detail} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		h.Write([]byte(f))
	}
	e.Hash = h.Sum(nil)
}

// auditEntry is an entry as a caller hands it to AppendAudit.
func auditEntry(i int, tenant, actor, action string) store.AuditEntry {
	return store.AuditEntry{
		At: at(i), Tenant: tenant, Actor: actor, Action: action,
		Object: fmt.Sprintf("obj-%d", i), Detail: fmt.Sprintf(`{"i":%d}`, i),
	}
}

func appendAudit(t *testing.T, s store.AuditLog, es ...store.AuditEntry) []store.AuditEntry {
	t.Helper()
	must(t, s.AppendAudit(t.Context(), es, testChain))
	return es
}

// allAudit reads the whole log in pages.
func allAudit(t *testing.T, s store.AuditLog) []store.AuditEntry {
	t.Helper()
	var all []store.AuditEntry
	var after int64
	for {
		page, err := s.AuditEntries(t.Context(), store.AuditFilter{After: after, Limit: 1000})
		must(t, err)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
}

// checkChain checks that es have dense seqs from first and that each Prev
// is the Hash before it (32 zero bytes before seq 1) and each Hash is the
// suite's chain function of the entry.
func checkChain(t *testing.T, es []store.AuditEntry, first int64, prev []byte) {
	t.Helper()
	for i, e := range es {
		if e.Seq != first+int64(i) {
			t.Fatalf("entry %d has seq %d; want %d", i, e.Seq, first+int64(i))
		}
		if !bytes.Equal(e.Prev, prev) {
			t.Fatalf("entry %d: prev %x; want %x", e.Seq, e.Prev, prev)
		}
		want := e
		testChain(prev, &want)
		if !bytes.Equal(e.Hash, want.Hash) {
			t.Fatalf("entry %d: hash %x; want %x", e.Seq, e.Hash, want.Hash)
		}
		prev = e.Hash
	}
}

func testAuditEmpty(t *testing.T, s store.AuditLog) {
	ctx := t.Context()
	es, err := s.AuditEntries(ctx, store.AuditFilter{})
	if err != nil || len(es) != 0 {
		t.Errorf("AuditEntries of an empty log = %v, %v; want none", es, err)
	}
	_, err = s.LastAuditEntry(ctx)
	wantCode(t, "LastAuditEntry of an empty log", err, call.NotFound)
	_, err = s.LastAuditCheckpoint(ctx)
	wantCode(t, "LastAuditCheckpoint with none", err, call.NotFound)
	must(t, s.AppendAudit(ctx, nil, testChain))
	if es, _ := s.AuditEntries(ctx, store.AuditFilter{}); len(es) != 0 {
		t.Errorf("an empty append stored %v", es)
	}
}

func testAuditAppendChain(t *testing.T, s store.AuditLog) {
	ctx := t.Context()
	var sawPrev [][]byte
	first := []store.AuditEntry{
		auditEntry(0, "", "operator", "tenant.create"),
		auditEntry(1, "acme", "user:u1", "call.read"),
		auditEntry(2, "acme", "key:ops", "list.write"),
	}
	must(t, s.AppendAudit(ctx, first, func(prev []byte, e *store.AuditEntry) {
		sawPrev = append(sawPrev, prev)
		if !bytes.Equal(prev, e.Prev) {
			t.Errorf("chain got prev %x but the entry's Prev is %x", prev, e.Prev)
		}
		testChain(prev, e)
	}))
	if len(sawPrev) != 3 || !bytes.Equal(sawPrev[0], make([]byte, 32)) {
		t.Errorf("chain was called with prevs %x; want 3 starting with 32 zero bytes", sawPrev)
	}
	checkChain(t, first, 1, make([]byte, 32))
	second := appendAudit(t, s, auditEntry(3, "bank", "user:u2", "dsar.export"), auditEntry(4, "", "system", "retention.purge"))
	checkChain(t, second, 4, first[2].Hash)

	got := allAudit(t, s)
	equal(t, "AuditEntries", got, append(slices.Clone(first), second...))
	last, err := s.LastAuditEntry(ctx)
	must(t, err)
	equal(t, "LastAuditEntry", last, second[1])
}

func testAuditAppendRejected(t *testing.T, s store.AuditLog) {
	ctx := t.Context()
	appendAudit(t, s, auditEntry(0, "acme", "operator", "keys.rotate"))
	short := func(prev []byte, e *store.AuditEntry) {
		testChain(prev, e)
		if e.Seq == 3 {
			e.Hash = e.Hash[:31]
		}
	}
	err := s.AppendAudit(ctx, []store.AuditEntry{auditEntry(1, "acme", "operator", "a"), auditEntry(2, "acme", "operator", "b")}, short)
	wantCode(t, "AppendAudit with a short hash", err, call.Invalid)
	err = s.AppendAudit(ctx, []store.AuditEntry{{Tenant: "acme", Actor: "operator", Action: "c"}}, testChain)
	wantCode(t, "AppendAudit without a time", err, call.Invalid)

	// Nothing of the failed appends is stored, and the chain goes on from
	// the last stored entry.
	next := appendAudit(t, s, auditEntry(4, "acme", "operator", "d"))
	all := allAudit(t, s)
	if len(all) != 2 {
		t.Fatalf("log has %d entries after failed appends; want 2", len(all))
	}
	checkChain(t, all, 1, make([]byte, 32))
	equal(t, "entry after failed appends", all[1], next[0])
}

func testAuditFilters(t *testing.T, s store.AuditLog) {
	ctx := t.Context()
	es := appendAudit(t, s,
		auditEntry(0, "acme", "user:u1", "call.read"),
		auditEntry(1, "acme", "user:u1", "call.unmask"),
		auditEntry(2, "bank", "user:u2", "call.read"),
		auditEntry(3, "", "operator", "keys.rotate"),
		auditEntry(4, "acme", "key:ops", "dsar.verify_identity"),
		auditEntry(5, "acme", "key:ops", "dsar.verifyXid"), // "_" must not match any character
		auditEntry(6, "acme", "user:u1", "calls%.read"),    // "%" must not match any run
		auditEntry(7, "bank", "user:u1", "call.read"),
		auditEntry(8, "acme", "operator", "callsX.read"),
	)
	pick := func(idx ...int) []store.AuditEntry {
		out := []store.AuditEntry{}
		for _, i := range idx {
			out = append(out, es[i])
		}
		return out
	}
	tests := []struct {
		name string
		f    store.AuditFilter
		want []store.AuditEntry
	}{
		{"all", store.AuditFilter{}, pick(0, 1, 2, 3, 4, 5, 6, 7, 8)},
		{"tenant", store.AuditFilter{Tenant: "acme"}, pick(0, 1, 4, 5, 6, 8)},
		{"action prefix", store.AuditFilter{ActionPrefix: "call."}, pick(0, 1, 2, 7)},
		{"action exact", store.AuditFilter{ActionPrefix: "call.read"}, pick(0, 2, 7)},
		{"action with underscore", store.AuditFilter{ActionPrefix: "dsar.verify_"}, pick(4)},
		{"action with percent", store.AuditFilter{ActionPrefix: "calls%"}, pick(6)},
		{"actor", store.AuditFilter{Actor: "user:u1"}, pick(0, 1, 6, 7)},
		{"from", store.AuditFilter{From: at(6)}, pick(6, 7, 8)},
		{"to", store.AuditFilter{To: at(2)}, pick(0, 1)},
		{"from to", store.AuditFilter{From: at(2), To: at(4)}, pick(2, 3)},
		{"after", store.AuditFilter{After: es[5].Seq}, pick(6, 7, 8)},
		{"limit", store.AuditFilter{Limit: 3}, pick(0, 1, 2)},
		{"combined", store.AuditFilter{Tenant: "bank", ActionPrefix: "call.", Actor: "user:u1", After: 1}, pick(7)},
		{"none", store.AuditFilter{Tenant: "nobody"}, pick()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AuditEntries(ctx, tt.f)
			must(t, err)
			if got == nil {
				got = []store.AuditEntry{}
			}
			equal(t, "AuditEntries", got, tt.want)
		})
	}
}

func testAuditPageLimits(t *testing.T, s store.AuditLog) {
	ctx := t.Context()
	es := make([]store.AuditEntry, 1100)
	for i := range es {
		es[i] = auditEntry(i%60, "acme", "operator", "call.read")
	}
	appendAudit(t, s, es...)
	for _, tt := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {7, 7}, {1000, 1000}, {5000, 1000}} {
		got, err := s.AuditEntries(ctx, store.AuditFilter{Limit: tt.limit})
		must(t, err)
		if len(got) != tt.want {
			t.Errorf("AuditEntries with limit %d returned %d; want %d", tt.limit, len(got), tt.want)
		}
	}
	checkChain(t, allAudit(t, s), 1, make([]byte, 32))
}

func testAuditConcurrentAppends(t *testing.T, s store.AuditLog) {
	const writers, appends = 4, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				es := []store.AuditEntry{
					auditEntry(i, "acme", fmt.Sprintf("user:w%d", w), "call.read"),
					auditEntry(i, "acme", fmt.Sprintf("user:w%d", w), "call.unmask"),
				}
				if err := s.AppendAudit(t.Context(), es, testChain); err != nil {
					t.Error(err)
					return
				}
				if es[1].Seq != es[0].Seq+1 {
					t.Errorf("one append got seqs %d and %d; want consecutive", es[0].Seq, es[1].Seq)
				}
			}
		})
	}
	wg.Wait()
	all := allAudit(t, s)
	if len(all) != writers*appends*2 {
		t.Fatalf("log has %d entries; want %d", len(all), writers*appends*2)
	}
	checkChain(t, all, 1, make([]byte, 32))
}

func testAuditCheckpoints(t *testing.T, s store.AuditLog) {
	ctx := t.Context()
	es := appendAudit(t, s, auditEntry(0, "", "operator", "a"), auditEntry(1, "", "operator", "b"), auditEntry(2, "", "operator", "c"))
	cp := func(e store.AuditEntry, i int) store.AuditCheckpoint {
		return store.AuditCheckpoint{Seq: e.Seq, Hash: e.Hash, At: at(i), Signature: random(64), KeyID: "audit-1"}
	}
	err := s.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 9, Hash: es[0].Hash, At: at(5), Signature: random(64), KeyID: "k"})
	wantCode(t, "PutAuditCheckpoint of a missing entry", err, call.NotFound)
	err = s.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 2, Hash: es[0].Hash, At: at(5), Signature: random(64), KeyID: "k"})
	wantCode(t, "PutAuditCheckpoint with another entry's hash", err, call.Invalid)
	err = s.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 2, Hash: es[1].Hash, Signature: random(64), KeyID: "k"})
	wantCode(t, "PutAuditCheckpoint without a time", err, call.Invalid)

	c1, c3 := cp(es[0], 10), cp(es[2], 11)
	must(t, s.PutAuditCheckpoint(ctx, c3))
	must(t, s.PutAuditCheckpoint(ctx, c1))
	err = s.PutAuditCheckpoint(ctx, cp(es[2], 12))
	wantCode(t, "PutAuditCheckpoint at a checkpointed seq", err, call.Conflict)

	got, err := s.AuditCheckpoints(ctx, 0, 0)
	must(t, err)
	equal(t, "AuditCheckpoints", got, []store.AuditCheckpoint{c1, c3})
	got, err = s.AuditCheckpoints(ctx, 1, 0)
	must(t, err)
	equal(t, "AuditCheckpoints after 1", got, []store.AuditCheckpoint{c3})
	got, err = s.AuditCheckpoints(ctx, 0, 1)
	must(t, err)
	equal(t, "AuditCheckpoints limit 1", got, []store.AuditCheckpoint{c1})
	last, err := s.LastAuditCheckpoint(ctx)
	must(t, err)
	equal(t, "LastAuditCheckpoint", last, c3)
}

func testAuditPurge(t *testing.T, s store.AuditLog) {
	ctx := t.Context()
	var es []store.AuditEntry
	for i := range 6 {
		es = append(es, appendAudit(t, s, auditEntry(i, "acme", "operator", "call.read"))...)
	}
	for _, seq := range []int64{4, 0, 99} {
		n, err := s.PurgeAuditBefore(ctx, seq)
		wantCode(t, fmt.Sprintf("PurgeAuditBefore(%d) without a checkpoint", seq), err, call.Invalid)
		if n != 0 {
			t.Errorf("a refused purge deleted %d", n)
		}
	}
	if got := allAudit(t, s); len(got) != 6 {
		t.Fatalf("refused purges left %d entries; want 6", len(got))
	}
	must(t, s.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 4, Hash: es[3].Hash, At: at(10), Signature: random(64), KeyID: "k"}))
	n, err := s.PurgeAuditBefore(ctx, 4)
	must(t, err)
	if n != 3 {
		t.Errorf("PurgeAuditBefore(4) deleted %d; want 3", n)
	}
	equal(t, "entries after purge", allAudit(t, s), es[3:])
	n, err = s.PurgeAuditBefore(ctx, 4)
	if err != nil || n != 0 {
		t.Errorf("second PurgeAuditBefore(4) = %d, %v; want 0, nil", n, err)
	}
	if cps, _ := s.AuditCheckpoints(ctx, 0, 0); len(cps) != 1 {
		t.Errorf("purge left %d checkpoints; want 1", len(cps))
	}
	// The chain goes on from the newest entry.
	next := appendAudit(t, s, auditEntry(7, "acme", "operator", "call.read"))
	checkChain(t, next, 7, es[5].Hash)
}
