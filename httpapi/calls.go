package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/store"
)

type screenRequest struct {
	CallRef      string         `json:"call_ref"`
	Caller       string         `json:"caller"`
	Dialled      string         `json:"dialled"`
	StartedAt    *time.Time     `json:"started_at"`
	IngressRoute string         `json:"ingress_route"`
	ApplianceID  string         `json:"appliance_id"`
	UserRef      string         `json:"user_ref"`
	Signalling   signallingJSON `json:"signalling"`
}

type signallingJSON struct {
	From      string   `json:"from,omitempty"`
	PAI       strings1 `json:"pai,omitempty"`
	Identity  strings1 `json:"identity,omitempty"`
	Verstat   string   `json:"verstat,omitempty"`
	Privacy   string   `json:"privacy,omitempty"`
	Diversion string   `json:"diversion,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
}

type screenResponse struct {
	RecordID      string        `json:"record_id"`
	Score         float64       `json:"score"`
	Action        call.Action   `json:"action"`
	Markers       []call.Marker `json:"markers"`
	Policy        string        `json:"policy"`
	EvaluatedInUS int64         `json:"evaluated_in_us"`
	Shadow        *shadowJSON   `json:"shadow,omitempty"`
	Reason        string        `json:"reason,omitempty"` // why an "unscored" answer was not screened
}

type shadowJSON struct {
	Score  float64     `json:"score"`
	Action call.Action `json:"action"`
	Policy string      `json:"policy"`
}

func (s *Server) screen(w http.ResponseWriter, r *http.Request) {
	// The whole request counts as in flight, decoding and answering
	// included: under CPU starvation those take most of the time, so the
	// count rises and the overload policy answers.
	busy := s.inFlight.Add(1) > s.cfg.MaxInFlight
	defer s.inFlight.Add(-1)
	var req screenRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	in := node.Incoming{
		Tenant: tenantOf(r), Ref: req.CallRef, Caller: req.Caller, Dialled: req.Dialled,
		Ingress: req.IngressRoute, Appliance: req.ApplianceID, UserRef: req.UserRef,
		Signalling: call.Signalling{
			From: req.Signalling.From, PAI: req.Signalling.PAI, Identity: req.Signalling.Identity,
			Verstat: req.Signalling.Verstat, Privacy: req.Signalling.Privacy,
			Diversion: req.Signalling.Diversion, UserAgent: req.Signalling.UserAgent,
		},
	}
	if req.StartedAt != nil {
		in.StartedAt = *req.StartedAt
	}
	if busy {
		s.overloaded(w, in, "too many calls in flight")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ScreenBudget)
	c, err := s.node.Screen(ctx, in)
	cancel()
	if call.ErrorCode(err) == call.Overloaded {
		s.overloaded(w, in, "records are not being written fast enough")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := screenResponse{
		RecordID: c.ID, Score: c.Verdict.Score, Action: c.Verdict.Action,
		Markers: c.Verdict.Markers, Policy: c.Verdict.Policy,
		EvaluatedInUS: c.Verdict.Elapsed.Microseconds(),
	}
	if c.Shadow != nil {
		resp.Shadow = &shadowJSON{Score: c.Shadow.Score, Action: c.Shadow.Action, Policy: c.Shadow.Policy}
	}
	writeJSON(w, http.StatusOK, resp)
}

// overloaded answers a screen request that could not be evaluated in time
// by its ingress route's failure policy, as the SIP front end does: a
// fail-open route gets 200 with action "unscored" (pass the call, it was
// not screened); any other request, 503 with Retry-After (fail closed).
func (s *Server) overloaded(w http.ResponseWriter, in node.Incoming, why string) {
	if in.Ingress != "" {
		if rt, err := s.node.Route(in.Tenant, in.Ingress); err == nil && rt.FailOpen {
			writeJSON(w, http.StatusOK, screenResponse{Action: call.Unscored, Markers: []call.Marker{}, Reason: "overloaded: " + why})
			return
		}
	}
	writeError(w, call.Errorf(call.Unavailable, "overloaded: %s; retry later", why))
}

// callJSON is a call record as the API shows it.
type callJSON struct {
	RecordID     string          `json:"record_id"`
	CallRef      string          `json:"call_ref,omitempty"`
	Caller       string          `json:"caller"`
	CallerType   call.NumberType `json:"caller_type,omitempty"`
	Dialled      string          `json:"dialled"`
	StartedAt    time.Time       `json:"started_at"`
	IngressRoute string          `json:"ingress_route,omitempty"`
	ApplianceID  string          `json:"appliance_id,omitempty"`
	UserRef      string          `json:"user_ref,omitempty"`
	Signalling   call.Signalling `json:"signalling"`
	Verdict      call.Verdict    `json:"verdict"`
	Shadow       *call.Verdict   `json:"shadow,omitempty"`
	End          *endJSON        `json:"end,omitempty"`
	Review       reviewJSON      `json:"review"`
}

type endJSON struct {
	DurationS   *float64    `json:"duration_s"`
	Result      call.Result `json:"result"`
	EgressRoute string      `json:"egress_route,omitempty"`
}

type reviewJSON struct {
	Status    call.ReviewStatus `json:"status"`
	FraudType string            `json:"fraud_type,omitempty"`
}

// shown is how a number appears in API answers: E.164, "withheld", or the
// raw text when it is not a number.
func shown(n call.Number) string {
	switch {
	case n.Withheld:
		return "withheld"
	case n.Present():
		return n.E164
	}
	return n.Raw
}

func toJSON(c *call.Call) callJSON {
	j := callJSON{
		RecordID: c.ID, CallRef: c.Ref, Caller: shown(c.Caller), Dialled: shown(c.Dialled),
		StartedAt: c.StartedAt.UTC(), IngressRoute: c.Ingress, ApplianceID: c.ApplianceID,
		UserRef: c.UserRef, Signalling: c.Signalling, Verdict: c.Verdict, Shadow: c.Shadow,
		Review: reviewJSON{Status: c.Review.Status, FraudType: c.Review.FraudType},
	}
	if c.Caller.Present() {
		j.CallerType = c.Caller.Type
	}
	if c.End != nil {
		d := c.End.Duration.Seconds()
		j.End = &endJSON{DurationS: &d, Result: c.End.Result, EgressRoute: c.End.Egress}
	}
	return j
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) {
	c, err := s.node.Call(r.Context(), tenantOf(r), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(c))
}

func (s *Server) endCall(w http.ResponseWriter, r *http.Request) {
	var req endJSON
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.DurationS == nil {
		s.fail(w, r, call.Errorf(call.Invalid, "duration_s: required"))
		return
	}
	if *req.DurationS < 0 || *req.DurationS > 604800 {
		s.fail(w, r, call.Errorf(call.Invalid, "duration_s: must be between 0 and 604800"))
		return
	}
	end := call.End{Duration: time.Duration(*req.DurationS * float64(time.Second)), Result: req.Result, Egress: req.EgressRoute}
	c, err := s.node.UpdateCallEnd(r.Context(), tenantOf(r), r.PathValue("id"), end)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(c))
}

type labelRequest struct {
	Label     call.ReviewStatus `json:"label"`
	FraudType string            `json:"fraud_type"`
	Note      string            `json:"note"`
	By        string            `json:"by"`
}

func (s *Server) label(w http.ResponseWriter, r *http.Request) {
	var req labelRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.node.Label(r.Context(), tenantOf(r), r.PathValue("id"), call.Label{Label: req.Label, FraudType: req.FraudType, Note: req.Note, By: req.By})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toJSON(c))
}

type callsPage struct {
	Calls []callJSON `json:"calls"`
	Next  string     `json:"next,omitempty"`
}

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f store.CallFilter
	var err error
	if f.From, err = queryTime(q.Get("from"), "from"); err == nil {
		f.To, err = queryTime(q.Get("to"), "to")
	}
	if err == nil && q.Get("limit") != "" {
		if f.Limit, err = strconv.Atoi(q.Get("limit")); err != nil || f.Limit < 1 {
			err = call.Errorf(call.Invalid, "limit: must be between 1 and 1000")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f.Action, f.Review, f.Before = call.Action(q.Get("action")), call.ReviewStatus(q.Get("label")), q.Get("before")
	calls, next, err := s.node.Calls(r.Context(), tenantOf(r), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := callsPage{Calls: make([]callJSON, len(calls)), Next: next}
	for i, c := range calls {
		page.Calls[i] = toJSON(c)
	}
	writeJSON(w, http.StatusOK, page)
}

func queryTime(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, call.Errorf(call.Invalid, "%s: must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t, nil
}
