package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/archive"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/consortium"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/store"
)

// privacyNode is what the privacy pages need of the node (*node.Node):
// rights cases, legal holds and retention. Case and CasePackage audit the
// read (dsar.read, dsar.download); every change is audited.
type privacyNode interface {
	Cases(ctx context.Context, tenant string, f store.CaseFilter) ([]node.CaseView, error)
	Case(ctx context.Context, tenant, id string) (node.CaseView, error)
	OpenCase(ctx context.Context, tenant string, req node.CaseRequest) (node.CaseView, error)
	StepCase(ctx context.Context, tenant, id string, s node.CaseStep) (node.CaseView, error)
	Fulfil(ctx context.Context, tenant, id string, opts node.FulfilOptions) (node.CaseView, error)
	CasePackage(ctx context.Context, tenant, id, format string) ([]byte, error)
	Holds(ctx context.Context, tenant string, activeOnly bool) ([]node.HoldView, error)
	PlaceHold(ctx context.Context, tenant string, req node.HoldRequest) (node.HoldView, error)
	LiftHold(ctx context.Context, tenant, id string) error
	Retention(ctx context.Context, tenant string) (privacy.Retention, error)
}

// consortiumNode is what the consortium page needs of the node. The node
// never names another member.
type consortiumNode interface {
	ConsortiumStatus(ctx context.Context, tenant string) (consortium.Status, error)
	OwnReports(ctx context.Context, tenant string) ([]node.OwnReport, error)
	WithdrawReport(ctx context.Context, tenant, id string) error
	DisputeEntry(ctx context.Context, tenant, number, reason, detail string) (string, error)
}

// archiveNode is what the compliance archive pages need of the node. Every
// read takes the officer's reason, which the node audits with it.
type archiveNode interface {
	SearchArchive(ctx context.Context, tenant string, s node.ArchiveSearch, reason string) ([]node.ArchiveEntry, error)
	ArchiveItem(ctx context.Context, tenant, id, reason string) (node.ArchiveEntry, error)
	PlayRecording(ctx context.Context, tenant, id, reason string) (node.Recording, error)
	ExportArchive(ctx context.Context, tenant string, req node.ExportRequest, reason string) (node.ExportReceipt, error)
	OpenExport(ctx context.Context, tenant, id, reason string) (*archive.Media, error)
	ArchiveHolds(ctx context.Context, tenant string, activeOnly bool) ([]node.ArchiveHold, error)
	PlaceArchiveHold(ctx context.Context, tenant string, req node.ArchiveHoldRequest) (node.ArchiveHold, error)
	LiftArchiveHold(ctx context.Context, tenant, id string) error
}

// Role sets of the rights routes.
var (
	privacyRoles    = []call.Role{call.PrivacyOfficer}
	holdRoles       = []call.Role{call.PrivacyOfficer, call.Admin}
	consortiumRoles = []call.Role{call.Admin, call.Analyst}
	archiveRoles    = []call.Role{call.ComplianceOfficer}
)

// rightsRoutes are the pages for privacy, the consortium and the archive.
var rightsRoutes = []route{
	{"GET /console/privacy", privacyRoles, (*Server).privacyPage},
	{"POST /console/privacy/cases", privacyRoles, (*Server).openCase},
	{"GET /console/privacy/cases/{id}", privacyRoles, (*Server).casePage},
	{"POST /console/privacy/cases/{id}/unmask", privacyRoles, (*Server).unmaskCase},
	{"POST /console/privacy/cases/{id}/step", privacyRoles, (*Server).stepCase},
	{"POST /console/privacy/cases/{id}/fulfil", privacyRoles, (*Server).fulfilCase},
	{"GET /console/privacy/cases/{id}/package", privacyRoles, (*Server).casePackage},
	{"GET /console/privacy/holds", holdRoles, (*Server).holdsPage},
	{"POST /console/privacy/holds", holdRoles, (*Server).placeHold},
	{"POST /console/privacy/holds/{id}/lift", holdRoles, (*Server).liftHold},
	{"GET /console/privacy/retention", privacyRoles, (*Server).retentionPage},
	{"GET /console/consortium", consortiumRoles, (*Server).consortiumPage},
	{"POST /console/consortium/reports/{id}/withdraw", consortiumRoles, (*Server).withdrawReport},
	{"POST /console/consortium/disputes", consortiumRoles, (*Server).disputeEntry},
	{"GET /console/archive", archiveRoles, (*Server).archivePage},
	{"GET /console/archive/items/{id}", archiveRoles, (*Server).archiveItemPage},
	{"GET /console/archive/items/{id}/media", archiveRoles, (*Server).archiveMedia},
	{"POST /console/archive/exports", archiveRoles, (*Server).archiveExport},
	{"GET /console/archive/exports/{id}", archiveRoles, (*Server).archiveExportDownload},
	{"GET /console/archive/holds", archiveRoles, (*Server).archiveHoldsPage},
	{"POST /console/archive/holds", archiveRoles, (*Server).placeArchiveHold},
	{"POST /console/archive/holds/{id}/lift", archiveRoles, (*Server).liftArchiveHold},
}

// nodeAs returns the console's node as T, or Unavailable when this node
// does not offer those operations.
func nodeAs[T any](s *Server) (T, error) {
	n, ok := s.node.(T)
	if !ok {
		return n, call.Errorf(call.Unavailable, "this ringfence node does not offer this page")
	}
	return n, nil
}

// day is a date as the UK reads deadlines (Europe/London), "" for none.
func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(privacy.London()).Format("2006-01-02")
}

// short shortens an id or pseudonym for display.
func short(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// maskText masks a number held as text (E.164): country code and the last
// three digits.
func maskText(n string) string {
	if n == "" {
		return ""
	}
	return mask(call.Number{E164: n})
}

// maskRef masks a user reference: only its last three characters show.
func maskRef(ref string) string {
	if ref == "" {
		return ""
	}
	r := []rune(ref)
	if len(r) <= 3 {
		return "•••"
	}
	return strings.Repeat("•", min(len(r)-3, 8)) + string(r[len(r)-3:])
}

// formErrors are a form's validation errors by field name ("form": not
// about one field). Templates show each beside its field.
type formErrors map[string]string

// formError turns an Invalid error whose message starts "field:" into an
// error beside that field (one of fields), any other Invalid error into a
// form-level one. ok is false for any other error.
func formError(err error, fields ...string) (formErrors, bool) {
	if call.ErrorCode(err) != call.Invalid {
		return nil, false
	}
	msg := call.ErrorMessage(err)
	for _, f := range fields {
		if strings.HasPrefix(msg, f+":") || strings.HasPrefix(msg, f+".") {
			return formErrors{f: msg}, true
		}
	}
	return formErrors{"form": msg}, true
}

// parseDay reads a date input (YYYY-MM-DD) as a moment of that day: now
// when it is now's date in Europe/London (so a step recorded today keeps
// its order with the node's own "now"), else noon in Europe/London.
// Empty gives the zero time.
func parseDay(v, field string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseInLocation("2006-01-02", v, privacy.London())
	if err != nil {
		return time.Time{}, call.Errorf(call.Invalid, "%s: a date such as 2025-01-31", field)
	}
	if d.Format("2006-01-02") == now.In(privacy.London()).Format("2006-01-02") {
		return now, nil
	}
	return d.Add(12 * time.Hour), nil
}

// parseLocal reads a datetime-local input as UTC; empty gives zero.
func parseLocal(v, field string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(localTime, v)
	if err != nil {
		return time.Time{}, call.Errorf(call.Invalid, "%s: a date and time such as 2025-01-31T14:05", field)
	}
	return t, nil
}

// --- Privacy: rights cases ---------------------------------------------

// caseRow is a case as the cases table shows it.
type caseRow struct {
	node.CaseView
	Received   time.Time
	Badge      string
	BadgeClass string
}

// badge states where a case's deadline stands at now.
func badge(v node.CaseView, now time.Time) (text, class string) {
	d := v.Deadline
	switch {
	case v.Status.Terminal():
		return string(v.Status), ""
	case d.Paused:
		return "paused", "action-flag"
	case !d.Started:
		return "clock not started", ""
	case d.Overdue(now):
		return "OVERDUE", "action-block"
	}
	switch n := d.DaysLeft(now); n {
	case 0:
		return "due today", "action-flag"
	case 1:
		return "1 day left", "action-allow"
	default:
		return fmt.Sprintf("%d days left", n), "action-allow"
	}
}

// maxCases is how many cases the privacy page lists.
const maxCases = 1000

// sortCases orders open cases by due date (soonest first), then cases
// whose clock has not started, then closed cases; ties by receipt.
func sortCases(rows []caseRow) {
	rank := func(r caseRow) int {
		switch {
		case r.Status.Terminal():
			return 2
		case !r.Deadline.Started:
			return 1
		}
		return 0
	}
	slices.SortStableFunc(rows, func(a, b caseRow) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		if rank(a) == 0 {
			if c := a.Deadline.Due.Compare(b.Deadline.Due); c != 0 {
				return c
			}
		}
		return a.Received.Compare(b.Received)
	})
}

// privacyPage lists the tenant's rights cases by due date, with the form
// that opens one.
func (s *Server) privacyPage(w http.ResponseWriter, r *http.Request, p *principal) {
	s.showPrivacy(w, r, p, http.StatusOK, formErrors{}, url.Values{})
}

func (s *Server) showPrivacy(w http.ResponseWriter, r *http.Request, p *principal, status int, errs formErrors, form url.Values) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	cs, err := n.Cases(p.ctx(r), p.Tenant, store.CaseFilter{Limit: maxCases})
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	now := s.now()
	rows := make([]caseRow, len(cs))
	for i, c := range cs {
		rows[i] = caseRow{CaseView: c, Received: c.Case.Received()}
		rows[i].Badge, rows[i].BadgeClass = badge(c, now)
	}
	sortCases(rows)
	s.render(w, r, status, "privacy", p, map[string]any{
		"Title": "Rights cases", "Cases": rows, "Types": privacy.Types,
		"Errors": errs, "Form": form, "Today": now.In(privacy.London()).Format("2006-01-02"),
	})
}

// openCase opens a rights case from the form and shows it.
func (s *Server) openCase(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	form := url.Values{}
	for _, k := range []string{"type", "number", "user_ref", "received"} {
		form.Set(k, strings.TrimSpace(r.PostFormValue(k)))
	}
	req := node.CaseRequest{Type: privacy.Type(form.Get("type")), Number: form.Get("number"), UserRef: form.Get("user_ref")}
	errs := formErrors{}
	if !req.Type.Valid() {
		errs["type"] = "type: choose the right the request exercises"
	}
	if req.Number == "" && req.UserRef == "" {
		errs["number"] = "number: give the subject's number, user reference or both"
	}
	if req.Received, err = parseDay(form.Get("received"), "received", s.now()); err != nil {
		errs["received"] = call.ErrorMessage(err)
	}
	if len(errs) == 0 {
		var v node.CaseView
		if v, err = n.OpenCase(p.ctx(r), p.Tenant, req); err == nil {
			http.Redirect(w, r, Prefix+"privacy/cases/"+url.PathEscape(v.ID)+"?done=opened", http.StatusSeeOther)
			return
		}
		var ok bool
		if errs, ok = formError(err, "type", "number", "user_ref", "received"); !ok {
			s.fail(w, r, p, err)
			return
		}
	}
	form.Del("number") // never echo a number back into a page
	s.showPrivacy(w, r, p, http.StatusBadRequest, errs, form)
}

// caseDone is the message after a step, by the done parameter.
var caseDone = map[string]string{
	"opened":           "Case opened.",
	"request_identity": "Recorded: the requester was asked to prove their identity.",
	"confirm_identity": "Identity confirmed: the clock runs.",
	"fail_identity":    "Identity not proven: the case is closed.",
	"pause":            "Case paused: the clock stands still.",
	"resume":           "Case resumed.",
	"extend":           "Deadline extended.",
	"refuse":           "Case refused.",
	"fulfil":           "Case fulfilled: the receipt is below.",
}

// casePage shows a case: deadline, timeline, subject (masked), steps,
// fulfilment, package and receipt. Reading it is audited (dsar.read).
func (s *Server) casePage(w http.ResponseWriter, r *http.Request, p *principal) {
	s.showCase(w, r, p, http.StatusOK, false, formErrors{}, caseDone[r.URL.Query().Get("done")])
}

// unmaskCase shows the case with the subject's identifiers in full (the
// read is audited as dsar.read under the officer's name).
func (s *Server) unmaskCase(w http.ResponseWriter, r *http.Request, p *principal) {
	s.showCase(w, r, p, http.StatusOK, true, formErrors{}, "")
}

func (s *Server) showCase(w http.ResponseWriter, r *http.Request, p *principal, status int, unmasked bool, errs formErrors, flash string) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	v, err := n.Case(p.ctx(r), p.Tenant, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	now := s.now()
	b, bc := badge(v, now)
	s.render(w, r, status, "case", p, map[string]any{
		"Title": "Case " + v.ID, "Case": v, "Unmasked": unmasked, "Errors": errs, "Flash": flash,
		"Badge": b, "BadgeClass": bc, "Received": v.Case.Received(),
		"Open": !v.Status.Terminal(), "Erasure": v.Type == privacy.Erasure,
		"Consent":  v.Type == privacy.ConsentWithdrawal,
		"CanStart": v.Status == privacy.Open || v.Status == privacy.AwaitingIdentity,
		"Running":  v.Status == privacy.InProgress, "Paused": v.Status == privacy.Paused,
		"Today": now.In(privacy.London()).Format("2006-01-02"),
	})
}

// stepCase records a step of the case's timeline from the step form.
func (s *Server) stepCase(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	now := s.now()
	st := node.CaseStep{Step: r.PostFormValue("step"), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	errs := formErrors{}
	if st.At, err = parseDay(r.PostFormValue("at"), "at", now); err != nil {
		errs["at"] = call.ErrorMessage(err)
	}
	if st.Step == "extend" {
		if st.ToldAt, err = parseDay(r.PostFormValue("told_at"), "told_at", now); err != nil {
			errs["told_at"] = call.ErrorMessage(err)
		} else if st.ToldAt.IsZero() {
			errs["told_at"] = "told_at: when was the requester told? required"
		}
		if st.Months, err = strconv.Atoi(r.PostFormValue("months")); err != nil || st.Months < 1 || st.Months > 2 {
			errs["months"] = "months: 1 or 2"
		}
	}
	switch st.Step {
	case "pause", "refuse", "fail_identity", "extend":
		if st.Reason == "" {
			errs["reason-"+st.Step] = "reason: required"
		}
	}
	if len(errs) == 0 {
		if _, err = n.StepCase(p.ctx(r), p.Tenant, r.PathValue("id"), st); err == nil {
			http.Redirect(w, r, Prefix+"privacy/cases/"+url.PathEscape(r.PathValue("id"))+"?done="+url.QueryEscape(st.Step), http.StatusSeeOther)
			return
		}
		var ok bool
		if errs, ok = formError(err, "at", "told_at", "months", "reason"); !ok {
			if call.ErrorCode(err) != call.Conflict {
				s.fail(w, r, p, err)
				return
			}
			errs = formErrors{"form": call.ErrorMessage(err)}
		}
		if m, ok := errs["reason"]; ok {
			delete(errs, "reason")
			errs["reason-"+st.Step] = m
		}
	}
	// Only the identity form shows a date error beside its field.
	if m, ok := errs["at"]; ok && st.Step != "confirm_identity" {
		delete(errs, "at")
		errs["form"] = m
	}
	s.showCase(w, r, p, http.StatusBadRequest, false, errs, "")
}

// fulfilCase carries out the case (erasure with an optional legal basis to
// keep the data; consent withdrawal for the purposes named).
func (s *Server) fulfilCase(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	opts := node.FulfilOptions{KeepBasis: strings.TrimSpace(r.PostFormValue("keep_basis"))}
	for pu := range strings.SplitSeq(r.PostFormValue("purposes"), ",") {
		if pu = strings.TrimSpace(pu); pu != "" {
			opts.Purposes = append(opts.Purposes, pu)
		}
	}
	_, err = n.Fulfil(p.ctx(r), p.Tenant, r.PathValue("id"), opts)
	if err == nil {
		http.Redirect(w, r, Prefix+"privacy/cases/"+url.PathEscape(r.PathValue("id"))+"?done=fulfil", http.StatusSeeOther)
		return
	}
	errs, ok := formError(err, "keep_basis", "purposes")
	if !ok {
		if call.ErrorCode(err) != call.Conflict {
			s.fail(w, r, p, err)
			return
		}
		errs = formErrors{"fulfil": call.ErrorMessage(err)}
	}
	s.showCase(w, r, p, http.StatusBadRequest, false, errs, "")
}

// casePackage streams a completed access or portability case's package as
// JSON or CSV, as a download (audited as dsar.download).
func (s *Server) casePackage(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	id := r.PathValue("id")
	b, err := n.CasePackage(p.ctx(r), p.Tenant, id, format)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	ct := "application/json"
	if format == "csv" {
		ct = "text/csv; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "case-"+id+"."+format))
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// --- Privacy: legal holds and retention ----------------------------------

// holdsPage lists the tenant's legal holds with the form that places one.
func (s *Server) holdsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	s.showHolds(w, r, p, http.StatusOK, formErrors{}, url.Values{}, r.URL.Query().Get("done"))
}

func (s *Server) showHolds(w http.ResponseWriter, r *http.Request, p *principal, status int, errs formErrors, form url.Values, done string) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	hs, err := n.Holds(p.ctx(r), p.Tenant, false)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	flash := map[string]string{"placed": "Legal hold placed.", "lifted": "Legal hold lifted."}[done]
	s.render(w, r, status, "holds", p, map[string]any{
		"Title": "Legal holds", "Holds": hs, "Errors": errs, "Form": form, "Flash": flash,
		"Scopes": []string{store.HoldTenant, store.HoldSubject, store.HoldCase},
	})
}

// placeHold places a legal hold by scope: the tenant, a subject (number or
// user ref) or a case.
func (s *Server) placeHold(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	req := node.HoldRequest{
		Scope:   r.PostFormValue("scope"),
		Subject: node.SubjectRef{Number: strings.TrimSpace(r.PostFormValue("number")), UserRef: strings.TrimSpace(r.PostFormValue("user_ref"))},
		CaseID:  strings.TrimSpace(r.PostFormValue("case_id")),
		Reason:  strings.TrimSpace(r.PostFormValue("reason")),
	}
	errs := formErrors{}
	if req.Reason == "" {
		errs["reason"] = "reason: required"
	}
	switch req.Scope {
	case store.HoldSubject:
		if req.Subject.Number == "" && req.Subject.UserRef == "" {
			errs["number"] = "number: give the subject's number or user reference"
		}
	case store.HoldCase:
		if req.CaseID == "" {
			errs["case_id"] = "case_id: required for a case hold"
		}
	case store.HoldTenant:
	default:
		errs["scope"] = "scope: choose tenant, subject or case"
	}
	if len(errs) == 0 {
		if _, err = n.PlaceHold(p.ctx(r), p.Tenant, req); err == nil {
			http.Redirect(w, r, Prefix+"privacy/holds?done=placed", http.StatusSeeOther)
			return
		}
		var ok bool
		if errs, ok = formError(err, "scope", "number", "user_ref", "case_id", "reason"); !ok {
			if call.ErrorCode(err) != call.NotFound {
				s.fail(w, r, p, err)
				return
			}
			errs = formErrors{"case_id": call.ErrorMessage(err)}
		}
	}
	form := url.Values{"scope": {req.Scope}, "case_id": {req.CaseID}, "reason": {req.Reason}}
	s.showHolds(w, r, p, http.StatusBadRequest, errs, form, "")
}

// liftHold lifts a legal hold.
func (s *Server) liftHold(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	if err := n.LiftHold(p.ctx(r), p.Tenant, r.PathValue("id")); err != nil {
		s.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, Prefix+"privacy/holds?done=lifted", http.StatusSeeOther)
}

// retentionRow is one data class with the tenant's period in force.
type retentionRow struct {
	privacy.ClassInfo
	Period privacy.Period
}

// retentionPage shows the tenant's retention period for every data class.
func (s *Server) retentionPage(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[privacyNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	ret, err := n.Retention(p.ctx(r), p.Tenant)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	var rows []retentionRow
	for _, ci := range privacy.Classes() {
		rows = append(rows, retentionRow{ClassInfo: ci, Period: ret.Effective(ci.Class)})
	}
	s.render(w, r, http.StatusOK, "retention", p, map[string]any{"Title": "Retention", "Classes": rows})
}

// --- Consortium ----------------------------------------------------------

// disputeReasons are the reason codes a member may dispute an entry with.
var disputeReasons = []string{consortium.ReasonNotFraud, consortium.ReasonWrongNumber, consortium.ReasonOther}

// consortiumPage shows the tenant's membership, its own reports and the
// dispute form. It never names another member (the node never does).
func (s *Server) consortiumPage(w http.ResponseWriter, r *http.Request, p *principal) {
	flash := map[string]string{"withdrawn": "Report withdrawn: it no longer counts at other members.",
		"disputed": "Dispute raised: the entry stops counting until the platform resolves it."}[r.URL.Query().Get("done")]
	s.showConsortium(w, r, p, http.StatusOK, formErrors{}, url.Values{}, flash)
}

func (s *Server) showConsortium(w http.ResponseWriter, r *http.Request, p *principal, status int, errs formErrors, form url.Values, flash string) {
	n, err := nodeAs[consortiumNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	ctx := p.ctx(r)
	st, err := n.ConsortiumStatus(ctx, p.Tenant)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	own, err := n.OwnReports(ctx, p.Tenant)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, status, "consortium", p, map[string]any{
		"Title": "Consortium", "Status": st, "Reports": own, "Errors": errs, "Form": form,
		"Flash": flash, "Reasons": disputeReasons,
	})
}

// withdrawReport withdraws one of the tenant's reports.
func (s *Server) withdrawReport(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[consortiumNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	if err := n.WithdrawReport(p.ctx(r), p.Tenant, r.PathValue("id")); err != nil {
		s.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, Prefix+"consortium?done=withdrawn", http.StatusSeeOther)
}

// disputeEntry disputes a number's consortium entry with a reason code.
func (s *Server) disputeEntry(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[consortiumNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	number := strings.TrimSpace(r.PostFormValue("number"))
	reason := r.PostFormValue("reason")
	detail := strings.TrimSpace(r.PostFormValue("detail"))
	errs := formErrors{}
	if number == "" {
		errs["number"] = "number: required"
	}
	if !slices.Contains(disputeReasons, reason) {
		errs["reason"] = "reason: choose a reason code"
	}
	if len(errs) == 0 {
		if _, err = n.DisputeEntry(p.ctx(r), p.Tenant, number, reason, detail); err == nil {
			http.Redirect(w, r, Prefix+"consortium?done=disputed", http.StatusSeeOther)
			return
		}
		var ok bool
		if errs, ok = formError(err, "number", "reason", "detail"); !ok {
			if call.ErrorCode(err) != call.NotFound && call.ErrorCode(err) != call.Conflict {
				s.fail(w, r, p, err)
				return
			}
			errs = formErrors{"number": call.ErrorMessage(err)}
		}
	}
	s.showConsortium(w, r, p, http.StatusBadRequest, errs, url.Values{"reason": {reason}, "detail": {detail}}, "")
}

// --- Archive (compliance officers) ---------------------------------------

// archiveForm is the archive search form as submitted.
type archiveForm struct {
	User, Number, Direction, Kind, From, To, Text, Reason string
}

func readArchiveForm(q url.Values) archiveForm {
	g := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	return archiveForm{User: g("user"), Number: g("number"), Direction: g("direction"), Kind: g("kind"),
		From: g("from"), To: g("to"), Text: g("text"), Reason: g("reason")}
}

// archiveData is the archive page's data around the search form f.
func archiveData(f archiveForm) map[string]any {
	return map[string]any{"Title": "Compliance archive", "Form": f, "Errors": formErrors{},
		"Directions": []string{store.ArchiveInbound, store.ArchiveOutbound},
		"Kinds":      []string{store.ArchiveCall, store.ArchiveSMS, store.ArchiveRecording}}
}

// archiveLimit is how many items one search shows.
const archiveLimit = 100

// archivePage shows the search form and, once searched, the matching items.
// Every search needs a reason, which the node audits with it.
func (s *Server) archivePage(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[archiveNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	q := r.URL.Query()
	f := readArchiveForm(q)
	data := archiveData(f)
	if !q.Has("reason") { // the form, not yet submitted
		s.render(w, r, http.StatusOK, "archive", p, data)
		return
	}
	errs := formErrors{}
	if f.Reason == "" {
		errs["reason"] = "reason: required: say why you search the archive (it is recorded in the audit log)"
	}
	srch := node.ArchiveSearch{UserID: f.User, Number: f.Number, Direction: f.Direction, Kind: f.Kind, Text: f.Text, Limit: archiveLimit}
	if srch.From, err = parseLocal(f.From, "from"); err != nil {
		errs["from"] = call.ErrorMessage(err)
	}
	if srch.To, err = parseLocal(f.To, "to"); err != nil {
		errs["to"] = call.ErrorMessage(err)
	}
	if len(errs) == 0 {
		var items []node.ArchiveEntry
		if items, err = n.SearchArchive(p.ctx(r), p.Tenant, srch, f.Reason); err == nil {
			data["Searched"] = true
			data["Items"] = items
			s.render(w, r, http.StatusOK, "archive", p, data)
			return
		}
		var ok bool
		if errs, ok = formError(err, "user", "user_id", "number", "direction", "kind", "from", "to", "text", "reason"); !ok {
			s.fail(w, r, p, err)
			return
		}
		if m, ok := errs["user_id"]; ok {
			errs["user"] = m
		}
	}
	data["Errors"] = errs
	s.render(w, r, http.StatusBadRequest, "archive", p, data)
}

// archiveItemPage shows one item, opened (audited as archive.view with the
// reason); a recording gets an audio player streaming from archiveMedia.
func (s *Server) archiveItemPage(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[archiveNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	reason := strings.TrimSpace(r.URL.Query().Get("reason"))
	id := r.PathValue("id")
	data := map[string]any{"Title": "Archive item", "ID": id, "Errors": formErrors{}, "Reason": reason}
	if reason == "" {
		data["Errors"] = formErrors{"reason": "reason: required: say why you open this item (it is recorded in the audit log)"}
		s.render(w, r, http.StatusBadRequest, "archiveitem", p, data)
		return
	}
	it, err := n.ArchiveItem(p.ctx(r), p.Tenant, id, reason)
	if err != nil {
		if errs, ok := formError(err, "reason"); ok {
			data["Errors"] = errs
			s.render(w, r, http.StatusBadRequest, "archiveitem", p, data)
			return
		}
		s.fail(w, r, p, err)
		return
	}
	data["Item"] = it
	s.render(w, r, http.StatusOK, "archiveitem", p, data)
}

// archiveMedia streams a recording (ranges allowed) for the item page's
// audio player. Each request is audited by the node as archive.play with
// the reason from the query.
func (s *Server) archiveMedia(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[archiveNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	rec, err := n.PlayRecording(p.ctx(r), p.Tenant, r.PathValue("id"), strings.TrimSpace(r.URL.Query().Get("reason")))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	defer rec.Media.Close()
	if rec.ContentType != "" {
		w.Header().Set("Content-Type", rec.ContentType)
	}
	http.ServeContent(w, r, "", rec.Created, rec.Media)
}

// archiveExport bundles the selected items into a sealed export for a
// case and shows its download link.
func (s *Server) archiveExport(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[archiveNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, p, call.Errorf(call.Invalid, "form: %v", err))
		return
	}
	req := node.ExportRequest{CaseID: strings.TrimSpace(r.PostForm.Get("case_id")), Items: r.PostForm["items"]}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	errs := formErrors{}
	if reason == "" {
		errs["export-reason"] = "reason: required: say why you export these items"
	}
	if req.CaseID == "" {
		errs["case_id"] = "case_id: required: the case or matter the export is for"
	}
	if len(req.Items) == 0 {
		errs["items"] = "items: select at least one item"
	}
	data := archiveData(archiveForm{Reason: reason})
	data["Selected"], data["CaseID"] = req.Items, req.CaseID
	if len(errs) == 0 {
		var rc node.ExportReceipt
		if rc, err = n.ExportArchive(p.ctx(r), p.Tenant, req, reason); err == nil {
			data["Export"] = rc
			data["Errors"] = formErrors{}
			s.render(w, r, http.StatusOK, "archive", p, data)
			return
		}
		var ok bool
		if errs, ok = formError(err, "case_id", "items", "reason"); !ok {
			if call.ErrorCode(err) != call.NotFound {
				s.fail(w, r, p, err)
				return
			}
			errs = formErrors{"items": call.ErrorMessage(err)}
		}
		if m, ok := errs["reason"]; ok {
			errs["export-reason"] = m
		}
	}
	data["Errors"] = errs
	s.render(w, r, http.StatusBadRequest, "archive", p, data)
}

// archiveExportDownload streams a sealed export as a zip (audited as
// archive.export.download with the reason from the query).
func (s *Server) archiveExportDownload(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[archiveNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	id := r.PathValue("id")
	m, err := n.OpenExport(p.ctx(r), p.Tenant, id, strings.TrimSpace(r.URL.Query().Get("reason")))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	defer m.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "export-"+id+".zip"))
	http.ServeContent(w, r, "", time.Time{}, m)
}

// archiveHoldsPage lists the archive's holds with the form that places one.
func (s *Server) archiveHoldsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	flash := map[string]string{"placed": "Archive hold placed.", "lifted": "Archive hold lifted."}[r.URL.Query().Get("done")]
	s.showArchiveHolds(w, r, p, http.StatusOK, formErrors{}, url.Values{}, flash)
}

func (s *Server) showArchiveHolds(w http.ResponseWriter, r *http.Request, p *principal, status int, errs formErrors, form url.Values, flash string) {
	n, err := nodeAs[archiveNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	hs, err := n.ArchiveHolds(p.ctx(r), p.Tenant, false)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, status, "archiveholds", p, map[string]any{
		"Title": "Archive holds", "Holds": hs, "Errors": errs, "Form": form, "Flash": flash,
		"Scopes": []string{"user", "case", "range"},
	})
}

// placeArchiveHold places a hold on a user's items, a case's or a time
// range's.
func (s *Server) placeArchiveHold(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[archiveNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	form := url.Values{}
	for _, k := range []string{"scope", "user_id", "case_id", "from", "to", "reason"} {
		form.Set(k, strings.TrimSpace(r.PostFormValue(k)))
	}
	req := node.ArchiveHoldRequest{Scope: form.Get("scope"), UserID: form.Get("user_id"), CaseID: form.Get("case_id"), Reason: form.Get("reason")}
	errs := formErrors{}
	if req.From, err = parseLocal(form.Get("from"), "from"); err != nil {
		errs["from"] = call.ErrorMessage(err)
	}
	if req.To, err = parseLocal(form.Get("to"), "to"); err != nil {
		errs["to"] = call.ErrorMessage(err)
	}
	if req.Reason == "" {
		errs["reason"] = "reason: required"
	}
	if len(errs) == 0 {
		if _, err = n.PlaceArchiveHold(p.ctx(r), p.Tenant, req); err == nil {
			http.Redirect(w, r, Prefix+"archive/holds?done=placed", http.StatusSeeOther)
			return
		}
		var ok bool
		if errs, ok = formError(err, "scope", "user_id", "case_id", "from", "to", "reason"); !ok {
			s.fail(w, r, p, err)
			return
		}
	}
	s.showArchiveHolds(w, r, p, http.StatusBadRequest, errs, form, "")
}

// liftArchiveHold lifts an archive hold.
func (s *Server) liftArchiveHold(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := nodeAs[archiveNode](s)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	if err := n.LiftArchiveHold(p.ctx(r), p.Tenant, r.PathValue("id")); err != nil {
		s.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, Prefix+"archive/holds?done=lifted", http.StatusSeeOther)
}
