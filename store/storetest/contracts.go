package storetest

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// testUnknownTenant checks the package contract that a write naming an
// unknown tenant is NotFound, and that InsertCalls is one transaction.
func testUnknownTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	var hash [32]byte
	rand.Read(hash[:])
	for what, err := range map[string]error{
		"InsertCalls":    s.InsertCalls(ctx, []store.Call{newCall("nobody", at(0))}),
		"AddAPIKey":      s.AddAPIKey(ctx, store.APIKey{Tenant: "nobody", Hash: hash, Name: "ops", CreatedAt: at(0)}),
		"PutListEntries": s.PutListEntries(ctx, "nobody", []store.ListEntry{newEntry(call.DenyList)}),
		"PutRoute":       s.PutRoute(ctx, "nobody", call.Route{ID: "dom-in", Kind: call.Domestic}),
		"PutPolicy":      s.PutPolicy(ctx, "nobody", call.DefaultPolicy()),
		"PutLinks": s.PutLinks(ctx, "nobody", []store.Link{
			{CallerPseudonym: pseudonym(), UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)}}),
	} {
		wantCode(t, what+" for an unknown tenant", err, call.NotFound)
	}

	good := newCall("acme", at(1))
	err := s.InsertCalls(ctx, []store.Call{good, newCall("nobody", at(2))})
	wantCode(t, "InsertCalls of a batch with an unknown tenant", err, call.NotFound)
	_, err = s.Call(ctx, "acme", good.ID)
	wantCode(t, "Call of a record from a failed batch", err, call.NotFound)
}

// testUpdateCallEndsInOrder checks that updates apply in order: the last
// one for a record wins.
func testUpdateCallEndsInOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	c := insert(t, s, "acme", 1)[0]
	first := store.End{Duration: 5 * time.Second, Result: call.NoAnswer}
	last := store.End{Duration: 61 * time.Second, Result: call.Answered, Egress: "agents"}
	must(t, s.UpdateCallEnds(ctx, []store.CallEnd{
		{Tenant: "acme", ID: c.ID, End: first},
		{Tenant: "acme", ID: c.ID, End: last},
	}))
	c.End = &last
	equal(t, "Call after two updates in one UpdateCallEnds", get(t, s, "acme", c.ID), c)
}

// testPageLimits checks the package's page size rule on list entries and
// links: a limit below 1 means 100, and a page holds at most 1000.
func testPageLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	entries := make([]store.ListEntry, 1001)
	links := make([]store.Link, 1001)
	for i := range entries {
		entries[i] = newEntry(call.DenyList)
		links[i] = store.Link{CallerPseudonym: pseudonym(), UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)}
	}
	must(t, s.PutListEntries(ctx, "acme", entries))
	must(t, s.PutLinks(ctx, "acme", links))
	for _, tt := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {7, 7}, {1000, 1000}, {5000, 1000}} {
		es, err := s.ListEntries(ctx, "acme", call.DenyList, nil, tt.limit)
		must(t, err)
		if len(es) != tt.want {
			t.Errorf("ListEntries limit %d: %d entries; want %d", tt.limit, len(es), tt.want)
		}
		ls, err := s.Links(ctx, "acme", nil, nil, tt.limit)
		must(t, err)
		if len(ls) != tt.want {
			t.Errorf("Links limit %d: %d links; want %d", tt.limit, len(ls), tt.want)
		}
	}
}
