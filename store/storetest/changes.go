package storetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// changeLog reads a store's change log after the last seq it has seen.
type changeLog struct {
	t    *testing.T
	s    store.Store
	seen int64
}

// expect checks that the changes since the last call are exactly want (by
// tenant, kind, key and sealed value), in order, with rising seqs above the
// last seen and a time set; and that LastChange is the newest seq.
func (l *changeLog) expect(what string, want ...store.Change) {
	t := l.t
	t.Helper()
	got, err := l.s.Changes(t.Context(), l.seen, 1000)
	must(t, err)
	checkUTC(t, what, reflect.ValueOf(got))
	prev := l.seen
	bare := make([]store.Change, len(got))
	for i, c := range got {
		if c.Seq <= prev {
			t.Errorf("%s: change %d has seq %d after %d", what, i, c.Seq, prev)
		}
		if c.At.IsZero() {
			t.Errorf("%s: change %d has no time", what, i)
		}
		prev = c.Seq
		bare[i] = store.Change{Tenant: c.Tenant, Kind: c.Kind, Key: c.Key, Sealed: c.Sealed}
	}
	if len(want) == 0 {
		want = []store.Change{}
	}
	if !slices.EqualFunc(bare, want, sameChange) {
		t.Errorf("%s: changes\n got %s\nwant %s", what, fmtChanges(bare), fmtChanges(want))
	}
	if len(got) > 0 {
		l.seen = got[len(got)-1].Seq
	}
	last, err := l.s.LastChange(t.Context())
	must(t, err)
	if last != l.seen {
		t.Errorf("%s: LastChange = %d; want %d", what, last, l.seen)
	}
}

func sameChange(a, b store.Change) bool {
	return a.Tenant == b.Tenant && a.Kind == b.Kind && bytes.Equal(a.Key, b.Key) &&
		(a.Key == nil) == (b.Key == nil) && bytes.Equal(a.Sealed, b.Sealed) && (a.Sealed == nil) == (b.Sealed == nil)
}

func fmtChanges(cs []store.Change) string {
	var b bytes.Buffer
	for _, c := range cs {
		fmt.Fprintf(&b, "\n\t{%s %s key=%x sealed=%x}", c.Tenant, c.Kind, c.Key, c.Sealed)
	}
	return b.String()
}

func listChange(tenant string, kind store.ChangeKind, e store.ListEntry, sealed []byte) store.Change {
	return store.Change{Tenant: tenant, Kind: kind, Key: store.ListChangeKey(e.List, e.Pseudonym), Sealed: sealed}
}

func linkChange(tenant string, kind store.ChangeKind, l store.Link, sealed []byte) store.Change {
	return store.Change{Tenant: tenant, Kind: kind, Key: store.LinkChangeKey(l.CallerPseudonym, l.UserPseudonym), Sealed: sealed}
}

// testChangeLog checks that every write of state nodes hold in memory
// appends exactly its changes, in order, and that call records and labels
// append none.
func testChangeLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := &changeLog{t: t, s: s}
	l.expect("an empty store")

	tenant(t, s, "acme")
	l.expect("CreateTenant", store.Change{Tenant: "acme", Kind: store.ChangeTenant})
	tenant(t, s, "bank")
	l.expect("CreateTenant", store.Change{Tenant: "bank", Kind: store.ChangeTenant})

	var hash [32]byte
	rand.Read(hash[:])
	must(t, s.AddAPIKey(ctx, store.APIKey{Tenant: "bank", Hash: hash, Name: "ops", CreatedAt: at(0)}))
	l.expect("AddAPIKey", store.Change{Tenant: "bank", Kind: store.ChangeAPIKey, Key: hash[:]})

	e1, e2, e3 := newEntry(call.DenyList), newEntry(call.DenyList), newEntry(call.AllowList)
	e3.Pseudonym = e1.Pseudonym // the same number on another list
	must(t, s.PutListEntries(ctx, "acme", []store.ListEntry{e1, e2, e3}))
	l.expect("PutListEntries", listChange("acme", store.ChangeListPut, e1, nil),
		listChange("acme", store.ChangeListPut, e2, nil), listChange("acme", store.ChangeListPut, e3, nil))
	e1.Reason, e1.Sealed = "upheld", random(60)
	must(t, s.PutListEntries(ctx, "acme", []store.ListEntry{e1}))
	l.expect("PutListEntries replacing an entry", listChange("acme", store.ChangeListPut, e1, nil))
	must(t, s.DeleteListEntry(ctx, "acme", call.DenyList, e1.Pseudonym))
	l.expect("DeleteListEntry", listChange("acme", store.ChangeListDelete, e1, e1.Sealed))

	must(t, s.PutRoute(ctx, "bank", call.Route{ID: "dom-in", Kind: call.Domestic}))
	l.expect("PutRoute", store.Change{Tenant: "bank", Kind: store.ChangeRoutePut, Key: []byte("dom-in")})
	must(t, s.PutRoute(ctx, "bank", call.Route{ID: "dom-in", Kind: call.International, Country: "FR"}))
	l.expect("PutRoute replacing a route", store.Change{Tenant: "bank", Kind: store.ChangeRoutePut, Key: []byte("dom-in")})
	must(t, s.DeleteRoute(ctx, "bank", "dom-in"))
	l.expect("DeleteRoute", store.Change{Tenant: "bank", Kind: store.ChangeRouteDelete, Key: []byte("dom-in")})

	p := call.DefaultPolicy()
	must(t, s.PutPolicy(ctx, "acme", p))
	l.expect("PutPolicy", store.Change{Tenant: "acme", Kind: store.ChangePolicy})
	p.Version++
	must(t, s.PutPolicy(ctx, "acme", p))
	l.expect("PutPolicy of the next version", store.Change{Tenant: "acme", Kind: store.ChangePolicy})

	caller := pseudonym()
	links := []store.Link{
		{CallerPseudonym: caller, UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)},
		{CallerPseudonym: caller, UserPseudonym: pseudonym(), Sealed: random(90), At: at(1)},
		{CallerPseudonym: pseudonym(), UserPseudonym: pseudonym(), Sealed: random(90), At: at(2)},
	}
	must(t, s.PutLinks(ctx, "acme", links))
	l.expect("PutLinks", linkChange("acme", store.ChangeLinkPut, links[0], nil),
		linkChange("acme", store.ChangeLinkPut, links[1], nil), linkChange("acme", store.ChangeLinkPut, links[2], nil))
	again := links[0]
	again.Sealed = random(90)
	fresh := store.Link{CallerPseudonym: caller, UserPseudonym: pseudonym(), Sealed: random(90), At: at(3)}
	must(t, s.PutLinks(ctx, "acme", []store.Link{again, fresh}))
	l.expect("PutLinks of a stored and a new link", linkChange("acme", store.ChangeLinkPut, fresh, nil))

	must(t, s.DeleteLinks(ctx, "acme", caller))
	deleted := []store.Link{links[0], links[1], fresh} // as stored: links[0], not again
	slices.SortFunc(deleted, compareLinks)
	var want []store.Change
	for _, d := range deleted {
		want = append(want, linkChange("acme", store.ChangeLinkDelete, d, d.Sealed))
	}
	l.expect("DeleteLinks", want...)
	must(t, s.DeleteLinks(ctx, "acme", caller))
	l.expect("DeleteLinks of a caller with no links")

	c := insert(t, s, "acme", 2)
	must(t, s.UpdateCallEnd(ctx, "acme", c[0].ID, store.End{Duration: 5, Result: call.Answered}))
	must(t, s.UpdateCallEnds(ctx, []store.CallEnd{{Tenant: "acme", ID: c[1].ID, End: store.End{Result: call.Busy}}}))
	must(t, s.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: c[0].ID, Label: call.Fraud, By: "ana", At: at(4)}))
	l.expect("call records and labels")
}

// testChangeLogFailedWrites checks that a write that fails, or changes
// nothing, appends no change.
func testChangeLogFailedWrites(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	e := newEntry(call.DenyList)
	must(t, s.PutListEntries(ctx, "acme", []store.ListEntry{e}))
	var hash [32]byte
	rand.Read(hash[:])
	must(t, s.AddAPIKey(ctx, store.APIKey{Tenant: "acme", Hash: hash, Name: "ops", CreatedAt: at(0)}))
	must(t, s.PutPolicy(ctx, "acme", call.DefaultPolicy()))
	link := store.Link{CallerPseudonym: pseudonym(), UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)}
	must(t, s.PutLinks(ctx, "acme", []store.Link{link}))
	l := &changeLog{t: t, s: s}
	l.expect("setup", store.Change{Tenant: "acme", Kind: store.ChangeTenant},
		listChange("acme", store.ChangeListPut, e, nil),
		store.Change{Tenant: "acme", Kind: store.ChangeAPIKey, Key: hash[:]},
		store.Change{Tenant: "acme", Kind: store.ChangePolicy},
		linkChange("acme", store.ChangeLinkPut, link, nil))

	var other [32]byte
	rand.Read(other[:])
	stale := call.DefaultPolicy() // version 1 again
	for what, err := range map[string]error{
		"CreateTenant of an existing id": s.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "x", Region: "GB"}),
		"AddAPIKey of a stored hash":     s.AddAPIKey(ctx, store.APIKey{Tenant: "acme", Hash: hash, Name: "dup"}),
		"AddAPIKey of an unknown tenant": s.AddAPIKey(ctx, store.APIKey{Tenant: "nobody", Hash: other, Name: "x"}),
		"PutListEntries of an unknown tenant": s.PutListEntries(ctx, "nobody",
			[]store.ListEntry{newEntry(call.DenyList)}),
		"DeleteListEntry of no entry":      s.DeleteListEntry(ctx, "acme", call.AllowList, e.Pseudonym),
		"PutRoute of an unknown tenant":    s.PutRoute(ctx, "nobody", call.Route{ID: "x", Kind: call.Domestic}),
		"DeleteRoute of no route":          s.DeleteRoute(ctx, "acme", "x"),
		"PutPolicy of a stale version":     s.PutPolicy(ctx, "acme", stale),
		"PutPolicy of an unknown tenant":   s.PutPolicy(ctx, "nobody", stale),
		"PutLinks of an unknown tenant":    s.PutLinks(ctx, "nobody", []store.Link{link}),
		"InsertCalls of an unknown tenant": s.InsertCalls(ctx, []store.Call{newCall("nobody", at(0))}),
	} {
		if err == nil {
			t.Errorf("%s: no error", what)
		}
	}
	must(t, s.PutLinks(ctx, "acme", []store.Link{link})) // stored already
	must(t, s.PutListEntries(ctx, "acme", nil))
	must(t, s.PutLinks(ctx, "acme", nil))
	must(t, s.DeleteLinks(ctx, "acme", pseudonym()))
	l.expect("failed writes and writes that change nothing")
}

// testChangesPaging checks Changes' cursor and the page size rule.
func testChangesPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	entries := make([]store.ListEntry, 1100)
	for i := range entries {
		entries[i] = newEntry(call.DNOList)
	}
	must(t, s.PutListEntries(ctx, "acme", entries))
	all, err := s.Changes(ctx, 0, 1000)
	must(t, err)
	if len(all) != 1000 {
		t.Fatalf("Changes limit 1000: %d changes", len(all))
	}
	for _, tt := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {7, 7}, {5000, 1000}} {
		cs, err := s.Changes(ctx, 0, tt.limit)
		must(t, err)
		if len(cs) != tt.want {
			t.Errorf("Changes limit %d: %d changes; want %d", tt.limit, len(cs), tt.want)
		}
	}
	var seqs []int64
	var after int64
	for page := 0; ; page++ {
		if page > 20 {
			t.Fatal("paging does not end")
		}
		cs, err := s.Changes(ctx, after, 97)
		must(t, err)
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			seqs = append(seqs, c.Seq)
		}
		after = cs[len(cs)-1].Seq
	}
	if len(seqs) != 1101 || !slices.IsSorted(seqs) || slices.Compact(slices.Clone(seqs)) == nil {
		t.Errorf("pages visited %d changes; want 1101 in rising seq order", len(seqs))
	}
	for i, c := range all[1:] {
		if kind, p, ok := c.ListKey(); !ok || kind != call.DNOList || !bytes.Equal(p, entries[i].Pseudonym) {
			t.Fatalf("change %d: key %x; want entry %d of the batch (%x), in order", i+1, c.Key, i, entries[i].Pseudonym)
		}
	}
	if last, err := s.LastChange(ctx); err != nil || last != seqs[len(seqs)-1] {
		t.Errorf("LastChange = %d, %v; want %d", last, err, seqs[len(seqs)-1])
	}
}

// testChangesFollowedConcurrently writes from several goroutines while a
// follower reads the log after the last seq it saw, as a node does: it must
// see every change, once. A store whose seqs do not follow commit order
// fails this now and then.
func testChangesFollowedConcurrently(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	const writers, writes = 8, 40
	var wg sync.WaitGroup
	done := make(chan struct{})
	var followed []store.Change
	follower := make(chan error, 1)
	go func() {
		var after int64
		for {
			select {
			case <-done:
				// One last read after every writer has returned.
				for {
					cs, err := s.Changes(ctx, after, 1000)
					if err != nil || len(cs) == 0 {
						follower <- err
						return
					}
					followed = append(followed, cs...)
					after = cs[len(cs)-1].Seq
				}
			default:
			}
			cs, err := s.Changes(ctx, after, 1000)
			if err != nil {
				follower <- err
				return
			}
			if len(cs) > 0 {
				followed = append(followed, cs...)
				after = cs[len(cs)-1].Seq
			}
		}
	}()
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				var err error
				switch i % 3 {
				case 0:
					err = s.PutRoute(ctx, "acme", call.Route{ID: fmt.Sprintf("r%d-%d", w, i), Kind: call.Domestic})
				case 1:
					err = s.PutListEntries(ctx, "acme", []store.ListEntry{newEntry(call.DenyList), newEntry(call.DNOList)})
				default:
					err = s.PutLinks(ctx, "acme", []store.Link{{CallerPseudonym: pseudonym(), UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)}})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	must(t, <-follower)

	all, err := s.Changes(ctx, 0, 1000)
	must(t, err)
	for len(all) > 0 {
		more, err := s.Changes(ctx, all[len(all)-1].Seq, 1000)
		must(t, err)
		if len(more) == 0 {
			break
		}
		all = append(all, more...)
	}
	seqs := func(cs []store.Change) []int64 {
		out := make([]int64, len(cs))
		for i, c := range cs {
			out[i] = c.Seq
		}
		return out
	}
	want := 1 // the tenant
	for i := range writes {
		want += writers * []int{1, 2, 1}[i%3]
	}
	if len(all) != want {
		t.Errorf("the log holds %d changes; want %d", len(all), want)
	}
	if !slices.Equal(seqs(followed), seqs(all)) {
		t.Errorf("the follower saw %d changes; the log holds %d: a change committed below a seq already read", len(followed), len(all))
	}
}

// testSingleReaders checks the readers that apply one change: Tenant,
// APIKeys, ListEntriesOf, Route, Link; and Counts.
func testSingleReaders(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := store.Tenant{ID: "acme", Name: "Acme", Region: "IE", Keys: random(96), CreatedAt: at(0)}
	must(t, s.CreateTenant(ctx, want))
	tenant(t, s, "bank")
	got, err := s.Tenant(ctx, "acme")
	must(t, err)
	equal(t, "Tenant", got, want)
	_, err = s.Tenant(ctx, "nobody")
	wantCode(t, "Tenant of an unknown id", err, call.NotFound)

	var keys []store.APIKey
	for i := range 3 {
		k := store.APIKey{Tenant: "acme", Name: fmt.Sprint("key ", i), CreatedAt: at(i)}
		rand.Read(k.Hash[:])
		must(t, s.AddAPIKey(ctx, k))
		keys = append(keys, k)
	}
	other := store.APIKey{Tenant: "bank", Name: "b", CreatedAt: at(0)}
	rand.Read(other.Hash[:])
	must(t, s.AddAPIKey(ctx, other))
	slices.SortFunc(keys, func(a, b store.APIKey) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
	gotKeys, err := s.APIKeys(ctx, "acme")
	must(t, err)
	equal(t, "APIKeys", gotKeys, keys)

	entries := []store.ListEntry{newEntry(call.DenyList), newEntry(call.DenyList), newEntry(call.DenyList)}
	entries[1].ExpiresAt = at(60)
	must(t, s.PutListEntries(ctx, "acme", entries))
	must(t, s.PutListEntries(ctx, "bank", []store.ListEntry{newEntry(call.DenyList)}))
	allow := entries[0]
	allow.List = call.AllowList
	must(t, s.PutListEntries(ctx, "acme", []store.ListEntry{allow}))
	missing := pseudonym()
	gotEntries, err := s.ListEntriesOf(ctx, "acme", call.DenyList,
		[][]byte{entries[2].Pseudonym, missing, entries[0].Pseudonym, entries[1].Pseudonym, entries[0].Pseudonym})
	must(t, err)
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b store.ListEntry) int { return bytes.Compare(a.Pseudonym, b.Pseudonym) })
	equal(t, "ListEntriesOf", gotEntries, sorted)
	gotEntries, err = s.ListEntriesOf(ctx, "bank", call.DenyList, [][]byte{entries[0].Pseudonym})
	must(t, err)
	if len(gotEntries) != 0 {
		t.Errorf("ListEntriesOf another tenant's entries = %v; want none", gotEntries)
	}
	gotEntries, err = s.ListEntriesOf(ctx, "acme", call.AllowList, [][]byte{entries[0].Pseudonym, entries[1].Pseudonym})
	must(t, err)
	equal(t, "ListEntriesOf another list", gotEntries, []store.ListEntry{allow})
	if gotEntries, err = s.ListEntriesOf(ctx, "acme", call.DenyList, nil); err != nil || len(gotEntries) != 0 {
		t.Errorf("ListEntriesOf no pseudonyms = %v, %v; want none", gotEntries, err)
	}
	many := make([][]byte, 1001)
	for i := range many {
		many[i] = pseudonym()
	}
	_, err = s.ListEntriesOf(ctx, "acme", call.DenyList, many)
	wantCode(t, "ListEntriesOf 1001 pseudonyms", err, call.Invalid)
	if gotEntries, err = s.ListEntriesOf(ctx, "acme", call.DenyList, many[:1000]); err != nil || len(gotEntries) != 0 {
		t.Errorf("ListEntriesOf 1000 unknown pseudonyms = %d entries, %v; want none", len(gotEntries), err)
	}

	route := call.Route{ID: "intl-in", Kind: call.International, Country: "FR", FailOpen: true}
	must(t, s.PutRoute(ctx, "acme", route))
	gotRoute, err := s.Route(ctx, "acme", "intl-in")
	must(t, err)
	equal(t, "Route", gotRoute, route)
	_, err = s.Route(ctx, "bank", "intl-in")
	wantCode(t, "Route of another tenant", err, call.NotFound)
	_, err = s.Route(ctx, "acme", "nope")
	wantCode(t, "Route of an unknown id", err, call.NotFound)

	link := store.Link{CallerPseudonym: pseudonym(), UserPseudonym: pseudonym(), Sealed: random(90), At: at(7)}
	must(t, s.PutLinks(ctx, "acme", []store.Link{link}))
	gotLink, err := s.Link(ctx, "acme", link.CallerPseudonym, link.UserPseudonym)
	must(t, err)
	equal(t, "Link", gotLink, link)
	_, err = s.Link(ctx, "bank", link.CallerPseudonym, link.UserPseudonym)
	wantCode(t, "Link of another tenant", err, call.NotFound)
	_, err = s.Link(ctx, "acme", link.CallerPseudonym, pseudonym())
	wantCode(t, "Link of another user", err, call.NotFound)

	calls := insert(t, s, "acme", 5)
	must(t, s.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: calls[0].ID, Label: call.Fraud, By: "a", At: at(1)}))
	must(t, s.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: calls[0].ID, Label: call.Genuine, By: "a", At: at(2)}))
	must(t, s.PutPolicy(ctx, "acme", call.DefaultPolicy()))
	insert(t, s, "bank", 2)
	counts, err := s.Counts(ctx, "acme")
	must(t, err)
	equal(t, "Counts", counts, store.Counts{APIKeys: 3, Calls: 5, Labels: 2, ListEntries: 4, Routes: 1, Policies: 1, Links: 1})
	counts, err = s.Counts(ctx, "nobody")
	must(t, err)
	equal(t, "Counts of an unknown tenant", counts, store.Counts{})
}

// testChangeKeys checks that the key encodings split back.
func testChangeKeys(t *testing.T, _ store.Store) {
	p := pseudonym()
	list, got, ok := store.Change{Key: store.ListChangeKey(call.DNOList, p)}.ListKey()
	if !ok || list != call.DNOList || !bytes.Equal(got, p) {
		t.Errorf("ListKey = %q, %x, %v", list, got, ok)
	}
	long := random(300)
	caller, user, ok := store.Change{Key: store.LinkChangeKey(long, p)}.LinkKey()
	if !ok || !bytes.Equal(caller, long) || !bytes.Equal(user, p) {
		t.Errorf("LinkKey = %x, %x, %v", caller, user, ok)
	}
	for _, k := range [][]byte{nil, {5, 'a'}, {0x80}} {
		if _, _, ok := (store.Change{Key: k}).LinkKey(); ok {
			t.Errorf("LinkKey of %x: ok", k)
		}
	}
}
