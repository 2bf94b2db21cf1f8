package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/store"
)

// packageLife is how long an access or portability package stays
// downloadable after it is produced.
const packageLife = 30 * 24 * time.Hour

// CaseRequest opens a data-subject rights case.
type CaseRequest struct {
	Type     privacy.Type `json:"type"`
	Number   string       `json:"number,omitempty"`   // the subject's phone number, any format the tenant's region reads
	UserRef  string       `json:"user_ref,omitempty"` // the tenant's user id for the subject
	Received time.Time    `json:"received,omitzero"`  // when the request arrived; zero: now
}

// CaseView is a case as a privacy officer sees it: the case, its deadline
// now, the subject's identifiers (opened) and its package, if any.
type CaseView struct {
	*privacy.Case
	Number   string           `json:"number,omitempty"`
	UserRef  string           `json:"user_ref,omitempty"`
	Deadline privacy.Deadline `json:"deadline"`
	Package  *PackageInfo     `json:"package,omitempty"`
	Version  int              `json:"version"`
}

// PackageInfo describes an access or portability package.
type PackageInfo struct {
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Bytes     int       `json:"bytes"`
}

// caseSecret is the sealed part of a stored case: the subject's
// identifiers and the package produced for them.
type caseSecret struct {
	Number    string    `json:"number,omitempty"`
	UserRef   string    `json:"user_ref,omitempty"`
	Package   []byte    `json:"package,omitempty"` // JSON (see docs/privacy.md)
	CreatedAt time.Time `json:"created_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// storedCase is a case with what the node needs to write it back.
type storedCase struct {
	row    store.Case
	c      *privacy.Case
	secret caseSecret
}

// OpenCase records a rights request as a case. The subject is named by
// phone number, user ref or both.
func (n *Node) OpenCase(ctx context.Context, tenant string, req CaseRequest) (CaseView, error) {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return CaseView{}, err
	}
	var subject privacy.Subject
	if req.Number != "" {
		num, err := n.listNumber(tenant, req.Number, "", "number")
		if err != nil {
			return CaseView{}, err
		}
		subject.Number = num.E164
	}
	subject.UserRef = req.UserRef
	received := req.Received
	if received.IsZero() {
		received = n.now()
	}
	if received.After(n.now().Add(time.Minute)) {
		return CaseView{}, call.Errorf(call.Invalid, "received: must not be in the future")
	}
	id := "case-" + n.ids.Next(n.now())
	c, err := privacy.NewCase(id, tenant, req.Type, subject, received.UTC())
	if err != nil {
		return CaseView{}, err
	}
	sc := &storedCase{
		c:      c,
		secret: caseSecret{Number: subject.Number, UserRef: subject.UserRef},
		row: store.Case{
			ID: id, Tenant: tenant, Type: string(c.Type), ReceivedAt: received.UTC(),
			SubjectPseudonym: pseudonym(k, n.engine.Number(tenant, subject.Number)),
			UserPseudonym:    userPseudonym(k, subject.UserRef),
		},
	}
	if err := n.saveCase(ctx, sc); err != nil {
		return CaseView{}, err
	}
	if err := n.audit(ctx, tenant, "dsar.open", id, map[string]any{"type": c.Type, "identifiers": c.Identifiers}); err != nil {
		return CaseView{}, err
	}
	return n.caseView(sc), nil
}

// saveCase seals and stores a case (inserting it at version 1, else at the
// next version).
func (n *Node) saveCase(ctx context.Context, sc *storedCase) error {
	k, err := n.tenantKeys(sc.row.Tenant)
	if err != nil {
		return err
	}
	data, err := json.Marshal(sc.c)
	if err != nil {
		return err
	}
	secret, err := json.Marshal(sc.secret)
	if err != nil {
		return err
	}
	d := sc.c.Deadline(n.now())
	sc.row.Status = string(sc.c.Status)
	sc.row.Data = data
	sc.row.Sealed = k.Seal(secret, aad("cases", sc.row.Tenant, sc.row.ID))
	sc.row.DueAt = d.Due
	if sc.c.Status.Terminal() && sc.row.ClosedAt.IsZero() {
		sc.row.ClosedAt = n.now().UTC()
	}
	sc.row.Version++
	return n.store.PutCase(ctx, sc.row)
}

// loadCase reads and opens a stored case.
func (n *Node) loadCase(ctx context.Context, tenant, id string) (*storedCase, error) {
	if !call.ValidID(id) {
		return nil, call.Errorf(call.NotFound, "no case %q", id)
	}
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return nil, err
	}
	row, err := n.store.Case(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	sc := &storedCase{row: row, c: new(privacy.Case)}
	if err := json.Unmarshal(row.Data, sc.c); err != nil {
		return nil, fmt.Errorf("decode case %s: %w", id, err)
	}
	b, err := k.Open(row.Sealed, aad("cases", tenant, id))
	if err != nil {
		return nil, fmt.Errorf("open case %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &sc.secret); err != nil {
		return nil, fmt.Errorf("decode case %s: %w", id, err)
	}
	return sc, nil
}

func (n *Node) caseView(sc *storedCase) CaseView {
	v := CaseView{Case: sc.c, Number: sc.secret.Number, UserRef: sc.secret.UserRef, Deadline: sc.c.Deadline(n.now()), Version: sc.row.Version}
	if sc.secret.Package != nil {
		v.Package = &PackageInfo{CreatedAt: sc.secret.CreatedAt, ExpiresAt: sc.secret.ExpiresAt, Bytes: len(sc.secret.Package)}
	}
	return v
}

// Case returns one case, with the subject's identifiers. Audited.
func (n *Node) Case(ctx context.Context, tenant, id string) (CaseView, error) {
	sc, err := n.loadCase(ctx, tenant, id)
	if err != nil {
		return CaseView{}, err
	}
	return n.caseView(sc), n.audit(ctx, tenant, "dsar.read", id, nil)
}

// Cases returns a page of the tenant's cases, newest first, without the
// subjects' identifiers.
func (n *Node) Cases(ctx context.Context, tenant string, f store.CaseFilter) ([]CaseView, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return nil, err
	}
	rows, err := n.store.Cases(ctx, tenant, f)
	if err != nil {
		return nil, err
	}
	out := make([]CaseView, 0, len(rows))
	for _, row := range rows {
		c := new(privacy.Case)
		if err := json.Unmarshal(row.Data, c); err != nil {
			return nil, fmt.Errorf("decode case %s: %w", row.ID, err)
		}
		out = append(out, CaseView{Case: c, Deadline: c.Deadline(n.now()), Version: row.Version})
	}
	return out, nil
}

// CaseStep is one step an officer records on a case.
type CaseStep struct {
	Step   string    `json:"step"`             // request_identity, confirm_identity, fail_identity, pause, resume, extend, refuse
	At     time.Time `json:"at,omitzero"`      // when it happened; zero: now
	ToldAt time.Time `json:"told_at,omitzero"` // extend: when the requester was told
	Months int       `json:"months,omitempty"` // extend: 1 or 2
	Reason string    `json:"reason,omitempty"` // fail_identity, pause, extend, refuse
}

// StepCase records a step of a case's timeline (see privacy.Case).
func (n *Node) StepCase(ctx context.Context, tenant, id string, s CaseStep) (CaseView, error) {
	sc, err := n.loadCase(ctx, tenant, id)
	if err != nil {
		return CaseView{}, err
	}
	at := s.At
	if at.IsZero() {
		at = n.now()
	}
	c := sc.c
	switch s.Step {
	case "request_identity":
		err = c.RequestIdentity(at)
	case "confirm_identity":
		err = c.ConfirmIdentity(at)
	case "fail_identity":
		err = c.FailIdentity(at, s.Reason)
	case "pause":
		err = c.Pause(at, s.Reason)
	case "resume":
		err = c.Resume(at)
	case "extend":
		err = c.Extend(at, s.ToldAt, s.Months, s.Reason)
	case "refuse":
		err = c.Refuse(at, s.Reason)
	default:
		err = call.Errorf(call.Invalid, "step: must be request_identity, confirm_identity, fail_identity, pause, resume, extend or refuse")
	}
	if err != nil {
		return CaseView{}, err
	}
	if err := n.saveCase(ctx, sc); err != nil {
		return CaseView{}, err
	}
	if err := n.audit(ctx, tenant, "dsar."+s.Step, id, nil); err != nil {
		return CaseView{}, err
	}
	return n.caseView(sc), nil
}

// Fulfil carries out a case whose subject's identity is confirmed, records
// its completion receipt (in the case and in the audit log) and completes
// it. Erasure keeps what a legal hold covers, or everything when the
// officer records a legal basis to keep it (keepBasis); the receipt says so.
// Consent withdrawal withdraws the purposes named (all when none).
func (n *Node) Fulfil(ctx context.Context, tenant, id string, opts FulfilOptions) (CaseView, error) {
	sc, err := n.loadCase(ctx, tenant, id)
	if err != nil {
		return CaseView{}, err
	}
	if sc.c.Status != privacy.InProgress {
		return CaseView{}, call.Errorf(call.Conflict, "case %s is %s: confirm the subject's identity (and resume a paused case) first", id, sc.c.Status)
	}
	if err := checkReason(opts.KeepBasis, "keep_basis"); err != nil {
		return CaseView{}, err
	}
	subj := subject{caller: sc.row.SubjectPseudonym, user: sc.row.UserPseudonym, number: sc.secret.Number}
	var stores []privacy.StoreResult
	switch sc.c.Type {
	case privacy.Access, privacy.Portability:
		stores, err = n.export(ctx, tenant, sc, subj)
	case privacy.Erasure:
		stores, err = n.erase(ctx, tenant, id, subj, opts.KeepBasis)
	case privacy.Rectification:
		stores, err = n.rectify(ctx, tenant, id, subj)
	case privacy.Restriction, privacy.Objection:
		stores, err = n.flagSubject(ctx, tenant, sc.c.Type, subj)
	case privacy.ConsentWithdrawal:
		stores, err = n.withdrawConsent(ctx, tenant, id, subj, opts.Purposes)
	}
	if err != nil {
		return CaseView{}, err
	}
	now := n.now().UTC()
	r := privacy.Receipt{CaseID: id, Type: sc.c.Type, CompletedAt: now, Stores: stores}
	if err := sc.c.Complete(now, r); err != nil {
		return CaseView{}, err
	}
	if err := n.saveCase(ctx, sc); err != nil {
		return CaseView{}, err
	}
	if err := n.audit(ctx, tenant, "dsar.complete", id, r); err != nil {
		return CaseView{}, err
	}
	return n.caseView(sc), nil
}

// FulfilOptions are an officer's choices when fulfilling a case.
type FulfilOptions struct {
	KeepBasis string   `json:"keep_basis,omitempty"` // erasure: the legal basis to keep the data instead
	Purposes  []string `json:"purposes,omitempty"`   // consent withdrawal: the purposes; none: every purpose
}

// subject is a case's subject as the stores know it.
type subject struct {
	caller, user []byte // pseudonyms; nil when not given
	number       string // E.164, "" when not given
}

func (s subject) pseudonyms() [][]byte {
	var ps [][]byte
	for _, p := range [][]byte{s.caller, s.user} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// storeName names the store in receipts.
func (n *Node) storeName() string {
	if n.cfg.StoreName != "" {
		return n.cfg.StoreName
	}
	return "store"
}
