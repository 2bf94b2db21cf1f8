package screen

import (
	"strings"

	"github.com/ringfence/ringfence/numbering"
)

// identity compares the identities the signalling asserts.
func (ev *eval) identity() {
	s := &ev.c.Signalling
	ev.t.mu.RLock() // SetTenant may replace info
	region := ev.t.info.Region
	ev.t.mu.RUnlock()
	var pai string
	for i, h := range s.PAI {
		n := ev.e.norm.Number(numbering.HeaderNumber(h), region).E164
		if i == 0 {
			pai = n
		} else if n != pai {
			ev.add("identity.multiple_pai", "P-Asserted-Identity headers name different numbers")
			break
		}
	}
	if s.From != "" && pai != "" {
		from := ev.e.norm.Number(numbering.HeaderNumber(s.From), region)
		if from.Present() && from.E164 != pai { // a From without a number (sip:alice@pbx) is no claim
			ev.add("identity.from_pai_mismatch", "From and P-Asserted-Identity differ")
		}
	}
	if privacyHides(s.Privacy) && !ev.c.Caller.Withheld { // a withheld CLI already says so
		ev.add("identity.privacy", "Privacy: "+s.Privacy)
	}
}

// privacyHides reports whether a Privacy header value (RFC 3323/3325) asks to
// hide the identity.
func privacyHides(v string) bool {
	for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		switch strings.ToLower(p) {
		case "id", "header", "user":
			return true
		}
	}
	return false
}
