package screen_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/consortium"
	"github.com/ringfence/ringfence/screen"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

var consortiumKey = []byte("test consortium key")

const day = 24 * time.Hour

// consortiumView returns a view whose reciprocity admits members for 30
// days after joining or 90 days after their last report; every tenant
// named joins 60 days before t0 (so only contributors receive).
func consortiumView(joined ...string) *consortium.View {
	v := consortium.NewView(consortiumKey)
	v.SetPolicy(store.Reciprocity{ContributionWindow: 90 * day, GracePeriod: 30 * day}, consortium.DefaultExpiry)
	for _, id := range joined {
		v.SetMember(store.Membership{Tenant: id, JoinedAt: t0.Add(-60 * day)}, time.Time{})
	}
	return v
}

// useConsortium rebuilds the fixture's engine with the view (Config is
// fixed at New), keeping the fixture's clock, tenant and routes.
func (f *fixture) useConsortium(v *consortium.View, p call.Policy) {
	e := screen.New(screen.Config{Now: f.clock.Now, Thresholds: testThresholds, Shaken: fakeShaken{}, Consortium: v})
	e.SetTenant(call.Tenant{ID: tid, Name: "Bank", Region: "GB"}, p)
	for _, r := range testRoutes {
		if err := e.PutRoute(tid, r); err != nil {
			f.tb.Fatal(err)
		}
	}
	f.e = e
}

// reported returns a view in which the tenant contributes (a report of
// another number yesterday) and each of members reported the caller ago.
func reported(ago time.Duration, typ consortium.FraudType, members ...string) *consortium.View {
	v := consortiumView(append([]string{tid}, members...)...)
	v.Report(tid, consortium.Pseudonym(consortiumKey, homeMobile2), consortium.Robocall, t0.Add(-day))
	for _, m := range members {
		v.Report(m, consortium.Pseudonym(consortiumKey, homeMobile), typ, t0.Add(-ago))
	}
	return v
}

func init() {
	cc := func(code, name string, fire bool, detail string, view func() *consortium.View) markerCase {
		return markerCase{code, name, fire, detail, func(f *fixture) *call.Call {
			f.useConsortium(view(), call.DefaultPolicy())
			return f.call(homeMobile, dialled)
		}}
	}
	markerCases = append(markerCases,
		cc("consortium.reported", "one other member", true, "members=1 types=impersonation confidence=0.", func() *consortium.View {
			return reported(30*day, consortium.Impersonation, "bank-b")
		}),
		cc("consortium.reported", "other number reported", false, "", func() *consortium.View {
			v := reported(day, consortium.APP)
			v.Report("bank-b", consortium.Pseudonym(consortiumKey, homeFixed), consortium.APP, t0)
			return v
		}),
		cc("consortium.reported", "only the tenant's own report", false, "", func() *consortium.View {
			v := reported(day, consortium.APP)
			v.Report(tid, consortium.Pseudonym(consortiumKey, homeMobile), consortium.APP, t0.Add(-day))
			return v
		}),
		cc("consortium.reported", "disputed entry", false, "", func() *consortium.View {
			v := reported(day, consortium.APP, "bank-b", "bank-c")
			v.SetDisputed(consortium.Pseudonym(consortiumKey, homeMobile), true)
			return v
		}),
		cc("consortium.reported", "tenant not a member", false, "", func() *consortium.View {
			v := consortiumView("bank-b")
			v.Report("bank-b", consortium.Pseudonym(consortiumKey, homeMobile), consortium.APP, t0)
			return v
		}),
		cc("consortium.reported", "member not contributing (past grace)", false, "", func() *consortium.View {
			v := consortiumView(tid, "bank-b")
			v.Report("bank-b", consortium.Pseudonym(consortiumKey, homeMobile), consortium.APP, t0)
			return v
		}),
		cc("consortium.reported", "former member", false, "", func() *consortium.View {
			v := reported(day, consortium.APP, "bank-b")
			v.Leave(tid, t0.Add(-time.Hour))
			return v
		}),
		cc("consortium.reported_multi", "two other members", true, "members=2", func() *consortium.View {
			return reported(30*day, consortium.APP, "bank-b", "bank-c")
		}),
		cc("consortium.reported_multi", "one other member", false, "", func() *consortium.View {
			return reported(day, consortium.APP, "bank-b")
		}),
		cc("consortium.recent", "reported yesterday", true, "last report 24h ago", func() *consortium.View {
			return reported(day, consortium.APP, "bank-b")
		}),
		cc("consortium.recent", "reported 8 days ago", false, "", func() *consortium.View {
			return reported(8*day, consortium.APP, "bank-b")
		}),
	)
}

// TestConsortiumScores checks the weights against the default policy: two
// members within a week block on their own; one recent report flags; one
// old report alone does not.
func TestConsortiumScores(t *testing.T) {
	for _, tc := range []struct {
		name    string
		view    func() *consortium.View
		want    call.Action
		markers int
	}{
		{"two members this week", func() *consortium.View { return reported(2*day, consortium.APP, "bank-b", "bank-c") }, call.Block, 3},
		{"one member this week", func() *consortium.View { return reported(2*day, consortium.APP, "bank-b") }, call.Flag, 2},
		{"two members months ago", func() *consortium.View { return reported(60*day, consortium.APP, "bank-b", "bank-c") }, call.Flag, 2},
		{"one member months ago", func() *consortium.View { return reported(60*day, consortium.APP, "bank-b") }, call.Allow, 1},
		{"no consortium", func() *consortium.View { return nil }, call.Allow, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, call.DefaultPolicy())
			if v := tc.view(); v != nil {
				f.useConsortium(v, call.DefaultPolicy())
			}
			v := f.evaluate(f.call(homeMobile, dialled))
			n := 0
			for _, m := range v.Markers {
				if len(m.Code) > 11 && m.Code[:11] == "consortium." {
					n++
				}
			}
			if v.Action != tc.want || n != tc.markers {
				t.Errorf("action %s with %d consortium markers (score %.3f, %v); want %s with %d", v.Action, n, v.Score, codes(v), tc.want, tc.markers)
			}
		})
	}
}

// TestConsortiumNextCall: a report filed at member A through the service
// (real SQLite store) changes the verdict for the same number calling
// member B on B's very next call; the isolation matrix of scores holds for
// a non-contributing member, a non-member and a former member.
func TestConsortiumNextCall(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ringfence.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clk := newClock(t0.Add(-60 * day))
	db.Now = clk.Now
	tenants := []string{"bank-a", "bank-b", "bank-c", "bank-d", "bank-e", "bank-f"}
	for _, id := range tenants {
		if err := db.CreateTenant(ctx, store.Tenant{ID: id, Name: id, Region: "GB"}); err != nil {
			t.Fatal(err)
		}
	}
	view := consortium.NewView(consortiumKey)
	svc := &consortium.Service{ID: "uk", Store: db, View: view, Now: clk.Now}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(svc.Setup(ctx, "op", store.ConsortiumInfo{Terms: "v1", Reciprocity: store.Reciprocity{ContributionWindow: 90 * day, GracePeriod: 30 * day}}))
	for _, id := range []string{"bank-a", "bank-b", "bank-d", "bank-f"} {
		must(svc.Join(ctx, id, "admin", "v1"))
	}
	e := screen.New(screen.Config{Now: clk.Now, Consortium: view})
	for _, id := range tenants {
		e.SetTenant(call.Tenant{ID: id, Name: id, Region: "GB"}, call.DefaultPolicy())
	}
	report := func(tenant, number string) {
		t.Helper()
		_, err := svc.Report(ctx, consortium.Report{Tenant: tenant, Actor: "analyst", Source: consortium.SourceAPI,
			Number: number, Evidence: "case", Type: consortium.Impersonation, Sealed: []byte{1}})
		must(err)
	}
	score := func(tenant string) call.Verdict {
		c := &call.Call{Tenant: tenant, Caller: e.Number(tenant, homeMobile), Dialled: e.Number(tenant, dialled), StartedAt: clk.Now()}
		v, _, err := e.Evaluate(ctx, c)
		must(err)
		return v
	}
	clk.ns.Store(t0.UnixNano()) // every member past its grace period
	report("bank-b", homeMobile2)
	report("bank-f", homeMobile2)
	must(svc.Leave(ctx, "bank-f", "admin"))

	if v := score("bank-b"); v.Has("consortium.reported") {
		t.Fatalf("bank-b scored a consortium marker before any report: %v", codes(v))
	}
	report("bank-a", homeMobile) // filed at A
	if v := score("bank-b"); !v.Has("consortium.reported") || !v.Has("consortium.recent") || v.Action != call.Flag {
		t.Errorf("bank-b's next call: %s %v; want flagged by the consortium", v.Action, codes(v))
	}
	if _, err := svc.Report(ctx, consortium.Report{Tenant: "bank-f", Actor: "analyst", Source: consortium.SourceAPI,
		Number: homeMobile, Evidence: "case", Type: consortium.APP, Sealed: []byte{1}}); call.ErrorCode(err) != call.Conflict {
		t.Errorf("report by a former member: %v; want Conflict", err)
	}
	for _, tc := range []struct {
		tenant string
		kind   string
		fires  bool
	}{
		{"bank-b", "contributing member", true},
		{"bank-a", "the reporter itself", false},
		{"bank-d", "member not contributing", false},
		{"bank-e", "non-member", false},
		{"bank-f", "former member", false},
	} {
		if v := score(tc.tenant); v.Has("consortium.reported") != tc.fires {
			t.Errorf("%s (%s): consortium.reported = %v; want %v (%v)", tc.tenant, tc.kind, !tc.fires, tc.fires, codes(v))
		}
	}
}

// replayConsortium is the consortium state of the replay in
// engine_test.go: one of its fraudsters reported by two members this week,
// a French number by one member a month ago.
func replayConsortium() *consortium.View {
	v := reported(2*day, consortium.APP, "bank-b", "bank-c")
	v.Report("bank-b", consortium.Pseudonym(consortiumKey, "+447400199001"), consortium.Impersonation, t0.Add(-2*day))
	v.Report("bank-c", consortium.Pseudonym(consortiumKey, "+447400199001"), consortium.APP, t0.Add(-3*day))
	v.Report("bank-d", consortium.Pseudonym(consortiumKey, frFixed), consortium.Investment, t0.Add(-30*day))
	return v
}

// benchConsortiumEntries is the view size of BenchmarkEvaluateConsortium.
const benchConsortiumEntries = 10_000_000

var (
	benchViewOnce sync.Once
	benchView     *consortium.View
)

// loadedView builds, once, a view with benchConsortiumEntries entries
// reported by bank-b (a quarter also by bank-c), plus homeMobile reported
// by both, and the tenant contributing.
func loadedView(b *testing.B) *consortium.View {
	benchViewOnce.Do(func() {
		start := time.Now()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		v := reported(2*day, consortium.APP, "bank-b", "bank-c")
		buf := make([]byte, 32*4096)
		for i := 0; i < benchConsortiumEntries; i += 4096 {
			rand.Read(buf)
			for j := 0; j < 4096 && i+j < benchConsortiumEntries; j++ {
				p := buf[32*j : 32*j+32]
				v.Report("bank-b", p, consortium.Impersonation, t0.Add(-day))
				if (i+j)%4 == 0 {
					v.Report("bank-c", p, consortium.APP, t0.Add(-day))
				}
			}
		}
		built := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.Logf("consortium view of %d entries built in %v through View.Report: %.1f B/entry of heap",
			v.Len(), built.Round(time.Millisecond), float64(after.HeapAlloc-before.HeapAlloc)/float64(v.Len()))
		benchView = v
	})
	return benchView
}

// BenchmarkEvaluateConsortium measures Evaluate (numbers already
// normalised) without a consortium view and with a view of 10M entries,
// for a caller it holds (three markers) and one it does not; the
// difference is the consortium family's cost.
func BenchmarkEvaluateConsortium(b *testing.B) {
	run := func(b *testing.B, v *consortium.View, caller string) {
		cfg := screen.Config{Thresholds: testThresholds}
		if v != nil {
			cfg.Consortium = v
		}
		e := screen.New(cfg)
		e.SetTenant(call.Tenant{ID: tid, Name: "Bank", Region: "GB"}, call.DefaultPolicy())
		c := &call.Call{Tenant: tid, Caller: e.Number(tid, caller), Dialled: e.Number(tid, dialled), StartedAt: t0, Ingress: "dom"}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := e.Evaluate(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("without", func(b *testing.B) { run(b, nil, homeMobile) })
	b.Run(fmt.Sprintf("with-%d/miss", benchConsortiumEntries), func(b *testing.B) { run(b, loadedView(b), homeFixed) })
	b.Run(fmt.Sprintf("with-%d/hit", benchConsortiumEntries), func(b *testing.B) { run(b, loadedView(b), homeMobile) })
}
