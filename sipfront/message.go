package sipfront

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// request is a SIP request reduced to what the redirect server reads. The
// fast scanner (fastpath.go) and the sipgo path (fromSipgo) both produce
// one; validation, screening and the reply are shared, which is what makes
// the two paths give the same answer.
type request struct {
	method  string // sipgo upper-cases it; the fast path only takes upper case
	uri     string // Request-URI
	version string

	vias     []string // Via values, top first, one per via-parm
	from, to string   // header values
	callID   string
	cseq     string
	pai      []string // P-Asserted-Identity values, one per element
	identity []string // Identity headers, raw
	divert   []string // Diversion values
	history  []string // History-Info values
	privacy  string
	agent    string // User-Agent
	require  string // Require values, comma-joined
	date     string
	tenant   string // the configured tenant header, if present
	route    string // the configured route header, if present

	counts  [nSingle]int // occurrences of single-instance headers
	defect  string       // first syntax problem found while parsing, "" if none
	hasDate bool

	// Derived by derive.
	branch  string
	fromTag string
	toTag   string
	viaHost string
	rport   bool // top Via has an empty rport parameter (RFC 3581)

	// borrowed is set when the strings point into a buffer that will be
	// reused (the fast path): anything kept beyond the reply is cloned.
	borrowed bool
	valid    bool // validate passed already (the fast path runs it)

	viaArr   [4]string
	paiArr   [2]string
	identArr [1]string
}

// Single-instance headers, counted to reject duplicates (RFC 3261 7.3.1).
const (
	hFrom = iota
	hTo
	hCallID
	hCSeq
	hMaxForwards
	hContentLength
	nSingle
)

var singleNames = [nSingle]string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"}

func (r *request) reset() {
	*r = request{}
	r.vias = r.viaArr[:0]
	r.pai = r.paiArr[:0]
	r.identity = r.identArr[:0]
}

// addPAI splits a P-Asserted-Identity value into its elements.
func (r *request) addPAI(v string) {
	if strings.IndexByte(v, ',') < 0 {
		if v != "" {
			r.pai = append(r.pai, v)
		}
		return
	}
	splitList(v, func(e string) bool {
		if e = trimLWS(e); e != "" {
			r.pai = append(r.pai, e)
		}
		return true
	})
}

// derive fills the fields computed from the header values.
func (r *request) derive() {
	if len(r.vias) > 0 {
		var params string
		r.viaHost, params = viaParts(r.vias[0])
		r.branch, _ = param(params, "branch")
		rp, ok := param(params, "rport")
		r.rport = ok && rp == ""
	}
	r.fromTag = tag(r.from)
	r.toTag = tag(r.to)
}

// Statuses validate can give besides 0 (valid).
const (
	statusBadRequest         = 400
	statusVersionUnsupported = 505
)

// validate applies the checks RFC 3261 asks of every request before its
// method is looked at, and returns the status and Warning text of the
// rejection, or 0.
func (r *request) validate() (int, string) {
	switch {
	case r.defect != "":
		return statusBadRequest, r.defect
	case r.version != "SIP/2.0":
		return statusVersionUnsupported, "only SIP/2.0 is supported"
	case len(r.vias) == 0:
		return statusBadRequest, "missing Via header"
	case r.counts[hFrom] == 0 || r.counts[hTo] == 0 || r.counts[hCallID] == 0 || r.counts[hCSeq] == 0:
		return statusBadRequest, "missing From, To, Call-ID or CSeq header"
	}
	for h, n := range r.counts {
		if n > 1 {
			return statusBadRequest, "more than one " + singleNames[h] + " header"
		}
	}
	for _, v := range [...]string{r.from, r.to, r.callID, r.cseq} {
		if hasLineBreak(v) {
			return statusBadRequest, "line break inside a header"
		}
	}
	for _, v := range r.vias {
		if hasLineBreak(v) {
			return statusBadRequest, "line break inside a header"
		}
	}
	if _, m, ok := cseqParts(r.cseq); !ok {
		return statusBadRequest, "malformed CSeq header"
	} else if !strings.EqualFold(m, r.method) {
		return statusBadRequest, "CSeq method does not match the request method"
	}
	if p := checkURI(r.uri); p != "" {
		return statusBadRequest, p + " (Request-URI)"
	}
	if isSIPScheme(uriScheme(r.uri)) && uriHasHeaders(r.uri) {
		return statusBadRequest, "headers are not allowed in a Request-URI"
	}
	if r.hasDate && !validDate(r.date) {
		return statusBadRequest, "Date must be RFC 1123 in GMT"
	}
	return 0, ""
}

// hasLineBreak reports whether v holds a CR or LF: a bare LF is read as
// part of a header line, and echoed it would break the answer's framing.
// (Other control characters are legal in quoted pairs.)
func hasLineBreak(v string) bool {
	return strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0
}

// uriHasHeaders reports whether a SIP URI has a headers part: a '?' after
// the host ('?' is allowed in the user part).
func uriHasHeaders(u string) bool {
	if at := strings.IndexByte(u, '@'); at >= 0 {
		u = u[at:]
	}
	return strings.IndexByte(u, '?') >= 0
}

// supportedScheme reports whether the Request-URI scheme is one the server
// takes (sip, sips, tel).
func (r *request) supportedScheme() bool {
	s := uriScheme(r.uri)
	return isSIPScheme(s) || strings.EqualFold(s, "tel")
}

// unsupportedRequire returns the Require option tags the server does not
// support. A redirect server never sends provisional responses, never
// answers 2xx and never establishes a session, so the options that only
// concern those are met by default and accepted.
func (r *request) unsupportedRequire() string {
	if r.require == "" {
		return ""
	}
	var out []string
	for _, t := range strings.Split(r.require, ",") {
		switch t = trimLWS(t); strings.ToLower(t) {
		case "", "100rel", "timer", "precondition", "replaces", "histinfo":
		default:
			out = append(out, t)
		}
	}
	return strings.Join(out, ", ")
}

// defectName names the marker header the parser hooks put in place of a
// header they found malformed. A header name read from the wire never
// contains ':', so the marker cannot be forged.
const defectName = "ringfence:defect"

// fromSipgo reduces a request sipgo parsed (with the hooks of newParser).
func fromSipgo(req *sip.Request, tenantHeader, routeHeader string, r *request) {
	r.reset()
	r.method = string(req.Method)
	r.uri = req.Recipient.String()
	r.version = req.SipVersion
	for _, h := range req.Headers() {
		name, v := h.Name(), h.Value()
		if name == defectName {
			canon, rest, _ := strings.Cut(v, "\x00")
			problem, raw, _ := strings.Cut(rest, "\x00")
			if r.defect == "" {
				r.defect = problem
			}
			if canon == "Via" {
				// Copied into a 400 as received: splitting it could make
				// elements of what is not a list.
				r.vias = append(r.vias, raw)
				continue
			}
			name, v = canon, raw
		}
		r.add(headerKind(name), name, v, tenantHeader, routeHeader)
	}
	r.derive()
}

// Header kinds the server reads; kOther for every other header.
const (
	kOther = iota
	kVia
	kFrom
	kTo
	kCallID
	kCSeq
	kMaxForwards
	kContentLength
	kContact
	kPAI
	kIdentity
	kDiversion
	kHistory
	kPrivacy
	kUserAgent
	kRequire
	kDate
)

// headerKind names a header by its name, full or compact, in any case.
func headerKind(name string) int {
	if len(name) == 1 {
		switch name[0] | 0x20 {
		case 'v':
			return kVia
		case 'f':
			return kFrom
		case 't':
			return kTo
		case 'i':
			return kCallID
		case 'l':
			return kContentLength
		case 'm':
			return kContact
		case 'y':
			return kIdentity
		}
		return kOther
	}
	var cands []struct {
		name string
		kind int
	}
	switch len(name) {
	case 2:
		cands = headers2
	case 3:
		cands = headers3
	case 4:
		cands = headers4
	case 7:
		cands = headers7
	case 8:
		cands = headers8
	case 9:
		cands = headers9
	case 10:
		cands = headers10
	case 12:
		cands = headers12
	case 14:
		cands = headers14
	case 19:
		cands = headers19
	}
	for _, c := range cands {
		if equalFoldASCII(name, c.name) {
			return c.kind
		}
	}
	return kOther
}

type headerName = struct {
	name string
	kind int
}

var (
	headers2  = []headerName{{"to", kTo}}
	headers3  = []headerName{{"via", kVia}}
	headers4  = []headerName{{"from", kFrom}, {"cseq", kCSeq}, {"date", kDate}}
	headers7  = []headerName{{"call-id", kCallID}, {"contact", kContact}, {"privacy", kPrivacy}, {"require", kRequire}}
	headers8  = []headerName{{"identity", kIdentity}}
	headers9  = []headerName{{"diversion", kDiversion}}
	headers10 = []headerName{{"user-agent", kUserAgent}}
	headers12 = []headerName{{"max-forwards", kMaxForwards}, {"history-info", kHistory}}
	headers14 = []headerName{{"content-length", kContentLength}}
	headers19 = []headerName{{"p-asserted-identity", kPAI}}
)

// equalFoldASCII reports whether a equals lower, a lower-case ASCII name,
// ignoring ASCII case.
func equalFoldASCII(a, lower string) bool {
	if len(a) != len(lower) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c |= 0x20
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// add records one header; the fast path uses it too, so both paths read
// headers the same way.
func (r *request) add(kind int, name, v, tenantHeader, routeHeader string) {
	switch kind {
	case kVia:
		if strings.IndexByte(v, ',') < 0 {
			r.vias = append(r.vias, v)
			break
		}
		splitList(v, func(e string) bool {
			r.vias = append(r.vias, trimLWS(e))
			return true
		})
	case kFrom:
		r.counts[hFrom]++
		r.from = v
	case kTo:
		r.counts[hTo]++
		r.to = v
	case kCallID:
		r.counts[hCallID]++
		r.callID = v
	case kCSeq:
		r.counts[hCSeq]++
		r.cseq = v
	case kMaxForwards:
		r.counts[hMaxForwards]++
	case kContentLength:
		r.counts[hContentLength]++
	case kPAI:
		r.addPAI(v)
	case kIdentity:
		r.identity = append(r.identity, v)
	case kDiversion:
		r.divert = append(r.divert, v)
	case kHistory:
		r.history = append(r.history, v)
	case kPrivacy:
		r.privacy = joinValue(r.privacy, v)
	case kUserAgent:
		r.agent = joinValue(r.agent, v)
	case kRequire:
		r.require = joinValue(r.require, v)
	case kDate:
		r.hasDate, r.date = true, v
	case kOther:
		if len(name) == len(tenantHeader) && strings.EqualFold(name, tenantHeader) {
			r.tenant = v
		}
		if len(name) == len(routeHeader) && strings.EqualFold(name, routeHeader) {
			r.route = v
		}
	}
}

func joinValue(have, v string) string {
	if have == "" {
		return v
	}
	return have + ", " + v
}

// newParser returns a sipgo parser whose parsers for From, To, Via,
// Contact, Call-ID, CSeq and Max-Forwards are the grammar checks of
// syntax.go: a valid header is kept as sipgo's generic header with the
// value as received (the server reads values, not sipgo's typed headers),
// and a malformed one becomes a defect marker instead of a parse error, so
// the request is still read and answered with a 400 that names the problem.
// sipgo alone would drop it, close a TCP connection over it, or accept it
// (it takes an unquoted display name with a comma, RFC 4475 baddn).
//
// lenientLength also turns a malformed Content-Length into a marker; only
// for datagrams, where the body is the rest of the datagram anyway. On a
// stream a bad Content-Length leaves no message boundary, and sipgo closes
// the connection.
func newParser(lenientLength bool) *sip.Parser {
	// Only Content-Length keeps sipgo's typed parser (the parser frames the
	// body with it); every other header stays generic, so none of sipgo's
	// typed parsers can fail a request over a header the server ignores.
	base := sip.DefaultHeadersParser()
	m := map[string]sip.HeaderParser{"content-length": base["content-length"], "l": base["l"]}
	defect := func(canon, problem, text string) sip.Header {
		return sip.NewHeader(defectName, canon+"\x00"+problem+"\x00"+text)
	}
	hook := func(canon string, check func(string) string, names ...string) {
		for _, n := range names {
			m[n] = func(_ []byte, text string) (sip.Header, error) {
				if p := check(text); p != "" {
					return defect(canon, p, text), nil
				}
				return sip.NewHeader(canon, text), nil
			}
		}
	}
	hook("From", checkAddress, "from", "f")
	hook("To", checkAddress, "to", "t")
	hook("Contact", checkAddressList, "contact", "m")
	hook("Via", checkVia, "via", "v")
	hook("Call-ID", checkCallID, "call-id", "i")
	hook("CSeq", checkCSeq, "cseq")
	hook("Max-Forwards", checkMaxForwards, "max-forwards")
	if lenientLength {
		for _, n := range []string{"content-length", "l"} {
			orig := base[n]
			m[n] = func(name []byte, text string) (sip.Header, error) {
				h, err := orig(name, text)
				if err != nil {
					return defect("Content-Length", "malformed Content-Length header", text), nil
				}
				return h, nil
			}
		}
	}
	return sip.NewParser(sip.WithHeadersParsers(m))
}

func checkCallID(v string) string {
	v = trimLWS(v)
	if v == "" {
		return "empty Call-ID"
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] == 0x7f {
			return "whitespace inside Call-ID"
		}
	}
	return ""
}

func checkCSeq(v string) string {
	if _, _, ok := cseqParts(v); !ok {
		return "malformed CSeq header"
	}
	return ""
}

func checkMaxForwards(v string) string {
	v = trimLWS(v)
	if len(v) == 0 {
		return "Max-Forwards must be 0-255"
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' || n > 255 {
			return "Max-Forwards must be 0-255"
		}
		n = n*10 + int(v[i]-'0')
	}
	if n > 255 {
		return "Max-Forwards must be 0-255"
	}
	return ""
}
