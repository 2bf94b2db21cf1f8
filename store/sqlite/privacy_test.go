package sqlite

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/storetest"
)

func TestPrivacy(t *testing.T) {
	storetest.RunPrivacy(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db"))
	})
}

// TestSecureDelete checks that every connection has secure_delete on and
// that a deleted record's bytes leave the database file: present in the
// file after a checkpoint, gone after the delete and another.
func TestSecureDelete(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ringfence.db")
	db := mustOpen(t, path)
	defer db.Close()
	for _, tt := range []struct {
		name string
		conn func() (int, error)
	}{
		{"write", func() (n int, err error) { return n, db.write.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&n) }},
		{"read", func() (n int, err error) { return n, db.read.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&n) }},
	} {
		if n, err := tt.conn(); err != nil || n != 1 {
			t.Errorf("PRAGMA secure_delete on the %s pool = %d, %v; want 1", tt.name, n, err)
		}
	}

	if err := db.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Acme", Region: "GB"}); err != nil {
		t.Fatal(err)
	}
	marker := []byte("MARKER-4f1c9a7e-erase-me-MARKER")
	caller := random(32)
	now := time.Unix(1700000000, 0).UTC()
	c := store.Call{ID: recordIDs.Next(now), Tenant: "acme", StartedAt: now, CallerPseudonym: caller,
		Action: call.Allow, Sealed: append(random(64), marker...)}
	keep := store.Call{ID: recordIDs.Next(now), Tenant: "acme", StartedAt: now, CallerPseudonym: random(32),
		Action: call.Allow, Sealed: random(300)}
	if err := db.InsertCalls(ctx, []store.Call{c, keep}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: c.ID, Label: call.Fraud,
		Sealed: append([]byte("label-"), marker...), At: now}); err != nil {
		t.Fatal(err)
	}
	checkpoint(t, db)
	if n := occurrences(t, path, marker); n < 2 {
		t.Fatalf("marker found %d times in the file before the delete; want 2 (record and label)", n)
	}

	e, err := db.EraseSubject(ctx, "acme", caller, nil)
	if err != nil || e.Calls != 1 || e.Labels != 1 {
		t.Fatalf("EraseSubject = %+v, %v", e, err)
	}
	checkpoint(t, db)
	if n := occurrences(t, path, marker); n != 0 {
		t.Errorf("marker found %d times in the files after erasure and a checkpoint; want 0", n)
	}
	if _, err := db.Call(ctx, "acme", keep.ID); err != nil {
		t.Errorf("Call of the record kept: %v", err)
	}
}

// checkpoint copies the WAL into the database file and truncates it.
func checkpoint(t *testing.T, db *DB) {
	t.Helper()
	var busy, logged, done int
	err := db.write.QueryRowContext(t.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &done)
	if err != nil || busy != 0 {
		t.Fatalf("wal_checkpoint = busy %d, %v", busy, err)
	}
}

// occurrences counts marker in the database file and its WAL.
func occurrences(t *testing.T, path string, marker []byte) int {
	t.Helper()
	n := 0
	for _, name := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		n += bytes.Count(b, marker)
	}
	return n
}
