package storetest

import (
	"bytes"
	"slices"
	"testing"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

func newEntry(list call.ListKind) store.ListEntry {
	return store.ListEntry{List: list, Pseudonym: pseudonym(), Sealed: random(60), Reason: "reported scam", CreatedAt: at(0)}
}

func testListEntries(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	deny := []store.ListEntry{newEntry(call.DenyList), newEntry(call.DenyList)}
	deny[1].ExpiresAt = at(60)
	allow := newEntry(call.AllowList)
	allow.Pseudonym = deny[0].Pseudonym // same number, another list
	must(t, s.PutListEntries(ctx, "acme", append(deny, allow)))

	// Replace one entry, keyed by list and pseudonym.
	deny[0].Reason, deny[0].Sealed, deny[0].ExpiresAt, deny[0].CreatedAt = "upheld", random(60), at(30), at(5)
	must(t, s.PutListEntries(ctx, "acme", deny[:1]))

	slices.SortFunc(deny, func(a, b store.ListEntry) int { return bytes.Compare(a.Pseudonym, b.Pseudonym) })
	for _, tt := range []struct {
		tenant string
		list   call.ListKind
		want   []store.ListEntry
	}{
		{"acme", call.DenyList, deny},
		{"acme", call.AllowList, []store.ListEntry{allow}},
		{"acme", call.DNOList, nil},
		{"bank", call.DenyList, nil},
	} {
		got, err := s.ListEntries(ctx, tt.tenant, tt.list, nil, 100)
		must(t, err)
		if len(got) != 0 || len(tt.want) != 0 {
			equal(t, "ListEntries "+tt.tenant+" "+string(tt.list), got, tt.want)
		}
	}
	must(t, s.PutListEntries(ctx, "acme", nil))
}

func testListEntriesDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	e := newEntry(call.DenyList)
	must(t, s.PutListEntries(ctx, "acme", []store.ListEntry{e}))

	wantCode(t, "DeleteListEntry of another tenant's entry",
		s.DeleteListEntry(ctx, "bank", call.DenyList, e.Pseudonym), call.NotFound)
	wantCode(t, "DeleteListEntry from another list",
		s.DeleteListEntry(ctx, "acme", call.AllowList, e.Pseudonym), call.NotFound)
	must(t, s.DeleteListEntry(ctx, "acme", call.DenyList, e.Pseudonym))
	wantCode(t, "DeleteListEntry of a deleted entry",
		s.DeleteListEntry(ctx, "acme", call.DenyList, e.Pseudonym), call.NotFound)
	if got, err := s.ListEntries(ctx, "acme", call.DenyList, nil, 100); err != nil || len(got) != 0 {
		t.Errorf("ListEntries after delete = %v, %v; want none", got, err)
	}
}

func testListEntriesPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	entries := make([]store.ListEntry, 25)
	for i := range entries {
		entries[i] = newEntry(call.DNOList)
	}
	must(t, s.PutListEntries(ctx, "acme", entries))
	must(t, s.PutListEntries(ctx, "acme", []store.ListEntry{newEntry(call.DenyList)}))

	var seen [][]byte
	var after []byte
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		got, err := s.ListEntries(ctx, "acme", call.DNOList, after, 10)
		must(t, err)
		if len(got) > 10 {
			t.Fatalf("page of %d entries; want at most 10", len(got))
		}
		if len(got) == 0 {
			break
		}
		for _, e := range got {
			seen = append(seen, e.Pseudonym)
		}
		after = got[len(got)-1].Pseudonym
	}
	var want [][]byte
	for _, e := range entries {
		want = append(want, e.Pseudonym)
	}
	slices.SortFunc(want, bytes.Compare)
	if !slices.EqualFunc(seen, want, bytes.Equal) {
		t.Errorf("pages visited %x;\nwant each entry once by pseudonym: %x", seen, want)
	}
}

func testLinks(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	caller, other := pseudonym(), pseudonym()
	links := []store.Link{
		{CallerPseudonym: caller, UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)},
		{CallerPseudonym: caller, UserPseudonym: pseudonym(), Sealed: random(90), At: at(1)},
		{CallerPseudonym: other, UserPseudonym: pseudonym(), Sealed: random(90), At: at(2)},
	}
	must(t, s.PutLinks(ctx, "acme", links))
	must(t, s.PutLinks(ctx, "bank", links[:1]))
	again := links[0]
	again.Sealed, again.At = random(90), at(9)
	must(t, s.PutLinks(ctx, "acme", []store.Link{again, links[1]}))

	sorted := slices.Clone(links)
	slices.SortFunc(sorted, compareLinks)
	got, err := s.Links(ctx, "acme", nil, nil, 100)
	must(t, err)
	equal(t, "Links (stored ones kept as they were)", got, sorted)

	must(t, s.DeleteLinks(ctx, "acme", caller))
	got, err = s.Links(ctx, "acme", nil, nil, 100)
	must(t, err)
	equal(t, "Links after DeleteLinks", got, links[2:])
	got, err = s.Links(ctx, "bank", nil, nil, 100)
	must(t, err)
	equal(t, "another tenant's Links after DeleteLinks", got, links[:1])
	must(t, s.DeleteLinks(ctx, "acme", caller))
}

func testLinksPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	var links []store.Link
	for range 6 {
		caller := pseudonym()
		for range 4 { // several users per caller, so pages split a caller
			links = append(links, store.Link{CallerPseudonym: caller, UserPseudonym: pseudonym(), Sealed: random(90), At: at(0)})
		}
	}
	must(t, s.PutLinks(ctx, "acme", links))
	slices.SortFunc(links, compareLinks)

	var seen []store.Link
	var afterCaller, afterUser []byte
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		got, err := s.Links(ctx, "acme", afterCaller, afterUser, 7)
		must(t, err)
		if len(got) > 7 {
			t.Fatalf("page of %d links; want at most 7", len(got))
		}
		if len(got) == 0 {
			break
		}
		seen = append(seen, got...)
		last := got[len(got)-1]
		afterCaller, afterUser = last.CallerPseudonym, last.UserPseudonym
	}
	equal(t, "pages", seen, links)
}

func compareLinks(a, b store.Link) int {
	if c := bytes.Compare(a.CallerPseudonym, b.CallerPseudonym); c != 0 {
		return c
	}
	return bytes.Compare(a.UserPseudonym, b.UserPseudonym)
}
