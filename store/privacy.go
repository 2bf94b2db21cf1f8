package store

import (
	"context"
	"time"

	"github.com/ringfence/ringfence/call"
)

// Privacy is the storage side of privacy operations (package privacy holds
// the rules: deadlines, which data class keeps what for how long, who may
// do what). Implementations are safe for concurrent use. Every method is
// scoped by tenant: a row of another tenant is NotFound or absent. Writes
// naming an unknown tenant are NotFound; page limits follow the package
// rule (below 1 means 100, capped at 1000).
//
// Erasure, purges and offboarding delete rows for good: the SQLite backend
// runs with secure_delete, so freed pages are overwritten rather than left
// holding the deleted bytes.
type Privacy interface {
	// PutSubjectFlags stores a subject's restriction and objection flags,
	// replacing any stored, and appends a ChangeSubjectFlags in the same
	// transaction so every node honours them at once. Invalid without a
	// pseudonym.
	PutSubjectFlags(ctx context.Context, f SubjectFlags) error
	// SubjectFlags returns the stored flags of a pseudonym; flags with only
	// Tenant and Pseudonym set (nothing restricted) and no error when none
	// are stored.
	SubjectFlags(ctx context.Context, tenant string, pseudonym []byte) (SubjectFlags, error)
	// SubjectFlagsOf returns up to limit stored flags ordered by pseudonym,
	// starting after the pseudonym `after` (nil: from the start), for a node
	// loading them all.
	SubjectFlagsOf(ctx context.Context, tenant string, after []byte, limit int) ([]SubjectFlags, error)

	// PutCase inserts a rights case (c.Version must be 1) or updates a
	// stored one (c.Version must be the stored version plus one); Conflict
	// otherwise. Invalid without an id or with a version below 1.
	PutCase(ctx context.Context, c Case) error
	// Case returns one case; NotFound if absent.
	Case(ctx context.Context, tenant, id string) (Case, error)
	// Cases returns the cases matching f, newest id first.
	Cases(ctx context.Context, tenant string, f CaseFilter) ([]Case, error)

	// PutHold places a legal hold; Conflict if its id is stored, Invalid if
	// its scope is unknown or lacks what it names (a subject pseudonym, a
	// case id).
	PutHold(ctx context.Context, h Hold) error
	// LiftHold lifts a hold, recording who and when; NotFound if absent,
	// Conflict if lifted already.
	LiftHold(ctx context.Context, tenant, id, by string, at time.Time) error
	// Holds returns the tenant's holds ordered by id: only those not lifted
	// if activeOnly.
	Holds(ctx context.Context, tenant string, activeOnly bool) ([]Hold, error)

	// PutConsent appends a consent event; the history is kept. Invalid
	// without a pseudonym or purpose.
	PutConsent(ctx context.Context, c Consent) error
	// Consents returns a pseudonym's consent history, oldest first.
	Consents(ctx context.Context, tenant string, pseudonym []byte) ([]Consent, error)

	// PutRetention stores the tenant's retention settings (JSON, opaque to
	// the store), replacing any stored.
	PutRetention(ctx context.Context, tenant string, settings []byte) error
	// Retention returns the stored retention settings; nil, no error, when
	// none are stored.
	Retention(ctx context.Context, tenant string) ([]byte, error)

	// SubjectCalls returns up to limit call records whose caller pseudonym
	// is callerPseudonym or whose user pseudonym is userPseudonym (a nil
	// one matches nothing), ordered by id, with ids above after. Their
	// labels are read with Labels. Invalid if both pseudonyms are nil.
	SubjectCalls(ctx context.Context, tenant string, callerPseudonym, userPseudonym []byte, after string, limit int) ([]Call, error)
	// SubjectListEntries returns every list entry of a pseudonym, ordered by
	// list.
	SubjectListEntries(ctx context.Context, tenant string, pseudonym []byte) ([]ListEntry, error)
	// SubjectLinks returns every link whose caller is callerPseudonym or
	// whose user is userPseudonym (nil matches nothing), ordered by (caller,
	// user).
	SubjectLinks(ctx context.Context, tenant string, callerPseudonym, userPseudonym []byte) ([]Link, error)

	// EraseSubject deletes, in one transaction, every call record whose
	// caller is callerPseudonym or whose user is userPseudonym (with their
	// labels), every list entry of either pseudonym and every link whose
	// caller or user is one of them. It appends a ChangeListDelete or
	// ChangeLinkDelete per entry or link deleted, with Sealed nil, and
	// clears the sealed copy from every earlier list or link deletion of
	// the subject in the change log, so no sealed copy of an erased number
	// outlives it there. Subject flags, consents, cases and holds are kept:
	// they record the request and what must go on being honoured. Nothing
	// stored gives zero counts, no error; Invalid if both pseudonyms are
	// nil.
	EraseSubject(ctx context.Context, tenant string, callerPseudonym, userPseudonym []byte) (Erased, error)

	// PurgeCalls deletes, in one transaction, up to limit call records (with
	// their labels) that started before `before` and whose caller and user
	// pseudonyms are both outside keep (the pseudonyms under legal hold),
	// oldest first, and returns how many it deleted. Call it until it
	// returns fewer than limit. At most 10000 pseudonyms in keep (Invalid).
	PurgeCalls(ctx context.Context, tenant string, before time.Time, keep [][]byte, limit int) (int64, error)
	// PurgeChanges deletes every change-log row stamped before `before`,
	// of every tenant, and returns how many. The highest seq it ever
	// deleted is kept (ChangesPrunedThrough).
	PurgeChanges(ctx context.Context, before time.Time) (int64, error)
	// ChangesPrunedThrough returns the highest seq PurgeChanges ever
	// deleted, 0 if none. A follower whose last applied seq is below it
	// may have missed changes and must reload its state.
	ChangesPrunedThrough(ctx context.Context) (int64, error)

	// SealedRows returns up to limit rows of one kind of sealed value
	// (SealedCalls, SealedLabels, SealedLists, SealedLinks) with a stored
	// sealed value, in Row order, starting after the Row `after` (""
	// from the start): the rows a key rewrap walks. Invalid for another
	// kind or a malformed cursor.
	SealedRows(ctx context.Context, tenant, kind, after string, limit int) ([]SealedRow, error)
	// ReplaceSealed sets, in one transaction, each row's sealed value to
	// rows[i].Sealed if it still equals old[i] (compare and swap; a row
	// changed or deleted meanwhile is skipped) and returns how many it
	// replaced. Invalid if the slices differ in length, hold more than
	// 1000 rows or name an unknown kind or malformed row.
	ReplaceSealed(ctx context.Context, tenant string, rows []SealedRow, old [][]byte) (replaced int, err error)

	// DeleteTenantData offboards a tenant: in one transaction it deletes
	// every row of the tenant (call records, labels, list entries, routes,
	// policies, links, API keys, subject flags, cases, holds, consents,
	// retention settings and its change-log rows), sets the tenant's Keys
	// to nil and DeletedAt to the store's clock, and appends one
	// ChangeTenant so nodes drop it. The tenants row stays, so its id is
	// never reused. It returns the counts of the rows deleted from the
	// tables Counts names. NotFound if the tenant is absent; deleting a
	// deleted tenant again deletes nothing more.
	DeleteTenantData(ctx context.Context, tenant string) (Counts, error)
}

// ChangeSubjectFlags announces PutSubjectFlags; Key: the pseudonym. Read the
// flags back with SubjectFlags.
const ChangeSubjectFlags ChangeKind = "subject_flags"

// SubjectFlags are the processing limits on one data subject, by pseudonym
// (of a caller number or a user ref).
type SubjectFlags struct {
	Tenant     string
	Pseudonym  []byte
	Restricted bool // Article 18: keep the data but do not use it
	Objected   bool // Article 21: stop processing on legitimate interests
	UpdatedAt  time.Time
}

// Case is a stored data-subject rights case. The store reads none of its
// strings: package privacy defines types and statuses.
type Case struct {
	ID               string
	Tenant           string
	Type             string
	Status           string
	SubjectPseudonym []byte // caller-number pseudonym; nil when none
	UserPseudonym    []byte // user-ref pseudonym; nil when none
	Sealed           []byte // sealed subject identifiers
	Data             []byte // JSON timeline, opaque to the store
	ReceivedAt       time.Time
	DueAt            time.Time
	ClosedAt         time.Time // zero while open
	Version          int       // 1 when first stored, then one more per update
}

// CaseFilter selects cases. Zero fields do not filter.
type CaseFilter struct {
	Status    string
	DueBefore time.Time // only cases due before it
	Before    string    // only ids lexically below this (paging cursor)
	Limit     int       // 0 => 100; at most 1000
}

// Hold scopes.
const (
	HoldTenant  = "tenant"  // the tenant's data as a whole
	HoldSubject = "subject" // one pseudonym's data (SubjectPseudonym)
	HoldCase    = "case"    // what a case needs (CaseID)
)

// Hold is a legal hold: while active, retention purges spare what it covers.
type Hold struct {
	ID               string
	Tenant           string
	Scope            string // HoldTenant, HoldSubject or HoldCase
	SubjectPseudonym []byte // for HoldSubject
	CaseID           string // for HoldCase
	Reason           string
	PlacedBy         string
	PlacedAt         time.Time
	LiftedBy         string    // "" while active
	LiftedAt         time.Time // zero while active
}

// Active reports whether the hold has not been lifted.
func (h Hold) Active() bool { return h.LiftedAt.IsZero() && h.LiftedBy == "" }

// Consent is one consent event of a data subject for a purpose.
type Consent struct {
	Tenant    string
	Pseudonym []byte
	Purpose   string
	Given     bool // false: withdrawn
	At        time.Time
	Source    string // where it was given or withdrawn (channel, case id)
}

// Erased counts what EraseSubject deleted.
type Erased struct {
	Calls       int64 `json:"calls"`
	Labels      int64 `json:"labels"`
	ListEntries int64 `json:"list_entries"`
	Links       int64 `json:"links"`
}

// Kinds of sealed value, for SealedRows: each names the AAD kind the node
// seals that column with.
const (
	SealedCalls  = "calls"  // calls.sealed; AADID: the record id
	SealedLabels = "labels" // labels.sealed; AADID: the labelled record's id
	SealedLists  = "lists"  // list_entries.sealed; AADID: list + "/" + hex(pseudonym)
	SealedLinks  = "links"  // links.sealed; AADID: hex(caller) + "/" + hex(user)
	SealedCases  = "cases"  // cases.sealed; AADID: the case id
)

// SealedRow is one stored sealed value, for key rewrap. Change-log copies
// of deleted values (Change.Sealed) are not among them: keep a retired key
// until PurgeChanges has removed every change older than the rewrap.
type SealedRow struct {
	Kind   string // SealedCalls, SealedLabels, SealedLists or SealedLinks
	Row    string // opaque locator of the row; the SealedRows paging cursor
	AADID  string // the id part of the value's additional data (see the kinds)
	Sealed []byte
}

// KeyRole checks the role an API key is to be stored with: "" or a
// call.Role; Invalid otherwise. A key stored with "" reads back with "" (a
// key with no role, which may do nothing); keys stored before roles existed
// read back as admin (the column's default).
func KeyRole(r string) (string, error) {
	if r == "" {
		return "", nil
	}
	role, err := call.ParseRole(r)
	return string(role), err
}
