package storetest

import (
	"testing"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

func testRoutes(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	routes := []call.Route{
		{ID: "intl-out", Kind: call.International, Country: "FR", FailOpen: true},
		{ID: "dom-in", Kind: call.Domestic},
		{ID: "b.trunk", Kind: call.Domestic, Country: "GB"},
	}
	for _, r := range routes {
		must(t, s.PutRoute(ctx, "acme", r))
	}
	must(t, s.PutRoute(ctx, "bank", call.Route{ID: "dom-in", Kind: call.International}))
	routes[0].FailOpen, routes[0].Country = false, "DE"
	must(t, s.PutRoute(ctx, "acme", routes[0]))

	got, err := s.Routes(ctx, "acme")
	must(t, err)
	equal(t, "Routes", got, []call.Route{routes[2], routes[1], routes[0]})

	must(t, s.DeleteRoute(ctx, "acme", "dom-in"))
	wantCode(t, "DeleteRoute of a deleted route", s.DeleteRoute(ctx, "acme", "dom-in"), call.NotFound)
	wantCode(t, "DeleteRoute of another tenant's route", s.DeleteRoute(ctx, "bank", "intl-out"), call.NotFound)
	got, err = s.Routes(ctx, "acme")
	must(t, err)
	equal(t, "Routes after delete", got, []call.Route{routes[2], routes[0]})
	got, err = s.Routes(ctx, "bank")
	must(t, err)
	equal(t, "another tenant's Routes", got, []call.Route{{ID: "dom-in", Kind: call.International}})
}

func testPolicy(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	_, err := s.Policy(ctx, "acme")
	wantCode(t, "Policy before any is stored", err, call.NotFound)

	shadow := call.DefaultPolicy()
	shadow.FlagAt, shadow.Weights = 0.4, map[string]float64{"velocity.burst": 3.25}
	p := call.Policy{
		Version: 1, FlagAt: 0.55, BlockAt: 0.875, Prior: -4.5,
		Weights:   map[string]float64{"cli.spoofed": 2.5, "route.mismatch": -0.75},
		Actions:   map[string]call.Action{"dno.listed": call.Block, "list.allow": call.Allow},
		BlockWith: 603, Redress: "https://example.com/redress",
		Shadow: &shadow,
	}
	must(t, s.PutPolicy(ctx, "acme", p))
	got, err := s.Policy(ctx, "acme")
	must(t, err)
	equal(t, "Policy", got, p)
	_, err = s.Policy(ctx, "bank")
	wantCode(t, "Policy of a tenant with none", err, call.NotFound)
}

func testPolicyVersions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	p := call.DefaultPolicy()
	must(t, s.PutPolicy(ctx, "acme", p))

	for _, v := range []int{1, 3, 0} {
		q := p
		q.Version, q.FlagAt = v, 0.3
		wantCode(t, "PutPolicy of a version not one more", s.PutPolicy(ctx, "acme", q), call.Conflict)
	}
	if got, _ := s.Policy(ctx, "acme"); got.Version != 1 || got.FlagAt != p.FlagAt {
		t.Errorf("Policy after conflicts = version %d, flag_at %v; want the first", got.Version, got.FlagAt)
	}

	p.Version, p.FlagAt = 2, 0.6
	must(t, s.PutPolicy(ctx, "acme", p))
	got, err := s.Policy(ctx, "acme")
	must(t, err)
	equal(t, "Policy version 2", got, p)

	// A tenant with none takes any version; the other tenant's is no guide.
	q := call.DefaultPolicy()
	q.Version = 7
	must(t, s.PutPolicy(ctx, "bank", q))
	if got, _ := s.Policy(ctx, "bank"); got.Version != 7 {
		t.Errorf("bank's Policy version = %d; want 7", got.Version)
	}
}
