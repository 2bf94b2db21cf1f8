package sipfront

import (
	"context"
	"errors"
	"hash/maphash"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/emiago/sipgo/sip"

	"github.com/ringfence/ringfence/accesslog"
	"github.com/ringfence/ringfence/call"
)

// answer is the final response to one request, without the parts copied
// from the request (Via, From, To, Call-ID, CSeq, the Request-URI as
// Contact): those are added when it is rendered, so a retransmission is
// answered from a cached answer and its own headers. It is kept small: the
// retransmission cache holds hundreds of thousands.
type answer struct {
	status  uint16
	outcome outcome // INVITE answers: the metric label
	action  action  // 0 => no X-Ringfence headers
	stir    uint16  // the STIR cause (RFC 8224) of a STIR/SHAKEN failure, for the RFC 9410 Reason header; 0: none
	score   float32
	// verdict is the record id, a NUL and the comma-separated marker codes:
	// one allocation per call.
	verdict string
	// info is the Call-Info URI of a 608, the Unsupported option tags of a
	// 420, and the Warning text of other 4xx, 5xx and 6xx answers.
	info string
}

// action is call.Action as a byte.
type action uint8

const (
	noAction action = iota
	actAllow
	actFlag
	actBlock
	actUnscored
)

var actionNames = [...]call.Action{"", call.Allow, call.Flag, call.Block, call.Unscored}

func actionOf(a call.Action) action {
	for i, n := range actionNames {
		if i > 0 && n == a {
			return action(i)
		}
	}
	return noAction
}

func (a *answer) record() string {
	r, _, _ := strings.Cut(a.verdict, "\x00")
	return r
}

func (a *answer) markers() string {
	_, m, _ := strings.Cut(a.verdict, "\x00")
	return m
}

// Answers besides the screening verdicts.
var (
	answerOptions = answer{status: 200}
	answerCancel  = answer{status: 200}
	answerMethod  = answer{status: 405} // Allow says what is
	answerScheme  = answer{status: 416, info: "the Request-URI must be sip, sips or tel"}
	answerDialog  = answer{status: 481, outcome: outError, info: "no dialog here: ringfence answers only initial INVITEs"}
)

func reason(status uint16) string {
	switch status {
	case 200:
		return "OK"
	case 302:
		return "Moved Temporarily"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 405:
		return "Method Not Allowed"
	case 416:
		return "Unsupported URI Scheme"
	case 420:
		return "Bad Extension"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 484:
		return "Address Incomplete"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 505:
		return "Version Not Supported"
	case 513:
		return "Message Too Large"
	case 603:
		return "Decline"
	case 608:
		return "Rejected"
	}
	return "Error"
}

// allowed is the Allow header value of 405 and OPTIONS answers.
const allowed = "INVITE, ACK, CANCEL, OPTIONS"

// handle decides the answer to a request, whichever path read it. It
// reports false when nothing is to be sent: an ACK, or a retransmission of
// an INVITE still being screened. late says the request is not to be
// screened: on UDP under overload, it waited longer than the budget, or the
// evaluators are behind (udp.go). An INVITE is then answered by the
// fail-open/closed policy.
func (s *Server) handle(r *request, src netip.AddrPort, transport int, late bool) (answer, bool) {
	a, send := s.decide(r, src, transport, late)
	if send && s.cfg.Access != nil {
		s.cfg.Access.Log(src.Addr(), accesslog.Entry{Time: s.cfg.Now(), Kind: accesslog.SIP, Method: r.method, Route: r.method, Status: int(a.status)})
	}
	return a, send
}

// decide is handle without the access log.
func (s *Server) decide(r *request, src netip.AddrPort, transport int, late bool) (answer, bool) {
	if r.method == "ACK" {
		return answer{}, false // the ACK for our final answer: absorbed
	}
	if !r.valid {
		if status, warning := r.validate(); status != 0 {
			s.m.parseFailures[transport].Inc()
			return answer{status: uint16(status), outcome: outError, info: warning}, true
		}
	}
	switch r.method {
	case "INVITE", "OPTIONS", "CANCEL":
	default:
		return answerMethod, true
	}
	invite := r.method == "INVITE"
	if !r.supportedScheme() {
		if invite {
			s.m.invite(outError)
		}
		return answerScheme, true
	}
	if r.method != "CANCEL" {
		if u := r.unsupportedRequire(); u != "" {
			if invite {
				s.m.invite(outError)
			}
			return answer{status: 420, outcome: outError, info: u}, true
		}
	}
	switch r.method {
	case "OPTIONS":
		return answerOptions, true
	case "CANCEL":
		// The final answer to the INVITE went out when it was screened, so
		// there is nothing to cancel and no 487 (RFC 3261 9.2).
		return answerCancel, true
	}
	if r.toTag != "" {
		s.m.invite(outError)
		return answerDialog, true
	}
	return s.invite(r, src, late)
}

// invite answers an initial INVITE: from the retransmission cache, or by
// screening it.
func (s *Server) invite(r *request, src netip.AddrPort, late bool) (answer, bool) {
	now := s.cfg.Now()
	key := s.answers.key(r)
	if a, state := s.answers.begin(key, now); state == answerCached {
		s.m.retransmissions.Inc()
		return a, true
	} else if state == answerPending {
		s.m.retransmissions.Inc()
		return answer{}, false // the first copy is being screened; its answer will do
	}
	a := s.screen(r, src.Addr(), late)
	s.answers.finish(key, a, now)
	s.m.invite(a.outcome)
	return a, true
}

// screen maps the INVITE to a call, asks the screener and turns the result
// into an answer.
func (s *Server) screen(r *request, src netip.Addr, late bool) answer {
	if late { // only what the policy needs: the answer must be cheap
		tenant, route, _, err := s.target(r, src)
		if err != nil {
			return s.refusal(err)
		}
		return s.fail(tenant, route, outOverload, "overloaded: too many calls waiting to be screened")
	}
	in, err := s.incoming(r, src)
	if err != nil {
		return s.refusal(err)
	}
	if n := s.inFlight.Add(1); n > int64(s.cfg.MaxInFlight) {
		s.inFlight.Add(-1)
		return s.fail(in.Tenant, in.Ingress, outOverload, "overloaded: too many calls in flight")
	}
	c, err := s.scr.Screen(s.budget(), in)
	s.inFlight.Add(-1)
	if err == nil && c == nil {
		err = errors.New("screener returned no call")
	}
	if err != nil {
		switch call.ErrorCode(err) {
		case call.Invalid, call.NotFound, call.Forbidden:
			return s.refusal(err)
		case call.Overloaded: // the recorder's queue stayed full for the budget
			return s.fail(in.Tenant, in.Ingress, outOverload, "overloaded: records are not being written fast enough")
		}
		s.log.Warn("screening failed", "error", err, "tenant", in.Tenant)
		return s.fail(in.Tenant, in.Ingress, outError, "screening unavailable")
	}
	v := &c.Verdict
	a := answer{action: actionOf(v.Action), score: float32(v.Score), verdict: verdictDetail(c.ID, v.Markers)}
	a.stir = uint16(v.Shaken.Cause())
	if a.stir == 0 && v.Has("verstat.failed") { // the carrier's verification failed
		a.stir = 438
	}
	switch v.Action {
	case call.Block:
		a.status, a.outcome = 608, outBlock
		if p, err := s.scr.Policy(in.Tenant); err == nil {
			if p.BlockWith == 603 {
				a.status = 603
			} else {
				a.info = p.Redress
			}
		}
	case call.Flag:
		a.status, a.outcome = 302, outFlag
	default:
		a.status, a.outcome = 302, outAllow
	}
	return a
}

// refusal answers an INVITE the screener or the mapping refused, by error
// code: the SIP side of call's error table.
func (s *Server) refusal(err error) answer {
	msg := call.ErrorMessage(err)
	switch call.ErrorCode(err) {
	case call.Invalid:
		if strings.HasPrefix(msg, "dialled") {
			return answer{status: 484, outcome: outError, info: msg}
		}
		return answer{status: 400, outcome: outError, info: msg}
	case call.NotFound, call.Forbidden:
		return answer{status: 403, outcome: outError, info: msg}
	}
	return answer{status: 500, outcome: outError, info: "internal error"}
}

// fail applies the ingress route's failure policy: fail open (302 with
// action unscored) or closed (503 with Retry-After). An unknown route, or a
// call whose tenant or route could not be read, fails closed: that is the
// zero value of call.Route.FailOpen.
func (s *Server) fail(tenant, route string, o outcome, why string) answer {
	if tenant != "" && route != "" {
		if rt, err := s.scr.Route(tenant, route); err == nil && rt.FailOpen {
			return answer{status: 302, outcome: outUnscored, action: actUnscored}
		}
	}
	return answer{status: 503, outcome: o, info: why}
}

// sharedDeadline is a context ending one budget after it was made, shared
// by the calls of one millisecond.
type sharedDeadline struct {
	ctx        context.Context
	cancel     context.CancelFunc // not called: the deadline's timer releases it
	reuseUntil int64              // unix nanoseconds
}

// budget returns a context that ends Budget from now, give or take a
// millisecond: calls in the same millisecond share one, so a call does not
// pay for a timer of its own.
func (s *Server) budget() context.Context {
	now := time.Now()
	n := now.UnixNano()
	if d := s.deadline.Load(); d != nil && n < d.reuseUntil {
		return d.ctx
	}
	ctx, cancel := context.WithDeadline(s.ctx, now.Add(s.cfg.Budget+time.Millisecond))
	s.deadline.Store(&sharedDeadline{ctx: ctx, cancel: cancel, reuseUntil: n + int64(time.Millisecond)})
	return ctx
}

// verdictDetail joins the record id and the marker codes.
func verdictDetail(id string, ms []call.Marker) string {
	n := len(id) + 1 + max(len(ms)-1, 0)
	for _, m := range ms {
		n += len(m.Code)
	}
	b := make([]byte, 0, n)
	b = append(b, id...)
	b = append(b, 0)
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m.Code...)
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// reply builds a response: wire bytes for UDP, or a sipgo response for
// TCP and TLS, from the same calls.
type reply struct {
	b   []byte
	res *sip.Response
	tag [16]byte
	num [32]byte
}

func (w *reply) start(status uint16) {
	if w.res != nil {
		w.res.StatusCode, w.res.Reason = int(status), reason(status)
		return
	}
	w.b = append(w.b, "SIP/2.0 "...)
	w.b = strconv.AppendUint(w.b, uint64(status), 10)
	w.b = append(w.b, ' ')
	w.b = append(w.b, reason(status)...)
	w.b = append(w.b, "\r\n"...)
}

// header adds a header whose value is the concatenation of parts.
func (w *reply) header(name string, parts ...string) {
	if w.res != nil {
		w.res.AppendHeader(sip.NewHeader(name, strings.Join(parts, "")))
		return
	}
	w.b = append(w.b, name...)
	w.b = append(w.b, ": "...)
	for _, p := range parts {
		w.b = append(w.b, p...)
	}
	w.b = append(w.b, "\r\n"...)
}

// render writes the response to r carrying a.
func (s *Server) render(w *reply, r *request, a *answer, src netip.AddrPort) {
	w.start(a.status)
	for i, v := range r.vias {
		if i == 0 && r.rport && src.IsValid() {
			s.renderRport(w, v, src)
			continue
		}
		w.header("Via", v)
	}
	if r.from != "" {
		w.header("From", r.from)
	}
	switch {
	case r.to == "":
	case r.toTag != "":
		w.header("To", r.to)
	default:
		w.header("To", r.to, ";tag=", s.toTag(w, r))
	}
	if r.callID != "" {
		w.header("Call-ID", r.callID)
	}
	if r.cseq != "" {
		w.header("CSeq", r.cseq)
	}
	switch a.status {
	case 302:
		w.header("Contact", "<", r.uri, ">")
	case 200, 405:
		if r.method != "CANCEL" {
			w.header("Allow", allowed)
		}
	case 420:
		w.header("Unsupported", a.info)
	case 503:
		w.header("Retry-After", "1")
	case 608:
		if a.info != "" {
			w.header("Call-Info", "<", a.info, ">;purpose=jwscallinfo")
		}
	}
	if a.status >= 400 && a.status != 420 && a.status != 608 && a.info != "" {
		w.header("Warning", `399 `, s.agent, ` "`, warningText(a.info), `"`)
	}
	if a.action != noAction {
		if a.action != actUnscored {
			n := strconv.AppendFloat(w.num[:0], float64(a.score), 'f', 3, 32)
			w.header("X-Ringfence-Score", unsafe.String(unsafe.SliceData(n), len(n)))
		}
		w.header("X-Ringfence-Action", string(actionNames[a.action]))
		if m := a.markers(); m != "" {
			w.header("X-Ringfence-Markers", m)
		}
		if r := a.record(); r != "" {
			w.header("X-Ringfence-Record", r)
		}
	}
	if a.stir != 0 {
		w.header("Reason", call.ReasonHeader(int(a.stir)))
	}
	w.header("Content-Length", "0")
	if w.res == nil {
		w.b = append(w.b, "\r\n"...)
	}
}

// renderRport fills in the empty rport parameter of the top Via with the
// source port and adds received (RFC 3581), as sipgo does.
func (s *Server) renderRport(w *reply, v string, src netip.AddrPort) {
	i := 0
	for {
		j := strings.IndexByte(v[i:], ';')
		if j < 0 {
			w.header("Via", v)
			return
		}
		i += j + 1
		k := skipLWS(v, i)
		if len(v)-k >= 5 && strings.EqualFold(v[k:k+5], "rport") && (k+5 == len(v) || v[k+5] == ';' || isLWS(v[k+5])) {
			port := strconv.AppendUint(w.num[:0], uint64(src.Port()), 10)
			w.header("Via", v[:k+5], "=", string(port), v[k+5:], ";received=", src.Addr().Unmap().String())
			return
		}
	}
}

func warningText(s string) string {
	if strings.ContainsAny(s, "\"\\\r\n") {
		s = strings.NewReplacer(`"`, "'", `\`, "/", "\r", " ", "\n", " ").Replace(s)
	}
	return s
}

// toTag derives the To-tag from Call-ID, From-tag and the top Via branch
// (FNV-1a 64 over them and the appliance name, 16 hex digits), so every
// copy of a request gets the same tag without any state, on any path.
func (s *Server) toTag(w *reply, r *request) string {
	h := uint64(14695981039346656037)
	mix := func(v string) {
		for i := 0; i < len(v); i++ {
			h ^= uint64(v[i])
			h *= 1099511628211
		}
		h ^= 0xff // separator
		h *= 1099511628211
	}
	mix(s.agent)
	mix(r.callID)
	mix(r.fromTag)
	mix(r.branch)
	const hexdigits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		w.tag[i] = hexdigits[h&15]
		h >>= 4
	}
	if w.res != nil {
		return string(w.tag[:])
	}
	return unsafe.String(&w.tag[0], 16)
}

// answers remembers recent INVITE answers for retransmissions: an INVITE
// whose Call-ID, From-tag, top Via branch and CSeq match one answered in
// the last ttl gets the same answer again and is not screened (or
// recorded) twice. Memory is bounded: each of 64 shards keeps two
// generations of at most perShard entries; when the current generation
// fills up or is ttl old it becomes the old one and the old one is
// dropped. Under a rate above max/ttl entries live for less than ttl.
type answers struct {
	seed     maphash.Seed
	ttl      int64 // nanoseconds
	perShard int
	shards   [64]answerShard
}

type answerShard struct {
	mu       sync.Mutex
	cur, old map[answerKey]cachedAnswer
	rotated  int64
}

// answerKey is 128 bits of maphash over the key fields: two different
// requests collide with probability about n²/2^129.
type answerKey [2]uint64

type cachedAnswer struct {
	a       answer
	at      int64 // unix nanoseconds of the first copy
	pending bool  // being screened
}

// Entries stay small: see docs/sip.md for the bytes per entry.
var _ [64 - unsafe.Sizeof(cachedAnswer{})]struct{}

type answerState int

const (
	answerNew answerState = iota
	answerPending
	answerCached
)

func newAnswers(size int, ttl time.Duration) *answers {
	c := &answers{seed: maphash.MakeSeed(), ttl: int64(ttl), perShard: max(1, size/64)}
	for i := range c.shards {
		c.shards[i].cur = make(map[answerKey]cachedAnswer)
	}
	return c
}

func (c *answers) key(r *request) answerKey {
	var k answerKey
	for i := range k {
		var h maphash.Hash
		h.SetSeed(c.seed)
		h.WriteByte(byte(i))
		for _, v := range [...]string{r.callID, r.fromTag, r.branch, r.cseq} {
			h.WriteString(v)
			h.WriteByte(0)
		}
		k[i] = h.Sum64()
	}
	return k
}

// begin looks the key up; if it is new it is marked pending.
func (c *answers) begin(k answerKey, now time.Time) (answer, answerState) {
	t := now.UnixNano()
	s := &c.shards[k[0]&63]
	s.mu.Lock()
	defer s.mu.Unlock()
	if t-s.rotated >= c.ttl || len(s.cur) >= c.perShard {
		s.old, s.cur, s.rotated = s.cur, make(map[answerKey]cachedAnswer), t
	}
	e, ok := s.cur[k]
	if !ok {
		e, ok = s.old[k]
	}
	if ok && t-e.at < c.ttl {
		if e.pending {
			return answer{}, answerPending
		}
		return e.a, answerCached
	}
	s.cur[k] = cachedAnswer{at: t, pending: true}
	return answer{}, answerNew
}

// finish stores the answer for k.
func (c *answers) finish(k answerKey, a answer, now time.Time) {
	s := &c.shards[k[0]&63]
	s.mu.Lock()
	s.cur[k] = cachedAnswer{a: a, at: now.UnixNano()}
	s.mu.Unlock()
}
