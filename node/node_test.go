package node

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store/sqlite"
)

func openNode(tb testing.TB, dir string, mk seal.MasterKey) *Node {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "rf.db"))
	if err != nil {
		tb.Fatal(err)
	}
	n, err := Open(context.Background(), Config{}, st, seal.NewKeyring(mk))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return n
}

// TestDurableAfterSync checks that Sync makes every screened call, its
// call-end update and its new link durable: a second node on the same
// files after Close sees them all.
func TestDurableAfterSync(t *testing.T) {
	dir := t.TempDir()
	mk, _ := seal.NewMasterKey()
	n := openNode(t, dir, mk)
	ctx := t.Context()
	if _, _, err := n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 500 {
		c, err := n.Screen(ctx, Incoming{Tenant: "bank", Caller: fmt.Sprintf("+4474001%05d", i), Dialled: "+442079460123"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
		if i%2 == 0 {
			if _, err := n.UpdateCallEnd(ctx, "bank", c.ID, call.End{Duration: time.Duration(i) * time.Second, Result: call.Answered}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2 := openNode(t, dir, mk)
	defer n2.Close()
	for i, id := range ids {
		c, err := n2.Call(ctx, "bank", id)
		if err != nil {
			t.Fatalf("record %d after restart: %v", i, err)
		}
		if (c.End != nil) != (i%2 == 0) || (c.End != nil && c.End.Duration != time.Duration(i)*time.Second) {
			t.Fatalf("record %d end = %+v", i, c.End)
		}
	}
}

// BenchmarkRecorder measures sustained records/s from Screen to commit on
// SQLite (synchronous=FULL): b.N calls screened by 8 goroutines, then Sync.
func BenchmarkRecorder(b *testing.B) {
	mk, _ := seal.NewMasterKey()
	n := openNode(b, b.TempDir(), mk)
	defer n.Close()
	ctx := context.Background()
	if _, _, err := n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		b.Fatal(err)
	}
	in := make([]Incoming, 4096)
	for i := range in {
		in[i] = Incoming{Tenant: "bank", Caller: fmt.Sprintf("+4474001%05d", i), Dialled: "+442079460123", UserRef: fmt.Sprintf("cust-%d", i),
			Signalling: call.Signalling{From: "<sip:+447400100000@carrier.example>", Verstat: "TN-Validation-Passed-A"}}
	}
	b.ResetTimer()
	start := time.Now()
	b.SetParallelism(4)
	var worker atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		j := int(worker.Add(1))
		for pb.Next() {
			if _, err := n.Screen(ctx, in[j%len(in)]); err != nil {
				b.Error(err)
				return
			}
			j += 7
		}
	})
	if err := n.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
