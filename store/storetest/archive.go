package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// RunArchive runs the archive storage suite. Each subtest calls open for a
// fresh, empty store and closes it when done; the subtests run in parallel,
// so open must be safe for concurrent use.
func RunArchive(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Users", testArchiveUsers},
		{"Contacts", testArchiveContacts},
		{"ItemIdempotency", testArchiveItemIdempotency},
		{"ItemInvalid", testArchiveItemInvalid},
		{"Search", testArchiveSearch},
		{"SearchTokens", testArchiveSearchTokens},
		{"SearchPaging", testArchiveSearchPaging},
		{"DayItems", testArchiveDayItems},
		{"Holds", testArchiveHolds},
		{"Purge", testArchivePurge},
		{"PurgeUsers", testArchivePurgeUsers},
		{"Retention", testArchiveRetention},
		{"Uploads", testArchiveUploads},
		{"TenantIsolation", testArchiveTenantIsolation},
		{"UnknownTenant", testArchiveUnknownTenant},
		{"DeleteTenantData", testArchiveDeleteTenantData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each subtest has a store of its own
			s := open(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			tt.fn(t, s)
		})
	}
}

// sortedSet is bs sorted and without repeats, nil if empty: how the store
// returns pseudonym and token sets.
func sortedSet(bs [][]byte) [][]byte {
	out := slices.Clone(bs)
	slices.SortFunc(out, bytes.Compare)
	out = slices.CompactFunc(out, bytes.Equal)
	if len(out) == 0 {
		return nil
	}
	return out
}

// asStored is it as the store returns it.
func asStored(it store.ArchiveItem) store.ArchiveItem {
	it.Parties, it.Tokens = sortedSet(it.Parties), sortedSet(it.Tokens)
	return it
}

// archiveItem returns a new item of kind for user, started at at(i).
func archiveItem(tenant, user, kind, direction string, i int) store.ArchiveItem {
	started := at(i)
	sum := sha256.Sum256(random(16))
	it := store.ArchiveItem{
		Tenant:    tenant,
		ID:        recordIDs.Next(started),
		ClientID:  fmt.Sprintf("client-%x", random(8)),
		Kind:      kind,
		UserID:    user,
		Direction: direction,
		StartedAt: started,
		Parties:   [][]byte{pseudonym(), pseudonym()},
		Sealed:    random(80),
		SHA256:    hex.EncodeToString(sum[:]),
		ChainDay:  started.Format(time.DateOnly),
		CreatedAt: at(i + 1),
	}
	switch kind {
	case store.ArchiveCall:
		it.Duration, it.Result = time.Duration(i+1)*time.Second+1500*time.Microsecond, "answered"
	case store.ArchiveRecording:
		it.Duration, it.BlobID, it.Size = time.Duration(i+1)*time.Second, fmt.Sprintf("blob-%x", random(8)), int64(1000+i)
	case store.ArchiveSMS:
		it.Tokens = [][]byte{random(16)}
	}
	return it
}

// putItems stores items and fails the test unless each is created.
func putItems(t *testing.T, s store.Store, its ...store.ArchiveItem) {
	t.Helper()
	for _, it := range its {
		got, created, err := s.PutArchiveItem(t.Context(), it)
		must(t, err)
		if !created {
			t.Fatalf("PutArchiveItem of a new client id: created false")
		}
		equal(t, "PutArchiveItem's stored item", got, asStored(it))
	}
}

func itemIDs(its []store.ArchiveItem) []string {
	var out []string
	for _, it := range its {
		out = append(out, it.ID)
	}
	return out
}

func archiveUser(tenant, id string, i int) store.ArchiveUser {
	return store.ArchiveUser{Tenant: tenant, ID: id, Sealed: random(60), Numbers: [][]byte{pseudonym(), pseudonym()}, CreatedAt: at(i)}
}

func testArchiveUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	var want []store.ArchiveUser
	for i, id := range []string{"u3", "u1", "u2"} {
		u := archiveUser("acme", id, i)
		must(t, s.PutArchiveUser(ctx, u))
		u.Numbers = sortedSet(u.Numbers)
		want = append(want, u)
	}
	slices.SortFunc(want, func(a, b store.ArchiveUser) int { return strings.Compare(a.ID, b.ID) })

	got, err := s.ArchiveUser(ctx, "acme", "u2")
	must(t, err)
	equal(t, "ArchiveUser", got, want[1])
	all, err := s.ArchiveUsers(ctx, "acme", "", 0)
	must(t, err)
	equal(t, "ArchiveUsers", all, want)
	page, err := s.ArchiveUsers(ctx, "acme", "u1", 1)
	must(t, err)
	equal(t, "ArchiveUsers after u1, limit 1", page, want[1:2])

	// A second put replaces sealed value and numbers, keeping CreatedAt.
	shared := pseudonym()
	u1 := store.ArchiveUser{Tenant: "acme", ID: "u1", Sealed: random(61), Numbers: [][]byte{shared, shared}, CreatedAt: at(50)}
	must(t, s.PutArchiveUser(ctx, u1))
	got, err = s.ArchiveUser(ctx, "acme", "u1")
	must(t, err)
	equal(t, "ArchiveUser after replacing", got, store.ArchiveUser{Tenant: "acme", ID: "u1", Sealed: u1.Sealed,
		Numbers: [][]byte{shared}, CreatedAt: want[0].CreatedAt})
	for _, p := range want[0].Numbers {
		byOld, err := s.ArchiveUsersByNumber(ctx, "acme", p)
		must(t, err)
		if len(byOld) != 0 {
			t.Errorf("ArchiveUsersByNumber of a replaced number = %v; want none", itemUsers(byOld))
		}
	}
	u3 := want[2]
	u3.Numbers = append(u3.Numbers, shared)
	must(t, s.PutArchiveUser(ctx, u3))
	byNumber, err := s.ArchiveUsersByNumber(ctx, "acme", shared)
	must(t, err)
	equal(t, "ArchiveUsersByNumber of a shared number", itemUsers(byNumber), []string{"u1", "u3"})

	// Offboarding keeps the user; a second time is a Conflict.
	must(t, s.OffboardArchiveUser(ctx, "acme", "u2", at(9)))
	got, err = s.ArchiveUser(ctx, "acme", "u2")
	must(t, err)
	if !got.OffboardedAt.Equal(at(9)) {
		t.Errorf("OffboardedAt = %v; want %v", got.OffboardedAt, at(9))
	}
	wantCode(t, "OffboardArchiveUser twice", s.OffboardArchiveUser(ctx, "acme", "u2", at(10)), call.Conflict)
	wantCode(t, "OffboardArchiveUser of an unknown user", s.OffboardArchiveUser(ctx, "acme", "nobody", at(10)), call.NotFound)
	must(t, s.PutArchiveUser(ctx, archiveUser("acme", "u2", 11)))
	if got, _ := s.ArchiveUser(ctx, "acme", "u2"); !got.OffboardedAt.Equal(at(9)) {
		t.Errorf("OffboardedAt after a put = %v; want it kept, %v", got.OffboardedAt, at(9))
	}

	_, err = s.ArchiveUser(ctx, "acme", "nobody")
	wantCode(t, "ArchiveUser of an unknown id", err, call.NotFound)
	wantCode(t, "PutArchiveUser without an id", s.PutArchiveUser(ctx, store.ArchiveUser{Tenant: "acme"}), call.Invalid)
	wantCode(t, "PutArchiveUser with an empty number",
		s.PutArchiveUser(ctx, store.ArchiveUser{Tenant: "acme", ID: "x", Numbers: [][]byte{{}}}), call.Invalid)
}

func itemUsers(us []store.ArchiveUser) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func testArchiveContacts(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	must(t, s.PutArchiveUser(ctx, archiveUser("acme", "u1", 0)))
	must(t, s.PutArchiveUser(ctx, archiveUser("acme", "u2", 0)))
	contact := func(id string) store.ArchiveContact {
		return store.ArchiveContact{ID: id, Sealed: random(40), Numbers: [][]byte{pseudonym(), pseudonym()}, CreatedAt: at(2)}
	}
	first := []store.ArchiveContact{contact("c2"), contact("c1"), contact("c3")}
	must(t, s.PutArchiveContacts(ctx, "acme", "u1", first))
	must(t, s.PutArchiveContacts(ctx, "acme", "u2", []store.ArchiveContact{contact("c1")}))
	stored := func(cs ...store.ArchiveContact) []store.ArchiveContact {
		var out []store.ArchiveContact
		for _, c := range cs {
			c.Tenant, c.UserID, c.Numbers = "acme", "u1", sortedSet(c.Numbers)
			out = append(out, c)
		}
		slices.SortFunc(out, func(a, b store.ArchiveContact) int { return strings.Compare(a.ID, b.ID) })
		return out
	}
	got, err := s.ArchiveContacts(ctx, "acme", "u1")
	must(t, err)
	equal(t, "ArchiveContacts", got, stored(first...))

	// A second put replaces the list.
	second := []store.ArchiveContact{first[0], contact("c4")}
	must(t, s.PutArchiveContacts(ctx, "acme", "u1", second))
	got, err = s.ArchiveContacts(ctx, "acme", "u1")
	must(t, err)
	equal(t, "ArchiveContacts after replacing", got, stored(second...))
	if other, err := s.ArchiveContacts(ctx, "acme", "u2"); err != nil || len(other) != 1 {
		t.Errorf("ArchiveContacts of another user = %d contacts, %v; want its 1 untouched", len(other), err)
	}

	wantCode(t, "PutArchiveContacts of an unknown user",
		s.PutArchiveContacts(ctx, "acme", "nobody", []store.ArchiveContact{contact("c1")}), call.NotFound)
	wantCode(t, "PutArchiveContacts with a repeated id",
		s.PutArchiveContacts(ctx, "acme", "u1", []store.ArchiveContact{contact("c1"), contact("c1")}), call.Invalid)
	wantCode(t, "PutArchiveContacts without an id",
		s.PutArchiveContacts(ctx, "acme", "u1", []store.ArchiveContact{{Sealed: random(4)}}), call.Invalid)
	got, err = s.ArchiveContacts(ctx, "acme", "u1")
	must(t, err)
	equal(t, "ArchiveContacts after refused puts", got, stored(second...))

	must(t, s.PutArchiveContacts(ctx, "acme", "u1", nil))
	if got, err := s.ArchiveContacts(ctx, "acme", "u1"); err != nil || len(got) != 0 {
		t.Errorf("ArchiveContacts after clearing = %d, %v; want none", len(got), err)
	}
}

func testArchiveItemIdempotency(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	for _, kind := range []string{store.ArchiveCall, store.ArchiveSMS, store.ArchiveRecording} {
		t.Run(kind, func(t *testing.T) {
			it := archiveItem("acme", "u1", kind, store.ArchiveInbound, 3)
			if kind == store.ArchiveRecording {
				it.CallID = recordIDs.Next(at(3))
			}
			it.Parties = append(it.Parties, it.Parties[0]) // a repeat is stored once
			putItems(t, s, it)
			got, err := s.ArchiveItem(ctx, "acme", it.ID)
			must(t, err)
			equal(t, "ArchiveItem", got, asStored(it))

			// A retry with the same client id, whatever else it carries,
			// returns the stored item and stores nothing.
			retry := archiveItem("acme", "u2", kind, store.ArchiveOutbound, 7)
			retry.ClientID = it.ClientID
			got, created, err := s.PutArchiveItem(ctx, retry)
			must(t, err)
			if created {
				t.Errorf("PutArchiveItem of a stored client id: created true")
			}
			equal(t, "PutArchiveItem of a stored client id", got, asStored(it))
			_, err = s.ArchiveItem(ctx, "acme", retry.ID)
			wantCode(t, "ArchiveItem of the retry's id", err, call.NotFound)

			// Another client id with a stored item id is a Conflict.
			dup := archiveItem("acme", "u1", kind, store.ArchiveInbound, 3)
			dup.ID = it.ID
			_, _, err = s.PutArchiveItem(ctx, dup)
			wantCode(t, "PutArchiveItem of a stored id with another client id", err, call.Conflict)

			// Client ids are per tenant.
			other := archiveItem("bank", "u1", kind, store.ArchiveInbound, 3)
			other.ClientID = it.ClientID
			putItems(t, s, other)
		})
	}
}

func testArchiveItemInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	for _, tt := range []struct {
		name   string
		change func(*store.ArchiveItem)
	}{
		{"no id", func(it *store.ArchiveItem) { it.ID = "" }},
		{"no client id", func(it *store.ArchiveItem) { it.ClientID = "" }},
		{"no user", func(it *store.ArchiveItem) { it.UserID = "" }},
		{"unknown kind", func(it *store.ArchiveItem) { it.Kind = "fax" }},
		{"unknown direction", func(it *store.ArchiveItem) { it.Direction = "sideways" }},
		{"no start", func(it *store.ArchiveItem) { it.StartedAt = time.Time{} }},
		{"negative duration", func(it *store.ArchiveItem) { it.Duration = -1 }},
		{"short sha256", func(it *store.ArchiveItem) { it.SHA256 = "abcd" }},
		{"upper-case sha256", func(it *store.ArchiveItem) { it.SHA256 = strings.ToUpper(strings.Repeat("ab", 32)) }},
		{"bad day", func(it *store.ArchiveItem) { it.ChainDay = "2025-02-30" }},
		{"blob on a call", func(it *store.ArchiveItem) { it.Kind, it.BlobID = store.ArchiveCall, "b" }},
		{"empty party", func(it *store.ArchiveItem) { it.Parties = [][]byte{{}} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			it := archiveItem("acme", "u1", store.ArchiveRecording, store.ArchiveInbound, 0)
			tt.change(&it)
			_, _, err := s.PutArchiveItem(ctx, it)
			wantCode(t, "PutArchiveItem", err, call.Invalid)
		})
	}
	got, err := s.SearchArchive(ctx, "acme", store.ArchiveQuery{})
	must(t, err)
	if len(got) != 0 {
		t.Errorf("SearchArchive after invalid puts = %d items; want none", len(got))
	}
}

func testArchiveSearch(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	party := pseudonym()
	// its[i] started at at(i).
	its := []store.ArchiveItem{
		archiveItem("acme", "u1", store.ArchiveCall, store.ArchiveInbound, 0),
		archiveItem("acme", "u1", store.ArchiveSMS, store.ArchiveOutbound, 1),
		archiveItem("acme", "u2", store.ArchiveRecording, store.ArchiveInbound, 2),
		archiveItem("acme", "u2", store.ArchiveCall, store.ArchiveOutbound, 3),
		archiveItem("acme", "u3", store.ArchiveSMS, store.ArchiveInbound, 4),
	}
	its[1].Parties = append(its[1].Parties, party)
	its[3].Parties = append(its[3].Parties, party)
	putItems(t, s, its...)
	ids := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, its[i].ID)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		q    store.ArchiveQuery
		want []string
	}{
		{"all, newest first", store.ArchiveQuery{}, ids(4, 3, 2, 1, 0)},
		{"user", store.ArchiveQuery{UserID: "u2"}, ids(3, 2)},
		{"party", store.ArchiveQuery{Party: party}, ids(3, 1)},
		{"direction", store.ArchiveQuery{Direction: store.ArchiveInbound}, ids(4, 2, 0)},
		{"kind", store.ArchiveQuery{Kind: store.ArchiveSMS}, ids(4, 1)},
		{"from", store.ArchiveQuery{From: at(3)}, ids(4, 3)},
		{"to", store.ArchiveQuery{To: at(1)}, ids(0)},
		{"range", store.ArchiveQuery{From: at(1), To: at(4)}, ids(3, 2, 1)},
		{"user and kind", store.ArchiveQuery{UserID: "u1", Kind: store.ArchiveCall}, ids(0)},
		{"party and direction", store.ArchiveQuery{Party: party, Direction: store.ArchiveOutbound, UserID: "u1"}, ids(1)},
		{"unknown party", store.ArchiveQuery{Party: pseudonym()}, nil},
		{"unknown user", store.ArchiveQuery{UserID: "nobody"}, nil},
		{"limit", store.ArchiveQuery{Limit: 2}, ids(4, 3)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.SearchArchive(ctx, "acme", tt.q)
			must(t, err)
			equal(t, "SearchArchive ids", itemIDs(got), tt.want)
		})
	}
	got, err := s.SearchArchive(ctx, "acme", store.ArchiveQuery{UserID: "u2", Kind: store.ArchiveRecording})
	must(t, err)
	equal(t, "SearchArchive items", got, []store.ArchiveItem{asStored(its[2])})

	for _, q := range []store.ArchiveQuery{
		{Kind: "fax"}, {Direction: "up"}, {Tokens: make([][]byte, store.MaxArchiveQueryTokens+1)},
	} {
		_, err := s.SearchArchive(ctx, "acme", q)
		wantCode(t, fmt.Sprintf("SearchArchive(%+v)", q), err, call.Invalid)
	}
}

func testArchiveSearchTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	key := random(32)
	texts := []string{
		"Please wire the money today",
		"Meeting moved to Friday; wire details follow.",
		"the MONEY is ready",
		"Nothing to see here",
	}
	var its []store.ArchiveItem
	for i, text := range texts {
		it := archiveItem("acme", "u1", store.ArchiveSMS, store.ArchiveInbound, i)
		it.Tokens = store.ArchiveTokens(key, text)
		its = append(its, it)
	}
	putItems(t, s, its...)
	for _, tt := range []struct {
		search string
		want   []int
	}{
		{"wire", []int{1, 0}},
		{"money", []int{2, 0}},
		{"Money WIRE", []int{0}},
		{"friday", []int{1}},
		{"wire fraud", nil},
		{"absent", nil},
	} {
		t.Run(tt.search, func(t *testing.T) {
			got, err := s.SearchArchive(ctx, "acme", store.ArchiveQuery{Tokens: store.ArchiveTokens(key, tt.search)})
			must(t, err)
			var want []string
			for _, i := range tt.want {
				want = append(want, its[i].ID)
			}
			equal(t, "SearchArchive by tokens", itemIDs(got), want)
		})
	}
	// Another key's tokens of the same word match nothing.
	got, err := s.SearchArchive(ctx, "acme", store.ArchiveQuery{Tokens: store.ArchiveTokens(random(32), "wire")})
	must(t, err)
	if len(got) != 0 {
		t.Errorf("SearchArchive with another key's tokens = %d items; want none", len(got))
	}
	// Tokens combine with the other filters.
	got, err = s.SearchArchive(ctx, "acme", store.ArchiveQuery{Tokens: store.ArchiveTokens(key, "wire"), To: at(1)})
	must(t, err)
	equal(t, "SearchArchive by token and time", itemIDs(got), []string{its[0].ID})
}

func testArchiveSearchPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	var its []store.ArchiveItem
	for i := range 7 {
		// Two items per start time, so the id breaks ties.
		its = append(its, archiveItem("acme", "u1", store.ArchiveCall, store.ArchiveInbound, i/2))
	}
	putItems(t, s, its...)
	want := itemIDs(its)
	slices.SortFunc(want, func(a, b string) int {
		ia := slices.IndexFunc(its, func(it store.ArchiveItem) bool { return it.ID == a })
		ib := slices.IndexFunc(its, func(it store.ArchiveItem) bool { return it.ID == b })
		if c := its[ib].StartedAt.Compare(its[ia].StartedAt); c != 0 {
			return c
		}
		return strings.Compare(b, a)
	})
	var got []string
	q := store.ArchiveQuery{Limit: 3}
	for range 10 {
		page, err := s.SearchArchive(ctx, "acme", q)
		must(t, err)
		got = append(got, itemIDs(page)...)
		if len(page) < q.Limit {
			break
		}
		last := page[len(page)-1]
		q.BeforeStartedAt, q.BeforeID = last.StartedAt, last.ID
	}
	equal(t, "SearchArchive pages", got, want)
}

func testArchiveDayItems(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	var its []store.ArchiveItem
	for i := range 6 {
		it := archiveItem("acme", "u1", store.ArchiveCall, store.ArchiveInbound, i)
		it.ID = fmt.Sprintf("item-%x", random(6)) // ids in no particular order
		it.ChainDay = "2025-03-14"
		if i%3 == 2 {
			it.ChainDay = "2025-03-15"
		}
		its = append(its, it)
	}
	putItems(t, s, its...)
	var want []string
	for _, it := range its {
		if it.ChainDay == "2025-03-14" {
			want = append(want, it.ID)
		}
	}
	slices.Sort(want)
	got, err := s.ArchiveDayItems(ctx, "acme", "2025-03-14", "", 0)
	must(t, err)
	equal(t, "ArchiveDayItems", itemIDs(got), want)
	page, err := s.ArchiveDayItems(ctx, "acme", "2025-03-14", want[0], 2)
	must(t, err)
	equal(t, "ArchiveDayItems after the first, limit 2", itemIDs(page), want[1:3])
	if n := slices.IndexFunc(got, func(it store.ArchiveItem) bool { return it.ID == want[0] }); n >= 0 {
		wantItem := its[slices.IndexFunc(its, func(it store.ArchiveItem) bool { return it.ID == want[0] })]
		equal(t, "ArchiveDayItems item", got[n], asStored(wantItem))
	}
	none, err := s.ArchiveDayItems(ctx, "acme", "2025-03-16", "", 0)
	must(t, err)
	if len(none) != 0 {
		t.Errorf("ArchiveDayItems of an empty day = %d items", len(none))
	}
	_, err = s.ArchiveDayItems(ctx, "acme", "14/03/2025", "", 0)
	wantCode(t, "ArchiveDayItems of a malformed day", err, call.Invalid)
}

func testArchiveHolds(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	holds := []store.ArchiveHold{
		{Tenant: "acme", ID: "h1", Scope: store.ArchiveHoldUser, UserID: "u1", Reason: "litigation", PlacedBy: "officer", PlacedAt: at(1)},
		{Tenant: "acme", ID: "h2", Scope: store.ArchiveHoldCase, CaseID: "case-7", UserID: "u2", From: at(0), To: at(5),
			Reason: "regulator", PlacedBy: "officer", PlacedAt: at(2)},
		{Tenant: "acme", ID: "h3", Scope: store.ArchiveHoldRange, From: at(3), To: at(4), Reason: "audit", PlacedBy: "officer", PlacedAt: at(3)},
	}
	for _, h := range holds {
		must(t, s.PutArchiveHold(ctx, h))
	}
	wantCode(t, "PutArchiveHold of a stored id", s.PutArchiveHold(ctx, holds[0]), call.Conflict)
	for _, h := range []store.ArchiveHold{
		{Tenant: "acme", Scope: store.ArchiveHoldUser, UserID: "u1"},
		{Tenant: "acme", ID: "x", Scope: store.ArchiveHoldUser},
		{Tenant: "acme", ID: "x", Scope: store.ArchiveHoldCase},
		{Tenant: "acme", ID: "x", Scope: store.ArchiveHoldRange, From: at(1)},
		{Tenant: "acme", ID: "x", Scope: store.ArchiveHoldRange, From: at(2), To: at(1)},
		{Tenant: "acme", ID: "x", Scope: "everything"},
	} {
		wantCode(t, fmt.Sprintf("PutArchiveHold(%+v)", h), s.PutArchiveHold(ctx, h), call.Invalid)
	}
	got, err := s.ArchiveHolds(ctx, "acme", false)
	must(t, err)
	equal(t, "ArchiveHolds", got, holds)

	must(t, s.LiftArchiveHold(ctx, "acme", "h2", "officer2", at(9)))
	wantCode(t, "LiftArchiveHold twice", s.LiftArchiveHold(ctx, "acme", "h2", "officer2", at(10)), call.Conflict)
	wantCode(t, "LiftArchiveHold of an unknown id", s.LiftArchiveHold(ctx, "acme", "nope", "officer2", at(10)), call.NotFound)
	holds[1].LiftedBy, holds[1].LiftedAt = "officer2", at(9)
	got, err = s.ArchiveHolds(ctx, "acme", false)
	must(t, err)
	equal(t, "ArchiveHolds after a lift", got, holds)
	active, err := s.ArchiveHolds(ctx, "acme", true)
	must(t, err)
	equal(t, "ArchiveHolds active only", active, []store.ArchiveHold{holds[0], holds[2]})
}

func testArchivePurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	key := random(32)
	// Recordings of three users at minutes 0-9; u1's under a user hold,
	// minutes [3, 5) under a range hold, u2's minutes [6, 8) under a case
	// hold, and u3's under a lifted hold (which holds nothing).
	var its []store.ArchiveItem
	for i := range 10 {
		for _, u := range []string{"u1", "u2", "u3"} {
			it := archiveItem("acme", u, store.ArchiveRecording, store.ArchiveInbound, i)
			it.Tokens = store.ArchiveTokens(key, "purge me "+it.ID)
			its = append(its, it)
		}
	}
	calls := []store.ArchiveItem{archiveItem("acme", "u2", store.ArchiveCall, store.ArchiveInbound, 0)}
	putItems(t, s, append(its, calls...)...)
	for _, h := range []store.ArchiveHold{
		{Tenant: "acme", ID: "user", Scope: store.ArchiveHoldUser, UserID: "u1", PlacedAt: at(0)},
		{Tenant: "acme", ID: "range", Scope: store.ArchiveHoldRange, From: at(3), To: at(5), PlacedAt: at(0)},
		{Tenant: "acme", ID: "case", Scope: store.ArchiveHoldCase, CaseID: "c1", UserID: "u2", From: at(6), To: at(8), PlacedAt: at(0)},
		{Tenant: "acme", ID: "lifted", Scope: store.ArchiveHoldUser, UserID: "u3", PlacedAt: at(0)},
	} {
		must(t, s.PutArchiveHold(ctx, h))
	}
	must(t, s.LiftArchiveHold(ctx, "acme", "lifted", "officer", at(1)))
	holds, err := s.ArchiveHolds(ctx, "acme", true)
	must(t, err)

	before := at(9) // minute 9 is too young
	purgeable := map[string]store.ArchiveItem{}
	for _, it := range its {
		held := false
		for _, h := range holds {
			held = held || h.Covers(it.UserID, it.StartedAt)
		}
		if !held && it.StartedAt.Before(before) {
			purgeable[it.ID] = it
		}
	}
	// u2: minutes 0, 1, 2, 5, 8; u3: all but 3 and 4.
	if len(purgeable) != 12 {
		t.Fatalf("fixture: %d purgeable items; want 12", len(purgeable))
	}
	itemOfBlob := map[string]string{}
	for _, it := range its {
		itemOfBlob[it.BlobID] = it.ID
	}

	var blobs []string
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatal("PurgeArchive does not stop")
		}
		got, err := s.PurgeArchive(ctx, "acme", store.ArchivePurge{Kind: store.ArchiveRecording, Before: before, Limit: 4})
		must(t, err)
		if got.Items > 4 {
			t.Fatalf("PurgeArchive with limit 4 deleted %d", got.Items)
		}
		if int64(len(got.BlobIDs)) != got.Items {
			t.Errorf("PurgeArchive returned %d blob ids for %d recordings", len(got.BlobIDs), got.Items)
		}
		var ids []string
		for _, b := range got.BlobIDs {
			ids = append(ids, itemOfBlob[b])
		}
		if !slices.IsSorted(ids) {
			t.Errorf("PurgeArchive's blob ids are not in item id order")
		}
		blobs = append(blobs, got.BlobIDs...)
		if got.Items < 4 {
			break
		}
	}
	var wantBlobs []string
	for _, it := range purgeable {
		wantBlobs = append(wantBlobs, it.BlobID)
	}
	slices.Sort(wantBlobs)
	slices.Sort(blobs)
	equal(t, "blob ids purged", blobs, wantBlobs)

	for _, it := range its {
		_, err := s.ArchiveItem(ctx, "acme", it.ID)
		if _, gone := purgeable[it.ID]; gone {
			wantCode(t, "ArchiveItem of a purged item", err, call.NotFound)
			found, err := s.SearchArchive(ctx, "acme", store.ArchiveQuery{Tokens: store.ArchiveTokens(key, it.ID)})
			must(t, err)
			if len(found) != 0 {
				t.Errorf("a purged item's tokens still find %d items", len(found))
			}
			found, err = s.SearchArchive(ctx, "acme", store.ArchiveQuery{Party: it.Parties[0]})
			must(t, err)
			if len(found) != 0 {
				t.Errorf("a purged item's party still finds %d items", len(found))
			}
		} else if err != nil {
			t.Errorf("ArchiveItem of a kept item (user %s, minute %v): %v", it.UserID, it.StartedAt.Sub(at(0)), err)
		}
	}
	if _, err := s.ArchiveItem(ctx, "acme", calls[0].ID); err != nil {
		t.Errorf("ArchiveItem of a call record after purging recordings: %v", err)
	}

	// Lifting the user hold frees u1's items outside the range hold.
	must(t, s.LiftArchiveHold(ctx, "acme", "user", "officer", at(2)))
	got, err := s.PurgeArchive(ctx, "acme", store.ArchivePurge{Kind: store.ArchiveRecording, Before: before, Limit: 100})
	must(t, err)
	if got.Items != 7 { // u1's minutes but 3 and 4, under the range hold
		t.Errorf("PurgeArchive after lifting the user hold deleted %d; want 7", got.Items)
	}
	for _, p := range []store.ArchivePurge{
		{Kind: "fax", Before: before}, {Kind: store.ArchiveCall},
		{Kind: store.ArchiveCall, Before: before, ExceptUsers: make([]string, store.MaxArchivePurgeUsers+1)},
	} {
		_, err := s.PurgeArchive(ctx, "acme", p)
		wantCode(t, fmt.Sprintf("PurgeArchive(%+v)", p.Kind), err, call.Invalid)
	}
}

func testArchivePurgeUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	var its []store.ArchiveItem
	for i, u := range []string{"u1", "u2", "u3", "u1", "u2", "u3"} {
		its = append(its, archiveItem("acme", u, store.ArchiveSMS, store.ArchiveOutbound, i))
	}
	putItems(t, s, its...)
	remaining := func() []string {
		got, err := s.SearchArchive(ctx, "acme", store.ArchiveQuery{})
		must(t, err)
		var us []string
		for _, it := range got {
			us = append(us, it.UserID)
		}
		return us
	}
	// The default period spares u3, who has an override.
	got, err := s.PurgeArchive(ctx, "acme", store.ArchivePurge{Kind: store.ArchiveSMS, Before: at(4), ExceptUsers: []string{"u3"}})
	must(t, err)
	if got.Items != 3 || len(got.BlobIDs) != 0 {
		t.Errorf("PurgeArchive except u3 = %+v; want 3 items, no blobs", got)
	}
	equal(t, "users left", remaining(), []string{"u3", "u2", "u3"})
	// u3's own, shorter period.
	got, err = s.PurgeArchive(ctx, "acme", store.ArchivePurge{Kind: store.ArchiveSMS, Before: at(10), Users: []string{"u3"}})
	must(t, err)
	if got.Items != 2 {
		t.Errorf("PurgeArchive of u3 = %+v; want 2 items", got)
	}
	equal(t, "users left", remaining(), []string{"u2"})
	// Another kind is untouched.
	got, err = s.PurgeArchive(ctx, "acme", store.ArchivePurge{Kind: store.ArchiveCall, Before: at(10)})
	must(t, err)
	if got.Items != 0 {
		t.Errorf("PurgeArchive of calls deleted %d SMS", got.Items)
	}
}

func testArchiveRetention(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	got, err := s.ArchiveRetention(ctx, "acme")
	if err != nil || got != nil {
		t.Fatalf("ArchiveRetention with none stored = %q, %v; want nil", got, err)
	}
	for _, settings := range []string{`{"recording":"5y"}`, `{"sms": "7y", "users": {"u1": {"sms": "6y"}}}`} {
		must(t, s.PutArchiveRetention(ctx, "acme", []byte(settings)))
		got, err := s.ArchiveRetention(ctx, "acme")
		must(t, err)
		if string(got) != settings {
			t.Errorf("ArchiveRetention = %s; want %s byte for byte", got, settings)
		}
	}
	if got, err := s.Retention(ctx, "acme"); err != nil || got != nil {
		t.Errorf("the platform's Retention after PutArchiveRetention = %q, %v; want none", got, err)
	}
}

func testArchiveUploads(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	u := store.ArchiveUpload{Tenant: "acme", ID: "up1", ItemID: recordIDs.Next(at(0)), ClientID: "msg-1",
		State: random(50), Offset: 0, CreatedAt: at(0), UpdatedAt: at(0)}
	must(t, s.PutArchiveUpload(ctx, u))
	got, err := s.ArchiveUpload(ctx, "acme", "up1")
	must(t, err)
	equal(t, "ArchiveUpload", got, u)
	got, err = s.ArchiveUploadByClient(ctx, "acme", "msg-1")
	must(t, err)
	equal(t, "ArchiveUploadByClient", got, u)

	// Moving forward keeps item, client id and creation time.
	next := u
	next.ItemID, next.ClientID, next.CreatedAt = "other", "msg-1", at(5)
	next.State, next.Offset, next.UpdatedAt = random(50), 1<<20, at(3)
	must(t, s.PutArchiveUpload(ctx, next))
	want := u
	want.State, want.Offset, want.UpdatedAt = next.State, next.Offset, next.UpdatedAt
	got, err = s.ArchiveUpload(ctx, "acme", "up1")
	must(t, err)
	equal(t, "ArchiveUpload after moving forward", got, want)

	back := next
	back.Offset, back.State = 10, random(50)
	wantCode(t, "PutArchiveUpload moving backwards", s.PutArchiveUpload(ctx, back), call.Conflict)
	second := store.ArchiveUpload{Tenant: "acme", ID: "up2", ItemID: "i2", ClientID: "msg-1", UpdatedAt: at(1)}
	wantCode(t, "PutArchiveUpload of another session with the client id", s.PutArchiveUpload(ctx, second), call.Conflict)
	for _, bad := range []store.ArchiveUpload{
		{Tenant: "acme", ClientID: "c", UpdatedAt: at(1)},
		{Tenant: "acme", ID: "x", UpdatedAt: at(1)},
		{Tenant: "acme", ID: "x", ClientID: "c", Offset: -1, UpdatedAt: at(1)},
		{Tenant: "acme", ID: "x", ClientID: "c"},
	} {
		wantCode(t, fmt.Sprintf("PutArchiveUpload(%+v)", bad), s.PutArchiveUpload(ctx, bad), call.Invalid)
	}
	got, err = s.ArchiveUpload(ctx, "acme", "up1")
	must(t, err)
	equal(t, "ArchiveUpload after refused puts", got, want)

	second.ClientID = "msg-2"
	must(t, s.PutArchiveUpload(ctx, second))
	stale, err := s.ArchiveUploads(ctx, "acme", at(2), 0)
	must(t, err)
	equal(t, "ArchiveUploads updated before minute 2", stale, []store.ArchiveUpload{second})
	stale, err = s.ArchiveUploads(ctx, "acme", at(4), 0)
	must(t, err)
	if len(stale) != 2 || stale[0].ID != "up2" || stale[1].ID != "up1" {
		t.Errorf("ArchiveUploads before minute 4 = %d sessions; want up2, up1", len(stale))
	}

	must(t, s.DeleteArchiveUpload(ctx, "acme", "up1"))
	wantCode(t, "DeleteArchiveUpload twice", s.DeleteArchiveUpload(ctx, "acme", "up1"), call.NotFound)
	_, err = s.ArchiveUpload(ctx, "acme", "up1")
	wantCode(t, "ArchiveUpload after delete", err, call.NotFound)
	_, err = s.ArchiveUploadByClient(ctx, "acme", "msg-1")
	wantCode(t, "ArchiveUploadByClient after delete", err, call.NotFound)
}

func testArchiveTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	key := random(32)
	party := pseudonym()
	mine := archiveItem("acme", "u1", store.ArchiveRecording, store.ArchiveInbound, 0)
	mine.Tokens = store.ArchiveTokens(key, "secret plan")
	mine.Parties = append(mine.Parties, party)
	putItems(t, s, mine)
	must(t, s.PutArchiveUser(ctx, store.ArchiveUser{Tenant: "acme", ID: "u1", Sealed: random(10), Numbers: [][]byte{party}}))
	must(t, s.PutArchiveContacts(ctx, "acme", "u1", []store.ArchiveContact{{ID: "c1", Sealed: random(10)}}))
	must(t, s.PutArchiveHold(ctx, store.ArchiveHold{Tenant: "acme", ID: "h1", Scope: store.ArchiveHoldUser, UserID: "u1"}))
	must(t, s.PutArchiveRetention(ctx, "acme", []byte(`{}`)))
	must(t, s.PutArchiveUpload(ctx, store.ArchiveUpload{Tenant: "acme", ID: "up1", ItemID: "i", ClientID: "m1", UpdatedAt: at(0)}))

	_, err := s.ArchiveItem(ctx, "bank", mine.ID)
	wantCode(t, "ArchiveItem of another tenant's id", err, call.NotFound)
	for _, q := range []store.ArchiveQuery{{}, {UserID: "u1"}, {Party: party}, {Tokens: mine.Tokens}} {
		got, err := s.SearchArchive(ctx, "bank", q)
		must(t, err)
		if len(got) != 0 {
			t.Errorf("SearchArchive(%+v) of another tenant = %d items; want none", q, len(got))
		}
	}
	if got, err := s.ArchiveDayItems(ctx, "bank", mine.ChainDay, "", 0); err != nil || len(got) != 0 {
		t.Errorf("ArchiveDayItems of another tenant = %d, %v; want none", len(got), err)
	}
	_, err = s.ArchiveUser(ctx, "bank", "u1")
	wantCode(t, "ArchiveUser of another tenant", err, call.NotFound)
	if got, err := s.ArchiveUsersByNumber(ctx, "bank", party); err != nil || len(got) != 0 {
		t.Errorf("ArchiveUsersByNumber of another tenant = %d, %v", len(got), err)
	}
	if got, err := s.ArchiveUsers(ctx, "bank", "", 0); err != nil || len(got) != 0 {
		t.Errorf("ArchiveUsers of another tenant = %d, %v", len(got), err)
	}
	if got, err := s.ArchiveContacts(ctx, "bank", "u1"); err != nil || len(got) != 0 {
		t.Errorf("ArchiveContacts of another tenant = %d, %v", len(got), err)
	}
	wantCode(t, "PutArchiveContacts for another tenant's user",
		s.PutArchiveContacts(ctx, "bank", "u1", nil), call.NotFound)
	wantCode(t, "OffboardArchiveUser of another tenant's user", s.OffboardArchiveUser(ctx, "bank", "u1", at(1)), call.NotFound)
	if got, err := s.ArchiveHolds(ctx, "bank", false); err != nil || len(got) != 0 {
		t.Errorf("ArchiveHolds of another tenant = %d, %v", len(got), err)
	}
	wantCode(t, "LiftArchiveHold of another tenant's hold", s.LiftArchiveHold(ctx, "bank", "h1", "x", at(1)), call.NotFound)
	if got, err := s.ArchiveRetention(ctx, "bank"); err != nil || got != nil {
		t.Errorf("ArchiveRetention of another tenant = %q, %v", got, err)
	}
	_, err = s.ArchiveUpload(ctx, "bank", "up1")
	wantCode(t, "ArchiveUpload of another tenant", err, call.NotFound)
	_, err = s.ArchiveUploadByClient(ctx, "bank", "m1")
	wantCode(t, "ArchiveUploadByClient of another tenant", err, call.NotFound)
	wantCode(t, "DeleteArchiveUpload of another tenant", s.DeleteArchiveUpload(ctx, "bank", "up1"), call.NotFound)

	// Another tenant's purge, with no holds of its own, deletes nothing here.
	got, err := s.PurgeArchive(ctx, "bank", store.ArchivePurge{Kind: store.ArchiveRecording, Before: at(100)})
	must(t, err)
	if got.Items != 0 {
		t.Errorf("PurgeArchive of another tenant deleted %d", got.Items)
	}
	if _, err := s.ArchiveItem(ctx, "acme", mine.ID); err != nil {
		t.Errorf("ArchiveItem after another tenant's purge: %v", err)
	}
}

func testArchiveUnknownTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, _, err := s.PutArchiveItem(ctx, archiveItem("nobody", "u1", store.ArchiveCall, store.ArchiveInbound, 0))
	wantCode(t, "PutArchiveItem", err, call.NotFound)
	wantCode(t, "PutArchiveUser", s.PutArchiveUser(ctx, archiveUser("nobody", "u1", 0)), call.NotFound)
	wantCode(t, "PutArchiveHold", s.PutArchiveHold(ctx,
		store.ArchiveHold{Tenant: "nobody", ID: "h", Scope: store.ArchiveHoldUser, UserID: "u"}), call.NotFound)
	wantCode(t, "PutArchiveRetention", s.PutArchiveRetention(ctx, "nobody", []byte(`{}`)), call.NotFound)
	wantCode(t, "PutArchiveUpload", s.PutArchiveUpload(ctx,
		store.ArchiveUpload{Tenant: "nobody", ID: "u", ClientID: "c", UpdatedAt: at(0)}), call.NotFound)
}

func testArchiveDeleteTenantData(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	for _, tn := range []string{"acme", "bank"} {
		putItems(t, s, archiveItem(tn, "u1", store.ArchiveSMS, store.ArchiveInbound, 0))
		must(t, s.PutArchiveUser(ctx, archiveUser(tn, "u1", 0)))
		must(t, s.PutArchiveContacts(ctx, tn, "u1", []store.ArchiveContact{{ID: "c1", Numbers: [][]byte{pseudonym()}}}))
		must(t, s.PutArchiveHold(ctx, store.ArchiveHold{Tenant: tn, ID: "h1", Scope: store.ArchiveHoldUser, UserID: "u1"}))
		must(t, s.PutArchiveRetention(ctx, tn, []byte(`{}`)))
		must(t, s.PutArchiveUpload(ctx, store.ArchiveUpload{Tenant: tn, ID: "up1", ItemID: "i", ClientID: "m1", UpdatedAt: at(0)}))
	}
	_, err := s.DeleteTenantData(ctx, "acme")
	must(t, err)

	count := func(tn string) []int {
		its, err := s.SearchArchive(ctx, tn, store.ArchiveQuery{})
		must(t, err)
		us, err := s.ArchiveUsers(ctx, tn, "", 0)
		must(t, err)
		cs, err := s.ArchiveContacts(ctx, tn, "u1")
		must(t, err)
		hs, err := s.ArchiveHolds(ctx, tn, false)
		must(t, err)
		r, err := s.ArchiveRetention(ctx, tn)
		must(t, err)
		ups, err := s.ArchiveUploads(ctx, tn, at(100), 0)
		must(t, err)
		return []int{len(its), len(us), len(cs), len(hs), len(r), len(ups)}
	}
	equal(t, "archive rows of the deleted tenant", count("acme"), []int{0, 0, 0, 0, 0, 0})
	equal(t, "archive rows of the other tenant", count("bank"), []int{1, 1, 1, 1, 2, 1})

	// An offboarded tenant takes no new archive data.
	_, _, err = s.PutArchiveItem(ctx, archiveItem("acme", "u1", store.ArchiveCall, store.ArchiveInbound, 0))
	wantCode(t, "PutArchiveItem of an offboarded tenant", err, call.NotFound)
	wantCode(t, "PutArchiveUser of an offboarded tenant", s.PutArchiveUser(ctx, archiveUser("acme", "u1", 0)), call.NotFound)
}
