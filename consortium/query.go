package consortium

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// These are the member-facing reads. The store returns reports with the
// reporting tenant's id; the types below have no field that could carry
// another member's id, and every function fills them from the caller's own
// rows or from counts.

// Status is a tenant's standing in the consortium.
type Status struct {
	Member        bool      `json:"member"`
	JoinedAt      time.Time `json:"joined_at,omitzero"`
	Terms         string    `json:"terms,omitempty"`
	LeftAt        time.Time `json:"left_at,omitzero"`
	Receives      bool      `json:"receives"`      // reciprocity: gets the consortium signal now
	Contributions int       `json:"contributions"` // its live reports
	// Impact is how many evaluations at other members its reports
	// produced a consortium marker in (a per-member count, flushed
	// periodically plus this node's unflushed count).
	Impact int64 `json:"impact"`
}

// MemberStatus returns the tenant's membership, reciprocity standing, live
// contribution count and impact. A tenant that never joined gets a Status
// with Member false.
func (s *Service) MemberStatus(ctx context.Context, tenant string) (Status, error) {
	ms, err := s.Store.Memberships(ctx, s.ID)
	if err != nil {
		return Status{}, fmt.Errorf("consortium: status: %w", err)
	}
	var st Status
	for _, m := range ms {
		if m.Tenant == tenant {
			st = Status{Member: m.LeftAt.IsZero(), JoinedAt: m.JoinedAt, Terms: m.Terms, LeftAt: m.LeftAt, Impact: m.Impact}
		}
	}
	st.Impact += s.View.pendingImpact(tenant)
	st.Receives = st.Member && s.View.Receives(tenant, s.now())
	own, err := s.ownReports(ctx, tenant, true)
	if err != nil {
		return Status{}, err
	}
	st.Contributions = len(own)
	return st, nil
}

// OwnReport is one of the member's own reports, in full.
type OwnReport struct {
	ID              string    `json:"id"`
	FraudType       FraudType `json:"fraud_type"`
	Evidence        string    `json:"evidence"`
	TenantPseudonym []byte    `json:"tenant_pseudonym"`
	Sealed          []byte    `json:"sealed"` // the number, sealed under the member's data key
	Note            []byte    `json:"note,omitempty"`
	ReportedAt      time.Time `json:"reported_at"`
	WithdrawnAt     time.Time `json:"withdrawn_at,omitzero"`
}

func own(r store.ConsortiumReport) OwnReport {
	return OwnReport{ID: r.ID, FraudType: FraudType(r.FraudType), Evidence: r.Evidence, TenantPseudonym: r.TenantPseudonym,
		Sealed: r.Sealed, Note: r.Note, ReportedAt: r.ReportedAt, WithdrawnAt: r.WithdrawnAt}
}

func (s *Service) ownReports(ctx context.Context, tenant string, live bool) ([]store.ConsortiumReport, error) {
	var out []store.ConsortiumReport
	after := ""
	for {
		rs, err := s.Store.ConsortiumReports(ctx, s.ID, store.ReportFilter{Tenant: tenant, Live: live, After: after, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("consortium: reports: %w", err)
		}
		out = append(out, rs...)
		if len(rs) < 1000 {
			return out, nil
		}
		after = rs[len(rs)-1].ID
	}
}

// OwnReports returns every report the tenant filed (withdrawn ones too),
// oldest id first. Audited as a detail read.
func (s *Service) OwnReports(ctx context.Context, tenant, actor string) ([]OwnReport, error) {
	rs, err := s.ownReports(ctx, tenant, false)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, tenant, actor, "consortium.read_own_reports", s.ID, map[string]any{"reports": len(rs)}); err != nil {
		return nil, err
	}
	out := make([]OwnReport, len(rs))
	for i, r := range rs {
		out[i] = own(r)
	}
	return out, nil
}

// Entry is what a member may read about one number's entry.
type Entry struct {
	Signal   Signal      `json:"signal"`   // other members' evidence, as screening sees it (zero outside reciprocity)
	Disputed bool        `json:"disputed"` // suspended by an open dispute
	Own      []OwnReport `json:"own"`      // the member's own reports of the number, in full
}

// Entry returns the member's view of a number's entry. Conflict for a
// tenant that is not an active member. Audited as a detail read.
func (s *Service) Entry(ctx context.Context, tenant, actor, number string) (Entry, error) {
	if !validE164(number) {
		return Entry{}, call.Errorf(call.Invalid, "number: must be an E.164 number")
	}
	if err := s.activeMember(ctx, tenant); err != nil {
		return Entry{}, err
	}
	p := Pseudonym(s.View.key, number)
	if err := s.audit(ctx, tenant, actor, "consortium.read_entry", fmt.Sprintf("%x", p), nil); err != nil {
		return Entry{}, err
	}
	var e Entry
	rs, err := s.Store.ConsortiumReports(ctx, s.ID, store.ReportFilter{Pseudonym: p, Tenant: tenant, Limit: 1000})
	if err != nil {
		return Entry{}, fmt.Errorf("consortium: entry: %w", err)
	}
	for _, r := range rs {
		e.Own = append(e.Own, own(r))
	}
	ds, err := s.Store.ConsortiumDisputes(ctx, s.ID, store.DisputeFilter{Pseudonym: p, Open: true})
	if err != nil {
		return Entry{}, fmt.Errorf("consortium: entry: %w", err)
	}
	e.Disputed = len(ds) > 0
	e.Signal = s.View.LookupPseudonym(tenant, p, s.now())
	return e, nil
}

// Stats is an operator's summary of the consortium (no member-facing
// API returns it: it names no number but counts per member).
type Stats struct {
	Members       int              `json:"members"`
	FormerMembers int              `json:"former_members"`
	LiveReports   int              `json:"live_reports"`
	Entries       int              `json:"entries"` // in this node's view
	OpenDisputes  int              `json:"open_disputes"`
	Impact        map[string]int64 `json:"impact"` // per member, flushed counts
}

// Stats returns the operator's summary. Audited.
func (s *Service) Stats(ctx context.Context, actor string) (Stats, error) {
	ms, err := s.Store.Memberships(ctx, s.ID)
	if err != nil {
		return Stats{}, fmt.Errorf("consortium: stats: %w", err)
	}
	st := Stats{Impact: map[string]int64{}, Entries: s.View.Len()}
	for _, m := range ms {
		if m.LeftAt.IsZero() {
			st.Members++
		} else {
			st.FormerMembers++
		}
		st.Impact[m.Tenant] = m.Impact
		rs, err := s.ownReports(ctx, m.Tenant, true)
		if err != nil {
			return Stats{}, err
		}
		st.LiveReports += len(rs)
	}
	ds, err := s.Store.ConsortiumDisputes(ctx, s.ID, store.DisputeFilter{Open: true})
	if err != nil {
		return Stats{}, fmt.Errorf("consortium: stats: %w", err)
	}
	st.OpenDisputes = len(ds)
	return st, s.audit(ctx, "", actor, "consortium.stats", s.ID, nil)
}

// MemberDispute is a dispute as a member sees it: raised_by is shown only
// when the member raised it itself.
type MemberDispute struct {
	ID         string             `json:"id"`
	Mine       bool               `json:"mine"`
	ByPlatform bool               `json:"by_platform"`
	Reason     string             `json:"reason"`
	State      store.DisputeState `json:"state"`
	OpenedAt   time.Time          `json:"opened_at"`
	ResolvedAt time.Time          `json:"resolved_at,omitzero"`
}

// Disputes returns the disputes of a number's entry as the member may see
// them. Conflict for a non-member. Audited as a detail read.
func (s *Service) Disputes(ctx context.Context, tenant, actor, number string) ([]MemberDispute, error) {
	if !validE164(number) {
		return nil, call.Errorf(call.Invalid, "number: must be an E.164 number")
	}
	if err := s.activeMember(ctx, tenant); err != nil {
		return nil, err
	}
	p := Pseudonym(s.View.key, number)
	if err := s.audit(ctx, tenant, actor, "consortium.read_disputes", fmt.Sprintf("%x", p), nil); err != nil {
		return nil, err
	}
	ds, err := s.Store.ConsortiumDisputes(ctx, s.ID, store.DisputeFilter{Pseudonym: p})
	if err != nil {
		return nil, fmt.Errorf("consortium: disputes: %w", err)
	}
	out := make([]MemberDispute, 0, len(ds))
	for _, d := range ds {
		if !bytes.Equal(d.Pseudonym, p) {
			continue
		}
		out = append(out, MemberDispute{ID: d.ID, Mine: d.RaisedBy == tenant, ByPlatform: d.RaisedBy == Platform,
			Reason: d.Reason, State: d.State, OpenedAt: d.OpenedAt, ResolvedAt: d.ResolvedAt})
	}
	return out, nil
}
