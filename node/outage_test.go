package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/sqlite"
)

// The outage tests check the recorder's policy (recorder.go) against a
// real failing store: while commits fail, calls are still screened from
// memory; records wait in the queue and are written once the store
// returns; those that do not fit are counted lost; nothing is written
// twice and the store stays sound.

const outageQueue = 500

// TestDiskFull runs SQLite on a small tmpfs and fills it.
func TestDiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=24m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	path := filepath.Join(dir, "rf.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	testOutage(t, st,
		func() { // fill the file system to the last byte
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 64<<10)
			for {
				if _, err := f.Write(buf); err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						t.Fatal(err)
					}
					break
				}
			}
			for _, n := range []int{4096, 512, 1} {
				for {
					if _, err := f.Write(buf[:n]); err != nil {
						break
					}
				}
			}
		},
		func() {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		})

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check after the disk filled: %q, %v", check, err)
	}
}

// TestStoreUnavailable puts a TCP proxy between the node and PostgreSQL
// and cuts it: open connections are closed, new ones refused.
func TestStoreUnavailable(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	u.Host = p.addr()
	st, err := postgres.Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	testOutage(t, st, p.cut, p.restore)
}

// testOutage screens calls while the store works, while it fails (break)
// and after it returns (mend), and checks every record is stored once or
// counted lost.
func testOutage(t *testing.T, st store.Store, breakStore, mend func()) {
	ctx := t.Context()
	mk, _ := seal.NewMasterKey()
	reg := prometheus.NewRegistry()
	n, err := Open(ctx, Config{Recorder: RecorderConfig{Queue: outageQueue, Batch: 100}, Metrics: reg}, st, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		st.Close()
	})
	if _, _, err := n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	screen := func(count int) {
		t.Helper()
		for range count {
			// The deadline is only a safety bound: with the store failing
			// a full queue drops records instead of waiting.
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			c, err := n.Screen(cctx, Incoming{Tenant: "bank", Caller: fmt.Sprintf("+4474001%05d", len(ids)), Dialled: "+442079460123"})
			cancel()
			if err != nil {
				t.Fatalf("call %d screened with the store failing: %v", len(ids), err)
			}
			if c.Verdict.Action == "" || c.Verdict.Action == call.Unscored {
				t.Fatalf("call %d got no verdict: %+v", len(ids), c.Verdict)
			}
			ids = append(ids, c.ID)
		}
	}
	syncWithin := func(d time.Duration) error {
		sctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return n.Sync(sctx)
	}

	screen(50)
	if err := syncWithin(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	breakStore()
	// Enough records that, whatever a commit in flight or SQLite's reused
	// WAL space absorbs, the queue fills and the rest are lost.
	screen(6 * outageQueue)
	if !n.rec.failing.Load() {
		t.Fatal("the recorder does not know the store is failing")
	}
	lost := n.rec.lost.Load()
	if lost == 0 {
		t.Fatal("no record counted lost, yet the queue was full with the store failing")
	}
	if m := gauge(t, reg, "ringfence_records_lost_total"); m != float64(lost) {
		t.Errorf("ringfence_records_lost_total = %g; lost %d", m, lost)
	}
	if m := gauge(t, reg, "ringfence_recorder_failing"); m != 1 {
		t.Errorf("ringfence_recorder_failing = %g with the store failing", m)
	}
	if err := syncWithin(time.Second); call.ErrorCode(err) != call.Unavailable {
		t.Fatalf("Sync with the store failing: %v; want Unavailable", err)
	}
	// A write that is acknowledged only once stored fails, promptly.
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = n.Label(lctx, "bank", ids[0], call.Label{Label: call.Genuine, By: "analyst"})
	cancel()
	if call.ErrorCode(err) != call.Unavailable {
		t.Errorf("label with the store failing: %v; want Unavailable", err)
	}
	mend()
	// Sync is Unavailable until the recorder's next retry (at most a
	// second away) succeeds.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := syncWithin(60 * time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not written within 60 s of the store's return: %v", err)
		}
	}
	if n.rec.failing.Load() {
		t.Error("the recorder still reports the store failing")
	}
	if _, err := n.Label(ctx, "bank", ids[0], call.Label{Label: call.Genuine, By: "analyst"}); err != nil {
		t.Errorf("label after the store returned: %v", err)
	}
	screen(50) // and the node is healthy again
	if err := syncWithin(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	stored := 0
	for i, id := range ids {
		_, err := n.Call(ctx, "bank", id)
		switch {
		case err == nil:
			stored++
		case call.ErrorCode(err) == call.NotFound:
			if i < 50 || i >= len(ids)-50 {
				t.Errorf("record %d, screened with the store working, is missing", i)
			}
		default:
			t.Fatalf("record %d: %v", i, err)
		}
	}
	rows, seen := 0, map[string]bool{}
	for before := ""; ; {
		page, err := st.Calls(ctx, "bank", store.CallFilter{Before: before, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			rows++
			seen[c.ID] = true
		}
		before = page[len(page)-1].ID
	}
	if rows != stored || len(seen) != stored {
		t.Errorf("%d rows (%d distinct ids) in the store for %d stored records", rows, len(seen), stored)
	}
	if got := int64(stored) + n.rec.lost.Load(); got != int64(len(ids)) {
		t.Errorf("stored %d + lost %d = %d; screened %d", stored, n.rec.lost.Load(), got, len(ids))
	}
	if stored < outageQueue {
		t.Errorf("only %d records stored; the queue alone holds %d", stored, outageQueue)
	}
	t.Logf("screened %d, stored %d, lost %d (queue %d)", len(ids), stored, n.rec.lost.Load(), outageQueue)
}

// gauge reads one unlabelled gauge or counter from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// proxy forwards TCP connections to a target until cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// cut closes every open connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
