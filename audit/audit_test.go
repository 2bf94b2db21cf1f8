package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// clock is a fake clock that moves one second on every reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 14, 15, 9, 26, 535897123, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a log on a real SQLite file, and a raw connection to the same
// file to tamper with it as an attacker with file access would.
type fixture struct {
	t     *testing.T
	path  string
	db    *sqlite.DB
	key   ed25519.PrivateKey
	log   *audit.Log
	clock *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ringfence.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	seed := make([]byte, 32)
	rand.Read(seed)
	f := &fixture{t: t, path: path, db: db, key: audit.KeyFromSecret(seed), clock: newClock()}
	f.log = audit.New(db, f.key, "audit-1", f.clock.Now)
	return f
}

func (f *fixture) pub() ed25519.PublicKey { return f.key.Public().(ed25519.PublicKey) }

// record records n events, alternating tenants and actions.
func (f *fixture) record(n int) {
	f.t.Helper()
	actions := []string{audit.ActionCallRead, audit.ActionListWrite, audit.ActionDSARExport, audit.ActionKeysRotate}
	for i := range n {
		tenant := []string{"acme", "bank", ""}[i%3]
		err := f.log.Record(f.t.Context(), audit.Event{
			Tenant: tenant, Actor: audit.UserActor("u1"), Action: actions[i%len(actions)],
			Object: "rec-" + strings.Repeat("x", i%5), Detail: map[string]int{"i": i},
		})
		if err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) checkpoint() store.AuditCheckpoint {
	f.t.Helper()
	c, err := f.log.Checkpoint(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) verify() audit.Report {
	f.t.Helper()
	rep, err := audit.Verify(f.t.Context(), f.db, f.pub())
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// raw opens the database file directly and drops the append-only
// triggers, as an attacker with the file would.
func (f *fixture) raw() *sql.DB {
	f.t.Helper()
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: f.path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		f.t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	f.t.Cleanup(func() { raw.Close() })
	for _, tr := range []string{"audit_log_no_update", "audit_log_no_delete", "audit_checkpoints_no_update", "audit_checkpoints_no_delete"} {
		f.exec(raw, `DROP TRIGGER IF EXISTS `+tr)
	}
	return raw
}

func (f *fixture) exec(raw *sql.DB, q string, args ...any) {
	f.t.Helper()
	if _, err := raw.ExecContext(f.t.Context(), q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

// entry reads one stored entry.
func (f *fixture) entry(seq int64) store.AuditEntry {
	f.t.Helper()
	es, err := f.db.AuditEntries(f.t.Context(), store.AuditFilter{After: seq - 1, Limit: 1})
	if err != nil || len(es) != 1 || es[0].Seq != seq {
		f.t.Fatalf("entry %d: %v, %v", seq, es, err)
	}
	return es[0]
}

// renumber moves the entries with seq >= from by delta (two steps, so the
// primary key never collides).
func (f *fixture) renumber(raw *sql.DB, from, delta int64) {
	f.exec(raw, `UPDATE audit_log SET seq = -(seq + ?) WHERE seq >= ?`, delta, from)
	f.exec(raw, `UPDATE audit_log SET seq = -seq WHERE seq < 0`)
}

func insertEntry(f *fixture, raw *sql.DB, e store.AuditEntry) {
	f.exec(raw, `INSERT INTO audit_log (seq, at, tenant, actor, action, object, detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.At.UnixNano(), e.Tenant, e.Actor, e.Action, e.Object, e.Detail, e.Prev, e.Hash)
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestVerifyTampering builds a log of 12 entries with checkpoints at 6 and
// 9, tampers with it in one way, and checks that Verify names the kind and
// the first seq affected.
func TestVerifyTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(f *fixture, raw *sql.DB)
		kind   audit.Kind
		seq    int64
	}{
		{"edit a field", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `UPDATE audit_log SET object = 'rec-other' WHERE seq = 4`)
		}, audit.Edited, 4},
		{"edit the time", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `UPDATE audit_log SET at = at + 1000 WHERE seq = 11`)
		}, audit.Edited, 11},
		{"edit the link", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `UPDATE audit_log SET prev = ? WHERE seq = 7`, random(32))
		}, audit.Edited, 7},
		{"edit a field and rehash the entry", func(f *fixture, raw *sql.DB) {
			e := f.entry(4)
			e.Actor = "user:someone-else"
			f.exec(raw, `UPDATE audit_log SET actor = ?, hash = ? WHERE seq = 4`, e.Actor, audit.EntryHash(e))
		}, audit.Edited, 4},
		{"swap adjacent rows", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `UPDATE audit_log SET seq = -4 WHERE seq = 4`)
			f.exec(raw, `UPDATE audit_log SET seq = 4 WHERE seq = 5`)
			f.exec(raw, `UPDATE audit_log SET seq = 5 WHERE seq = -4`)
		}, audit.Reordered, 4},
		{"swap distant rows", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `UPDATE audit_log SET seq = -3 WHERE seq = 3`)
			f.exec(raw, `UPDATE audit_log SET seq = 3 WHERE seq = 8`)
			f.exec(raw, `UPDATE audit_log SET seq = 8 WHERE seq = -3`)
		}, audit.Reordered, 3},
		{"insert a well-formed row", func(f *fixture, raw *sql.DB) {
			prev := f.entry(4)
			f.renumber(raw, 5, 1)
			e := store.AuditEntry{Seq: 5, At: prev.At, Tenant: "acme", Actor: "operator", Action: "call.read", Object: "rec-fake", Prev: prev.Hash}
			e.Hash = audit.EntryHash(e)
			insertEntry(f, raw, e)
		}, audit.Inserted, 5},
		{"insert a sloppy row", func(f *fixture, raw *sql.DB) {
			f.renumber(raw, 5, 1)
			insertEntry(f, raw, store.AuditEntry{Seq: 5, At: f.entry(4).At, Actor: "operator", Action: "call.read", Prev: random(32), Hash: random(32)})
		}, audit.Inserted, 5},
		{"delete a middle row", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `DELETE FROM audit_log WHERE seq = 5`)
		}, audit.Deleted, 5},
		{"delete a middle row and renumber", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `DELETE FROM audit_log WHERE seq = 5`)
			f.renumber(raw, 6, -1)
		}, audit.Deleted, 5},
		{"delete the head without a checkpoint", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `DELETE FROM audit_log WHERE seq < 4`)
		}, audit.Deleted, 1},
		{"truncate the tail past a checkpoint", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `DELETE FROM audit_log WHERE seq >= 8`)
		}, audit.Truncated, 8},
		{"truncate the tail past a checkpoint and append", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `DELETE FROM audit_log WHERE seq >= 8`)
			f.record(2)
		}, audit.Deleted, 8},
		{"truncate the tail and reset the head", func(f *fixture, raw *sql.DB) {
			last := f.entry(7)
			f.exec(raw, `DELETE FROM audit_log WHERE seq >= 8`)
			f.exec(raw, `UPDATE audit_head SET seq = 7, hash = ?`, last.Hash)
			f.record(4)
		}, audit.Truncated, 9},
		{"rewrite the chain from a seq", func(f *fixture, raw *sql.DB) {
			prev := f.entry(6).Hash
			for seq := int64(7); seq <= 12; seq++ {
				e := f.entry(seq)
				if seq == 7 {
					e.Object = "rec-rewritten"
				}
				e.Prev = prev
				e.Hash = audit.EntryHash(e)
				f.exec(raw, `UPDATE audit_log SET object = ?, prev = ?, hash = ? WHERE seq = ?`, e.Object, e.Prev, e.Hash, seq)
				prev = e.Hash
			}
		}, audit.Truncated, 9},
		{"forge a checkpoint signature", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `UPDATE audit_checkpoints SET signature = ? WHERE seq = 9`, random(64))
		}, audit.BadSignature, 9},
		{"move a checkpoint", func(f *fixture, raw *sql.DB) {
			f.exec(raw, `UPDATE audit_checkpoints SET seq = 10, hash = ? WHERE seq = 9`, f.entry(10).Hash)
		}, audit.BadSignature, 10},
		{"sign a checkpoint with another key", func(f *fixture, raw *sql.DB) {
			c := store.AuditCheckpoint{Seq: 11, Hash: f.entry(11).Hash, At: f.clock.Now().Truncate(audit.Precision), KeyID: "audit-1"}
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			c.Signature = ed25519.Sign(other, audit.CheckpointMessage(c))
			if err := f.db.PutAuditCheckpoint(f.t.Context(), c); err != nil {
				f.t.Fatal(err)
			}
		}, audit.BadSignature, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.record(6)
			f.checkpoint()
			f.record(3)
			f.checkpoint()
			f.record(3)
			if rep := f.verify(); !rep.OK() || rep.Entries != 12 || rep.Checkpoints != 2 {
				t.Fatalf("before tampering: %v; want 12 entries and 2 checkpoints ok", rep)
			}
			tt.tamper(f, f.raw())
			rep := f.verify()
			if rep.OK() {
				t.Fatalf("after tampering: %v; want a break", rep)
			}
			if rep.Break.Kind != tt.kind || rep.Break.Seq != tt.seq {
				t.Errorf("after tampering: %v; want %s at seq %d", rep, tt.kind, tt.seq)
			}
		})
	}
}

func TestVerifyIntact(t *testing.T) {
	f := newFixture(t)
	if rep := f.verify(); !rep.OK() || rep.Entries != 0 {
		t.Errorf("empty log: %v; want ok", rep)
	}
	// More than two pages, appended in one batch through the store with
	// the documented hash (one Record each would be one commit each).
	bulk := make([]store.AuditEntry, 2500)
	for i := range bulk {
		bulk[i] = store.AuditEntry{At: f.clock.Now().Truncate(audit.Precision), Tenant: "acme", Actor: "operator", Action: audit.ActionCallRead}
	}
	if err := f.db.AppendAudit(t.Context(), bulk, func(prev []byte, e *store.AuditEntry) { e.Hash = audit.EntryHash(*e) }); err != nil {
		t.Fatal(err)
	}
	if rep := f.verify(); !rep.OK() || rep.First != 1 || rep.Last != 2500 || rep.Entries != 2500 {
		t.Errorf("intact log: %v; want 1..2500 ok", rep)
	}
	c := f.checkpoint()
	f.record(1)
	rep := f.verify()
	if !rep.OK() || rep.LastCheckpoint != c.Seq || rep.Checkpoints != 1 {
		t.Errorf("intact log with a checkpoint: %v; want ok with the checkpoint at %d", rep, c.Seq)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	rep, err := audit.Verify(t.Context(), f.db, other.Public().(ed25519.PublicKey))
	if err != nil || rep.OK() || rep.Break.Kind != audit.BadSignature {
		t.Errorf("Verify with another key: %v, %v; want a bad signature", rep, err)
	}
	if _, err := audit.Verify(t.Context(), f.db, nil); call.ErrorCode(err) != call.Invalid {
		t.Errorf("Verify without a key: %v; want Invalid", err)
	}
}

func TestCheckpoint(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	if _, err := f.log.Checkpoint(ctx); call.ErrorCode(err) != call.NotFound {
		t.Errorf("Checkpoint of an empty log: %v; want NotFound", err)
	}
	f.record(3)
	c := f.checkpoint()
	if c.Seq != 3 || !bytes.Equal(c.Hash, f.entry(3).Hash) || c.KeyID != "audit-1" ||
		!ed25519.Verify(f.pub(), audit.CheckpointMessage(c), c.Signature) {
		t.Errorf("Checkpoint = %+v; want seq 3 signed by the key", c)
	}
	if again := f.checkpoint(); again.Seq != c.Seq || !bytes.Equal(again.Signature, c.Signature) {
		t.Errorf("second Checkpoint with no new entry = %+v; want the first", again)
	}
	f.record(2)
	if c2 := f.checkpoint(); c2.Seq != 5 {
		t.Errorf("Checkpoint after two entries at seq %d; want 5", c2.Seq)
	}

	// It refuses to vouch for a broken chain.
	f.record(2)
	f.exec(f.raw(), `UPDATE audit_log SET object = 'x' WHERE seq = 6`)
	if _, err := f.log.Checkpoint(ctx); !errors.Is(err, audit.ErrBroken) {
		t.Errorf("Checkpoint of a broken log: %v; want ErrBroken", err)
	}

	noKey := audit.New(f.db, nil, "", nil)
	if _, err := noKey.Checkpoint(ctx); call.ErrorCode(err) != call.Invalid {
		t.Errorf("Checkpoint without a key: %v; want Invalid", err)
	}
}

func TestPurge(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	f.record(5)
	if n, err := f.log.Purge(ctx, time.Time{}); err != nil || n != 0 {
		t.Errorf("Purge without a checkpoint = %d, %v; want 0", n, err)
	}
	old := f.checkpoint() // seq 5
	f.clock.Advance(24 * time.Hour)
	f.record(3)
	f.checkpoint() // seq 8, a day later
	f.record(2)

	// Within retention: nothing goes.
	f.clock.Advance(5 * 365 * 24 * time.Hour)
	if n, err := f.log.Purge(ctx, time.Time{}); err != nil || n != 0 {
		t.Errorf("Purge within retention = %d, %v; want 0", n, err)
	}
	// Six years after the first checkpoint, but not the second: the entries
	// before the first go.
	f.clock.Advance(366*24*time.Hour - 12*time.Hour)
	n, err := f.log.Purge(ctx, time.Time{})
	if err != nil || n != old.Seq-1 {
		t.Fatalf("Purge = %d, %v; want %d", n, err, old.Seq-1)
	}
	rep := f.verify()
	if !rep.OK() || rep.First != old.Seq {
		t.Errorf("after purge: %v; want ok from seq %d", rep, old.Seq)
	}
	purges, err := f.db.AuditEntries(ctx, store.AuditFilter{ActionPrefix: audit.ActionRetentionPurge})
	if err != nil || len(purges) != 1 || purges[0].Object != "audit" || purges[0].Actor != audit.ActorSystem {
		t.Errorf("purge entries = %+v, %v; want one by the system on audit", purges, err)
	}
	if n, err := f.log.Purge(ctx, time.Time{}); err != nil || n != 0 {
		t.Errorf("second Purge = %d, %v; want 0", n, err)
	}

	// Tampering with the retained start is still found.
	f.exec(f.raw(), `UPDATE audit_log SET object = 'x' WHERE seq = ?`, old.Seq)
	if rep := f.verify(); rep.OK() || rep.Break.Seq != old.Seq {
		t.Errorf("after editing the retained start: %v; want a break at %d", rep, old.Seq)
	}
}

func TestRecord(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	tests := []struct {
		name string
		ev   audit.Event
		code string
	}{
		{"ok", audit.Event{Tenant: "acme", Actor: audit.KeyActor("ops"), Action: audit.ActionCallRead, Object: "01JABCDEF", Detail: map[string]int{"n": 3}}, ""},
		{"platform", audit.Event{Actor: audit.ActorOperator, Action: audit.ActionKeysRewrap}, ""},
		{"no actor", audit.Event{Action: audit.ActionCallRead}, call.Invalid},
		{"no action", audit.Event{Actor: "operator"}, call.Invalid},
		{"bad action", audit.Event{Actor: "operator", Action: "Call Read"}, call.Invalid},
		{"action with empty word", audit.Event{Actor: "operator", Action: "call..read"}, call.Invalid},
		{"number in object", audit.Event{Actor: "operator", Action: "call.read", Object: "caller +447700900123"}, call.Invalid},
		{"number in detail", audit.Event{Actor: "operator", Action: "call.read", Detail: map[string]string{"caller": "+14155550100"}}, call.Invalid},
		{"bad detail", audit.Event{Actor: "operator", Action: "call.read", Detail: func() {}}, call.Invalid},
		{"NUL", audit.Event{Actor: "operator\x00", Action: "call.read"}, call.Invalid},
		{"invalid UTF-8", audit.Event{Actor: "operator", Action: "call.read", Object: "\xff"}, call.Invalid},
		{"long object", audit.Event{Actor: "operator", Action: "call.read", Object: strings.Repeat("a", 2000)}, call.TooLarge},
		{"long detail", audit.Event{Actor: "operator", Action: "call.read", Detail: strings.Repeat("a", 70000)}, call.TooLarge},
	}
	want := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.log.Record(ctx, tt.ev)
			if got := call.ErrorCode(err); got != tt.code {
				t.Errorf("Record: %v (code %q); want code %q", err, got, tt.code)
			}
			if err == nil {
				want++
			}
			if err != nil && strings.Contains(err.Error(), "+44") {
				t.Errorf("error %q repeats the number", err)
			}
		})
	}
	es, err := f.db.AuditEntries(ctx, store.AuditFilter{})
	if err != nil || len(es) != want {
		t.Fatalf("log has %d entries, %v; want %d", len(es), err, want)
	}
	e := es[0]
	if e.Tenant != "acme" || e.Actor != "key:ops" || e.Action != "call.read" || e.Object != "01JABCDEF" ||
		e.Detail != `{"n":3}` || e.At.Nanosecond()%1000 != 0 || e.At.IsZero() {
		t.Errorf("stored entry %+v", e)
	}
	if !bytes.Equal(audit.EntryHash(e), e.Hash) || !bytes.Equal(e.Prev, make([]byte, 32)) {
		t.Errorf("stored entry's hash or prev is wrong: %+v", e)
	}
}

// TestEntryHash pins the encoding (docs/audit.md): a change to it breaks
// every stored log, so it must be deliberate.
func TestEntryHash(t *testing.T) {
	base := store.AuditEntry{
		Seq: 7, At: time.Unix(1700000000, 123456000).UTC(), Tenant: "acme", Actor: "user:u1",
		Action: "call.read", Object: "rec-1", Detail: `{"n":1}`, Prev: bytes.Repeat([]byte{0xab}, 32),
	}
	// Computed independently (Python's hashlib over the documented encoding).
	const want = "8b788fa13ff26fc0a6d59ca7cd4880c370ee8bb56853339e4913298cd9f01291"
	if got := hex.EncodeToString(audit.EntryHash(base)); got != want {
		t.Errorf("EntryHash = %s; want %s", got, want)
	}
	// Every field counts, and moving bytes between fields changes the hash.
	variants := map[string]func(e *store.AuditEntry){
		"seq":    func(e *store.AuditEntry) { e.Seq++ },
		"at":     func(e *store.AuditEntry) { e.At = e.At.Add(time.Microsecond) },
		"tenant": func(e *store.AuditEntry) { e.Tenant = "bank" },
		"actor":  func(e *store.AuditEntry) { e.Actor = "user:u2" },
		"action": func(e *store.AuditEntry) { e.Action = "call.unmask" },
		"object": func(e *store.AuditEntry) { e.Object = "rec-2" },
		"detail": func(e *store.AuditEntry) { e.Detail = "" },
		"prev":   func(e *store.AuditEntry) { e.Prev = make([]byte, 32) },
		"shift":  func(e *store.AuditEntry) { e.Tenant, e.Actor = "acmeu", "ser:u1" },
		"hash":   func(e *store.AuditEntry) { e.Hash = []byte{1} }, // ignored
	}
	h0 := audit.EntryHash(base)
	for name, change := range variants {
		e := base
		change(&e)
		if same := bytes.Equal(audit.EntryHash(e), h0); same != (name == "hash") {
			t.Errorf("changing %s: same hash = %v", name, same)
		}
	}
}

func TestKeyFromSecret(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	a, b := audit.KeyFromSecret(secret), audit.KeyFromSecret(bytes.Clone(secret))
	if a == nil || !a.Equal(b) {
		t.Errorf("KeyFromSecret is not deterministic")
	}
	if !bytes.Equal(a.Seed(), secret) {
		t.Errorf("KeyFromSecret's seed is not the secret")
	}
	for _, n := range []int{0, 16, 31, 33, 64} {
		if k := audit.KeyFromSecret(make([]byte, n)); k != nil {
			t.Errorf("KeyFromSecret of %d bytes = a key; want nil", n)
		}
	}
}

func TestConcurrentRecord(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				if err := f.log.Record(context.Background(), audit.Event{Actor: "operator", Action: audit.ActionAuditRead}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if rep := f.verify(); !rep.OK() || rep.Entries != 100 {
		t.Errorf("after concurrent records: %v; want 100 ok", rep)
	}
}

func BenchmarkRecord(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ringfence.db")
	db, err := sqlite.Open(b.Context(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	log := audit.New(db, audit.KeyFromSecret(make([]byte, 32)), "k", nil)
	ev := audit.Event{Tenant: "acme", Actor: audit.UserActor("u1"), Action: audit.ActionCallRead,
		Object: "01JABCDEFGHJKMNPQRSTVWXYZ0", Detail: map[string]any{"fields": []string{"caller", "dialled"}}}
	for b.Loop() {
		if err := log.Record(b.Context(), ev); err != nil {
			b.Fatal(err)
		}
	}
}
