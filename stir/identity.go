package stir

import (
	"errors"
	"fmt"
	"strings"
)

// MaxIdentityLen is the longest Identity header value ParseIdentity accepts.
const MaxIdentityLen = 8192

// Identity is one parsed Identity header field value (RFC 8224 section 4):
// the PASSporT in JWS compact serialisation and the header's parameters.
type Identity struct {
	// JWS is the full-form PASSporT: header "." claims "." signature, each
	// base64url without padding.
	JWS string
	// Info is the info parameter's URI without its angle brackets, "" when
	// the parameter is absent.
	Info string
	// Alg and PPT are the alg and ppt parameters, unquoted; "" when absent.
	Alg string
	PPT string
}

// Parts splits JWS into its three base64url parts.
func (id Identity) Parts() (header, claims, sig string) {
	header, rest, _ := strings.Cut(id.JWS, ".")
	claims, sig, _ = strings.Cut(rest, ".")
	return header, claims, sig
}

// Errors of ParseIdentity, matched with errors.Is.
var (
	// ErrCompactForm: the PASSporT's header and claims are omitted
	// ("..signature"), so there is nothing to verify without rebuilding them
	// from the SIP request; SHAKEN requires the full form.
	ErrCompactForm = errors.New("stir: compact form PASSporT (header and claims omitted): full form required")
	// ErrMalformed: the value is not an Identity header field value.
	ErrMalformed = errors.New("stir: malformed Identity header")
)

// ParseIdentity parses one Identity header field value in full form:
//
//	<b64 header>.<b64 claims>.<b64 signature>;info=<https://...>;alg=ES256;ppt=shaken
//
// Parameter names are case-insensitive, values may be quoted, whitespace
// around separators is ignored and unknown parameters are skipped; a missing
// info parameter is not an error here (Verify reports it). It returns an
// error wrapping ErrCompactForm for a compact-form PASSporT and ErrMalformed
// for anything else it cannot read. It does not decode the base64 parts.
func ParseIdentity(h string) (Identity, error) {
	var id Identity
	if len(h) > MaxIdentityLen {
		return id, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxIdentityLen)
	}
	h = trimLWS(h)
	jws, params, _ := strings.Cut(h, ";")
	jws = trimLWS(jws)
	if jws == "" {
		return id, fmt.Errorf("%w: no PASSporT", ErrMalformed)
	}
	header, rest, ok1 := strings.Cut(jws, ".")
	claims, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 {
		return id, fmt.Errorf("%w: PASSporT is not three dot-separated parts", ErrMalformed)
	}
	if sig == "" || !isBase64URL(sig) {
		return id, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	if header == "" || claims == "" {
		return id, ErrCompactForm
	}
	if !isBase64URL(header) || !isBase64URL(claims) {
		return id, fmt.Errorf("%w: PASSporT is not base64url", ErrMalformed)
	}
	id.JWS = jws
	for params != "" {
		var p string
		p, params = cutParam(params)
		p = trimLWS(p)
		if p == "" {
			continue
		}
		name, value, _ := strings.Cut(p, "=")
		name, value = trimLWS(name), trimLWS(value)
		switch {
		case strings.EqualFold(name, "info"):
			if id.Info != "" {
				return id, fmt.Errorf("%w: info parameter repeated", ErrMalformed)
			}
			if len(value) < 2 || value[0] != '<' || value[len(value)-1] != '>' {
				return id, fmt.Errorf("%w: info parameter is not <URI>", ErrMalformed)
			}
			id.Info = trimLWS(value[1 : len(value)-1])
			if id.Info == "" {
				return id, fmt.Errorf("%w: empty info URI", ErrMalformed)
			}
		case strings.EqualFold(name, "alg"):
			id.Alg = unquote(value)
		case strings.EqualFold(name, "ppt"):
			id.PPT = unquote(value)
		}
	}
	return id, nil
}

// indexOutside returns the index of the first sep in s outside <...> and
// "..." (with backslash escapes in quotes), or -1.
func indexOutside(s string, sep byte) int {
	angle, quote := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote:
			if c == '\\' {
				i++
			} else if c == '"' {
				quote = false
			}
		case c == '"':
			quote = true
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == sep && !angle:
			return i
		}
	}
	return -1
}

// cutParam returns the text up to the next ';' outside <...> and "...".
func cutParam(s string) (param, rest string) {
	if i := indexOutside(s, ';'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// splitValues splits a header line that joins several Identity values with
// commas (RFC 3261 section 7.3.1) at the commas outside <...> and "...",
// appending the non-empty values to dst.
func splitValues(dst []string, s string) []string {
	for {
		i := indexOutside(s, ',')
		if i < 0 {
			break
		}
		if v := trimLWS(s[:i]); v != "" {
			dst = append(dst, v)
		}
		s = s[i+1:]
	}
	if v := trimLWS(s); v != "" {
		dst = append(dst, v)
	}
	return dst
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func trimLWS(s string) string {
	for len(s) > 0 && isLWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isLWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
