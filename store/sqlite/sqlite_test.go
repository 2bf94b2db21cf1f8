package sqlite

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/storetest"
)

var recordIDs call.IDs

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db"))
	})
}

func mustOpen(tb testing.TB, path string) *DB {
	tb.Helper()
	db, err := Open(tb.Context(), path)
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "data", "ringfence.db")
	db := mustOpen(t, path)
	want := store.Tenant{ID: "acme", Name: "Acme", Region: "GB", CreatedAt: time.Unix(1700000000, 123456789).UTC()}
	if err := db.CreateTenant(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{filepath.Dir(path): 0o700 | os.ModeDir, path: 0o600} {
		if fi, err := os.Stat(name); err != nil || fi.Mode() != mode {
			t.Errorf("%s: mode %v, %v; want %v", name, fi.Mode(), err, mode)
		}
	}

	db = mustOpen(t, path)
	defer db.Close()
	got, err := db.Tenants(ctx)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("Tenants after reopening = %+v, %v; want %+v", got, err, want)
	}

	p, err := newMigrations(db.write)
	if err != nil {
		t.Fatal(err)
	}
	if pending, err := p.HasPending(ctx); err != nil || pending {
		t.Errorf("HasPending after Open = %v, %v; want false", pending, err)
	}
	if res, err := p.Up(ctx); err != nil || len(res) != 0 {
		t.Errorf("second migration run = %v, %v; want a no-op", res, err)
	}
}

func TestUnknownTenant(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db"))
	defer db.Close()
	err := db.InsertCalls(t.Context(), []store.Call{{ID: recordIDs.Next(time.Now()), Tenant: "nobody", StartedAt: time.Now()}})
	if call.ErrorCode(err) != call.NotFound {
		t.Errorf("InsertCalls for an unknown tenant: %v; want NotFound", err)
	}
}

func BenchmarkInsertCalls(b *testing.B) {
	for _, size := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db := mustOpen(b, filepath.Join(b.TempDir(), "ringfence.db"))
			defer db.Close()
			ctx := b.Context()
			if err := db.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Acme", Region: "GB"}); err != nil {
				b.Fatal(err)
			}
			batch := make([]store.Call, size)
			for i := range batch {
				batch[i] = store.Call{
					Tenant: "acme", Ref: "a1b2c3d4-e5f6", Ingress: "sbc-in", Appliance: "node-1",
					CallerPseudonym: random(32), DialledPseudonym: random(32), UserPseudonym: random(32),
					Score: 0.42, Action: call.Allow, Markers: []string{"cli.unverified", "route.international"},
					Verdict: []byte(`{"live":{"score":0.42,"action":"allow","markers":[{"code":"cli.unverified","weight":1.1},` +
						`{"code":"route.international","weight":0.6}],"policy":"3","evaluated_at":"2025-03-14T15:09:26.535897Z"}}`),
					Sealed: random(300),
				}
			}
			n := 0
			for b.Loop() {
				now := time.Now()
				for i := range batch {
					batch[i].ID, batch[i].StartedAt = recordIDs.Next(now), now
				}
				if err := db.InsertCalls(ctx, batch); err != nil {
					b.Fatal(err)
				}
				n += size
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func random(n int) []byte {
	p := make([]byte, n)
	rand.Read(p)
	return p
}
