package sipfront

import (
	"net/netip"
	"strings"
	"time"
)

// This file holds the RFC 3261 (section 25) grammar checks and field
// extractors that both paths share. They work on header values as strings:
// on the fast path those are views of the datagram, on the sipgo path the
// values sipgo parsed (and, for the headers it knows, re-serialised). The
// checks return "" when the value is acceptable or a short fixed phrase for
// the Warning header otherwise; the phrase never quotes the input, which
// can hold a phone number.

var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-.!%*_+`'~" {
		t[c] = true
	}
	return t
}()

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' }

func skipLWS(s string, i int) int {
	for i < len(s) && isLWS(s[i]) {
		i++
	}
	return i
}

func trimLWS(s string) string {
	i, j := 0, len(s)
	for i < j && isLWS(s[i]) {
		i++
	}
	for j > i && isLWS(s[j-1]) {
		j--
	}
	return s[i:j]
}

// skipQuoted returns the index just past the quoted string starting at
// s[i] == '"', and false if it is not terminated.
func skipQuoted(s string, i int) (int, bool) {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return len(s), false
}

// splitList calls f with each top-level comma-separated element of a header
// value (commas inside quoted strings and <...> do not split). It stops
// early when f returns false.
func splitList(v string, f func(elem string) bool) {
	start, angle := 0, false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			j, _ := skipQuoted(v, i)
			i = j - 1
		case '<':
			angle = true
		case '>':
			angle = false
		case ',':
			if !angle {
				if !f(v[start:i]) {
					return
				}
				start = i + 1
			}
		}
	}
	f(v[start:])
}

// checkAddress checks one From, To or Contact element: a name-addr or an
// addr-spec followed by header parameters.
func checkAddress(v string) string {
	i := skipLWS(v, 0)
	switch lt := strings.IndexByte(v[i:], '<'); {
	case i < len(v) && v[i] == '"':
		j, ok := skipQuoted(v, i)
		if !ok {
			return "unterminated quoted string in display name"
		}
		i = skipLWS(v, j)
		if i >= len(v) || v[i] != '<' {
			return "display name not followed by <URI>"
		}
	case lt >= 0:
		for k := i; k < i+lt; k++ { // display-name = *(token LWS)
			if !tokenChars[v[k]] && !isLWS(v[k]) {
				return "display name is neither tokens nor a quoted string"
			}
		}
		i += lt
	default: // addr-spec: the URI ends at the first ';' or LWS
		end := i
		for end < len(v) && v[end] != ';' && !isLWS(v[end]) {
			end++
		}
		uri := v[i:end]
		if p := checkURI(uri); p != "" {
			return p
		}
		if strings.ContainsAny(uri, "?,") {
			return "URI with '?' or ',' not enclosed in <>"
		}
		return checkParams(v[end:])
	}
	gt := strings.IndexByte(v[i+1:], '>')
	if gt < 0 {
		return "'<' without '>'"
	}
	if p := checkURI(v[i+1 : i+1+gt]); p != "" {
		return p
	}
	return checkParams(v[i+2+gt:])
}

// checkAddressList checks a Contact value: "*" or a list of addresses.
func checkAddressList(v string) string {
	if trimLWS(v) == "*" {
		return ""
	}
	if strings.IndexByte(v, ',') < 0 {
		if trimLWS(v) == "" {
			return "empty element in list"
		}
		return checkAddress(v)
	}
	problem := ""
	splitList(v, func(e string) bool {
		if trimLWS(e) == "" {
			problem = "empty element in list"
		} else {
			problem = checkAddress(e)
		}
		return problem == ""
	})
	return problem
}

// checkParams checks a run of generic parameters: *( SEMI token [ EQUAL
// value ] ), LWS allowed around the separators.
func checkParams(s string) string {
	i := 0
	for {
		i = skipLWS(s, i)
		if i == len(s) {
			return ""
		}
		if s[i] != ';' {
			return "unexpected characters after the address"
		}
		i = skipLWS(s, i+1)
		j := i
		for j < len(s) && tokenChars[s[j]] {
			j++
		}
		if j == i {
			return "empty or malformed parameter"
		}
		i = skipLWS(s, j)
		if i == len(s) || s[i] != '=' {
			continue
		}
		i = skipLWS(s, i+1)
		switch j = i; {
		case j < len(s) && s[j] == '"':
			var ok bool
			if j, ok = skipQuoted(s, j); !ok {
				return "unterminated quoted parameter value"
			}
		default: // token, host (IPv6 references included)
			for j < len(s) && (tokenChars[s[j]] || s[j] == ':' || s[j] == '[' || s[j] == ']') {
				j++
			}
		}
		if j == i {
			return "parameter without a value after '='"
		}
		i = j
	}
}

var notInURI = func() (t [256]bool) {
	for c := 0; c <= ' '; c++ {
		t[c] = true
	}
	t[0x7f], t['<'], t['>'], t['"'] = true, true, true, true
	return t
}()

// uriScheme returns the scheme of u, "" if u does not start with one.
func uriScheme(u string) string {
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return u[:i]
		default:
			return ""
		}
	}
	return ""
}

// isSIPScheme reports whether scheme is sip or sips.
func isSIPScheme(scheme string) bool {
	return strings.EqualFold(scheme, "sip") || strings.EqualFold(scheme, "sips")
}

// checkURI checks the shape of a URI: a scheme, then no whitespace, control
// characters, '<', '>' or '"'; for sip and sips a user part (if any) and a
// host that is a name, an IPv4 address or a valid IPv6 reference, with an
// optional port.
func checkURI(u string) string {
	scheme := uriScheme(u)
	if scheme == "" || len(u) == len(scheme)+1 {
		return "not a URI"
	}
	for i := 0; i < len(u); i++ {
		if notInURI[u[i]] {
			return "whitespace or a delimiter inside a URI"
		}
	}
	if !isSIPScheme(scheme) {
		return ""
	}
	rest := u[len(scheme)+1:]
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		if at == 0 {
			return "empty user part in a SIP URI"
		}
		rest = rest[at+1:]
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	return checkHostPort(rest)
}

// checkHostPort checks host [ ":" port ].
func checkHostPort(hp string) string {
	host, port := hp, ""
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "unterminated IPv6 reference"
		}
		if a, err := netip.ParseAddr(hp[1:end]); err != nil || !a.Is6() || a.Zone() != "" {
			return "invalid IPv6 reference"
		}
		host, port = "", hp[end+1:]
		if port != "" && port[0] != ':' {
			return "characters after an IPv6 reference"
		}
	} else if i := strings.IndexByte(hp, ':'); i >= 0 {
		host, port = hp[:i], hp[i:]
	}
	if port != "" {
		port = port[1:]
		if len(port) == 0 || len(port) > 5 {
			return "invalid port"
		}
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return "invalid port"
			}
		}
	}
	if strings.HasPrefix(hp, "[") {
		return ""
	}
	if host == "" {
		return "empty host"
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "invalid host"
		}
	}
	return ""
}

// checkVia checks a Via value: one or more comma-separated via-parms, each
// sent-protocol LWS sent-by *( SEMI via-params ).
func checkVia(v string) string {
	if strings.IndexByte(v, ',') < 0 {
		return checkViaParm(v)
	}
	problem := ""
	splitList(v, func(e string) bool {
		problem = checkViaParm(e)
		return problem == ""
	})
	return problem
}

func checkViaParm(v string) string {
	i := skipLWS(v, 0)
	for part := 0; part < 3; part++ { // protocol-name SLASH version SLASH transport
		j := i
		for j < len(v) && tokenChars[v[j]] {
			j++
		}
		if j == i {
			return "malformed sent-protocol in Via"
		}
		i = skipLWS(v, j)
		if part < 2 {
			if i == len(v) || v[i] != '/' {
				return "malformed sent-protocol in Via"
			}
			i = skipLWS(v, i+1)
		}
	}
	if i == 0 || !isLWS(v[i-1]) {
		return "missing sent-by in Via"
	}
	j := i
	for j < len(v) && v[j] != ';' && !isLWS(v[j]) && v[j] != ':' {
		if v[j] == '[' {
			if k := strings.IndexByte(v[j:], ']'); k > 0 {
				j += k
			}
		}
		j++
	}
	host, port := v[i:j], ""
	i = skipLWS(v, j)
	if i < len(v) && v[i] == ':' { // port, LWS allowed around the colon
		i = skipLWS(v, i+1)
		k := i
		for k < len(v) && v[k] >= '0' && v[k] <= '9' {
			k++
		}
		port, i = v[i:k], k
		if port == "" {
			return "invalid port in Via"
		}
	}
	if p := checkHostPort(host); p != "" {
		return p + " in Via"
	}
	if len(port) > 5 {
		return "invalid port in Via"
	}
	return checkParams(v[i:])
}

// param returns the value of the parameter name (case-insensitive) in a
// run of parameters such as ";tag=x;branch=y", and whether it is present.
// Values are returned without surrounding LWS or quotes.
func param(params, name string) (string, bool) {
	i := 0
	for i < len(params) {
		semi := strings.IndexByte(params[i:], ';')
		if semi < 0 {
			return "", false
		}
		i += semi + 1
		j := skipLWS(params, i)
		k := j
		for k < len(params) && tokenChars[params[k]] {
			k++
		}
		if !strings.EqualFold(params[j:k], name) {
			continue
		}
		k = skipLWS(params, k)
		if k == len(params) || params[k] != '=' {
			return "", true
		}
		k = skipLWS(params, k+1)
		if k < len(params) && params[k] == '"' {
			end, _ := skipQuoted(params, k)
			return strings.TrimSuffix(params[k+1:end], `"`), true
		}
		end := k
		for end < len(params) && params[end] != ';' && params[end] != ',' && !isLWS(params[end]) {
			end++
		}
		return params[k:end], true
	}
	return "", false
}

// addressParams returns the header parameters of a From, To or Contact
// element: what follows the '>' of a name-addr, or the first ';' of an
// addr-spec.
func addressParams(v string) string {
	i := skipLWS(v, 0)
	if i < len(v) && v[i] == '"' {
		i, _ = skipQuoted(v, i)
	}
	if lt := strings.IndexByte(v[i:], '<'); lt >= 0 {
		if gt := strings.IndexByte(v[i+lt:], '>'); gt >= 0 {
			return v[i+lt+gt+1:]
		}
		return ""
	}
	if semi := strings.IndexByte(v[i:], ';'); semi >= 0 {
		return v[i+semi:]
	}
	return ""
}

// addressURI returns the URI of a From, To or P-Asserted-Identity element.
func addressURI(v string) string {
	i := skipLWS(v, 0)
	if i < len(v) && v[i] == '"' {
		i, _ = skipQuoted(v, i)
	}
	if lt := strings.IndexByte(v[i:], '<'); lt >= 0 {
		u := v[i+lt+1:]
		if gt := strings.IndexByte(u, '>'); gt >= 0 {
			return u[:gt]
		}
		return u
	}
	u := v[i:]
	if semi := strings.IndexByte(u, ';'); semi >= 0 {
		u = u[:semi]
	}
	return trimLWS(u)
}

// tag returns the tag parameter of a From or To value.
func tag(v string) string {
	t, _ := param(addressParams(v), "tag")
	return t
}

// viaParts splits a single via-parm into its sent-by host and its
// parameters.
func viaParts(v string) (host, params string) {
	i := skipLWS(v, 0)
	for slashes := 0; i < len(v) && slashes < 2; i++ {
		if v[i] == '/' {
			slashes++
		}
	}
	i = skipLWS(v, i)
	for i < len(v) && tokenChars[v[i]] { // the transport
		i++
	}
	i = skipLWS(v, i)
	end := strings.IndexByte(v[i:], ';')
	if end < 0 {
		end = len(v) - i
	}
	hostport := trimLWS(v[i : i+end])
	params = v[i+end:]
	host = hostport
	if strings.HasPrefix(host, "[") {
		if k := strings.IndexByte(host, ']'); k >= 0 {
			host = host[:k+1]
		}
	} else if k := strings.IndexByte(host, ':'); k >= 0 {
		host = host[:k]
	}
	return trimLWS(host), params
}

// verstat returns the verstat parameter carried in a P-Asserted-Identity or
// From URI (carriers put it among the URI parameters, e.g.
// "<sip:+12015550123@carrier;verstat=TN-Validation-Passed;user=phone>").
func verstat(v string) string {
	u := addressURI(v)
	for i := 0; i+8 <= len(u); i++ {
		if u[i] != ';' && u[i] != '?' && u[i] != '&' {
			continue
		}
		j := skipLWS(u, i+1)
		if j+8 > len(u) || !strings.EqualFold(u[j:j+7], "verstat") {
			continue
		}
		k := skipLWS(u, j+7)
		if k >= len(u) || u[k] != '=' {
			continue
		}
		k = skipLWS(u, k+1)
		end := k
		for end < len(u) && u[end] != ';' && u[end] != '&' && u[end] != '?' && !isLWS(u[end]) {
			end++
		}
		return u[k:end]
	}
	return ""
}

// validDate reports whether a Date value is RFC 1123 in GMT, the only form
// RFC 3261 (20.17) allows.
func validDate(v string) bool {
	v = trimLWS(v)
	if !strings.HasSuffix(v, " GMT") {
		return false
	}
	_, err := time.Parse(time.RFC1123, v)
	return err == nil
}

// cseqParts splits a CSeq value into its number and method.
func cseqParts(v string) (num uint64, method string, ok bool) {
	v = trimLWS(v)
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		num = num*10 + uint64(v[i]-'0')
		if num > 1<<31-1 {
			return 0, "", false
		}
		i++
	}
	if i == 0 || i == len(v) || !isLWS(v[i]) {
		return 0, "", false
	}
	method = trimLWS(v[i:])
	return num, method, isToken(method)
}
