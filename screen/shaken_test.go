package screen_test

import (
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/stir"
)

// fakeShaken is a ShakenVerifier whose answer is spelled in the Identity
// header itself: "fake;verified;A", "fake;unverified", or
// "fake;failed;CODE[;warning]". The stir package tests the real
// verification against real certificates; these tests check how the engine
// turns results into markers.
type fakeShaken struct{}

func (fakeShaken) Verify(identity []string, orig, dest string, at time.Time) stir.Result {
	f := strings.Split(identity[0], ";")
	if len(f) < 2 || f[0] != "fake" {
		return stir.Result{Status: stir.Failed, Reasons: []stir.Reason{{Code: stir.CodeMalformed, Severity: stir.Fatal, Text: "not a PASSporT"}}}
	}
	switch f[1] {
	case "verified":
		return stir.Result{Status: stir.Verified, Attest: f[2]}
	case "unverified":
		return stir.Result{Status: stir.Unverified}
	}
	sev := stir.Fatal
	if len(f) > 3 && f[3] == "warning" {
		sev = stir.Warning
	}
	return stir.Result{Status: stir.Failed, Reasons: []stir.Reason{{Code: stir.Code(f[2]), Severity: sev, Text: "finding " + f[2]}}}
}

func identity(h ...string) opt { return func(c *call.Call) { c.Signalling.Identity = h } }

func init() {
	idc := func(code, name string, fire bool, h string, opts ...opt) markerCase {
		return markerCase{code, name, fire, "", func(f *fixture) *call.Call {
			return f.call(homeMobile, dialled, append([]opt{identity(h)}, opts...)...)
		}}
	}
	markerCases = append(markerCases,
		idc("shaken.verified_a", "attestation A", true, "fake;verified;A"),
		idc("shaken.verified_a", "attestation B", false, "fake;verified;B"),
		idc("shaken.verified_b", "attestation B", true, "fake;verified;B"),
		idc("shaken.verified_c", "attestation C", true, "fake;verified;C"),
		idc("shaken.unverified", "certificate being fetched", true, "fake;unverified"),
		idc("shaken.failed_signature", "bad signature", true, "fake;failed;bad_signature"),
		idc("shaken.orig_mismatch", "orig mismatch", true, "fake;failed;orig_mismatch"),
		idc("shaken.dest_mismatch", "dest mismatch", true, "fake;failed;dest_mismatch"),
		idc("shaken.dest_mismatch", "diversion chain broken", true, "fake;failed;div_mismatch"),
		idc("shaken.stale", "stale iat", true, "fake;failed;stale_iat"),
		idc("shaken.untrusted", "untrusted certificate", true, "fake;failed;untrusted_cert"),
		idc("shaken.untrusted", "profile finding as a warning only", false, "fake;failed;cert_policies;warning"),
		idc("shaken.malformed", "compact form", true, "fake;failed;compact_form"),
		idc("shaken.cert_unavailable", "x5u fetch failed", true, "fake;failed;fetch_failed"),
		markerCase{"shaken.verified_a", "no Identity header: no verification", false, "", func(f *fixture) *call.Call {
			return f.call(homeMobile, dialled)
		}},
		idc("verstat.passed_a", "carrier verstat not counted beside our own verification", false, "fake;verified;A", verstat("TN-Validation-Passed-A")),
		idc("link.known_customer", "suppressed by a failed signature", false, "fake;failed;bad_signature", user("cust-1")),
	)
}
