package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// newCall returns a record of tenant started at `started` with every field
// but End and Review set.
func newCall(tenant string, started time.Time) store.Call {
	return store.Call{
		ID:               recordIDs.Next(started),
		Tenant:           tenant,
		Ref:              "ref-" + started.Format("150405.000000"),
		StartedAt:        started,
		Ingress:          "sbc-in",
		Appliance:        "node-1",
		CallerPseudonym:  pseudonym(),
		DialledPseudonym: pseudonym(),
		UserPseudonym:    pseudonym(),
		Score:            0.8731,
		Action:           call.Flag,
		Markers:          []string{"cli.spoofed", "velocity.burst"},
		Verdict:          []byte(`{"live":{"score":0.8731,"action":"flag","markers":[{"code":"cli.spoofed","weight":2.5}],"policy":"3"}}`),
		Sealed:           random(300),
		Review:           call.Unreviewed,
	}
}

// insert stores n records of tenant, a minute apart from at(0), and returns
// them in insertion (oldest first) order.
func insert(t *testing.T, s store.Store, tenant string, n int) []store.Call {
	t.Helper()
	cs := make([]store.Call, n)
	for i := range cs {
		cs[i] = newCall(tenant, at(i))
	}
	must(t, s.InsertCalls(t.Context(), cs))
	return cs
}

func get(t *testing.T, s store.Store, tenant, id string) store.Call {
	t.Helper()
	c, err := s.Call(t.Context(), tenant, id)
	must(t, err)
	return c
}

func testInsertCallsRoundTrip(t *testing.T, s store.Store) {
	tenant(t, s, "acme")
	c := newCall("acme", at(0))
	c.End = &store.End{Duration: 93*time.Second + 250*time.Millisecond, Result: call.Answered, Egress: "intl-out"}
	c.Review, c.FraudType = call.Fraud, "wangiri"
	must(t, s.InsertCalls(t.Context(), []store.Call{c}))
	equal(t, "Call", get(t, s, "acme", c.ID), c)
}

func testInsertCallsNilFields(t *testing.T, s store.Store) {
	tenant(t, s, "acme")
	c := newCall("acme", at(0))
	c.CallerPseudonym, c.UserPseudonym, c.Markers, c.Review = nil, nil, nil, ""
	must(t, s.InsertCalls(t.Context(), []store.Call{c}))

	got := get(t, s, "acme", c.ID)
	if got.CallerPseudonym != nil || got.UserPseudonym != nil {
		t.Errorf("nil pseudonyms came back as %x, %x", got.CallerPseudonym, got.UserPseudonym)
	}
	if len(got.Markers) != 0 {
		t.Errorf("Markers = %q; want none", got.Markers)
	}
	if got.End != nil {
		t.Errorf("End = %+v; want nil before UpdateCallEnd", got.End)
	}
	if got.Review != call.Unreviewed {
		t.Errorf("Review = %q; want %q for a record stored with none", got.Review, call.Unreviewed)
	}
	c.Markers, c.Review = got.Markers, call.Unreviewed
	equal(t, "Call", got, c)
}

func testInsertCallsTimes(t *testing.T, s store.Store) {
	tenant(t, s, "acme")
	// Another zone in, UTC out, the same instant to the microsecond.
	local := at(0).In(time.FixedZone("UTC+5:30", 5*3600+1800))
	c := newCall("acme", local)
	must(t, s.InsertCalls(t.Context(), []store.Call{c}))
	got := get(t, s, "acme", c.ID).StartedAt
	if !got.Equal(at(0)) || got.Location() != time.UTC {
		t.Errorf("StartedAt = %v; want %v", got, at(0))
	}
}

func testInsertCallsDuplicates(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	a, b := newCall("acme", at(0)), newCall("acme", at(1))
	dup := a
	dup.Ref = "second"
	must(t, s.InsertCalls(ctx, []store.Call{a, dup, b}))

	retry := b
	retry.Ref, retry.Score = "retried", 0.1
	must(t, s.InsertCalls(ctx, []store.Call{retry, newCall("acme", at(2))}))

	if got := get(t, s, "acme", a.ID); got.Ref != a.Ref {
		t.Errorf("duplicate within a batch replaced the first: Ref = %q", got.Ref)
	}
	if got := get(t, s, "acme", b.ID); got.Ref != b.Ref || got.Score != b.Score {
		t.Errorf("duplicate across batches replaced the stored record: %q %v", got.Ref, got.Score)
	}
	cs, err := s.Calls(ctx, "acme", store.CallFilter{})
	must(t, err)
	if len(cs) != 3 {
		t.Errorf("Calls = %d records; want 3", len(cs))
	}
	must(t, s.InsertCalls(ctx, nil))
}

func testCallNotFound(t *testing.T, s store.Store) {
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	c := insert(t, s, "acme", 1)[0]
	_, err := s.Call(t.Context(), "acme", recordIDs.Next(at(5)))
	wantCode(t, "Call of an unknown id", err, call.NotFound)
	_, err = s.Call(t.Context(), "bank", c.ID)
	wantCode(t, "Call of another tenant's record", err, call.NotFound)
}

func testUpdateCallEnd(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	c := insert(t, s, "acme", 1)[0]

	end := store.End{Duration: 42*time.Second + time.Microsecond, Result: call.Busy, Egress: "dom-out"}
	must(t, s.UpdateCallEnd(ctx, "acme", c.ID, end))
	c.End = &end
	equal(t, "Call after UpdateCallEnd", get(t, s, "acme", c.ID), c)

	err := s.UpdateCallEnd(ctx, "acme", recordIDs.Next(at(5)), end)
	wantCode(t, "UpdateCallEnd of an unknown id", err, call.NotFound)
	err = s.UpdateCallEnd(ctx, "bank", c.ID, store.End{Result: call.Failed})
	wantCode(t, "UpdateCallEnd of another tenant's record", err, call.NotFound)
	equal(t, "Call after another tenant's UpdateCallEnd", get(t, s, "acme", c.ID), c)
}

func testUpdateCallEnds(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	calls := insert(t, s, "acme", 3)
	other := insert(t, s, "bank", 1)[0]
	ends := []store.CallEnd{
		{Tenant: "acme", ID: calls[0].ID, End: store.End{Duration: 90 * time.Second, Result: call.Answered, Egress: "agents"}},
		{Tenant: "acme", ID: calls[2].ID, End: store.End{Duration: 0, Result: call.Busy}},
		{Tenant: "acme", ID: other.ID, End: store.End{Result: call.Failed}},              // another tenant's: skipped
		{Tenant: "acme", ID: recordIDs.Next(at(9)), End: store.End{Result: call.Failed}}, // unknown: skipped
	}
	must(t, s.UpdateCallEnds(ctx, ends))
	calls[0].End = &ends[0].End
	calls[2].End = &ends[1].End
	for _, c := range calls {
		equal(t, "Call after UpdateCallEnds", get(t, s, "acme", c.ID), c)
	}
	equal(t, "another tenant's record after UpdateCallEnds", get(t, s, "bank", other.ID), other)
	must(t, s.UpdateCallEnds(ctx, nil))
}

func testAddLabel(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	c := insert(t, s, "acme", 1)[0]

	labels := []store.Label{
		{Tenant: "acme", RecordID: c.ID, Label: call.Fraud, FraudType: "wangiri", Sealed: random(80), By: "ana", At: at(10)},
		{Tenant: "acme", RecordID: c.ID, Label: call.Genuine, Sealed: random(80), By: "bo", At: at(11)},
	}
	must(t, s.AddLabel(ctx, labels[0]))
	if got := get(t, s, "acme", c.ID); got.Review != call.Fraud || got.FraudType != "wangiri" {
		t.Errorf("after a fraud label: Review %q, FraudType %q", got.Review, got.FraudType)
	}
	must(t, s.AddLabel(ctx, labels[1]))
	if got := get(t, s, "acme", c.ID); got.Review != call.Genuine || got.FraudType != "" {
		t.Errorf("after a genuine label: Review %q, FraudType %q", got.Review, got.FraudType)
	}
	got, err := s.Labels(ctx, "acme", c.ID)
	must(t, err)
	equal(t, "Labels", got, labels)

	err = s.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: recordIDs.Next(at(5)), Label: call.Fraud, By: "ana", At: at(12)})
	wantCode(t, "AddLabel of an unknown id", err, call.NotFound)
	err = s.AddLabel(ctx, store.Label{Tenant: "bank", RecordID: c.ID, Label: call.Fraud, By: "eve", At: at(12)})
	wantCode(t, "AddLabel of another tenant's record", err, call.NotFound)
	if got := get(t, s, "acme", c.ID); got.Review != call.Genuine {
		t.Errorf("another tenant's label changed Review to %q", got.Review)
	}
	got, err = s.Labels(ctx, "bank", c.ID)
	if len(got) != 0 || err != nil && call.ErrorCode(err) != call.NotFound {
		t.Errorf("Labels of another tenant's record = %v, %v; want none", got, err)
	}
}

// ids returns the ids of cs in order.
func ids(cs []store.Call) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// newest returns the ids of cs[from:to] newest first.
func newest(cs []store.Call, from, to int) []string {
	out := ids(cs[from:to])
	slices.Reverse(out)
	return out
}

func testCallsTimeRange(t *testing.T, s store.Store) {
	tenant(t, s, "acme")
	cs := insert(t, s, "acme", 10)
	for _, tt := range []struct {
		name     string
		f        store.CallFilter
		from, to int // want cs[from:to]
	}{
		{"all", store.CallFilter{}, 0, 10},
		{"half-open", store.CallFilter{From: at(2), To: at(5)}, 2, 5},
		{"from only", store.CallFilter{From: at(7)}, 7, 10},
		{"to only", store.CallFilter{To: at(3)}, 0, 3},
		{"between records", store.CallFilter{From: at(2).Add(time.Microsecond), To: at(4).Add(time.Microsecond)}, 3, 5},
		{"empty", store.CallFilter{From: at(4), To: at(4)}, 0, 0},
	} {
		got, err := s.Calls(t.Context(), "acme", tt.f)
		must(t, err)
		if want := newest(cs, tt.from, tt.to); !slices.Equal(ids(got), want) {
			t.Errorf("%s: got %v; want %v", tt.name, ids(got), want)
		}
	}
}

func testCallsActionAndReview(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	cs := make([]store.Call, 6)
	for i := range cs {
		cs[i] = newCall("acme", at(i))
		cs[i].Action = []call.Action{call.Allow, call.Flag, call.Block}[i%3]
		cs[i].Review = ""
	}
	must(t, s.InsertCalls(ctx, cs))
	must(t, s.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: cs[1].ID, Label: call.Fraud, FraudType: "irsf", By: "ana", At: at(9)}))
	must(t, s.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: cs[4].ID, Label: call.Fraud, FraudType: "irsf", By: "ana", At: at(9)}))
	must(t, s.AddLabel(ctx, store.Label{Tenant: "acme", RecordID: cs[2].ID, Label: call.Genuine, By: "ana", At: at(9)}))

	for _, tt := range []struct {
		name string
		f    store.CallFilter
		want []int // indexes into cs, newest first
	}{
		{"block", store.CallFilter{Action: call.Block}, []int{5, 2}},
		{"fraud", store.CallFilter{Review: call.Fraud}, []int{4, 1}},
		{"unreviewed", store.CallFilter{Review: call.Unreviewed}, []int{5, 3, 0}},
		{"flag and fraud", store.CallFilter{Action: call.Flag, Review: call.Fraud}, []int{4, 1}},
		{"allow and fraud", store.CallFilter{Action: call.Allow, Review: call.Fraud}, nil},
		{"flag since 3", store.CallFilter{Action: call.Flag, From: at(3)}, []int{4}},
	} {
		got, err := s.Calls(ctx, "acme", tt.f)
		must(t, err)
		var want []string
		for _, i := range tt.want {
			want = append(want, cs[i].ID)
		}
		if !slices.Equal(ids(got), want) {
			t.Errorf("%s: got %v; want %v", tt.name, ids(got), want)
		}
	}
}

func testCallsPaging(t *testing.T, s store.Store) {
	tenant(t, s, "acme")
	cs := insert(t, s, "acme", 23)
	var seen []string
	f := store.CallFilter{Limit: 5}
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		got, err := s.Calls(t.Context(), "acme", f)
		must(t, err)
		if len(got) > 5 {
			t.Fatalf("page of %d records; want at most 5", len(got))
		}
		if len(got) == 0 {
			break
		}
		seen = append(seen, ids(got)...)
		f.Before = got[len(got)-1].ID
	}
	if want := newest(cs, 0, len(cs)); !slices.Equal(seen, want) {
		t.Errorf("pages visited %v; want each record once, newest first: %v", seen, want)
	}
}

func testCallsLimit(t *testing.T, s store.Store) {
	tenant(t, s, "acme")
	insert(t, s, "acme", 1100)
	for _, tt := range []struct{ limit, want int }{{0, 100}, {1, 1}, {1000, 1000}, {5000, 1000}} {
		got, err := s.Calls(t.Context(), "acme", store.CallFilter{Limit: tt.limit})
		must(t, err)
		if len(got) != tt.want {
			t.Errorf("Limit %d: %d records; want %d", tt.limit, len(got), tt.want)
		}
	}
}

func testCallsTenantIsolation(t *testing.T, s store.Store) {
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	a := insert(t, s, "acme", 3)
	b := insert(t, s, "bank", 2)
	for tenant, want := range map[string][]string{"acme": newest(a, 0, 3), "bank": newest(b, 0, 2), "none": nil} {
		got, err := s.Calls(t.Context(), tenant, store.CallFilter{})
		must(t, err)
		if !slices.Equal(ids(got), want) {
			t.Errorf("Calls of %s = %v; want %v", tenant, ids(got), want)
		}
	}
}

// testConcurrency inserts from 8 goroutines while 4 others read; run it
// under -race.
func testConcurrency(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	const writers, batches, size = 8, 10, 50
	var wg, readers sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				cs := make([]store.Call, size)
				for i := range cs {
					cs[i] = newCall("acme", at(i).Add(time.Duration(w*batches+b)*time.Millisecond))
				}
				if err := s.InsertCalls(ctx, cs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				cs, err := s.Calls(ctx, "acme", store.CallFilter{Limit: 20})
				if err != nil {
					t.Error(err)
					return
				}
				for _, c := range cs {
					if _, err := s.Call(ctx, "acme", c.ID); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()

	seen := map[string]bool{}
	f := store.CallFilter{Limit: 1000}
	for {
		cs, err := s.Calls(ctx, "acme", f)
		must(t, err)
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			seen[c.ID] = true
		}
		f.Before = cs[len(cs)-1].ID
	}
	if want := writers * batches * size; len(seen) != want {
		t.Errorf("stored %d records; want %d", len(seen), want)
	}
}
