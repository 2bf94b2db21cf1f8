package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/consortium"
	"github.com/ringfence/ringfence/screen"
	"github.com/ringfence/ringfence/store"
)

// meanings maps marker codes to their plain-language meaning.
var meanings = func() map[string]string {
	m := make(map[string]string, len(screen.Signals))
	for _, s := range screen.Signals {
		m[s.Code] = s.Meaning
	}
	return m
}()

// markerCodes are the codes the marker filter offers.
var markerCodes = func() []string {
	out := make([]string, 0, len(screen.Signals))
	for _, s := range screen.Signals {
		out = append(out, s.Code)
	}
	return out
}()

// pageSize is how many calls the live page shows at first.
const pageSize = 50

// filter is the live feed's filter, from the query string.
type filter struct {
	Action   call.Action
	Marker   string
	Route    string
	From, To time.Time
}

const localTime = "2006-01-02T15:04"

// FromText and ToText are the times as a datetime-local input shows them.
func (f filter) FromText() string { return timeText(f.From) }
func (f filter) ToText() string   { return timeText(f.To) }

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(localTime)
}

// parseFilter reads a filter; Invalid names the field that is wrong.
func parseFilter(q url.Values) (filter, error) {
	var f filter
	if a := call.Action(q.Get("action")); a != "" {
		if !a.Valid() && a != call.Unscored {
			return f, call.Errorf(call.Invalid, "action: must be allow, flag, block or unscored")
		}
		f.Action = a
	}
	if m := q.Get("marker"); m != "" {
		if _, ok := meanings[m]; !ok && !strings.HasPrefix(m, "model.") {
			return f, call.Errorf(call.Invalid, "marker: not a marker code")
		}
		f.Marker = m
	}
	if r := q.Get("route"); r != "" {
		if !call.ValidID(r) {
			return f, call.Errorf(call.Invalid, "route: must be 1-64 characters of letters, digits, '-', '_' or '.'")
		}
		f.Route = r
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		v := q.Get(t.name)
		if v == "" {
			continue
		}
		at, err := time.Parse(localTime, v)
		if err != nil {
			return f, call.Errorf(call.Invalid, "%s: a date and time such as 2025-01-31T14:05", t.name)
		}
		*t.to = at
	}
	return f, nil
}

// live reports whether new calls can match: a feed with an end time does
// not update.
func (f filter) live() bool { return f.To.IsZero() }

// storeFilter is the part of f the store applies.
func (f filter) storeFilter() store.CallFilter {
	return store.CallFilter{Action: f.Action, From: f.From, To: f.To}
}

// match applies the part of f the store cannot (marker and route).
func (f filter) match(c *call.Call) bool {
	if f.Route != "" && c.Ingress != f.Route {
		return false
	}
	return f.Marker == "" || c.Verdict.Has(f.Marker)
}

// query is f as a query string.
func (f filter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"action": string(f.Action), "marker": f.Marker, "route": f.Route, "from": f.FromText(), "to": f.ToText()} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// row is one call of the feed as the row template shows it.
type row struct {
	C      *call.Call
	Detail bool
	Unmask bool
	CSRF   string
}

func (p *principal) row(c *call.Call) row {
	return row{C: c, Detail: p.CanDetail(), Unmask: p.CanUnmask(), CSRF: p.CSRF}
}

// recent returns up to limit calls matching f, newest first, newer than
// after (a record id; "" for any), reading at most pages store pages.
func (s *Server) recent(r *http.Request, p *principal, f filter, after string, limit, pages int) ([]*call.Call, error) {
	sf := f.storeFilter()
	sf.Limit = 100
	var out []*call.Call
	for range pages {
		cs, next, err := s.node.Calls(p.ctx(r), p.Tenant, sf)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if after != "" && c.ID <= after {
				return out, nil
			}
			if f.match(c) {
				out = append(out, c)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if next == "" {
			break
		}
		sf.Before = next
	}
	return out, nil
}

// callsPage shows the newest calls matching the filter; the feed then
// adds new ones over server-sent events.
func (s *Server) callsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	cs, err := s.recent(r, p, f, "", pageSize, 5)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	rows := make([]row, len(cs))
	for i, c := range cs {
		rows[i] = p.row(c)
	}
	q := f.query()
	if len(cs) > 0 {
		q.Set("after", cs[0].ID)
	}
	s.render(w, r, http.StatusOK, "calls", p, map[string]any{
		"Title":   "Live calls",
		"Rows":    rows,
		"Filter":  f,
		"Live":    f.live(),
		"Events":  Prefix + "calls/events?" + q.Encode(),
		"Actions": []call.Action{call.Allow, call.Flag, call.Block, call.Unscored},
		"Markers": markerCodes,
	})
}

// callEvents streams new calls matching the filter as server-sent events
// ("call", data: one rendered table row), newest last. The node has no
// call subscription: it asks the node for calls newer than the newest it
// sent every Poll. It ends with an "end" event when the session ends and
// when the client goes away.
func (s *Server) callEvents(w http.ResponseWriter, r *http.Request, p *principal) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	if after != "" && !call.ValidRecordID(after) {
		s.fail(w, r, p, call.Errorf(call.Invalid, "after: not a record id"))
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	ctx := r.Context()
	for i := 0; ; i++ {
		// Extend the write deadline the server set, a poll at a time.
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.Poll + 30*time.Second))
		// The session is checked in the store every sessionCheck polls.
		if !s.now().Before(p.Expires) || i%sessionCheck == sessionCheck-1 && s.ended(r, p) {
			fmt.Fprint(w, "event: end\ndata: Your session has ended; sign in again.\n\n")
			rc.Flush()
			return
		}
		if f.live() {
			cs, err := s.recent(r, p, f, after, 200, 3)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("console feed", "err", err)
					fmt.Fprint(w, "event: end\ndata: The live feed stopped on an error; reload the page.\n\n")
					rc.Flush()
				}
				return
			}
			if len(cs) > 0 {
				after = cs[0].ID
			}
			for _, c := range slices.Backward(cs) {
				if err := s.writeEvent(w, p, c); err != nil {
					return
				}
			}
			if len(cs) > 0 {
				if err := rc.Flush(); err != nil {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sessionCheck is how many polls of a live feed pass between checks that
// its session still stands.
const sessionCheck = 20

// ended reports whether the session behind a live feed has ended
// (signed out, expired or idle); a store error counts as not ended.
func (s *Server) ended(r *http.Request, p *principal) bool {
	sess, err := s.users.Session(r.Context(), p.idHash)
	if call.ErrorCode(err) == call.NotFound {
		return true
	}
	if err != nil {
		return false
	}
	now := s.now()
	return !now.Before(sess.ExpiresAt) || !now.Before(sess.LastSeen.Add(s.cfg.IdleTimeout))
}

// writeEvent writes one "call" event: the rendered row, one data line per
// line of HTML.
func (s *Server) writeEvent(w http.ResponseWriter, p *principal, c *call.Call) error {
	var buf bytes.Buffer
	if err := s.rows.ExecuteTemplate(&buf, "row", p.row(c)); err != nil {
		return err
	}
	var ev bytes.Buffer
	fmt.Fprintf(&ev, "event: call\nid: %s\n", c.ID)
	for line := range strings.SplitSeq(buf.String(), "\n") {
		ev.WriteString("data: ")
		ev.WriteString(strings.TrimRight(line, "\r"))
		ev.WriteByte('\n')
	}
	ev.WriteByte('\n')
	_, err := w.Write(ev.Bytes())
	return err
}

// callPage shows one call: verdict with each marker explained, signalling,
// call end, and the confirmation forms. Numbers are masked; reading the
// record is audited as call.read.
func (s *Server) callPage(w http.ResponseWriter, r *http.Request, p *principal) {
	s.showCall(w, r, p, false, confirmed[r.URL.Query().Get("confirmed")])
}

func (s *Server) showCall(w http.ResponseWriter, r *http.Request, p *principal, unmasked bool, flash string) {
	c, err := s.node.Call(p.ctx(r), p.Tenant, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, http.StatusOK, "call", p, map[string]any{
		"Title":      "Call " + c.StartedAt.UTC().Format("2006-01-02 15:04:05"),
		"Call":       c,
		"Unmasked":   unmasked && p.CanUnmask(),
		"Flash":      flash,
		"FraudTypes": consortium.FraudTypes,
	})
}

// unmask reads one call through the node (audited as call.read under the
// user's name) and shows its numbers: as JSON {"caller": ...} to the feed's
// script, or as the call page with the numbers shown.
func (s *Server) unmask(w http.ResponseWriter, r *http.Request, p *principal) {
	if r.Header.Get("Accept") != "application/json" {
		s.showCall(w, r, p, true, "")
		return
	}
	c, err := s.node.Call(p.ctx(r), p.Tenant, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"id": c.ID, "caller": shown(c.Caller)})
}

// label stores the analyst's confirmation (fraud with a fraud type, or
// genuine) and shows the call again.
func (s *Server) label(w http.ResponseWriter, r *http.Request, p *principal) {
	l := call.Label{
		Label: call.ReviewStatus(r.PostFormValue("label")),
		Note:  strings.TrimSpace(r.PostFormValue("note")),
		By:    "user:" + p.User,
	}
	switch l.Label {
	case call.Fraud:
		l.FraudType = r.PostFormValue("fraud_type")
		if !consortium.FraudType(l.FraudType).Valid() {
			s.fail(w, r, p, call.Errorf(call.Invalid, "fraud type: choose one from the list"))
			return
		}
	case call.Genuine:
	default:
		s.fail(w, r, p, call.Errorf(call.Invalid, "label: must be fraud or genuine"))
		return
	}
	if _, err := s.node.Label(p.ctx(r), p.Tenant, r.PathValue("id"), l); err != nil {
		s.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, Prefix+"calls/"+url.PathEscape(r.PathValue("id"))+"?confirmed="+string(l.Label), http.StatusSeeOther)
}

// confirmed is the message after a confirmation, by label.
var confirmed = map[string]string{
	string(call.Fraud):   "Confirmed fraud: the caller is on the deny list from the next call.",
	string(call.Genuine): "Confirmed genuine. It takes effect on the next call.",
}
