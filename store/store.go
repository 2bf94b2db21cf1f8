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
//
// # Change feed
//
// Every write that changes state a node holds in memory (tenants, API keys,
// list entries, routes, policies, customer links) appends, in the same
// transaction, one Change per object it changed to the store's change log;
// a write that fails or changes nothing appends none. Call records and
// labels are not in the feed: a label's effects on lists and links are, as
// the list and link writes the node makes for it. Nodes follow the log
// (Changes after the last seq they applied) to apply changes made anywhere
// in the cluster, reading the changed object's current state back by its
// key (ListEntriesOf, Route, Link, Tenant, Policy); so applying a change is
// idempotent and applying a run of them in order converges on the store.
//
// Seqs are assigned in commit order: once Changes has returned a change,
// no change with a lower seq will ever appear. A follower that remembers
// the last seq it applied therefore misses nothing. Seqs are not dense (a
// rolled-back write may use some up). The log holds no plaintext: keys are
// pseudonyms, ids and hashes, and Sealed is a copy of a stored ciphertext.
package store

import (
	"context"
	"encoding/binary"
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
	// AddAPIKey stores the SHA-256 hash of a tenant's API key and its role;
	// Invalid if the role is neither "" nor a call.Role.
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

	// Tenant returns one tenant; NotFound if absent.
	Tenant(ctx context.Context, id string) (Tenant, error)
	// APIKeys returns the tenant's API keys ordered by hash.
	APIKeys(ctx context.Context, tenant string) ([]APIKey, error)
	// ListEntriesOf returns the stored entries of one list among the given
	// pseudonyms, ordered by pseudonym; a pseudonym with no entry is left
	// out, not an error. At most 1000 pseudonyms at once (Invalid).
	ListEntriesOf(ctx context.Context, tenant string, list call.ListKind, pseudonyms [][]byte) ([]ListEntry, error)
	// Route returns one route; NotFound if absent.
	Route(ctx context.Context, tenant, id string) (call.Route, error)
	// Link returns one customer link; NotFound if absent.
	Link(ctx context.Context, tenant string, callerPseudonym, userPseudonym []byte) (Link, error)
	// Counts returns how many rows the tenant has in each table (all zero
	// for an unknown tenant).
	Counts(ctx context.Context, tenant string) (Counts, error)

	// Changes returns up to limit changes with a seq above after, in seq
	// order (see the package's Change feed section).
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastChange returns the highest seq in the change log, 0 if it is
	// empty. A follower that starts from it, after loading state, misses no
	// later change.
	LastChange(ctx context.Context) (int64, error)

	Privacy    // rights cases, holds, retention purges, rewrap (privacy.go)
	AuditLog   // the hash-chained audit log (audit.go)
	Consortium // fraud-sharing consortia (consortium.go)
	TenantKeys // key rotation (keys.go)
	Models     // the learned model's versions (models.go)
	Users      // console users and sessions (users.go)
	Archive    // the compliance archive's metadata (archive.go)

	Close() error
}

// ChangeKind says what a Change changed, and how its Key reads.
type ChangeKind string

// Change kinds. Puts are announced by key only (read the object back to
// apply it); a deletion of an object that nodes index in memory by a
// plaintext value (a list entry or link, by number) carries the deleted
// row's sealed value in Sealed, so a follower can find what to drop.
//
// Except after erasure: the list and link deletions of Privacy.EraseSubject
// carry Sealed nil, and it clears Sealed from the subject's earlier
// deletions too, since an erased number must not survive as a sealed copy
// in the log. A follower that meets a deletion with Sealed nil drops the
// object by its Key (the pseudonyms), keeping a pseudonym index for that
// or reloading the list or links.
const (
	ChangeTenant      ChangeKind = "tenant"       // CreateTenant, Privacy.DeleteTenantData; Key nil
	ChangeAPIKey      ChangeKind = "api_key"      // AddAPIKey; Key: the 32-byte hash
	ChangeListPut     ChangeKind = "list_put"     // per entry of PutListEntries; Key: ListChangeKey
	ChangeListDelete  ChangeKind = "list_delete"  // DeleteListEntry; Key: ListChangeKey; Sealed: the entry's Sealed
	ChangeRoutePut    ChangeKind = "route_put"    // PutRoute; Key: the route id
	ChangeRouteDelete ChangeKind = "route_delete" // DeleteRoute; Key: the route id
	ChangePolicy      ChangeKind = "policy"       // PutPolicy; Key nil
	ChangeLinkPut     ChangeKind = "link_put"     // per link PutLinks inserted; Key: LinkChangeKey
	ChangeLinkDelete  ChangeKind = "link_delete"  // per link DeleteLinks removed, by user pseudonym; Key: LinkChangeKey; Sealed: the link's Sealed
)

// Change is one entry of the change log.
type Change struct {
	Seq    int64
	Tenant string
	Kind   ChangeKind
	Key    []byte // which object (see ChangeKind); nil when none
	Sealed []byte // a deletion's sealed value (see ChangeKind); else nil
	At     time.Time
}

// ListChangeKey is the Key of a list entry's change: the list name and the
// pseudonym (see joinKey).
func ListChangeKey(list call.ListKind, pseudonym []byte) []byte {
	return joinKey([]byte(list), pseudonym)
}

// ListKey splits the Key of a list change; false if it is not one.
func (c Change) ListKey() (call.ListKind, []byte, bool) {
	list, p, ok := splitKey(c.Key)
	return call.ListKind(list), p, ok
}

// LinkChangeKey is the Key of a link's change: caller and user pseudonyms.
func LinkChangeKey(callerPseudonym, userPseudonym []byte) []byte {
	return joinKey(callerPseudonym, userPseudonym)
}

// LinkKey splits the Key of a link change; false if it is not one.
func (c Change) LinkKey() (callerPseudonym, userPseudonym []byte, ok bool) {
	return splitKey(c.Key)
}

// joinKey encodes two byte strings as one: a's length (uvarint), a, then b.
func joinKey(a, b []byte) []byte {
	k := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(a)+len(b)), uint64(len(a)))
	k = append(k, a...)
	return append(k, b...)
}

// splitKey is the inverse of joinKey.
func splitKey(k []byte) (a, b []byte, ok bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || n > uint64(len(k)-w) {
		return nil, nil, false
	}
	end := w + int(n)
	return k[w:end:end], k[end:], true
}

// Counts is how many rows a tenant has in each table.
type Counts struct {
	APIKeys     int64 `json:"api_keys"`
	Calls       int64 `json:"calls"`
	Labels      int64 `json:"labels"`
	ListEntries int64 `json:"list_entries"`
	Routes      int64 `json:"routes"`
	Policies    int64 `json:"policies"`
	Links       int64 `json:"links"`
}

// Tenant is a tenant's stored row.
type Tenant struct {
	ID        string
	Name      string
	Region    string
	Keys      []byte // the tenant's key set, wrapped by the master key; nil once deleted
	CreatedAt time.Time
	DeletedAt time.Time // zero unless offboarded (Privacy.DeleteTenantData)
}

// APIKey is a hashed bearer key.
type APIKey struct {
	Tenant    string
	Hash      [32]byte
	Name      string
	Role      string // a call.Role, or "" for none; keys older than roles read as admin
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
