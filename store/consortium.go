package store

import (
	"context"
	"time"
)

// Consortium is the storage of the fraud-sharing consortium (package
// consortium holds the rules; this is only what it keeps).
//
// Nothing here is plaintext personal data: an entry is keyed by the
// consortium pseudonym of a number (HMAC-SHA-256 under a consortium key no
// tenant holds); the reporting member's own view of a report (its tenant
// pseudonym and the number sealed under its own data key) is opaque to the
// store and to every other member. In the clear are only pseudonyms, ids,
// times, fraud types, codes and counters. The store returns reports with
// the reporting tenant's id; it is package consortium's job never to show
// that id to another member.
//
// Every write appends, in its transaction, one Change per object it
// changed (see the Change feed section and the ChangeConsortium* kinds); a
// write that fails or changes nothing appends none. Entry changes carry no
// tenant (Change.Tenant is ""), so the log does not tie a member to a
// number either. Errors are as for Store: NotFound for an unknown
// consortium, tenant, membership, report or dispute, Conflict for a
// duplicate id or a state change that no longer applies.
type Consortium interface {
	// PutConsortium inserts or replaces a consortium's settings.
	PutConsortium(ctx context.Context, c ConsortiumInfo) error
	// ConsortiumInfo returns one consortium; NotFound if absent.
	ConsortiumInfo(ctx context.Context, id string) (ConsortiumInfo, error)

	// JoinConsortium records a tenant's opt-in: a new membership, or a
	// former member's return (joined_at and terms replaced, left_at
	// cleared, impact kept). NotFound for an unknown consortium or tenant;
	// Conflict if the tenant is a member already.
	JoinConsortium(ctx context.Context, m Membership) error
	// LeaveConsortium ends an active membership at `at` and withdraws the
	// member's live reports at the same time, in one transaction; NotFound
	// if the tenant is not an active member.
	LeaveConsortium(ctx context.Context, consortium, tenant string, at time.Time) error
	// Memberships returns every membership of a consortium, former ones
	// included, ordered by tenant.
	Memberships(ctx context.Context, consortium string) ([]Membership, error)
	// AddConsortiumImpact adds to members' impact counters (tenant ->
	// calls). Unknown memberships are skipped. Not in the change feed.
	AddConsortiumImpact(ctx context.Context, consortium string, impact map[string]int64) error

	// AddConsortiumReport stores a report; NotFound unless r.Tenant is an
	// active member of r.Consortium; Conflict if the id exists.
	AddConsortiumReport(ctx context.Context, r ConsortiumReport) error
	// WithdrawConsortiumReport marks the tenant's live report withdrawn at
	// `at` and returns it; NotFound if the tenant has no live report with
	// the id.
	WithdrawConsortiumReport(ctx context.Context, consortium, tenant, id string, at time.Time) (ConsortiumReport, error)
	// ConsortiumReports returns the reports matching f, ordered by id.
	ConsortiumReports(ctx context.Context, consortium string, f ReportFilter) ([]ConsortiumReport, error)

	// OpenConsortiumDispute stores a new open dispute; Conflict if the id
	// exists, NotFound for an unknown consortium.
	OpenConsortiumDispute(ctx context.Context, d ConsortiumDispute) error
	// ResolveConsortiumDispute closes an open dispute as upheld or
	// accepted and returns it; an accepted dispute deletes every report of
	// its pseudonym in the same transaction. NotFound if the dispute does
	// not exist, Conflict if it is no longer open.
	ResolveConsortiumDispute(ctx context.Context, consortium, id string, state DisputeState, resolution string, at time.Time) (ConsortiumDispute, error)
	// ConsortiumDisputes returns the disputes matching f, ordered by id.
	ConsortiumDisputes(ctx context.Context, consortium string, f DisputeFilter) ([]ConsortiumDispute, error)

	// PurgeConsortium deletes expired reports: every report of an entry
	// whose newest live report is before lastBefore, every report before
	// hardBefore (the absolute cap), and withdrawn reports withdrawn
	// before lastBefore. It returns how many reports it deleted.
	PurgeConsortium(ctx context.Context, consortium string, lastBefore, hardBefore time.Time) (int, error)
}

// Consortium change kinds (see ChangeKind). A follower reads the changed
// object back: the consortium's settings, the membership, or every live
// report and open dispute of the entry.
const (
	ChangeConsortium       ChangeKind = "consortium"        // PutConsortium; Tenant ""; Key: the consortium id
	ChangeConsortiumMember ChangeKind = "consortium_member" // JoinConsortium, LeaveConsortium; Tenant: the member; Key: ConsortiumChangeKey(consortium, tenant id)
	ChangeConsortiumEntry  ChangeKind = "consortium_entry"  // reports and disputes; Tenant ""; Key: ConsortiumChangeKey(consortium, pseudonym)
)

// ConsortiumChangeKey is the Key of a membership or entry change: the
// consortium id, then the tenant id or the entry's pseudonym.
func ConsortiumChangeKey(consortium string, key []byte) []byte {
	return joinKey([]byte(consortium), key)
}

// ConsortiumKey splits the Key of a consortium member or entry change;
// false if it is not one.
func (c Change) ConsortiumKey() (consortium string, key []byte, ok bool) {
	a, b, ok := splitKey(c.Key)
	return string(a), b, ok
}

// ConsortiumInfo is a consortium's settings.
type ConsortiumInfo struct {
	ID          string
	Name        string
	Terms       string // the version of the terms members accept now
	Reciprocity Reciprocity
	Expiry      time.Duration // an entry lives this long after its newest report
	CreatedAt   time.Time
}

// Reciprocity is the policy deciding which members receive the consortium
// signal; stored as JSON.
type Reciprocity struct {
	// ContributionWindow: a member receives the signal while its newest
	// live report is at most this old.
	ContributionWindow time.Duration `json:"contribution_window"`
	// GracePeriod: a member receives the signal this long after joining,
	// contributions or not.
	GracePeriod time.Duration `json:"grace_period"`
}

// Membership is a tenant's opt-in to a consortium.
type Membership struct {
	Consortium string
	Tenant     string
	JoinedAt   time.Time
	Terms      string    // the terms version accepted at JoinedAt
	LeftAt     time.Time // zero while a member
	Impact     int64     // calls at other members its reports affected (flushed counts)
}

// ConsortiumReport is one member's report of confirmed fraud.
type ConsortiumReport struct {
	ID              string
	Consortium      string
	Tenant          string // the reporting member: never shown to another member
	Pseudonym       []byte // the consortium pseudonym of the number (32 bytes)
	TenantPseudonym []byte // the number's pseudonym under the member's own key
	Sealed          []byte // the number sealed under the member's data key
	FraudType       string
	Evidence        string // "label:<record id>" or the member's own reference
	Note            []byte // sealed under the member's data key; nil if none
	ReportedAt      time.Time
	WithdrawnAt     time.Time // zero while live
}

// ReportFilter selects reports. Zero fields do not filter.
type ReportFilter struct {
	Pseudonym []byte
	Tenant    string
	Live      bool   // only reports not withdrawn
	After     string // only ids above this (paging cursor)
	Limit     int    // 0 => 100; at most 1000
}

// DisputeState is where a dispute stands.
type DisputeState string

const (
	DisputeOpen     DisputeState = "open"
	DisputeUpheld   DisputeState = "upheld"   // the entry stands and is restored
	DisputeAccepted DisputeState = "accepted" // the entry's reports are removed
)

// ConsortiumDispute is a challenge to an entry.
type ConsortiumDispute struct {
	ID         string
	Consortium string
	Pseudonym  []byte
	RaisedBy   string // a member tenant id, or "platform"
	Reason     string // a reason code (package consortium's set)
	State      DisputeState
	OpenedAt   time.Time
	ResolvedAt time.Time // zero while open
	Resolution string    // a resolution code; "" while open
}

// DisputeFilter selects disputes. Zero fields do not filter.
type DisputeFilter struct {
	Pseudonym []byte
	Open      bool // only open disputes
}
