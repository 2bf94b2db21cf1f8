package consortium

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// Store is the storage the service needs (store.Store embeds it).
type Store interface {
	store.Consortium
}

// Service runs one consortium: it validates and audits every operation,
// writes it to the store (which announces it on the change feed) and
// applies it to this node's View at once. Set the fields before use; safe
// for concurrent use afterwards.
type Service struct {
	ID    string    // the consortium's id
	Store Store     // durable state
	View  *View     // this node's in-memory view (its key is the consortium key)
	IDs   *call.IDs // report and dispute ids; nil => a private generator
	Now   func() time.Time
	// Audit records one audited action: the tenant it concerns ("" for
	// the platform), the person or key acting, the action, the object
	// (a report or dispute id, or a pseudonym in hex) and a detail with no
	// phone number. A write whose audit fails has still happened (the
	// error is returned); a detail read whose audit fails returns nothing.
	Audit func(ctx context.Context, tenant, actor, action, object string, detail any) error
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

var fallbackIDs call.IDs

func (s *Service) nextID() string {
	if s.IDs != nil {
		return s.IDs.Next(s.now())
	}
	return fallbackIDs.Next(s.now())
}

func (s *Service) audit(ctx context.Context, tenant, actor, action, object string, detail any) error {
	if s.Audit == nil {
		return nil
	}
	if err := s.Audit(ctx, tenant, actor, action, object, detail); err != nil {
		return fmt.Errorf("consortium: audit %s: %w", action, err)
	}
	return nil
}

// Setup creates or changes the consortium's settings. Expiry 0 means
// DefaultExpiry; more than MaxExpiry is Invalid.
func (s *Service) Setup(ctx context.Context, actor string, c store.ConsortiumInfo) error {
	c.ID = s.ID
	if c.Expiry == 0 {
		c.Expiry = DefaultExpiry
	}
	switch {
	case c.Expiry < 0 || c.Expiry > MaxExpiry:
		return call.Errorf(call.Invalid, "expiry: must be at most 6 years")
	case c.Terms == "":
		return call.Errorf(call.Invalid, "terms: a terms version is required")
	case c.Reciprocity.ContributionWindow < 0 || c.Reciprocity.GracePeriod < 0:
		return call.Errorf(call.Invalid, "reciprocity: periods must not be negative")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	if err := s.Store.PutConsortium(ctx, c); err != nil {
		return fmt.Errorf("consortium: setup: %w", err)
	}
	s.View.SetPolicy(c.Reciprocity, c.Expiry)
	return s.audit(ctx, "", actor, "consortium.setup", c.ID, map[string]any{
		"terms": c.Terms, "reciprocity": c.Reciprocity, "expiry": c.Expiry.String()})
}

// Join records the tenant's opt-in under the terms version it accepted,
// which must be the consortium's current one (Conflict otherwise).
func (s *Service) Join(ctx context.Context, tenant, actor, terms string) error {
	info, err := s.Store.ConsortiumInfo(ctx, s.ID)
	if err != nil {
		return fmt.Errorf("consortium: join: %w", err)
	}
	if terms != info.Terms {
		return call.Errorf(call.Conflict, "terms: the current terms version is %q", info.Terms)
	}
	m := store.Membership{Consortium: s.ID, Tenant: tenant, JoinedAt: s.now(), Terms: terms}
	if err := s.Store.JoinConsortium(ctx, m); err != nil {
		return fmt.Errorf("consortium: join: %w", err)
	}
	s.View.SetMember(m, time.Time{})
	return s.audit(ctx, tenant, actor, "consortium.join", s.ID, map[string]any{"terms": terms})
}

// Leave ends the tenant's membership and withdraws all its reports.
func (s *Service) Leave(ctx context.Context, tenant, actor string) error {
	at := s.now()
	if err := s.Store.LeaveConsortium(ctx, s.ID, tenant, at); err != nil {
		return fmt.Errorf("consortium: leave: %w", err)
	}
	s.View.Leave(tenant, at)
	return s.audit(ctx, tenant, actor, "consortium.leave", s.ID, nil)
}

// Report is a member's confirmation of fraud by a number.
type Report struct {
	Tenant string
	Actor  string // the analyst or API key filing it
	Source Source
	Number string // E.164
	// RecordID is the labelled call record (SourceLabel); Evidence the
	// member's evidence reference (SourceAPI, required, at most 128
	// characters, no phone number).
	RecordID string
	Evidence string
	Type     FraudType
	// TenantPseudonym and Sealed are the number under the member's own
	// pseudonym key and data key, so it can read its report back in full;
	// Note is a sealed note, optional.
	TenantPseudonym []byte
	Sealed          []byte
	Note            []byte
}

// validE164 reports whether n is "+" and 2 to 15 digits.
func validE164(n string) bool {
	if len(n) < 3 || len(n) > 16 || n[0] != '+' {
		return false
	}
	for _, c := range []byte(n[1:]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Report files a confirmed report and returns its id. Invalid unless the
// source is a person's confirmation with its evidence (see the package
// doc), the type is in FraudTypes and the number is E.164; NotFound unless
// the tenant is an active member. The report reaches this node's view at
// once and other nodes through the change feed.
func (s *Service) Report(ctx context.Context, r Report) (string, error) {
	var evidence string
	switch r.Source {
	case SourceLabel:
		if !call.ValidRecordID(r.RecordID) {
			return "", call.Errorf(call.Invalid, "record_id: a labelled record id is required")
		}
		evidence = "label:" + r.RecordID
	case SourceAPI:
		if r.Evidence == "" || len(r.Evidence) > 128 || strings.HasPrefix(r.Evidence, "label:") {
			return "", call.Errorf(call.Invalid, "evidence: an evidence reference of 1-128 characters is required")
		}
		evidence = r.Evidence
	default:
		return "", call.Errorf(call.Invalid, "source: only an analyst's fraud label or a report filed through the API enters the consortium")
	}
	if !r.Type.Valid() {
		return "", call.Errorf(call.Invalid, "fraud_type: must be one of %v", FraudTypes)
	}
	if !validE164(r.Number) {
		return "", call.Errorf(call.Invalid, "number: must be an E.164 number")
	}
	if err := s.activeMember(ctx, r.Tenant); err != nil {
		return "", err
	}
	p := Pseudonym(s.View.key, r.Number)
	rep := store.ConsortiumReport{
		ID: s.nextID(), Consortium: s.ID, Tenant: r.Tenant, Pseudonym: p,
		TenantPseudonym: r.TenantPseudonym, Sealed: r.Sealed, FraudType: string(r.Type),
		Evidence: evidence, Note: r.Note, ReportedAt: s.now(),
	}
	if err := s.Store.AddConsortiumReport(ctx, rep); err != nil {
		return "", fmt.Errorf("consortium: report: %w", err)
	}
	s.View.Report(r.Tenant, p, r.Type, rep.ReportedAt)
	return rep.ID, s.audit(ctx, r.Tenant, r.Actor, "consortium.report", rep.ID,
		map[string]any{"source": r.Source, "fraud_type": r.Type, "evidence": evidence, "pseudonym": fmt.Sprintf("%x", p)})
}

// Withdraw withdraws one of the tenant's live reports; NotFound if it has
// none with the id (another member's report is NotFound too).
func (s *Service) Withdraw(ctx context.Context, tenant, actor, id string) error {
	r, err := s.Store.WithdrawConsortiumReport(ctx, s.ID, tenant, id, s.now())
	if err != nil {
		return fmt.Errorf("consortium: withdraw: %w", err)
	}
	if err := s.Refresh(ctx, r.Pseudonym); err != nil {
		return err
	}
	return s.audit(ctx, tenant, actor, "consortium.withdraw", id, nil)
}

// Dispute opens a dispute on the entry of a number (E.164) or pseudonym,
// raised by a member tenant or by Platform, and suspends the entry at
// once. reason is a reason code; detail (no phone number) goes to the
// audit log only. It returns the dispute id.
func (s *Service) Dispute(ctx context.Context, raisedBy, actor, number string, pseudonym []byte, reason, detail string) (string, error) {
	if !reasons[reason] {
		return "", call.Errorf(call.Invalid, "reason: must be not_fraud, wrong_number, rectification, erasure or other")
	}
	if number != "" {
		if !validE164(number) {
			return "", call.Errorf(call.Invalid, "number: must be an E.164 number")
		}
		pseudonym = Pseudonym(s.View.key, number)
	}
	if len(pseudonym) != 32 {
		return "", call.Errorf(call.Invalid, "number: a number or a pseudonym is required")
	}
	if raisedBy != Platform {
		if err := s.activeMember(ctx, raisedBy); err != nil {
			return "", err
		}
	}
	d := store.ConsortiumDispute{ID: s.nextID(), Consortium: s.ID, Pseudonym: pseudonym, RaisedBy: raisedBy,
		Reason: reason, State: store.DisputeOpen, OpenedAt: s.now()}
	if err := s.Store.OpenConsortiumDispute(ctx, d); err != nil {
		return "", fmt.Errorf("consortium: dispute: %w", err)
	}
	s.View.SetDisputed(pseudonym, true)
	tenant := raisedBy
	if tenant == Platform {
		tenant = ""
	}
	return d.ID, s.audit(ctx, tenant, actor, "consortium.dispute", d.ID,
		map[string]any{"reason": reason, "detail": detail, "pseudonym": fmt.Sprintf("%x", pseudonym)})
}

func (s *Service) activeMember(ctx context.Context, tenant string) error {
	ms, err := s.Store.Memberships(ctx, s.ID)
	if err != nil {
		return fmt.Errorf("consortium: %w", err)
	}
	for _, m := range ms {
		if m.Tenant == tenant && m.LeftAt.IsZero() {
			return nil
		}
	}
	return call.Errorf(call.Conflict, "not a member of the consortium: join it first (PUT /v1/consortium/membership)")
}

// Resolve closes an open dispute (an operator's decision): upheld
// restores the entry, accepted removes its reports. The resolution code
// and the detail are kept in the audit log.
func (s *Service) Resolve(ctx context.Context, actor, id string, state store.DisputeState, resolution, detail string) error {
	if resolution == "" || len(resolution) > 64 {
		return call.Errorf(call.Invalid, "resolution: a resolution code of 1-64 characters is required")
	}
	d, err := s.Store.ResolveConsortiumDispute(ctx, s.ID, id, state, resolution, s.now())
	if err != nil {
		return fmt.Errorf("consortium: resolve: %w", err)
	}
	if err := s.Refresh(ctx, d.Pseudonym); err != nil {
		return err
	}
	return s.audit(ctx, "", actor, "consortium.resolve", id,
		map[string]any{"state": state, "resolution": resolution, "detail": detail, "reason": d.Reason,
			"pseudonym": fmt.Sprintf("%x", d.Pseudonym)})
}

// Refresh reads one entry back from the store into the view (live
// reports and open disputes).
func (s *Service) Refresh(ctx context.Context, pseudonym []byte) error {
	var cs []Contribution
	after := ""
	for {
		rs, err := s.Store.ConsortiumReports(ctx, s.ID, store.ReportFilter{Pseudonym: pseudonym, Live: true, After: after, Limit: 1000})
		if err != nil {
			return fmt.Errorf("consortium: refresh: %w", err)
		}
		for _, r := range rs {
			cs = append(cs, Contribution{Tenant: r.Tenant, Type: FraudType(r.FraudType), At: r.ReportedAt})
		}
		if len(rs) < 1000 {
			break
		}
		after = rs[len(rs)-1].ID
	}
	ds, err := s.Store.ConsortiumDisputes(ctx, s.ID, store.DisputeFilter{Pseudonym: pseudonym, Open: true})
	if err != nil {
		return fmt.Errorf("consortium: refresh: %w", err)
	}
	s.View.SetEntry(pseudonym, cs, len(ds) > 0)
	return nil
}

// Load fills the view from the store: settings, memberships, every live
// report and open dispute. Call it at start, before following the change
// feed from the seq read before loading.
func (s *Service) Load(ctx context.Context) error {
	info, err := s.Store.ConsortiumInfo(ctx, s.ID)
	if err != nil {
		return fmt.Errorf("consortium: load: %w", err)
	}
	s.View.SetPolicy(info.Reciprocity, info.Expiry)
	if err := s.loadMembers(ctx, ""); err != nil {
		return err
	}
	// Reports are merged into the view one at a time (Report is
	// idempotent per member), so loading holds no copy of the table.
	after := ""
	for {
		rs, err := s.Store.ConsortiumReports(ctx, s.ID, store.ReportFilter{Live: true, After: after, Limit: 1000})
		if err != nil {
			return fmt.Errorf("consortium: load: %w", err)
		}
		for _, r := range rs {
			s.View.Report(r.Tenant, r.Pseudonym, FraudType(r.FraudType), r.ReportedAt)
		}
		if len(rs) < 1000 {
			break
		}
		after = rs[len(rs)-1].ID
	}
	ds, err := s.Store.ConsortiumDisputes(ctx, s.ID, store.DisputeFilter{Open: true})
	if err != nil {
		return fmt.Errorf("consortium: load: %w", err)
	}
	for _, d := range ds {
		s.View.SetDisputed(d.Pseudonym, true)
	}
	return nil
}

// loadMembers reads memberships (one tenant's, or all for "") into the
// view with each member's newest report since joining.
func (s *Service) loadMembers(ctx context.Context, only string) error {
	ms, err := s.Store.Memberships(ctx, s.ID)
	if err != nil {
		return fmt.Errorf("consortium: members: %w", err)
	}
	for _, m := range ms {
		if only != "" && m.Tenant != only {
			continue
		}
		var last time.Time
		after := ""
		for m.LeftAt.IsZero() {
			rs, err := s.Store.ConsortiumReports(ctx, s.ID, store.ReportFilter{Tenant: m.Tenant, After: after, Limit: 1000})
			if err != nil {
				return fmt.Errorf("consortium: members: %w", err)
			}
			for _, r := range rs {
				if r.ReportedAt.After(last) {
					last = r.ReportedAt
				}
			}
			if len(rs) < 1000 {
				break
			}
			after = rs[len(rs)-1].ID
		}
		s.View.SetMember(m, last)
	}
	return nil
}

// Apply applies one change of the store's change feed (made on any node)
// to the view; changes of other kinds or consortia are ignored.
func (s *Service) Apply(ctx context.Context, c store.Change) error {
	switch c.Kind {
	case store.ChangeConsortium:
		if string(c.Key) != s.ID {
			return nil
		}
		info, err := s.Store.ConsortiumInfo(ctx, s.ID)
		if err != nil {
			return fmt.Errorf("consortium: apply: %w", err)
		}
		s.View.SetPolicy(info.Reciprocity, info.Expiry)
	case store.ChangeConsortiumMember:
		id, tenant, ok := c.ConsortiumKey()
		if ok && id == s.ID {
			return s.loadMembers(ctx, string(tenant))
		}
	case store.ChangeConsortiumEntry:
		id, p, ok := c.ConsortiumKey()
		if ok && id == s.ID {
			return s.Refresh(ctx, p)
		}
	}
	return nil
}

// Purge deletes expired reports from the store (an entry Expiry after its
// newest report; any report after MaxExpiry) and sweeps the view. It
// returns how many reports it deleted.
func (s *Service) Purge(ctx context.Context, actor string) (int, error) {
	info, err := s.Store.ConsortiumInfo(ctx, s.ID)
	if err != nil {
		return 0, fmt.Errorf("consortium: purge: %w", err)
	}
	now := s.now()
	n, err := s.Store.PurgeConsortium(ctx, s.ID, now.Add(-min(info.Expiry, MaxExpiry)), now.Add(-MaxExpiry))
	if err != nil {
		return 0, fmt.Errorf("consortium: purge: %w", err)
	}
	s.View.Sweep(now)
	return n, s.audit(ctx, "", actor, "consortium.purge", s.ID, map[string]any{"deleted": n})
}

// FlushImpact adds the impact counted in the view since the last flush to
// the members' stored counters. Call it periodically; counts not flushed
// when a node stops are lost (impact is a statistic, not a record).
func (s *Service) FlushImpact(ctx context.Context) error {
	imp := s.View.takeImpact()
	if err := s.Store.AddConsortiumImpact(ctx, s.ID, imp); err != nil {
		// Put them back for the next flush.
		s.View.mu.RLock()
		for t, n := range imp {
			if mb := s.View.members[t]; mb != nil {
				mb.impact.Add(n)
			}
		}
		s.View.mu.RUnlock()
		return fmt.Errorf("consortium: flush impact: %w", err)
	}
	return nil
}
