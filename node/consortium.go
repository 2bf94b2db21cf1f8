package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/consortium"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
)

// consortium returns the platform's consortium service, or Unavailable
// when the platform runs none.
func (n *Node) consortium() (*consortium.Service, error) {
	if n.cfg.Consortium == nil {
		return nil, call.Errorf(call.Unavailable, "this platform runs no fraud-sharing consortium")
	}
	return n.cfg.Consortium, nil
}

// ReportRequest files a confirmed fraud report with the consortium.
type ReportRequest struct {
	Number    string               `json:"number"`
	FraudType consortium.FraudType `json:"fraud_type"`
	Evidence  string               `json:"evidence"` // the member's evidence reference (case or ticket id)
	Note      string               `json:"note,omitempty"`
}

// ReportFraud files a report for a number the tenant confirmed as fraud.
// Conflict when the subject restricted or objected to processing (their
// data is not shared). Audited.
func (n *Node) ReportFraud(ctx context.Context, tenant string, req ReportRequest) (string, error) {
	svc, err := n.consortium()
	if err != nil {
		return "", err
	}
	num, err := n.listNumber(tenant, req.Number, "", "number")
	if err != nil {
		return "", err
	}
	if len(req.Note) > 2000 {
		return "", call.Errorf(call.Invalid, "note: at most 2000 characters")
	}
	return n.report(ctx, svc, tenant, num, consortium.Report{Source: consortium.SourceAPI, Evidence: req.Evidence, Type: req.FraudType}, req.Note)
}

// report files r for num, sealing the number (and note) for the member.
func (n *Node) report(ctx context.Context, svc *consortium.Service, tenant string, num call.Number, r consortium.Report, note string) (string, error) {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return "", err
	}
	p := pseudonym(k, num)
	if restricted, objected := n.Limits(tenant, p); restricted || objected {
		return "", call.Errorf(call.Conflict, "the subject of this number restricted or objected to processing: it is not shared")
	}
	r.Tenant, r.Actor, r.Number, r.TenantPseudonym = tenant, actor(ctx), num.E164, p
	r.Sealed = k.Seal([]byte(num.E164), reportAAD(tenant, p, "number"))
	if note != "" {
		r.Note = k.Seal([]byte(note), reportAAD(tenant, p, "note"))
	}
	return svc.Report(ctx, r)
}

// reportAAD binds a report's sealed number or note to its tenant and the
// number's pseudonym (stored beside it).
func reportAAD(tenant string, p []byte, field string) []byte {
	return aad("reports", tenant, hex.EncodeToString(p)+"/"+field)
}

// OwnReport is one of the tenant's consortium reports, opened.
type OwnReport struct {
	ID          string               `json:"id"`
	Number      string               `json:"number"`
	FraudType   consortium.FraudType `json:"fraud_type"`
	Evidence    string               `json:"evidence"`
	Note        string               `json:"note,omitempty"`
	ReportedAt  time.Time            `json:"reported_at"`
	WithdrawnAt time.Time            `json:"withdrawn_at,omitzero"`
}

// OwnReports returns the tenant's reports, in full. Audited.
func (n *Node) OwnReports(ctx context.Context, tenant string) ([]OwnReport, error) {
	svc, err := n.consortium()
	if err != nil {
		return nil, err
	}
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return nil, err
	}
	rs, err := svc.OwnReports(ctx, tenant, actor(ctx))
	if err != nil {
		return nil, err
	}
	out := make([]OwnReport, 0, len(rs))
	for _, r := range rs {
		o, err := openReport(tenant, k, r)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// openReport opens one of the tenant's own reports.
func openReport(tenant string, k *seal.TenantKeys, r consortium.OwnReport) (OwnReport, error) {
	o := OwnReport{ID: r.ID, FraudType: r.FraudType, Evidence: r.Evidence, ReportedAt: r.ReportedAt, WithdrawnAt: r.WithdrawnAt}
	b, err := k.Open(r.Sealed, reportAAD(tenant, r.TenantPseudonym, "number"))
	if err != nil {
		return OwnReport{}, fmt.Errorf("open report %s: %w", r.ID, err)
	}
	o.Number = string(b)
	if r.Note != nil {
		b, err := k.Open(r.Note, reportAAD(tenant, r.TenantPseudonym, "note"))
		if err != nil {
			return OwnReport{}, fmt.Errorf("open report %s: %w", r.ID, err)
		}
		o.Note = string(b)
	}
	return o, nil
}

// WithdrawReport withdraws one of the tenant's reports. Audited.
func (n *Node) WithdrawReport(ctx context.Context, tenant, id string) error {
	svc, err := n.consortium()
	if err != nil {
		return err
	}
	return svc.Withdraw(ctx, tenant, actor(ctx), id)
}

// ConsortiumStatus is a member's standing: membership, reciprocity,
// contributions and their impact at other members (never naming them).
func (n *Node) ConsortiumStatus(ctx context.Context, tenant string) (consortium.Status, error) {
	svc, err := n.consortium()
	if err != nil {
		return consortium.Status{}, err
	}
	return svc.MemberStatus(ctx, tenant)
}

// JoinConsortium opts the tenant in, accepting the terms version given.
func (n *Node) JoinConsortium(ctx context.Context, tenant, terms string) error {
	svc, err := n.consortium()
	if err != nil {
		return err
	}
	if _, err := n.tenantKeys(tenant); err != nil {
		return err
	}
	return svc.Join(ctx, tenant, actor(ctx), terms)
}

// LeaveConsortium opts the tenant out; its reports leave the shared view.
func (n *Node) LeaveConsortium(ctx context.Context, tenant string) error {
	svc, err := n.consortium()
	if err != nil {
		return err
	}
	return svc.Leave(ctx, tenant, actor(ctx))
}

// DisputeEntry disputes the consortium entry of a number: it stops
// counting on every node until the platform resolves the dispute.
func (n *Node) DisputeEntry(ctx context.Context, tenant, number, reason, detail string) (string, error) {
	svc, err := n.consortium()
	if err != nil {
		return "", err
	}
	num, err := n.listNumber(tenant, number, "", "number")
	if err != nil {
		return "", err
	}
	return svc.Dispute(ctx, tenant, actor(ctx), num.E164, nil, reason, detail)
}

// EntryView is what a member may see of a number's consortium entry: the
// other members' evidence as screening sees it (zero outside reciprocity),
// whether it is disputed, and its own reports in full.
type EntryView struct {
	Members    int                    `json:"members"` // distinct other members with a live report
	FraudTypes []consortium.FraudType `json:"fraud_types"`
	First      time.Time              `json:"first_reported,omitzero"`
	Last       time.Time              `json:"last_reported,omitzero"`
	Confidence float64                `json:"confidence"`
	Disputed   bool                   `json:"disputed"`
	Own        []OwnReport            `json:"own"`
}

// ConsortiumEntry is the tenant's view of a number's entry. Audited.
func (n *Node) ConsortiumEntry(ctx context.Context, tenant, number string) (EntryView, error) {
	svc, err := n.consortium()
	if err != nil {
		return EntryView{}, err
	}
	num, err := n.listNumber(tenant, number, "", "number")
	if err != nil {
		return EntryView{}, err
	}
	e, err := svc.Entry(ctx, tenant, actor(ctx), num.E164)
	if err != nil {
		return EntryView{}, err
	}
	v := EntryView{Members: e.Signal.Members, FraudTypes: e.Signal.Types.List(), First: e.Signal.First, Last: e.Signal.Last,
		Confidence: e.Signal.Confidence, Disputed: e.Disputed, Own: []OwnReport{}}
	if v.FraudTypes == nil {
		v.FraudTypes = []consortium.FraudType{}
	}
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return EntryView{}, err
	}
	for _, r := range e.Own {
		o, err := openReport(tenant, k, r)
		if err != nil {
			return EntryView{}, err
		}
		v.Own = append(v.Own, o)
	}
	return v, nil
}

// shareLabel files a consortium report for a fraud label, when the tenant
// is a member, the label names a consortium fraud type and the subject has
// not limited processing. Failing to share does not undo the label: it is
// logged.
func (n *Node) shareLabel(ctx context.Context, tenant, recordID string, c *call.Call, fraudType string) {
	svc := n.cfg.Consortium
	t := consortium.FraudType(fraudType)
	if svc == nil || !t.Valid() || !c.Caller.Present() {
		return
	}
	// A number on the tenant's do-not-originate list is its own, spoofed:
	// the fraud is the spoofer's, and the number must not be blocked at
	// other members.
	if _, ok := n.engine.Listed(tenant, call.DNOList, c.Caller); ok {
		return
	}
	_, err := n.report(ctx, svc, tenant, c.Caller, consortium.Report{Source: consortium.SourceLabel, RecordID: recordID, Type: t}, "")
	switch call.ErrorCode(err) {
	case "", call.NotFound, call.Conflict: // shared; not a member; subject limited processing
	default:
		n.log.Warn("fraud label not shared with the consortium", "record", recordID, "err", err)
	}
}

// consortiumErase withdraws the tenant's reports of an erased number and
// disputes its entry for the whole consortium (the platform, as
// controller, resolves the dispute). It returns how many reports it
// withdrew and whether an entry was disputed.
func (n *Node) consortiumForget(ctx context.Context, tenant, number, reason, caseID string) (withdrawn int64, disputed bool, err error) {
	svc := n.cfg.Consortium
	if svc == nil || number == "" {
		return 0, false, nil
	}
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return 0, false, err
	}
	p := k.Pseudonym(number)
	rs, err := svc.OwnReports(ctx, tenant, actor(ctx))
	if err != nil {
		return 0, false, err
	}
	for _, r := range rs {
		if r.WithdrawnAt.IsZero() && bytes.Equal(r.TenantPseudonym, p[:]) {
			if err := svc.Withdraw(ctx, tenant, actor(ctx), r.ID); err != nil {
				return withdrawn, false, err
			}
			withdrawn++
		}
	}
	detail, _ := json.Marshal(map[string]string{"case": caseID})
	if _, err := svc.Dispute(ctx, consortium.Platform, actor(ctx), number, nil, reason, string(detail)); err != nil {
		return withdrawn, false, err
	}
	return withdrawn, true, nil
}

// isConsortiumChange reports whether the follower hands c to the
// consortium service.
func isConsortiumChange(c store.Change) bool {
	switch c.Kind {
	case store.ChangeConsortium, store.ChangeConsortiumMember, store.ChangeConsortiumEntry:
		return true
	}
	return false
}
