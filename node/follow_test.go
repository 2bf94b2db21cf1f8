package node

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/sqlite"
)

var _ Notifier = (*postgres.DB)(nil)

// eventually polls cond until it holds, failing tb after limit; it returns
// how long that took.
func eventually(tb testing.TB, what string, limit time.Duration, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			tb.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// TestFollow runs two nodes on one store, as two processes would, and
// checks that every kind of change made on one reaches the other's memory.
// On SQLite the follower polls (every 50 ms here); on PostgreSQL it is
// notified. The lags are logged (docs/PERFORMANCE.md quotes them); the
// test waits up to 10 s for each, so a loaded machine does not fail it.
func TestFollow(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rf.db")
		testFollow(t, 50*time.Millisecond, func() store.Store {
			st, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		testFollow(t, 0, func() store.Store {
			st, err := postgres.Open(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

func testFollow(t *testing.T, poll time.Duration, open func() store.Store) {
	ctx := t.Context()
	mk, _ := seal.NewMasterKey()
	start := func() *Node {
		st := open()
		n, err := Open(ctx, Config{Follow: FollowConfig{Poll: poll}}, st, seal.NewKeyring(mk))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			n.Close()
			st.Close()
		})
		return n
	}
	a, b := start(), start()
	const limit = 10 * time.Second
	var lags []time.Duration

	// A tenant made on A is loaded by B.
	_, key, err := a.CreateTenant(ctx, "bank", "Bank", "GB")
	if err != nil {
		t.Fatal(err)
	}
	lags = append(lags, eventually(t, "tenant on B", limit, func() bool { _, err := b.Tenant("bank"); return err == nil }))
	eventually(t, "API key on B", limit, func() bool {
		p, err := b.Authenticate(ctx, key)
		return err == nil && p.Tenant == "bank" && p.Role == call.Admin
	})

	// List entries: one by one, deleted, and a bulk import.
	const caller = "+447400123456"
	screen := func(n *Node, from, user string) *call.Call {
		t.Helper()
		c, err := n.Screen(ctx, Incoming{Tenant: "bank", Caller: from, Dialled: "+442079460123", UserRef: user})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// (Polled in memory: screening the same caller every few
	// milliseconds would soon trip the velocity markers.)
	denied := func() bool {
		_, ok := b.engine.Listed("bank", call.DenyList, b.engine.Number("bank", caller))
		return ok
	}
	if got := screen(b, caller, "").Verdict.Action; got != call.Allow {
		t.Fatalf("before the deny entry B says %s", got)
	}
	if _, err := a.AddListEntry(ctx, "bank", call.DenyList, caller, "reported", time.Time{}); err != nil {
		t.Fatal(err)
	}
	lags = append(lags, eventually(t, "deny entry on B", limit, denied))
	if got := screen(b, caller, "").Verdict.Action; got != call.Block {
		t.Fatalf("with the deny entry B says %s", got)
	}
	if err := a.DeleteListEntry(ctx, "bank", call.DenyList, caller); err != nil {
		t.Fatal(err)
	}
	lags = append(lags, eventually(t, "deletion on B", limit, func() bool { return !denied() }))
	var csv strings.Builder
	for i := range 2500 {
		fmt.Fprintf(&csv, "+4474009%05d,bulk\n", i)
	}
	res, err := a.ImportList(ctx, "bank", call.DNOList, strings.NewReader(csv.String()), "")
	if err != nil || res.Added != 2500 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	took := eventually(t, "import on B", 30*time.Second, func() bool { return b.engine.ListLen("bank", call.DNOList) == 2500 })
	t.Logf("import of 2500 numbers on A applied on B in %v", took)

	// Routes and policy.
	r := call.Route{ID: "intl-in", Kind: call.International, Country: "FR"}
	if err := a.PutRoute(ctx, "bank", r); err != nil {
		t.Fatal(err)
	}
	lags = append(lags, eventually(t, "route on B", limit, func() bool { got, err := b.Route("bank", "intl-in"); return err == nil && got == r }))
	if err := a.DeleteRoute(ctx, "bank", "intl-in"); err != nil {
		t.Fatal(err)
	}
	lags = append(lags, eventually(t, "route deletion on B", limit, func() bool { _, err := b.Route("bank", "intl-in"); return err != nil }))
	p, _ := a.Policy("bank")
	p.FlagAt = 0.42
	if _, err := a.PutPolicy(ctx, "bank", p); err != nil {
		t.Fatal(err)
	}
	lags = append(lags, eventually(t, "policy on B", limit, func() bool { got, _ := b.Policy("bank"); return got.Version == 2 && got.FlagAt == 0.42 }))
	// B's next policy change builds on it.
	p.Version, p.BlockAt = 2, 0.95
	if _, err := b.PutPolicy(ctx, "bank", p); err != nil {
		t.Fatalf("policy change on B after A's: %v", err)
	}

	// Labels on A: a genuine label links the caller to the customer on B;
	// a fraud label denies it and forgets the link.
	const linked = "+447400777888"
	known := func(c *call.Call) bool {
		return slices.ContainsFunc(c.Verdict.Markers, func(m call.Marker) bool { return m.Code == "link.known_customer" })
	}
	if known(screen(b, linked, "cust-9")) {
		t.Fatal("linked before any label")
	}
	c := screen(a, linked, "cust-9")
	if _, err := a.Label(ctx, "bank", c.ID, call.Label{Label: call.Genuine, By: "ana"}); err != nil {
		t.Fatal(err)
	}
	lags = append(lags, eventually(t, "link on B", limit, func() bool { return known(screen(b, linked, "cust-9")) }))
	if _, err := a.Label(ctx, "bank", c.ID, call.Label{Label: call.Fraud, By: "ana"}); err != nil {
		t.Fatal(err)
	}
	lags = append(lags, eventually(t, "fraud label on B", limit, func() bool {
		_, ok := b.engine.Listed("bank", call.DenyList, b.engine.Number("bank", linked))
		return ok
	}))
	if c := screen(b, linked, "cust-9"); c.Verdict.Action != call.Block || known(c) {
		t.Errorf("after the fraud label B says %s with markers %v", c.Verdict.Action, c.Verdict.Markers)
	}
	slices.Sort(lags)
	t.Logf("A -> B: median %v, slowest %v over %d changes (poll %v)", lags[len(lags)/2], lags[len(lags)-1], len(lags), poll)

	// A node that opens while another writes misses nothing committed
	// between its load and its first read of the feed.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			if _, err := a.AddListEntry(ctx, "bank", call.AllowList, fmt.Sprintf("+4420794600%02d", i%100), "", time.Time{}); err != nil {
				t.Error(err)
				return
			}
			if i < 100 {
				continue
			}
			if err := a.DeleteListEntry(ctx, "bank", call.AllowList, fmt.Sprintf("+4420794600%02d", i%100)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	late := start()
	wg.Wait()
	eventually(t, "allow list on a node opened during writes", 5*time.Second, func() bool {
		return late.engine.ListLen("bank", call.AllowList) == 0 && b.engine.ListLen("bank", call.AllowList) == 0
	})
	if got := late.engine.ListLen("bank", call.DNOList); got != 2500 {
		t.Errorf("late node holds %d DNO entries; want 2500", got)
	}
}

// TestFollowSkipsWhatItCannotOpen checks that a change whose ciphertext the
// node cannot open (here: a tenant sealed under another master key) is
// skipped, not retried for ever, and later changes still apply.
func TestFollowSkipsWhatItCannotOpen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "rf.db")
	mk, _ := seal.NewMasterKey()
	other, _ := seal.NewMasterKey()
	var nodes []*Node
	for _, k := range []seal.MasterKey{mk, other, mk} {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		n, err := Open(ctx, Config{Follow: FollowConfig{Poll: 20 * time.Millisecond}}, st, seal.NewKeyring(k))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(); st.Close() })
		nodes = append(nodes, n)
	}
	a, stranger, b := nodes[0], nodes[1], nodes[2]
	if _, _, err := stranger.CreateTenant(ctx, "theirs", "", "GB"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddListEntry(ctx, "bank", call.DenyList, "+447400123456", "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B past the change it cannot open", 2*time.Second, func() bool {
		return b.engine.ListLen("bank", call.DenyList) == 1
	})
	if _, err := b.Tenant("theirs"); err == nil {
		t.Error("B loaded a tenant it cannot open")
	}
}

// TestFollowOff checks that a negative Poll turns the follower off.
func TestFollowOff(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "rf.db")
	mk, _ := seal.NewMasterKey()
	st, _ := sqlite.Open(ctx, path)
	defer st.Close()
	n, err := Open(ctx, Config{Follow: FollowConfig{Poll: -1}}, st, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.follow != nil {
		t.Fatal("follower started with Poll < 0")
	}
}
