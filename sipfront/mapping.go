package sipfront

import (
	"net/netip"
	"strings"
	"unsafe"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/numbering"
)

// Limits of node.Incoming. Values over them are cut, not refused: the
// carrier cannot fix the caller's signalling, and a call must not fail over
// an overlong header. A cut caller identity is not a telephone number and
// scores as cli.invalid.
const (
	maxNumber  = numbering.MaxRaw
	maxText    = 2048 // From, Privacy, Diversion, User-Agent
	maxIdent   = 8192 // each P-Asserted-Identity and Identity value
	maxIdents  = 8    // P-Asserted-Identity and Identity values kept
	maxRouteID = 64
)

// incoming maps an INVITE to the call the screener evaluates (the rules
// are in docs/sip.md). The error is a *call.Error: Forbidden when no
// tenant can be named, Invalid when the route header is not a route id or
// neither the Request-URI nor To carries a telephone number.
func (s *Server) incoming(r *request, src netip.Addr) (node.Incoming, error) {
	in := node.Incoming{Appliance: s.cfg.Appliance, StartedAt: s.cfg.Now()}
	var dialled string
	var err error
	in.Tenant, in.Ingress, dialled, err = s.target(r, src)
	if err != nil {
		return in, err
	}

	caller := ""
	for _, p := range r.pai {
		if caller = headerNumber(p); caller != "" {
			break
		}
	}
	if caller == "" {
		caller = headerNumber(r.from)
	}
	if privacyID(r.privacy) {
		caller = "anonymous"
	}

	vs := ""
	for _, p := range r.pai {
		if vs = verstat(p); vs != "" {
			break
		}
	}
	if vs == "" {
		vs = verstat(r.from)
	}

	divert := r.divert
	if len(divert) == 0 {
		divert = r.history
	}

	// Strings of a borrowed request point into the datagram buffer, which
	// the next datagram overwrites: everything the call keeps is copied,
	// into one allocation.
	var a arena
	if r.borrowed {
		n := len(in.Tenant) + len(in.Ingress) + len(caller) + len(dialled) + len(r.from) + len(vs) + len(r.privacy) + len(r.agent)
		for _, v := range r.pai {
			n += len(v)
		}
		for _, v := range r.identity {
			n += len(v)
		}
		for _, v := range divert {
			n += len(v) + 2
		}
		a.buf = make([]byte, 0, n)
	}
	in.Tenant = a.keep(in.Tenant)
	in.Ingress = a.keep(in.Ingress)
	in.Caller = a.keep(clip(caller, maxNumber))
	in.Dialled = a.keep(dialled)
	sg := &in.Signalling
	sg.From = a.keep(clip(r.from, maxText))
	sg.PAI, sg.Identity = a.lists(r.pai, r.identity)
	sg.Verstat = a.keep(clip(vs, maxText))
	sg.Privacy = a.keep(clip(r.privacy, maxText))
	sg.UserAgent = a.keep(clip(r.agent, maxText))
	switch len(divert) {
	case 0:
	case 1:
		sg.Diversion = a.keep(clip(divert[0], maxText))
	default:
		sg.Diversion = a.keep(clip(strings.Join(divert, ", "), maxText))
	}
	sg.ViaCount = len(r.vias)
	return in, nil
}

// target reads whose call an INVITE is: the tenant, the ingress route
// ("" if none can be named) and the dialled number, views of r. The error
// is incoming's. The overload path needs no more than this.
func (s *Server) target(r *request, src netip.Addr) (tenant, route, dialled string, err error) {
	tenant = s.cfg.Tenant
	if t := trimLWS(r.tenant); t != "" {
		if !call.ValidID(t) {
			return "", "", "", call.Errorf(call.Forbidden, "%s: not a tenant id", s.cfg.TenantHeader)
		}
		tenant = t
	}
	if tenant == "" {
		return "", "", "", call.Errorf(call.Forbidden, "no tenant: the request has no %s header", s.cfg.TenantHeader)
	}

	switch rt := trimLWS(r.route); {
	case rt != "":
		if !call.ValidID(rt) {
			return "", "", "", call.Errorf(call.Invalid, "%s: not a route id", s.cfg.RouteHeader)
		}
		route = rt
	default:
		if id, ok := s.routeBySource(src); ok {
			route = id
		} else if call.ValidID(r.viaHost) {
			route = r.viaHost
		}
	}

	if dialled = dialledNumber(r); dialled == "" {
		return "", "", "", call.Errorf(call.Invalid, "dialled: no telephone number in the Request-URI or To")
	}
	return tenant, route, dialled, nil
}

// dialledNumber returns the user part of the Request-URI if it looks like a
// telephone number, else that of To, else "".
func dialledNumber(r *request) string {
	if d := uriUser(r.uri); looksLikeNumber(d) {
		return d
	}
	if d := headerNumber(r.to); looksLikeNumber(d) {
		return d
	}
	return ""
}

// headerNumber is numbering.HeaderNumber (the number in a From, To or
// P-Asserted-Identity value) without its allocations in the common case;
// FuzzInvite checks they agree.
func headerNumber(v string) string {
	if n, ok := plainUser(addressURI(v)); ok {
		return n
	}
	return numbering.HeaderNumber(v)
}

// uriUser returns the number in a bare URI (a Request-URI), user
// parameters such as ";npdi;rn=" dropped: numbering.HeaderNumber of the URI
// in angle brackets.
func uriUser(u string) string {
	if n, ok := plainUser(u); ok {
		return n
	}
	return numbering.HeaderNumber("<" + u + ">")
}

// plainUser returns the user part of a lower-case sip:, sips: or tel: URI
// without escapes, and false for anything else.
func plainUser(u string) (string, bool) {
	if strings.IndexByte(u, '>') >= 0 {
		// uriUser's answer is the URI read in angle brackets, where '>'
		// ends it: leave such a URI to that reading (FuzzInvite found
		// "sip:>@" read as ">" here, "" there).
		return "", false
	}
	switch {
	case strings.HasPrefix(u, "tel:"):
		u = u[4:]
		if i := strings.IndexByte(u, ';'); i >= 0 {
			u = u[:i]
		}
		return u, strings.IndexByte(u, '%') < 0 && trimLWS(u) == u
	case strings.HasPrefix(u, "sip:"):
		u = u[4:]
	case strings.HasPrefix(u, "sips:"):
		u = u[5:]
	default:
		return "", false
	}
	at := strings.IndexByte(u, '@')
	if at < 0 {
		return "", trimLWS(u) == u
	}
	user := u[:at]
	if i := strings.IndexByte(user, ';'); i >= 0 {
		user = user[:i]
	}
	if i := strings.IndexByte(user, ':'); i >= 0 {
		user = user[:i]
	}
	if strings.IndexByte(user, '%') >= 0 || trimLWS(user) != user {
		return "", false
	}
	if len(user) == 9 && strings.EqualFold(user, "anonymous") {
		return "anonymous", true
	}
	return user, true
}

// looksLikeNumber reports whether s could be a telephone number: digits
// with an optional leading '+' and visual separators, at most maxNumber
// characters. Whether it is an assigned number is the screener's question.
func looksLikeNumber(s string) bool {
	if len(s) == 0 || len(s) > maxNumber {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0, c == '-', c == '.', c == '(', c == ')', c == ' ':
		default:
			return false
		}
	}
	return digits > 0
}

// privacyID reports whether a Privacy value asks to withhold the identity
// (the "id" value of RFC 3325) among its values separated by ';', ',' or
// whitespace.
func privacyID(v string) bool {
	for len(v) > 0 {
		i := strings.IndexAny(v, ";, \t")
		if i < 0 {
			i = len(v)
		}
		if i == 2 && (v[0]|0x20) == 'i' && (v[1]|0x20) == 'd' {
			return true
		}
		v = v[min(i+1, len(v)):]
	}
	return false
}

// routeBySource returns the route of the longest configured prefix holding
// src.
func (s *Server) routeBySource(src netip.Addr) (string, bool) {
	src = src.Unmap()
	for _, p := range s.sources { // sorted longest prefix first
		if p.prefix.Contains(src) {
			return p.route, true
		}
	}
	return "", false
}

type sourceRoute struct {
	prefix netip.Prefix
	route  string
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// arena copies strings into one buffer sized in advance; with a nil
// buffer it returns its input (the strings are already the caller's).
type arena struct{ buf []byte }

func (a *arena) keep(s string) string {
	if a.buf == nil || s == "" {
		return s
	}
	if cap(a.buf)-len(a.buf) < len(s) {
		return strings.Clone(s) // not sized for it: never in practice
	}
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return unsafe.String(&a.buf[start], len(s))
}

// lists copies PAI and Identity values, at most maxIdents of each, into
// one new slice.
func (a *arena) lists(pai, identity []string) ([]string, []string) {
	np, ni := min(len(pai), maxIdents), min(len(identity), maxIdents)
	if np+ni == 0 {
		return nil, nil
	}
	out := make([]string, np+ni)
	for i, v := range pai[:np] {
		out[i] = a.keep(clip(v, maxIdent))
	}
	for i, v := range identity[:ni] {
		out[np+i] = a.keep(clip(v, maxIdent))
	}
	p, id := out[:np:np], out[np:]
	if np == 0 {
		p = nil
	}
	if ni == 0 {
		id = nil
	}
	return p, id
}
