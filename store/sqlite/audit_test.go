package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/storetest"
)

func TestAudit(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) store.AuditLog {
		return mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db"))
	})
}

// TestAuditAppendOnly checks the triggers: the log refuses updates, and
// deletes other than below a checkpoint, even from raw SQL.
func TestAuditAppendOnly(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db"))
	defer db.Close()
	es := make([]store.AuditEntry, 3)
	for i := range es {
		es[i] = store.AuditEntry{At: auditTestTime, Actor: "operator", Action: "keys.rotate"}
	}
	chain := func(prev []byte, e *store.AuditEntry) { e.Hash = append(prev[:0:0], prev...); e.Hash[0]++ }
	if err := db.AppendAudit(ctx, es, chain); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_log SET object = 'x' WHERE seq = 2`,
		`DELETE FROM audit_log WHERE seq = 3`,
		`DELETE FROM audit_log`,
	} {
		if _, err := db.write.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: no error; want the trigger's", q)
		}
	}
	if err := db.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 2, Hash: es[1].Hash, At: auditTestTime, Signature: []byte{1}, KeyID: "k"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_checkpoints SET key_id = 'x'`,
		`DELETE FROM audit_checkpoints`,
		`DELETE FROM audit_log WHERE seq = 2`,
	} {
		if _, err := db.write.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: no error; want the trigger's", q)
		}
	}
	if _, err := db.write.ExecContext(ctx, `DELETE FROM audit_log WHERE seq = 1`); err != nil {
		t.Errorf("deleting below a checkpoint: %v", err)
	}
	if _, err := db.PurgeAuditBefore(ctx, 3); call.ErrorCode(err) != call.Invalid {
		t.Errorf("PurgeAuditBefore(3) without a checkpoint: %v; want Invalid", err)
	}
}

var auditTestTime = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)
