package numbering

import (
	"net/url"
	"strings"
)

// HeaderNumber extracts the telephone number from a SIP identity header
// value (From, To, P-Asserted-Identity) or URI: the user part of a sip: or
// sips: URI, or the number of a tel: URI, without parameters. A display
// name, angle brackets and header parameters are skipped. It returns
// "anonymous" for an anonymous identity and "" when there is no user part.
func HeaderNumber(v string) string {
	if s := strings.TrimSpace(v); strings.HasPrefix(s, `"`) {
		// A quoted display name may hold '<', '@' or ';': skip it.
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				v = s[i+1:]
				break
			}
		}
	}
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	} else if i := strings.IndexByte(v, ';'); i >= 0 && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), "tel:") {
		v = v[:i] // header params of a bare URI
	}
	v = strings.TrimSpace(v)
	lower := strings.ToLower(v)
	switch {
	case strings.HasPrefix(lower, "tel:"):
		v = v[4:]
		if i := strings.IndexByte(v, ';'); i >= 0 {
			v = v[:i]
		}
		return v
	case strings.HasPrefix(lower, "sip:"):
		v = v[4:]
	case strings.HasPrefix(lower, "sips:"):
		v = v[5:]
	default:
		return v
	}
	at := strings.IndexByte(v, '@')
	if at < 0 {
		return ""
	}
	user := v[:at]
	if i := strings.IndexByte(user, ';'); i >= 0 { // user parameters (RFC 4694 npdi etc.)
		user = user[:i]
	}
	if i := strings.IndexByte(user, ':'); i >= 0 { // user:password
		user = user[:i]
	}
	if strings.IndexByte(user, '%') >= 0 { // escaped characters, e.g. %2B for '+'
		if u, err := url.PathUnescape(user); err == nil {
			user = u
		}
	}
	if strings.EqualFold(user, "anonymous") {
		return "anonymous"
	}
	return user
}
