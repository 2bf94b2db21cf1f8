// Package storetest is the conformance suite for store.Store: every backend
// passes the same tests, which check the contracts in store's doc comments.
package storetest

import (
	"crypto/rand"
	"reflect"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// recordIDs issues record ids for the suite's calls.
var recordIDs call.IDs

// Run runs the suite. Each subtest calls open for a fresh, empty store and
// closes it when done.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	runSuite(t, open, []subtest{
		{"Tenants", testTenants},
		{"TenantConflict", testTenantConflict},
		{"APIKeys", testAPIKeys},
		{"InsertCallsRoundTrip", testInsertCallsRoundTrip},
		{"InsertCallsNilFields", testInsertCallsNilFields},
		{"InsertCallsTimes", testInsertCallsTimes},
		{"InsertCallsDuplicates", testInsertCallsDuplicates},
		{"CallNotFound", testCallNotFound},
		{"UpdateCallEnd", testUpdateCallEnd},
		{"UpdateCallEnds", testUpdateCallEnds},
		{"AddLabel", testAddLabel},
		{"CallsTimeRange", testCallsTimeRange},
		{"CallsActionAndReview", testCallsActionAndReview},
		{"CallsPaging", testCallsPaging},
		{"CallsLimit", testCallsLimit},
		{"CallsTenantIsolation", testCallsTenantIsolation},
		{"ListEntries", testListEntries},
		{"ListEntriesDelete", testListEntriesDelete},
		{"ListEntriesPaging", testListEntriesPaging},
		{"Routes", testRoutes},
		{"Policy", testPolicy},
		{"PolicyVersions", testPolicyVersions},
		{"Links", testLinks},
		{"LinksPaging", testLinksPaging},
		{"Concurrency", testConcurrency},
		{"UnknownTenant", testUnknownTenant},
		{"UpdateCallEndsInOrder", testUpdateCallEndsInOrder},
		{"PageLimits", testPageLimits},
		{"ChangeLog", testChangeLog},
		{"ChangeLogFailedWrites", testChangeLogFailedWrites},
		{"ChangesPaging", testChangesPaging},
		{"ChangesFollowedConcurrently", testChangesFollowedConcurrently},
		{"ChangeKeys", testChangeKeys},
		{"SingleReaders", testSingleReaders},
	})
}

// subtest is one test of a suite.
type subtest struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// runSuite runs each test on a fresh, empty store from open and closes it
// when the test is done.
func runSuite(t *testing.T, open func(t *testing.T) store.Store, tests []subtest) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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

func testTenants(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.Tenants(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("Tenants of an empty store = %v, %v; want none", got, err)
	}
	var want []store.Tenant
	for _, id := range []string{"acme", "bank-b", "carrier.c"} {
		want = append(want, store.Tenant{ID: id, Name: "Tenant " + id, Region: "GB", Keys: random(96), CreatedAt: at(0)})
	}
	for _, i := range []int{2, 0, 1} {
		must(t, s.CreateTenant(ctx, want[i]))
	}
	got, err = s.Tenants(ctx)
	must(t, err)
	equal(t, "Tenants", got, want)
}

func testTenantConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	err := s.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "Other", Region: "FR", CreatedAt: at(1)})
	wantCode(t, "CreateTenant of an existing id", err, call.Conflict)
	got, err := s.Tenants(ctx)
	must(t, err)
	if len(got) != 1 || got[0].Name != "Tenant acme" {
		t.Errorf("Tenants after conflict = %+v; want the first only", got)
	}
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	var a, b [32]byte
	rand.Read(a[:])
	rand.Read(b[:])
	must(t, s.AddAPIKey(ctx, store.APIKey{Tenant: "acme", Hash: a, Name: "ops", CreatedAt: at(0)}))
	must(t, s.AddAPIKey(ctx, store.APIKey{Tenant: "bank", Hash: b, Name: "ops", CreatedAt: at(0)}))

	for hash, want := range map[[32]byte]string{a: "acme", b: "bank"} {
		got, err := s.TenantByAPIKey(ctx, hash)
		must(t, err)
		if got != want {
			t.Errorf("TenantByAPIKey = %q; want %q", got, want)
		}
	}
	var unknown [32]byte
	rand.Read(unknown[:])
	_, err := s.TenantByAPIKey(ctx, unknown)
	wantCode(t, "TenantByAPIKey of an unknown hash", err, call.NotFound)

	err = s.AddAPIKey(ctx, store.APIKey{Tenant: "bank", Hash: a, Name: "dup", CreatedAt: at(1)})
	wantCode(t, "AddAPIKey of a stored hash", err, call.Conflict)
	if got, _ := s.TenantByAPIKey(ctx, a); got != "acme" {
		t.Errorf("TenantByAPIKey after conflict = %q; want acme", got)
	}
}

// at returns a fixed UTC instant plus i minutes, with microseconds set so
// a store that drops them fails.
func at(i int) time.Time {
	return time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC).Add(time.Duration(i) * time.Minute)
}

// random returns n random bytes: sealed blobs and pseudonyms are opaque to
// the store.
func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func pseudonym() []byte { return random(32) }

// tenant creates a tenant with id.
func tenant(t *testing.T, s store.Store, id string) {
	t.Helper()
	must(t, s.CreateTenant(t.Context(), store.Tenant{ID: id, Name: "Tenant " + id, Region: "GB", Keys: random(96), CreatedAt: at(0)}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := call.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q); want code %q", what, err, got, code)
	}
}

// equal compares with reflect.DeepEqual after checking that every time in
// got is in UTC.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	checkUTC(t, what, reflect.ValueOf(got))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func checkUTC(t *testing.T, what string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkUTC(t, what, v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			checkUTC(t, what, v.Index(i))
		}
	case reflect.Struct:
		if tm, ok := v.Interface().(time.Time); ok {
			if !tm.IsZero() && tm.Location() != time.UTC {
				t.Errorf("%s: time %v is not in UTC", what, tm)
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				checkUTC(t, what, v.Field(i))
			}
		}
	}
}
