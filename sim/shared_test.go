package sim

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/consortium"
	"github.com/ringfence/ringfence/httpapi"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// Every fraud type an analyst labels with is one the consortium takes, so
// a member's labels are shared.
func TestFraudTypesAreConsortiumTypes(t *testing.T) {
	for _, s := range fraudMix {
		if !consortium.FraudType(s.fraudType).Valid() {
			t.Errorf("scenario %s: fraud type %q is not a consortium fraud type", s.scenario, s.fraudType)
		}
	}
}

// ownNumber is the scenarios whose callers are fraudsters' own numbers,
// not spoofed ones (which may be the same at two banks by design: their
// published numbers, the all-zero CLI).
var ownNumber = map[string]bool{"many_accounts": true, "number_rotation": true, "enumeration": true, "social_engineering": true}

// fraudCallers returns the callers of t's fraud calls from fraudsters' own
// numbers and of its genuine calls.
func fraudCallers(t Traffic) (fraud, genuine map[string]bool) {
	fraud, genuine = map[string]bool{}, map[string]bool{}
	for _, c := range t.Calls {
		switch {
		case !c.Fraud:
			genuine[c.Request.Caller] = true
		case ownNumber[c.Scenario]:
			fraud[c.Request.Caller] = true
		}
	}
	return fraud, genuine
}

func TestSharedFraud(t *testing.T) {
	base := Config{Seed: 1, Calls: 3000, Start: testStart, FraudShare: 0.1}
	tests := []struct {
		name       string
		a, b       func(*Config)
		wantShared bool
	}{
		{"no sharing", func(*Config) {}, func(*Config) {}, false},
		{"same pool", func(c *Config) { c.SharedFraud, c.Pool = 0.5, 7 }, func(c *Config) { c.SharedFraud, c.Pool = 0.5, 7 }, true},
		{"other pool", func(c *Config) { c.SharedFraud, c.Pool = 0.5, 7 }, func(c *Config) { c.SharedFraud, c.Pool = 0.5, 8 }, false},
		{"one side shares", func(c *Config) { c.SharedFraud, c.Pool = 0.5, 7 }, func(c *Config) { c.Pool = 7 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, cb := base, base
			cb.Seed = 2
			tt.a(&ca)
			tt.b(&cb)
			fa, ga := fraudCallers(Generate(ca))
			fb, gb := fraudCallers(Generate(cb))
			shared := 0
			for n := range fb {
				if fa[n] {
					shared++
				}
				if ga[n] {
					t.Errorf("a fraud number of B called A as a genuine customer")
				}
			}
			for n := range gb {
				if fa[n] {
					t.Errorf("a fraud number of A called B as a genuine customer")
				}
			}
			if tt.wantShared && shared < 20 {
				t.Errorf("%d fraud numbers at both banks; want at least 20", shared)
			}
			if !tt.wantShared && shared != 0 {
				t.Errorf("%d fraud numbers at both banks; want none", shared)
			}
		})
	}

	// Sharing changes only which numbers fraudsters call from when it is
	// on, and leaves traffic without it as it was.
	off := Generate(base)
	on := base
	on.Pool = 99 // no effect without SharedFraud
	if got := Generate(on); !equalTraffic(off, got) {
		t.Error("Pool without SharedFraud changed the traffic")
	}
}

func equalTraffic(a, b Traffic) bool {
	if len(a.Calls) != len(b.Calls) {
		return false
	}
	for i := range a.Calls {
		x, y := a.Calls[i], b.Calls[i]
		if x.Request.Caller != y.Request.Caller || x.Request.Dialled != y.Request.Dialled ||
			!x.Request.StartedAt.Equal(y.Request.StartedAt) || x.Scenario != y.Scenario {
			return false
		}
	}
	return true
}

// sharingServer starts a real node over SQLite behind the HTTP API, with a
// consortium (terms "t1", a 30-day grace period) and the tenants named,
// and returns the server's URL and the tenants' admin keys.
func sharingServer(t *testing.T, grace time.Duration, tenants ...string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rf.db"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := seal.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	view := consortium.NewView(mk.Derive("consortium pseudonym v1"))
	svc := &consortium.Service{ID: "sim", Store: st, View: view}
	if err := svc.Setup(ctx, "operator", store.ConsortiumInfo{Terms: "t1",
		Reciprocity: store.Reciprocity{GracePeriod: grace, ContributionWindow: 90 * 24 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	nc := node.Config{Consortium: svc}
	nc.Engine.Consortium = view
	n, err := node.Open(ctx, nc, st, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, id := range tenants {
		_, key, err := n.CreateTenant(ctx, id, id, "GB")
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{}, n, nil))
	t.Cleanup(func() {
		srv.Close()
		n.Close()
		st.Close()
	})
	return srv.URL, keys
}

func TestSharing(t *testing.T) {
	url, keys := sharingServer(t, 30*24*time.Hour, "bank-a", "bank-b-alone", "bank-b")
	s := Sharing{
		URL: url, Terms: "t1", Member: keys[0], Without: keys[1], With: keys[2],
		Config: Config{Seed: 5, Calls: 160, Span: 24 * time.Hour, FraudShare: 0.4, LabelAfter: 20, Concurrency: 4},
	}
	sum, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := sum.Write(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())

	if sum.Confirmed == 0 || sum.SharedCalls == 0 || sum.With.SharedCalls != sum.SharedCalls || sum.Without.SharedCalls != sum.SharedCalls {
		t.Fatalf("confirmed %d numbers, %d shared calls (screened: without %d, with %d); want some, all screened",
			sum.Confirmed, sum.SharedCalls, sum.Without.SharedCalls, sum.With.SharedCalls)
	}
	if !(sum.With.SharedFlagRecall > sum.Without.SharedFlagRecall) {
		t.Errorf("recall on calls from confirmed numbers: with sharing %.3f, without %.3f; want higher with",
			sum.With.SharedFlagRecall, sum.Without.SharedFlagRecall)
	}
	if !(sum.With.GenuineFlagged <= sum.Without.GenuineFlagged) {
		t.Errorf("genuine calls flagged or blocked: with sharing %.4f, without %.4f; want no rise",
			sum.With.GenuineFlagged, sum.Without.GenuineFlagged)
	}
	if want := "on the " + strconv.Itoa(sum.SharedCalls) + " calls from numbers other members confirmed"; !strings.Contains(out.String(), want) {
		t.Errorf("summary lacks %q", want)
	}
}

// Run refuses an experiment that could not show the gain: missing or
// repeated keys, no terms, terms the consortium does not have, a tenant
// "without sharing" that is a member.
func TestSharingRefuses(t *testing.T) {
	url, keys := sharingServer(t, 30*24*time.Hour, "a", "b", "c", "d")
	ctx := context.Background()
	if err := (&Client{URL: url, Key: keys[3]}).join(ctx, "t1", true); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Seed: 1, Calls: 50}
	tests := []struct {
		name string
		s    Sharing
		want string
	}{
		{"missing key", Sharing{URL: url, Terms: "t1", Member: keys[0], With: keys[2]}, "API keys are required"},
		{"same key", Sharing{URL: url, Terms: "t1", Member: keys[0], Without: keys[1], With: keys[0]}, "must differ"},
		{"no terms", Sharing{URL: url, Member: keys[0], Without: keys[1], With: keys[2]}, "terms version is required"},
		{"old terms", Sharing{URL: url, Terms: "t0", Member: keys[0], Without: keys[1], With: keys[2]}, "not a consortium member"},
		{"control is a member", Sharing{URL: url, Terms: "t1", Member: keys[0], Without: keys[3], With: keys[2]}, "without sharing is a consortium member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Config = cfg
			sum, err := tt.s.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v; want an error containing %q", err, tt.want)
			}
			if sum.Member.Calls != 0 {
				t.Errorf("ran %d calls before refusing", sum.Member.Calls)
			}
		})
	}
}
