package screen

import "strings"

// Verstat values after normalisation.
const (
	VerstatNone     = ""
	VerstatPassed   = "tn-validation-passed"
	VerstatPassedA  = "tn-validation-passed-a"
	VerstatPassedB  = "tn-validation-passed-b"
	VerstatPassedC  = "tn-validation-passed-c"
	VerstatFailed   = "tn-validation-failed"
	VerstatNoVerify = "no-tn-validation"
)

// NormaliseVerstat maps the spellings carriers use for the verstat
// parameter (case, '_' or ' ' for '-', a "verstat=" prefix, quotes, a
// trailing -A/-B/-C attestation on failures) to one of the Verstat values.
// Unknown values return "".
func NormaliseVerstat(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.Index(v, "verstat="); i >= 0 {
		v = v[i+len("verstat="):]
	}
	if i := strings.IndexAny(v, ";>,"); i >= 0 {
		v = v[:i]
	}
	v = strings.Trim(v, "\" ")
	v = strings.NewReplacer("_", "-", " ", "-").Replace(v)
	switch v {
	case VerstatPassed, VerstatPassedA, VerstatPassedB, VerstatPassedC, VerstatNoVerify:
		return v
	case "tn-validation-failed", "tn-validation-failed-a", "tn-validation-failed-b", "tn-validation-failed-c":
		return VerstatFailed
	case "tn-validation-passed-u":
		return VerstatPassed
	}
	return VerstatNone
}

// verstat reads the carrier's verification result.
func (ev *eval) verstat() {
	raw := ev.c.Signalling.Verstat
	if raw == "" || ev.has("shaken.verified_a") || ev.has("shaken.verified_b") || ev.has("shaken.verified_c") {
		return // our own verification says the same, more strongly
	}
	switch NormaliseVerstat(raw) {
	case VerstatPassedA:
		ev.add("verstat.passed_a", "carrier verified, attestation A")
	case VerstatPassed, VerstatPassedB:
		ev.add("verstat.passed", "carrier verified")
	case VerstatPassedC:
		ev.add("verstat.passed_c", "carrier verified, attestation C")
	case VerstatFailed:
		ev.add("verstat.failed", "carrier verification failed")
	case VerstatNoVerify:
		ev.add("verstat.none", "carrier did not verify")
	}
}
