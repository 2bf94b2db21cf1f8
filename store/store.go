// Package store defines ringfence's durable storage: one interface, two
// implementations (store/sqlite, store/postgres) and one conformance suite
// (store/storetest) that both pass.
//
// The store never sees plaintext personal data. Phone numbers, user refs,
// signalling and analysts' notes arrive sealed (AES-256-GCM under the
// tenant's data key, see package seal) in the Sealed fields, and lookups by
// number use keyed pseudonyms (HMAC-SHA-256 of the E.164 form under the
// tenant's pseudonym key). Everything else (times, scores, actions, marker
// codes, route ids) is stored in the clear so it can be queried.
//
// Errors: a missing object is a *call.Error with code call.NotFound (also
// for a write naming an unknown tenant), a duplicate one call.Conflict
// (including a second API key with the same hash); anything else is an
// internal error wrapped with context. Record ids are unique across tenants
// (call.IDs). Page limits below 1 mean 100 and are capped at 1000.
package store

import (
	"context"
	"time"

	"github.com/ringfence/ringfence/call"
)

// Store is the storage interface. Implementations are safe for concurrent
// use. Every method is scoped by tenant id: a row of another tenant is
// NotFound.
type Store interface {
	// CreateTenant stores a new tenant; Conflict if the id exists.
	CreateTenant(ctx context.Context, t Tenant) error
	// Tenants returns every tenant ordered by id.
	Tenants(ctx context.Context) ([]Tenant, error)
	// AddAPIKey stores the SHA-256 hash of a tenant's API key.
	AddAPIKey(ctx context.Context, k APIKey) error
	// TenantByAPIKey returns the tenant id owning the key hash; NotFound if none.
	TenantByAPIKey(ctx context.Context, hash [32]byte) (string, error)

	// InsertCalls stores new call records in one transaction. A record whose
	// id already exists is skipped, so a retried batch never duplicates.
	InsertCalls(ctx context.Context, calls []Call) error
	// UpdateCallEnd sets the call-end data of a record; NotFound if absent.
	UpdateCallEnd(ctx context.Context, tenant, id string, end End) error
	// UpdateCallEnds applies call-end updates in one transaction, in order;
	// an update naming no record of its tenant is skipped.
	UpdateCallEnds(ctx context.Context, ends []CallEnd) error
	// AddLabel appends an analyst label and sets the record's review status
	// from it, in one transaction; NotFound if the record is absent.
	AddLabel(ctx context.Context, l Label) error
	// Call returns one record; NotFound if absent.
	Call(ctx context.Context, tenant, id string) (Call, error)
	// Calls returns records matching f, newest id first.
	Calls(ctx context.Context, tenant string, f CallFilter) ([]Call, error)
	// Labels returns the labels of a record, oldest first (empty if none).
	Labels(ctx context.Context, tenant, id string) ([]Label, error)

	// PutListEntries inserts or replaces entries (keyed by tenant, list and
	// pseudonym) in one transaction.
	PutListEntries(ctx context.Context, tenant string, entries []ListEntry) error
	// DeleteListEntry removes one entry; NotFound if absent.
	DeleteListEntry(ctx context.Context, tenant string, list call.ListKind, pseudonym []byte) error
	// ListEntries returns up to limit entries of one list ordered by
	// pseudonym, starting after the pseudonym `after` (nil: from the start).
	ListEntries(ctx context.Context, tenant string, list call.ListKind, after []byte, limit int) ([]ListEntry, error)

	// PutRoute inserts or replaces a route.
	PutRoute(ctx context.Context, tenant string, r call.Route) error
	// DeleteRoute removes a route; NotFound if absent.
	DeleteRoute(ctx context.Context, tenant, id string) error
	// Routes returns the tenant's routes ordered by id.
	Routes(ctx context.Context, tenant string) ([]call.Route, error)

	// PutPolicy stores the tenant's policy if p.Version is exactly one more
	// than the stored version (or the tenant has none); Conflict otherwise.
	PutPolicy(ctx context.Context, tenant string, p call.Policy) error
	// Policy returns the tenant's current policy; NotFound if none stored.
	Policy(ctx context.Context, tenant string) (call.Policy, error)

	// PutLinks inserts customer links (caller seen with user ref), ignoring
	// ones already stored.
	PutLinks(ctx context.Context, tenant string, links []Link) error
	// DeleteLinks removes every link of a caller pseudonym.
	DeleteLinks(ctx context.Context, tenant string, callerPseudonym []byte) error
	// Links returns up to limit links ordered by (caller, user) pseudonym,
	// starting after the given pair (nil: from the start).
	Links(ctx context.Context, tenant string, afterCaller, afterUser []byte, limit int) ([]Link, error)

	Close() error
}

// Tenant is a tenant's stored row.
type Tenant struct {
	ID        string
	Name      string
	Region    string
	Keys      []byte // the tenant's key set, wrapped by the master key
	CreatedAt time.Time
}

// APIKey is a hashed bearer key.
type APIKey struct {
	Tenant    string
	Hash      [32]byte
	Name      string
	CreatedAt time.Time
}

// Call is a stored call record.
type Call struct {
	ID        string
	Tenant    string
	Ref       string // integrator's call id (not personal data)
	StartedAt time.Time
	Ingress   string
	Appliance string

	CallerPseudonym  []byte // nil when withheld or not a number
	DialledPseudonym []byte
	UserPseudonym    []byte // nil when no user ref

	Score   float64
	Action  call.Action
	Markers []string // marker codes, for filtering
	Verdict []byte   // JSON of the live and shadow verdicts (no personal data)

	Sealed []byte // sealed JSON of caller, dialled, user ref and signalling

	End *End // nil until reported

	Review    call.ReviewStatus // "" is stored as unreviewed
	FraudType string
}

// End is stored call-end data.
type End struct {
	Duration time.Duration
	Result   call.Result
	Egress   string
}

// CallEnd is a call-end update for one record.
type CallEnd struct {
	Tenant string
	ID     string
	End    End
}

// Label is one stored analyst label.
type Label struct {
	Tenant    string
	RecordID  string
	Label     call.ReviewStatus
	FraudType string
	Sealed    []byte // sealed note
	By        string
	At        time.Time
}

// CallFilter selects records. Zero fields do not filter.
type CallFilter struct {
	From, To time.Time // started_at in [From, To)
	Action   call.Action
	Review   call.ReviewStatus
	Before   string // only ids lexically below this (paging cursor)
	Limit    int    // 0 => 100; at most 1000
}

// ListEntry is one stored list entry.
type ListEntry struct {
	List      call.ListKind
	Pseudonym []byte
	Sealed    []byte // sealed E.164 number
	Reason    string
	ExpiresAt time.Time // zero: never
	CreatedAt time.Time
}

// Link is a stored customer link.
type Link struct {
	CallerPseudonym []byte
	UserPseudonym   []byte
	Sealed          []byte // sealed caller number and user ref
	At              time.Time
}
