package sipfront

import (
	"strings"
	"unsafe"
)

// The fast path reads the requests an SBC sends every second (INVITE, ACK,
// CANCEL, OPTIONS in plain RFC 3261 form) straight from the datagram,
// without sipgo's parser: one pass over the header lines, keeping views of
// the values it needs (no copies, no allocation), then the same grammar
// checks and validation the sipgo path applies. It declines anything
// unusual, and the datagram goes to sipgo's parser instead:
//
//   - another method, a Request-URI outside a plain character set (IPv6
//     references, '?', quotes, brackets), a version other than SIP/2.0;
//   - folded lines, a CR not followed by LF, whitespace before a header's
//     colon, a value starting or ending with a byte that is not printable
//     ASCII (sipgo trims Unicode spaces there);
//   - a Via with several comma-separated values, a Require or a Date
//     header (rare, and they need checks the fast path leaves to one place);
//   - anything the shared checks or validate would refuse, so every
//     refusal is produced by the sipgo path, and a Content-Length that
//     overruns the datagram.
//
// The fuzz target FuzzFastPath checks that whenever the fast path accepts
// a datagram, sipgo's path maps it to the same call and the same answer.

// fastMethods are the methods the fast path takes, as constants so the
// request does not borrow the method from the buffer.
var fastMethods = [...]string{"INVITE", "ACK", "OPTIONS", "CANCEL"}

// scan reduces datagram b to r and reports whether it is a request the
// fast path handles. The strings in r are views of b (r.borrowed).
func (s *Server) scan(b []byte, r *request) bool {
	r.reset()
	r.borrowed = true
	m := unsafe.String(unsafe.SliceData(b), len(b))

	sp := strings.IndexByte(m, ' ')
	if sp < 0 {
		return false
	}
	for _, name := range fastMethods {
		if m[:sp] == name {
			r.method = name
		}
	}
	if r.method == "" {
		return false
	}
	rest := m[sp+1:]
	sp = strings.IndexByte(rest, ' ')
	if sp <= 0 || !fastURI(rest[:sp]) {
		return false
	}
	r.uri = rest[:sp]
	rest = rest[sp+1:]
	if !strings.HasPrefix(rest, "SIP/2.0\r\n") {
		return false
	}
	r.version = "SIP/2.0"
	i := len(m) - len(rest) + len("SIP/2.0\r\n")

	length := -1
	for {
		// Lines end at CR LF, found as sipgo finds them: the first CR,
		// which must be followed by LF.
		cr := strings.IndexByte(m[i:], '\r')
		if cr < 0 || i+cr+1 >= len(m) || m[i+cr+1] != '\n' {
			return false
		}
		line := m[i : i+cr]
		i += cr + 2
		if line == "" {
			break
		}
		if isLWS(line[0]) {
			return false // folded
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return false
		}
		name, v := line[:colon], trimLWS(line[colon+1:])
		if v != "" && (v[0] < ' ' || v[0] >= 0x7f || v[len(v)-1] < ' ' || v[len(v)-1] >= 0x7f) {
			return false // sipgo trims other spaces there; leave it to sipgo
		}
		problem := ""
		kind := headerKind(name)
		switch kind {
		case kVia:
			if strings.IndexByte(v, ',') >= 0 {
				return false
			}
			problem = checkViaParm(v)
		case kFrom, kTo:
			problem = checkAddress(v)
		case kContact:
			problem = checkAddressList(v)
		case kCallID:
			problem = checkCallID(v)
		case kCSeq:
			problem = checkCSeq(v)
		case kMaxForwards:
			problem = checkMaxForwards(v)
		case kContentLength:
			if length >= 0 || len(v) == 0 || len(v) > 5 {
				return false
			}
			length = 0
			for j := 0; j < len(v); j++ {
				if v[j] < '0' || v[j] > '9' {
					return false
				}
				length = length*10 + int(v[j]-'0')
			}
		case kRequire, kDate:
			return false
		}
		if problem != "" {
			return false
		}
		r.add(kind, name, v, s.cfg.TenantHeader, s.cfg.RouteHeader)
	}
	if length > len(m)-i {
		return false
	}
	r.derive()
	if status, _ := r.validate(); status != 0 || !r.supportedScheme() {
		return false
	}
	r.valid = true
	return true
}

// fastURI reports whether a Request-URI is sip:, sips: or tel: followed by
// characters the fast path takes: letters, digits and -._~+;=@:!*'()&$,/%.
func fastURI(u string) bool {
	if !(strings.HasPrefix(u, "sip:") || strings.HasPrefix(u, "sips:") || strings.HasPrefix(u, "tel:")) {
		return false
	}
	for i := 0; i < len(u); i++ {
		if !uriChars[u[i]] {
			return false
		}
	}
	return true
}

var uriChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._~+;=@:!*'()&$,/%" {
		t[c] = true
	}
	return t
}()
