package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/screen"
)

// configNode is what the lists, routes and policy pages need of the node
// (*node.Node); the console's Node does not carry these methods, so the
// handlers assert it and answer 503 when the node lacks them. Each method
// audits under the principal in ctx (list.read, list.write, list.delete,
// route.write, route.delete, policy.write, policy.replay).
type configNode interface {
	ListEntries(ctx context.Context, tenant string, list call.ListKind, cursor string, limit int) ([]call.ListEntry, string, error)
	AddListEntry(ctx context.Context, tenant string, list call.ListKind, raw, reason string, expires time.Time) (call.ListEntry, error)
	DeleteListEntry(ctx context.Context, tenant string, list call.ListKind, raw string) error
	Routes(ctx context.Context, tenant string) ([]call.Route, error)
	PutRoute(ctx context.Context, tenant string, r call.Route) error
	DeleteRoute(ctx context.Context, tenant, id string) error
	Policy(tenant string) (call.Policy, error)
	PutPolicy(ctx context.Context, tenant string, p call.Policy) (call.Policy, error)
	ReplayPolicy(ctx context.Context, tenant string, p call.Policy, since time.Time) (node.Replay, error)
}

var _ configNode = (*node.Node)(nil)

var (
	// configReadRoles read lists, routes and policy (pages without forms
	// for all but admins).
	configReadRoles = []call.Role{call.Admin, call.Analyst}
	// configEditRoles change them, unmask list entries and preview policies.
	configEditRoles = []call.Role{call.Admin}
)

// configRoutes are the pages for lists, routes and policy.
var configRoutes = []route{
	{"GET /console/lists", configReadRoles, (*Server).listsIndex},
	{"GET /console/lists/{list}", configReadRoles, (*Server).listsPage},
	{"POST /console/lists/{list}", configEditRoles, (*Server).addListEntry},
	{"POST /console/lists/{list}/show", configEditRoles, (*Server).showListEntries},
	{"POST /console/lists/{list}/delete", configEditRoles, (*Server).deleteListEntry},
	{"GET /console/routes", configReadRoles, (*Server).routesPage},
	{"POST /console/routes", configEditRoles, (*Server).putRoute},
	{"POST /console/routes/{id}/delete", configEditRoles, (*Server).deleteRoute},
	{"GET /console/policy", configReadRoles, (*Server).policyPage},
	{"POST /console/policy", configEditRoles, (*Server).postPolicy},
}

// CanEditConfig reports whether the user may change lists, routes and
// policy.
func (p *principal) CanEditConfig() bool { return slices.Contains(configEditRoles, p.Role) }

// configOf returns the node's configuration methods, or answers 503.
func (s *Server) configOf(w http.ResponseWriter, r *http.Request, p *principal) (configNode, bool) {
	n, ok := s.node.(configNode)
	if !ok {
		s.fail(w, r, p, call.Errorf(call.Unavailable, "this node cannot edit lists, routes or policy"))
	}
	return n, ok
}

// formState is a form's submitted values and its errors: Errs by field
// name (shown beside the field, which points at it with
// aria-describedby), Message for an error that names no field of the form.
type formState struct {
	Values  map[string]string
	Errs    map[string]string
	Message string
}

func newForm() *formState { return &formState{Values: map[string]string{}, Errs: map[string]string{}} }

// set records a problem with a field ("" for the form as a whole).
func (f *formState) set(field, msg string) {
	if field == "" {
		f.Message = msg
		return
	}
	if _, dup := f.Errs[field]; !dup {
		f.Errs[field] = msg
	}
}

// failed reports whether any problem was recorded.
func (f *formState) failed() bool { return len(f.Errs) > 0 || f.Message != "" }

// fieldError splits a call.Error message of the form "field: problem"
// (how the node names the field at fault) into its parts; field is "" when
// the message names none.
func fieldError(err error) (field, msg string) {
	msg = call.ErrorMessage(err)
	if i := strings.Index(msg, ": "); i > 0 && !strings.ContainsAny(msg[:i], " \"'") {
		return msg[:i], msg[i+2:]
	}
	return "", msg
}

// formError puts a node error into the form: an Invalid error naming one
// of fields goes beside that field, Invalid, NotFound and Conflict errors
// go above the form; it returns the page's status, or 0 if the error is
// not the user's to fix (the caller then fails the request).
func (f *formState) formError(err error, fields ...string) int {
	code := call.ErrorCode(err)
	switch code {
	case call.Invalid:
		field, msg := fieldError(err)
		if slices.Contains(fields, field) {
			f.set(field, msg)
		} else {
			f.set("", call.ErrorMessage(err))
		}
		return http.StatusBadRequest
	case call.NotFound, call.Conflict:
		f.set("", call.ErrorMessage(err))
		return status[code]
	}
	return 0
}

// flashes are the messages after a change, by the done query parameter.
var flashes = map[string]string{
	"added":         "Added. It applies from the next call.",
	"deleted":       "Deleted. It applies from the next call.",
	"route-saved":   "Route saved. It applies from the next call.",
	"route-deleted": "Route deleted. It applies from the next call.",
	"policy-saved":  "Policy saved. It applies from the next call.",
}

// ---- lists ----

// listPage is how many entries a list page shows.
const listPage = 50

// listInfo describes a list for its tab and heading.
type listInfo struct {
	Kind  call.ListKind
	Name  string
	About string
}

var listInfos = []listInfo{
	{call.DenyList, "Deny list", "Calls from these numbers get list.deny (blocked under the default policy). Confirmed fraud adds the caller here."},
	{call.AllowList, "Allow list", "Calls from these numbers get list.allow, unless a spoofing sign fired."},
	{call.DNOList, "Do-not-originate list", "The tenant's inbound-only numbers: a call presenting one of them is spoofed (dno.listed)."},
}

// entryView is one list entry as the page shows it.
type entryView struct {
	Number  string // masked unless the admin chose to show numbers
	Reason  string
	Expires time.Time
	Created time.Time
	Ref     string // names the entry in the delete form without its number
}

// entryRef names a number on a list in a form without revealing it: an
// HMAC under the session's CSRF token, so it means nothing outside the
// session and is the same on every node of a cluster.
func entryRef(p *principal, list call.ListKind, n call.Number) string {
	m := hmac.New(sha256.New, []byte(p.CSRF))
	m.Write([]byte("list entry/" + string(list) + "/" + n.E164))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// listsIndex opens the deny list.
func (s *Server) listsIndex(w http.ResponseWriter, r *http.Request, p *principal) {
	http.Redirect(w, r, Prefix+"lists/"+string(call.DenyList), http.StatusSeeOther)
}

// listsPage shows a page of one list, numbers masked (reading it is
// audited by the node as list.read).
func (s *Server) listsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	s.showList(w, r, p, r.URL.Query().Get("after"), false, newForm(), http.StatusOK, flashes[r.URL.Query().Get("done")])
}

// showListEntries shows a page of one list with the numbers in full
// (admins; audited as list.read like every read of the list).
func (s *Server) showListEntries(w http.ResponseWriter, r *http.Request, p *principal) {
	s.showList(w, r, p, r.PostFormValue("after"), true, newForm(), http.StatusOK, "")
}

func (s *Server) showList(w http.ResponseWriter, r *http.Request, p *principal, after string, shownNumbers bool, form *formState, st int, flash string) {
	n, ok := s.configOf(w, r, p)
	if !ok {
		return
	}
	kind, err := call.ParseListKind(r.PathValue("list"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	entries, next, err := n.ListEntries(p.ctx(r), p.Tenant, kind, after, listPage)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	views := make([]entryView, len(entries))
	for i, e := range entries {
		views[i] = entryView{Number: mask(e.Number), Reason: e.Reason, Expires: e.ExpiresAt, Created: e.CreatedAt, Ref: entryRef(p, kind, e.Number)}
		if shownNumbers {
			views[i].Number = shown(e.Number)
		}
	}
	var info listInfo
	for _, li := range listInfos {
		if li.Kind == kind {
			info = li
		}
	}
	s.render(w, r, st, "lists", p, map[string]any{
		"Title":   info.Name,
		"List":    info,
		"Lists":   listInfos,
		"Entries": views,
		"After":   after,
		"Next":    next,
		"Shown":   shownNumbers,
		"Form":    form,
		"Flash":   flash,
	})
}

// addListEntry puts a number on the list; problems are shown beside the
// field at fault.
func (s *Server) addListEntry(w http.ResponseWriter, r *http.Request, p *principal) {
	n, ok := s.configOf(w, r, p)
	if !ok {
		return
	}
	kind, err := call.ParseListKind(r.PathValue("list"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	form := newForm()
	for _, k := range []string{"number", "reason", "expires_at"} {
		form.Values[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	if form.Values["number"] == "" {
		form.set("number", "required")
	}
	var expires time.Time
	if v := form.Values["expires_at"]; v != "" {
		if expires, err = time.Parse(localTime, v); err != nil {
			form.set("expires_at", "a date and time such as 2025-01-31T14:05 (UTC)")
		}
	}
	if !form.failed() {
		_, err = n.AddListEntry(p.ctx(r), p.Tenant, kind, form.Values["number"], form.Values["reason"], expires)
		if err == nil {
			http.Redirect(w, r, Prefix+"lists/"+string(kind)+"?done=added", http.StatusSeeOther)
			return
		}
		if form.formError(err, "number", "reason", "expires_at") == 0 {
			s.fail(w, r, p, err)
			return
		}
	}
	s.showList(w, r, p, "", false, form, http.StatusBadRequest, "")
}

// deleteListEntry takes the entry named by ref (see entryRef) off the
// list: it reads the page the form came from to find the entry's number.
func (s *Server) deleteListEntry(w http.ResponseWriter, r *http.Request, p *principal) {
	n, ok := s.configOf(w, r, p)
	if !ok {
		return
	}
	kind, err := call.ParseListKind(r.PathValue("list"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	ref, after := r.PostFormValue("ref"), r.PostFormValue("after")
	entries, _, err := n.ListEntries(p.ctx(r), p.Tenant, kind, after, listPage)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	i := slices.IndexFunc(entries, func(e call.ListEntry) bool {
		return hmac.Equal([]byte(entryRef(p, kind, e.Number)), []byte(ref))
	})
	if i < 0 {
		form := newForm()
		form.set("", "That entry is no longer on this page of the list: it may have been deleted already. Nothing was deleted.")
		s.showList(w, r, p, after, false, form, http.StatusNotFound, "")
		return
	}
	if err := n.DeleteListEntry(p.ctx(r), p.Tenant, kind, entries[i].Number.E164); err != nil {
		form := newForm()
		if form.formError(err) == 0 {
			s.fail(w, r, p, err)
			return
		}
		s.showList(w, r, p, after, false, form, status[call.ErrorCode(err)], "")
		return
	}
	q := url.Values{"done": {"deleted"}}
	if after != "" {
		q.Set("after", after)
	}
	http.Redirect(w, r, Prefix+"lists/"+string(kind)+"?"+q.Encode(), http.StatusSeeOther)
}

// ---- routes ----

// routesPage lists the tenant's routes, with the edit form for admins.
func (s *Server) routesPage(w http.ResponseWriter, r *http.Request, p *principal) {
	form := newForm()
	form.Values["kind"] = string(call.Domestic)
	s.showRoutes(w, r, p, form, http.StatusOK, flashes[r.URL.Query().Get("done")])
}

func (s *Server) showRoutes(w http.ResponseWriter, r *http.Request, p *principal, form *formState, st int, flash string) {
	n, ok := s.configOf(w, r, p)
	if !ok {
		return
	}
	rs, err := n.Routes(p.ctx(r), p.Tenant)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, st, "routes", p, map[string]any{
		"Title":  "Routes",
		"Routes": rs,
		"Kinds":  []call.RouteKind{call.Domestic, call.International},
		"Form":   form,
		"Flash":  flash,
	})
}

// putRoute adds or replaces a route.
func (s *Server) putRoute(w http.ResponseWriter, r *http.Request, p *principal) {
	n, ok := s.configOf(w, r, p)
	if !ok {
		return
	}
	form := newForm()
	for _, k := range []string{"id", "kind", "country", "fail_open"} {
		form.Values[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	form.Values["country"] = strings.ToUpper(form.Values["country"])
	rt := call.Route{
		ID: form.Values["id"], Kind: call.RouteKind(form.Values["kind"]),
		Country: form.Values["country"], FailOpen: form.Values["fail_open"] != "",
	}
	err := n.PutRoute(p.ctx(r), p.Tenant, rt)
	if err == nil {
		http.Redirect(w, r, Prefix+"routes?done=route-saved", http.StatusSeeOther)
		return
	}
	st := form.formError(err, "id", "kind", "country")
	if st == 0 {
		s.fail(w, r, p, err)
		return
	}
	s.showRoutes(w, r, p, form, st, "")
}

// deleteRoute removes a route.
func (s *Server) deleteRoute(w http.ResponseWriter, r *http.Request, p *principal) {
	n, ok := s.configOf(w, r, p)
	if !ok {
		return
	}
	if err := n.DeleteRoute(p.ctx(r), p.Tenant, r.PathValue("id")); err != nil {
		form := newForm()
		form.Values["kind"] = string(call.Domestic)
		st := form.formError(err)
		if st == 0 {
			s.fail(w, r, p, err)
			return
		}
		s.showRoutes(w, r, p, form, st, "")
		return
	}
	http.Redirect(w, r, Prefix+"routes?done=route-deleted", http.StatusSeeOther)
}

// ---- policy ----

// replayWindow is how far back a policy preview replays stored calls.
const replayWindow = 24 * time.Hour

// markerRow is one known marker in the policy's table.
type markerRow struct {
	Code, Family string
	Default      float64
	Weight       string      // the tenant's override as the form shows it; "" for none
	Action       call.Action // the tenant's least action; "" for none
	WeightField  string      // form field names (and error keys)
	ActionField  string
	WeightID     string // element ids
	ActionID     string
	WeightErr    string // problems with the fields, shown beside them
	ActionErr    string
}

// numField is one of the policy's numeric fields as the form shows it.
type numField struct{ Name, Label, Value, Err string }

func numFields(f *formState) []numField {
	out := []numField{{Name: "flag_at", Label: "Flag at score"}, {Name: "block_at", Label: "Block at score"}, {Name: "prior", Label: "Prior (log-odds)"}}
	for i := range out {
		out[i].Value, out[i].Err = f.Values[out[i].Name], f.Errs[out[i].Name]
	}
	return out
}

// policyValues is the policy as the form shows it.
func policyValues(p call.Policy) map[string]string {
	v := map[string]string{
		"version":    strconv.Itoa(p.Version),
		"flag_at":    num(p.FlagAt),
		"block_at":   num(p.BlockAt),
		"prior":      num(p.Prior),
		"block_with": strconv.Itoa(p.BlockWith),
		"redress":    p.Redress,
	}
	if p.BlockWith == 0 {
		v["block_with"] = "608"
	}
	for code, w := range p.Weights {
		v["weights."+code] = num(w)
	}
	for code, a := range p.Actions {
		v["actions."+code] = string(a)
	}
	return v
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// markerRows are the known markers (screen.Signals) with the form's
// values and errors.
func markerRows(f *formState) []markerRow {
	values := f.Values
	rows := make([]markerRow, len(screen.Signals))
	for i, s := range screen.Signals {
		id := strings.ReplaceAll(s.Code, ".", "-")
		rows[i] = markerRow{
			Code: s.Code, Family: s.Family, Default: s.Weight,
			Weight: values["weights."+s.Code], Action: call.Action(values["actions."+s.Code]),
			WeightField: "weights." + s.Code, ActionField: "actions." + s.Code,
			WeightID: "w-" + id, ActionID: "a-" + id,
			WeightErr: f.Errs["weights."+s.Code], ActionErr: f.Errs["actions."+s.Code],
		}
	}
	return rows
}

// parsePolicy reads the edited policy from the form. The live policy's
// shadow is kept (the form does not edit it). Problems are recorded in form
// by field.
func parsePolicy(r *http.Request, live call.Policy, form *formState) call.Policy {
	get := func(k string) string {
		v := strings.TrimSpace(r.PostFormValue(k))
		form.Values[k] = v
		return v
	}
	number := func(k string) float64 {
		v := get(k)
		f, err := strconv.ParseFloat(v, 64)
		if v == "" || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			form.set(k, "must be a number such as 0.9")
		}
		return f
	}
	p := call.Policy{Shadow: live.Shadow}
	version, err := strconv.Atoi(get("version"))
	if err != nil || version < 1 {
		form.set("", "The form has no policy version: reload the page.")
	}
	p.Version = version
	p.FlagAt, p.BlockAt, p.Prior = number("flag_at"), number("block_at"), number("prior")
	if p.BlockWith, err = strconv.Atoi(get("block_with")); err != nil {
		form.set("block_with", "must be 603 or 608")
	}
	p.Redress = get("redress")
	for _, s := range screen.Signals {
		if v := get("weights." + s.Code); v != "" {
			w, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(w) || math.IsInf(w, 0) {
				form.set("weights."+s.Code, "must be a number such as 1.5, or empty for the default")
				continue
			}
			if p.Weights == nil {
				p.Weights = map[string]float64{}
			}
			p.Weights[s.Code] = w
		}
		if v := get("actions." + s.Code); v != "" {
			if p.Actions == nil {
				p.Actions = map[string]call.Action{}
			}
			p.Actions[s.Code] = call.Action(v) // the node checks it
		}
	}
	// Weights and actions on codes the form does not list
	// (model.<feature>) are kept.
	for code, w := range live.Weights {
		if _, listed := meanings[code]; !listed {
			if p.Weights == nil {
				p.Weights = map[string]float64{}
			}
			p.Weights[code] = w
		}
	}
	for code, a := range live.Actions {
		if _, listed := meanings[code]; !listed {
			if p.Actions == nil {
				p.Actions = map[string]call.Action{}
			}
			p.Actions[code] = a
		}
	}
	return p
}

// policyFields are the form's field names, for errors from the node.
func policyFields() []string {
	f := []string{"flag_at", "block_at", "prior", "block_with", "redress"}
	for _, s := range screen.Signals {
		f = append(f, "weights."+s.Code, "actions."+s.Code)
	}
	return f
}

// replayView is a preview as the page shows it.
type replayView struct {
	node.Replay
	Rows    []replayRow
	Changes []changeView
	Since   time.Time
}

type replayRow struct {
	Action          call.Action
	Live, Candidate int
}

type changeView struct {
	ID, Caller string
	StartedAt  time.Time
	From, To   call.Action
	LiveScore  float64
	Score      float64
}

func newReplayView(rp node.Replay) *replayView {
	v := &replayView{Replay: rp, Since: rp.Since}
	for _, a := range []call.Action{call.Allow, call.Flag, call.Block} {
		v.Rows = append(v.Rows, replayRow{Action: a, Live: rp.Live[a], Candidate: rp.Candidate[a]})
	}
	for _, ch := range rp.Changed {
		v.Changes = append(v.Changes, changeView{ID: ch.RecordID, Caller: mask(ch.Caller), StartedAt: ch.StartedAt, From: ch.From, To: ch.To, LiveScore: ch.LiveScore, Score: ch.Score})
	}
	return v
}

// policyPage shows the live policy: read-only for analysts, the edit
// form for admins.
func (s *Server) policyPage(w http.ResponseWriter, r *http.Request, p *principal) {
	n, ok := s.configOf(w, r, p)
	if !ok {
		return
	}
	live, err := n.Policy(p.Tenant)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	form := newForm()
	form.Values = policyValues(live)
	s.showPolicy(w, r, p, live, form, nil, http.StatusOK, flashes[r.URL.Query().Get("done")])
}

func (s *Server) showPolicy(w http.ResponseWriter, r *http.Request, p *principal, live call.Policy, form *formState, rv *replayView, st int, flash string) {
	s.render(w, r, st, "policy", p, map[string]any{
		"Title":   "Policy",
		"Live":    live,
		"Form":    form,
		"Markers": markerRows(form),
		"Numbers": numFields(form),
		"Actions": []call.Action{call.Allow, call.Flag, call.Block},
		"Replay":  rv,
		"Flash":   flash,
	})
}

// postPolicy previews the edited policy on the last 24 hours of stored
// calls (do=preview) or saves it (do=save) with the version the form was
// opened at (a Conflict says someone else changed it first).
func (s *Server) postPolicy(w http.ResponseWriter, r *http.Request, p *principal) {
	n, ok := s.configOf(w, r, p)
	if !ok {
		return
	}
	live, err := n.Policy(p.Tenant)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	form := newForm()
	cand := parsePolicy(r, live, form)
	do := r.PostFormValue("do")
	if do != "preview" && do != "save" {
		form.set("", "Choose Preview or Save.")
	}
	if form.failed() {
		s.showPolicy(w, r, p, live, form, nil, http.StatusBadRequest, "")
		return
	}
	if do == "preview" {
		rp, err := n.ReplayPolicy(p.ctx(r), p.Tenant, cand, s.now().Add(-replayWindow))
		if err != nil {
			st := form.formError(err, policyFields()...)
			if st == 0 {
				s.fail(w, r, p, err)
				return
			}
			s.showPolicy(w, r, p, live, form, nil, st, "")
			return
		}
		s.showPolicy(w, r, p, live, form, newReplayView(rp), http.StatusOK, "")
		return
	}
	if _, err := n.PutPolicy(p.ctx(r), p.Tenant, cand); err != nil {
		if call.ErrorCode(err) == call.Conflict {
			form.set("", fmt.Sprintf("Not saved: the policy was changed by someone else while you edited it (it is now version %d; you opened version %d). Open the policy again to see the current version, then make your changes there.", live.Version, cand.Version))
			s.showPolicy(w, r, p, live, form, nil, http.StatusConflict, "")
			return
		}
		st := form.formError(err, policyFields()...)
		if st == 0 {
			s.fail(w, r, p, err)
			return
		}
		s.showPolicy(w, r, p, live, form, nil, st, "")
		return
	}
	http.Redirect(w, r, Prefix+"policy?done=policy-saved", http.StatusSeeOther)
}
