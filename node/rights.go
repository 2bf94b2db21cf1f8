package node

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/store"
)

// SubjectPackage is what an access or portability case gives the subject:
// one tenant's data about them. Its JSON is documented in docs/privacy.md
// (schema "ringfence.subject-package/v1").
type SubjectPackage struct {
	Schema      string           `json:"schema"`
	Tenant      string           `json:"tenant"`
	CaseID      string           `json:"case_id"`
	GeneratedAt time.Time        `json:"generated_at"`
	Subject     privacy.Subject  `json:"subject"`
	Calls       []SubjectCall    `json:"calls"`
	ListEntries []SubjectListed  `json:"list_entries"`
	Links       []time.Time      `json:"customer_links"` // when the number was linked to the user ref
	Flags       *SubjectFlagView `json:"processing_limits,omitempty"`
	Consents    []ConsentView    `json:"consents"`
	Reports     []OwnReport      `json:"consortium_reports"` // the tenant's reports of the number to the consortium
}

// SubjectCall is one call record in a subject package.
type SubjectCall struct {
	RecordID   string          `json:"record_id"`
	StartedAt  time.Time       `json:"started_at"`
	Caller     string          `json:"caller"`
	Dialled    string          `json:"dialled"`
	UserRef    string          `json:"user_ref,omitempty"`
	Ingress    string          `json:"ingress_route,omitempty"`
	Signalling call.Signalling `json:"signalling"`
	Verdict    call.Verdict    `json:"verdict"`
	End        *SubjectEnd     `json:"end,omitempty"`
	Review     string          `json:"review"`
	Labels     []SubjectLabel  `json:"labels"`
}

// SubjectEnd is how a call in a subject package ended.
type SubjectEnd struct {
	DurationS float64     `json:"duration_s"`
	Result    call.Result `json:"result"`
	Egress    string      `json:"egress_route,omitempty"`
}

// SubjectLabel is one analyst label of a call in a subject package.
type SubjectLabel struct {
	Label     string    `json:"label"`
	FraudType string    `json:"fraud_type,omitempty"`
	Note      string    `json:"note,omitempty"`
	At        time.Time `json:"at"`
}

// SubjectListed is one list entry in a subject package.
type SubjectListed struct {
	List      call.ListKind `json:"list"`
	Reason    string        `json:"reason,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	ExpiresAt time.Time     `json:"expires_at,omitzero"`
}

// SubjectFlagView is a subject's processing limits.
type SubjectFlagView struct {
	Restricted bool      `json:"restricted"`
	Objected   bool      `json:"objected"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// ConsentView is one consent event.
type ConsentView struct {
	Purpose string    `json:"purpose"`
	Given   bool      `json:"given"`
	At      time.Time `json:"at"`
	Source  string    `json:"source,omitempty"`
}

// export builds the subject's package and keeps it, sealed, in the case.
func (n *Node) export(ctx context.Context, tenant string, sc *storedCase, s subject) ([]privacy.StoreResult, error) {
	if err := n.rec.sync(ctx); err != nil {
		return nil, err
	}
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return nil, err
	}
	now := n.now().UTC()
	pkg := SubjectPackage{
		Schema: "ringfence.subject-package/v1", Tenant: tenant, CaseID: sc.row.ID, GeneratedAt: now,
		Subject: privacy.Subject{Number: sc.secret.Number, UserRef: sc.secret.UserRef},
		Calls:   []SubjectCall{}, ListEntries: []SubjectListed{}, Consents: []ConsentView{}, Reports: []OwnReport{},
	}
	var labels int64
	for after := ""; ; {
		rows, err := n.store.SubjectCalls(ctx, tenant, s.caller, s.user, after, loadPage)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			c, err := n.openCall(row)
			if err != nil {
				return nil, err
			}
			sc := SubjectCall{
				RecordID: c.ID, StartedAt: c.StartedAt, Caller: shownNumber(c.Caller), Dialled: shownNumber(c.Dialled),
				UserRef: c.UserRef, Ingress: c.Ingress, Signalling: c.Signalling, Verdict: c.Verdict,
				Review: string(c.Review.Status), Labels: []SubjectLabel{},
			}
			if c.End != nil {
				sc.End = &SubjectEnd{DurationS: c.End.Duration.Seconds(), Result: c.End.Result, Egress: c.End.Egress}
			}
			ls, err := n.store.Labels(ctx, tenant, c.ID)
			if err != nil {
				return nil, err
			}
			for _, l := range ls {
				sl := SubjectLabel{Label: string(l.Label), FraudType: l.FraudType, At: l.At}
				if l.Sealed != nil {
					b, err := k.Open(l.Sealed, aad("labels", tenant, c.ID))
					if err != nil {
						return nil, fmt.Errorf("open label of %s: %w", c.ID, err)
					}
					sl.Note = string(b)
				}
				sc.Labels = append(sc.Labels, sl)
			}
			labels += int64(len(ls))
			pkg.Calls = append(pkg.Calls, sc)
		}
		if len(rows) < loadPage {
			break
		}
		after = rows[len(rows)-1].ID
	}
	if s.caller != nil {
		entries, err := n.store.SubjectListEntries(ctx, tenant, s.caller)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			pkg.ListEntries = append(pkg.ListEntries, SubjectListed{List: e.List, Reason: e.Reason, CreatedAt: e.CreatedAt, ExpiresAt: e.ExpiresAt})
		}
	}
	links, err := n.store.SubjectLinks(ctx, tenant, s.caller, s.user)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		pkg.Links = append(pkg.Links, l.At)
	}
	for _, p := range s.pseudonyms() {
		f, err := n.store.SubjectFlags(ctx, tenant, p)
		if err != nil {
			return nil, err
		}
		if f.Restricted || f.Objected {
			pkg.Flags = &SubjectFlagView{Restricted: f.Restricted, Objected: f.Objected, UpdatedAt: f.UpdatedAt}
		}
		cs, err := n.store.Consents(ctx, tenant, p)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			pkg.Consents = append(pkg.Consents, ConsentView{Purpose: c.Purpose, Given: c.Given, At: c.At, Source: c.Source})
		}
	}
	if n.cfg.Consortium != nil && s.number != "" {
		own, err := n.OwnReports(ctx, tenant)
		if err != nil {
			return nil, err
		}
		for _, r := range own {
			if r.Number == s.number {
				pkg.Reports = append(pkg.Reports, r)
			}
		}
	}
	b, err := json.MarshalIndent(pkg, "", "  ")
	if err != nil {
		return nil, err
	}
	sc.secret.Package, sc.secret.CreatedAt, sc.secret.ExpiresAt = b, now, now.Add(packageLife)
	exported := func(class privacy.Class, found int64) privacy.StoreResult {
		action := privacy.ActionExported
		if found == 0 {
			action = privacy.ActionNone
		}
		return privacy.StoreResult{Store: n.storeName(), Class: class, Found: found, Done: found, Action: action}
	}
	return []privacy.StoreResult{
		exported(privacy.CallRecords, int64(len(pkg.Calls))),
		exported(privacy.LabelsReports, labels),
		exported(privacy.Lists, int64(len(pkg.ListEntries))),
		exported(privacy.CustomerLinks, int64(len(pkg.Links))),
		exported(privacy.ConsortiumEntries, int64(len(pkg.Reports))),
	}, nil
}

// shownNumber is how a package shows a number: E.164, "withheld" or the
// raw text.
func shownNumber(num call.Number) string {
	switch {
	case num.Withheld:
		return "withheld"
	case num.Present():
		return num.E164
	}
	return num.Raw
}

// CasePackage returns a completed access or portability case's package as
// JSON or CSV (one row per call). Audited. NotFound when the case has no
// package or it has expired.
func (n *Node) CasePackage(ctx context.Context, tenant, id, format string) ([]byte, error) {
	sc, err := n.loadCase(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if sc.secret.Package == nil || !n.now().Before(sc.secret.ExpiresAt) {
		return nil, call.Errorf(call.NotFound, "case %s has no package to download (none produced, or it expired)", id)
	}
	var out []byte
	switch format {
	case "json", "":
		out = sc.secret.Package
	case "csv":
		if out, err = packageCSV(sc.secret.Package); err != nil {
			return nil, err
		}
	default:
		return nil, call.Errorf(call.Invalid, "format: must be json or csv")
	}
	return out, n.audit(ctx, tenant, "dsar.download", id, map[string]string{"format": format})
}

// packageCSV renders a package's calls as CSV, one row per call.
func packageCSV(b []byte) ([]byte, error) {
	var pkg SubjectPackage
	if err := json.Unmarshal(b, &pkg); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"record_id", "started_at", "caller", "dialled", "user_ref", "ingress_route", "score", "action", "markers", "review", "duration_s", "result", "labels"})
	for _, c := range pkg.Calls {
		codes := make([]string, len(c.Verdict.Markers))
		for i, m := range c.Verdict.Markers {
			codes[i] = m.Code
		}
		var dur, result string
		if c.End != nil {
			dur, result = strconv.FormatFloat(c.End.DurationS, 'f', -1, 64), string(c.End.Result)
		}
		var labels []string
		for _, l := range c.Labels {
			labels = append(labels, l.Label)
		}
		w.Write([]string{
			c.RecordID, c.StartedAt.Format(time.RFC3339Nano), csvSafe(c.Caller), csvSafe(c.Dialled), csvSafe(c.UserRef), c.Ingress,
			strconv.FormatFloat(c.Verdict.Score, 'f', 4, 64), string(c.Verdict.Action), strings.Join(codes, " "),
			c.Review, dur, result, strings.Join(labels, " "),
		})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// csvSafe stops a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// heldBy returns the id of an active hold covering the subject or the
// case, "" if none does.
func (n *Node) heldBy(ctx context.Context, tenant, caseID string, s subject) (string, error) {
	holds, err := n.store.Holds(ctx, tenant, true)
	if err != nil {
		return "", err
	}
	for _, h := range holds {
		switch h.Scope {
		case store.HoldTenant:
			return h.ID, nil
		case store.HoldCase:
			if h.CaseID == caseID {
				return h.ID, nil
			}
		case store.HoldSubject:
			for _, p := range s.pseudonyms() {
				if bytes.Equal(p, h.SubjectPseudonym) {
					return h.ID, nil
				}
			}
		}
	}
	return "", nil
}

// subjectCounts counts what the stores hold about a subject, for a receipt
// that keeps it.
func (n *Node) subjectCounts(ctx context.Context, tenant string, s subject) (store.Erased, error) {
	var e store.Erased
	for after := ""; ; {
		rows, err := n.store.SubjectCalls(ctx, tenant, s.caller, s.user, after, loadPage)
		if err != nil {
			return e, err
		}
		for _, r := range rows {
			ls, err := n.store.Labels(ctx, tenant, r.ID)
			if err != nil {
				return e, err
			}
			e.Labels += int64(len(ls))
		}
		e.Calls += int64(len(rows))
		if len(rows) < loadPage {
			break
		}
		after = rows[len(rows)-1].ID
	}
	if s.caller != nil {
		entries, err := n.store.SubjectListEntries(ctx, tenant, s.caller)
		if err != nil {
			return e, err
		}
		e.ListEntries = int64(len(entries))
	}
	links, err := n.store.SubjectLinks(ctx, tenant, s.caller, s.user)
	e.Links = int64(len(links))
	return e, err
}

// erase deletes the subject's records, unless a hold or the officer's
// recorded legal basis keeps them.
func (n *Node) erase(ctx context.Context, tenant, caseID string, s subject, keepBasis string) ([]privacy.StoreResult, error) {
	if err := n.rec.sync(ctx); err != nil {
		return nil, err
	}
	hold, err := n.heldBy(ctx, tenant, caseID, s)
	if err != nil {
		return nil, err
	}
	if hold != "" || keepBasis != "" {
		found, err := n.subjectCounts(ctx, tenant, s)
		if err != nil {
			return nil, err
		}
		action := privacy.KeptLegalBasis(keepBasis)
		if hold != "" {
			action = privacy.KeptLegalHold(hold)
		}
		return n.erasureResults(found, store.Erased{}, action), nil
	}
	erased, err := n.store.EraseSubject(ctx, tenant, s.caller, s.user)
	if err != nil {
		return nil, err
	}
	if s.number != "" {
		same := func(e164 string) bool { return e164 == s.number }
		for _, list := range []call.ListKind{call.AllowList, call.DenyList, call.DNOList} {
			n.engine.ForgetListed(tenant, list, same)
		}
		n.engine.ForgetLinks(tenant, same)
	}
	res := n.erasureResults(erased, erased, privacy.ActionDeleted)
	cr, err := n.consortiumResult(ctx, tenant, s.number, "erasure", caseID, privacy.ActionDeleted)
	if err != nil {
		return nil, err
	}
	return append(res, cr...), nil
}

// consortiumResult withdraws the tenant's consortium reports of the number
// and disputes its entry (see consortiumForget), as a receipt line.
func (n *Node) consortiumResult(ctx context.Context, tenant, number, reason, caseID, action string) ([]privacy.StoreResult, error) {
	if n.cfg.Consortium == nil || number == "" {
		return nil, nil
	}
	withdrawn, disputed, err := n.consortiumForget(ctx, tenant, number, reason, caseID)
	if err != nil {
		return nil, err
	}
	r := privacy.StoreResult{Store: "consortium", Class: privacy.ConsortiumEntries, Found: withdrawn, Done: withdrawn, Action: action + " (own reports); entry disputed"}
	if !disputed {
		r.Action = action
	}
	if withdrawn == 0 {
		r.Action = privacy.ActionNone + "; entry disputed"
	}
	return []privacy.StoreResult{r}, nil
}

func (n *Node) erasureResults(found, done store.Erased, action string) []privacy.StoreResult {
	res := func(class privacy.Class, f, d int64) privacy.StoreResult {
		a := action
		if f == 0 {
			a = privacy.ActionNone
		}
		return privacy.StoreResult{Store: n.storeName(), Class: class, Found: f, Done: d, Action: a}
	}
	return []privacy.StoreResult{
		res(privacy.CallRecords, found.Calls, done.Calls),
		res(privacy.LabelsReports, found.Labels, done.Labels),
		res(privacy.Lists, found.ListEntries, done.ListEntries),
		res(privacy.CustomerLinks, found.Links, done.Links),
	}
}

// rectify corrects what says the subject's number committed fraud: it
// takes the number off the deny list and marks its fraud-labelled calls
// disputed.
func (n *Node) rectify(ctx context.Context, tenant, caseID string, s subject) ([]privacy.StoreResult, error) {
	if err := n.rec.sync(ctx); err != nil {
		return nil, err
	}
	var listFound, listDone, labFound, labDone int64
	if s.caller != nil {
		entries, err := n.store.SubjectListEntries(ctx, tenant, s.caller)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.List != call.DenyList {
				continue
			}
			listFound++
			if err := n.DeleteListEntry(ctx, tenant, call.DenyList, s.number); err != nil && call.ErrorCode(err) != call.NotFound {
				return nil, err
			}
			listDone++
		}
	}
	for after := ""; ; {
		rows, err := n.store.SubjectCalls(ctx, tenant, s.caller, s.user, after, loadPage)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.Review != call.Fraud {
				continue
			}
			labFound++
			l := store.Label{Tenant: tenant, RecordID: r.ID, Label: call.Disputed, By: actor(ctx), At: n.now().UTC()}
			if err := n.store.AddLabel(ctx, l); err != nil {
				return nil, err
			}
			labDone++
		}
		if len(rows) < loadPage {
			break
		}
		after = rows[len(rows)-1].ID
	}
	res := func(class privacy.Class, f, d int64) privacy.StoreResult {
		a := privacy.ActionRectified
		if f == 0 {
			a = privacy.ActionNone
		}
		return privacy.StoreResult{Store: n.storeName(), Class: class, Found: f, Done: d, Action: a}
	}
	cr, err := n.consortiumResult(ctx, tenant, s.number, "rectification", caseID, privacy.ActionRectified)
	if err != nil {
		return nil, err
	}
	return append([]privacy.StoreResult{res(privacy.Lists, listFound, listDone), res(privacy.LabelsReports, labFound, labDone)}, cr...), nil
}

// flagSubject records a restriction or an objection on each of the
// subject's pseudonyms.
func (n *Node) flagSubject(ctx context.Context, tenant string, typ privacy.Type, s subject) ([]privacy.StoreResult, error) {
	var done int64
	for _, p := range s.pseudonyms() {
		f, err := n.store.SubjectFlags(ctx, tenant, p)
		if err != nil {
			return nil, err
		}
		f.Tenant, f.Pseudonym, f.UpdatedAt = tenant, p, n.now().UTC()
		if typ == privacy.Restriction {
			f.Restricted = true
		} else {
			f.Objected = true
		}
		if err := n.store.PutSubjectFlags(ctx, f); err != nil {
			return nil, err
		}
		n.setFlags(f)
		done++
	}
	action := privacy.ActionRestricted
	if typ == privacy.Objection {
		action = privacy.ActionStopped
	}
	return []privacy.StoreResult{{Store: n.storeName(), Class: privacy.CallRecords, Found: done, Done: done, Action: action}}, nil
}

// withdrawConsent withdraws the subject's consent for the purposes (every
// purpose consent was given for, when none are named).
func (n *Node) withdrawConsent(ctx context.Context, tenant, caseID string, s subject, purposes []string) ([]privacy.StoreResult, error) {
	var found, done int64
	for _, p := range s.pseudonyms() {
		history, err := n.store.Consents(ctx, tenant, p)
		if err != nil {
			return nil, err
		}
		given := map[string]bool{}
		for _, c := range history {
			given[c.Purpose] = c.Given
		}
		want := purposes
		if len(want) == 0 {
			for purpose, g := range given {
				if g {
					want = append(want, purpose)
				}
			}
			slices.Sort(want)
		}
		for _, purpose := range want {
			if err := checkPurpose(purpose); err != nil {
				return nil, err
			}
			found++
			if err := n.store.PutConsent(ctx, store.Consent{Tenant: tenant, Pseudonym: p, Purpose: purpose, Given: false, At: n.now().UTC(), Source: caseID}); err != nil {
				return nil, err
			}
			done++
		}
	}
	action := privacy.ActionStopped
	if found == 0 {
		action = privacy.ActionNone
	}
	return []privacy.StoreResult{{Store: n.storeName(), Class: privacy.CallRecords, Found: found, Done: done, Action: action}}, nil
}

func checkPurpose(p string) error {
	if !call.ValidID(p) {
		return call.Errorf(call.Invalid, "purpose: 1-64 characters of letters, digits, '-', '_' or '.'")
	}
	return nil
}

// SubjectRef names a data subject in a request: a phone number, a user
// ref, or both.
type SubjectRef struct {
	Number  string `json:"number,omitempty"`
	UserRef string `json:"user_ref,omitempty"`
}

// resolve returns the subject's pseudonyms.
func (n *Node) resolve(tenant string, r SubjectRef) (subject, error) {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return subject{}, err
	}
	var s subject
	if r.Number != "" {
		num, err := n.listNumber(tenant, r.Number, "", "number")
		if err != nil {
			return subject{}, err
		}
		s.number, s.caller = num.E164, pseudonym(k, num)
	}
	if r.UserRef != "" {
		if len(r.UserRef) > 128 {
			return subject{}, call.Errorf(call.Invalid, "user_ref: at most 128 characters")
		}
		s.user = userPseudonym(k, r.UserRef)
	}
	if s.caller == nil && s.user == nil {
		return subject{}, call.Errorf(call.Invalid, "number or user_ref: name the subject")
	}
	return s, nil
}

// RecordConsent records that the subject gave or withdrew consent for a
// purpose. Audited.
func (n *Node) RecordConsent(ctx context.Context, tenant string, r SubjectRef, purpose string, given bool, source string) error {
	s, err := n.resolve(tenant, r)
	if err != nil {
		return err
	}
	if err := checkPurpose(purpose); err != nil {
		return err
	}
	if err := checkReason(source, "source"); err != nil {
		return err
	}
	for _, p := range s.pseudonyms() {
		if err := n.store.PutConsent(ctx, store.Consent{Tenant: tenant, Pseudonym: p, Purpose: purpose, Given: given, At: n.now().UTC(), Source: source}); err != nil {
			return err
		}
	}
	return n.audit(ctx, tenant, "consent.write", purpose, map[string]bool{"given": given})
}

// HoldRequest places a legal hold.
type HoldRequest struct {
	Scope   string     `json:"scope"` // tenant, subject or case
	Subject SubjectRef `json:"subject,omitzero"`
	CaseID  string     `json:"case_id,omitempty"`
	Reason  string     `json:"reason"`
}

// HoldView is a legal hold as the API shows it.
type HoldView struct {
	ID       string    `json:"id"`
	Scope    string    `json:"scope"`
	Subject  string    `json:"subject,omitempty"` // the subject's pseudonym (hex), for a subject hold
	CaseID   string    `json:"case_id,omitempty"`
	Reason   string    `json:"reason"`
	PlacedBy string    `json:"placed_by"`
	PlacedAt time.Time `json:"placed_at"`
	LiftedBy string    `json:"lifted_by,omitempty"`
	LiftedAt time.Time `json:"lifted_at,omitzero"`
}

// PlaceHold places a legal hold: purges and erasures spare what it covers
// until it is lifted. A subject hold covers the number's pseudonym (or the
// user ref's, when no number is given). Audited.
func (n *Node) PlaceHold(ctx context.Context, tenant string, req HoldRequest) (HoldView, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return HoldView{}, call.Errorf(call.Invalid, "reason: required")
	}
	if err := checkReason(req.Reason, "reason"); err != nil {
		return HoldView{}, err
	}
	h := store.Hold{ID: "hold-" + n.ids.Next(n.now()), Tenant: tenant, Scope: req.Scope, Reason: req.Reason, PlacedBy: actor(ctx), PlacedAt: n.now().UTC()}
	switch req.Scope {
	case store.HoldTenant:
	case store.HoldSubject:
		s, err := n.resolve(tenant, req.Subject)
		if err != nil {
			return HoldView{}, err
		}
		h.SubjectPseudonym = s.caller
		if h.SubjectPseudonym == nil {
			h.SubjectPseudonym = s.user
		}
	case store.HoldCase:
		if _, err := n.store.Case(ctx, tenant, req.CaseID); err != nil {
			return HoldView{}, err
		}
		h.CaseID = req.CaseID
	default:
		return HoldView{}, call.Errorf(call.Invalid, "scope: must be tenant, subject or case")
	}
	if err := n.store.PutHold(ctx, h); err != nil {
		return HoldView{}, err
	}
	return holdView(h), n.audit(ctx, tenant, "hold.place", h.ID, map[string]string{"scope": h.Scope})
}

// LiftHold lifts a legal hold. Audited.
func (n *Node) LiftHold(ctx context.Context, tenant, id string) error {
	if err := n.store.LiftHold(ctx, tenant, id, actor(ctx), n.now().UTC()); err != nil {
		return err
	}
	return n.audit(ctx, tenant, "hold.lift", id, nil)
}

// Holds lists the tenant's legal holds (only active ones if activeOnly).
func (n *Node) Holds(ctx context.Context, tenant string, activeOnly bool) ([]HoldView, error) {
	hs, err := n.store.Holds(ctx, tenant, activeOnly)
	if err != nil {
		return nil, err
	}
	out := make([]HoldView, len(hs))
	for i, h := range hs {
		out[i] = holdView(h)
	}
	return out, nil
}

func holdView(h store.Hold) HoldView {
	return HoldView{
		ID: h.ID, Scope: h.Scope, Subject: hex.EncodeToString(h.SubjectPseudonym), CaseID: h.CaseID, Reason: h.Reason,
		PlacedBy: h.PlacedBy, PlacedAt: h.PlacedAt, LiftedBy: h.LiftedBy, LiftedAt: h.LiftedAt,
	}
}
