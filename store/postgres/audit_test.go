package postgres

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/storetest"
)

func TestAudit(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) store.AuditLog {
		return mustOpen(t, pgtest.NewDatabase(t))
	})
}

var auditTestTime = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// auditTestChain hashes prev, the seq and the actor: enough to tell entries
// apart and to check the linkage.
func auditTestChain(prev []byte, e *store.AuditEntry) {
	h := sha256.New()
	h.Write(prev)
	fmt.Fprintf(h, "%d %s", e.Seq, e.Actor)
	e.Hash = h.Sum(nil)
}

// TestAuditAppendsFromTwoNodes appends from two store handles (two
// connection pools, as two nodes have) at once, several goroutines each,
// and checks that the result is one chain with dense seqs.
func TestAuditAppendsFromTwoNodes(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	nodes := []*DB{mustOpen(t, dsn), mustOpen(t, dsn)}
	defer nodes[0].Close()
	defer nodes[1].Close()

	const perNode, appends, batch = 3, 15, 3
	var wg sync.WaitGroup
	for n, db := range nodes {
		for w := range perNode {
			wg.Go(func() {
				for i := range appends {
					es := make([]store.AuditEntry, batch)
					for j := range es {
						es[j] = store.AuditEntry{At: auditTestTime, Actor: fmt.Sprintf("node%d-w%d-%d-%d", n, w, i, j), Action: "call.read"}
					}
					if err := db.AppendAudit(ctx, es, auditTestChain); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()

	var all []store.AuditEntry
	for after := int64(0); ; {
		page, err := nodes[1].AuditEntries(ctx, store.AuditFilter{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	if want := len(nodes) * perNode * appends * batch; len(all) != want {
		t.Fatalf("log has %d entries; want %d", len(all), want)
	}
	prev := make([]byte, 32)
	actors := map[string]bool{}
	for i, e := range all {
		want := e
		auditTestChain(prev, &want)
		if e.Seq != int64(i+1) || !bytes.Equal(e.Prev, prev) || !bytes.Equal(e.Hash, want.Hash) {
			t.Fatalf("entry %d: seq %d prev %x hash %x; want seq %d prev %x hash %x", i, e.Seq, e.Prev, e.Hash, i+1, prev, want.Hash)
		}
		actors[e.Actor] = true
		prev = e.Hash
	}
	if len(actors) != len(all) {
		t.Errorf("%d distinct entries among %d", len(actors), len(all))
	}
	// A batch is contiguous: its entries were appended under one lock.
	for i := 0; i < len(all); i += batch {
		var n, w, k int
		fmt.Sscanf(all[i].Actor, "node%d-w%d-%d-0", &n, &w, &k)
		for j := 1; j < batch; j++ {
			if want := fmt.Sprintf("node%d-w%d-%d-%d", n, w, k, j); all[i+j].Actor != want {
				t.Fatalf("entry %d is %s; want %s (batches must not interleave)", all[i+j].Seq, all[i+j].Actor, want)
			}
		}
	}
}

// TestAuditAppendOnly checks the triggers: the log refuses updates,
// truncation, and deletes other than below a checkpoint, even from raw SQL.
func TestAuditAppendOnly(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t, pgtest.NewDatabase(t))
	defer db.Close()
	es := make([]store.AuditEntry, 3)
	for i := range es {
		es[i] = store.AuditEntry{At: auditTestTime, Actor: fmt.Sprint(i), Action: "keys.rotate"}
	}
	if err := db.AppendAudit(ctx, es, auditTestChain); err != nil {
		t.Fatal(err)
	}
	refused := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := db.pool.Exec(ctx, q); err == nil {
				t.Errorf("%s: no error; want the trigger's", q)
			}
		}
	}
	refused(`UPDATE audit_log SET object = 'x' WHERE seq = 2`, `DELETE FROM audit_log WHERE seq = 3`,
		`DELETE FROM audit_log`, `TRUNCATE audit_log`)
	if err := db.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 2, Hash: es[1].Hash, At: auditTestTime, Signature: []byte{1}, KeyID: "k"}); err != nil {
		t.Fatal(err)
	}
	refused(`UPDATE audit_checkpoints SET key_id = 'x'`, `DELETE FROM audit_checkpoints`,
		`TRUNCATE audit_checkpoints`, `DELETE FROM audit_log WHERE seq = 2`)
	if _, err := db.pool.Exec(ctx, `DELETE FROM audit_log WHERE seq = 1`); err != nil {
		t.Errorf("deleting below a checkpoint: %v", err)
	}
	if _, err := db.PurgeAuditBefore(ctx, 3); call.ErrorCode(err) != call.Invalid {
		t.Errorf("PurgeAuditBefore(3) without a checkpoint: %v; want Invalid", err)
	}
}
