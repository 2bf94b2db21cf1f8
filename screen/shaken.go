package screen

import (
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/stir"
)

// ShakenVerifier checks a call's Identity headers (STIR/SHAKEN). It must
// never block on the network: *stir.Verifier answers from its certificate
// cache and fetches in the background.
type ShakenVerifier interface {
	Verify(identity []string, orig, dest string, at time.Time) stir.Result
}

// shakenMarker maps a fatal stir finding to its marker code.
var shakenMarker = map[stir.Code]string{
	stir.CodeBadSignature:         "shaken.failed_signature",
	stir.CodeOrigMismatch:         "shaken.orig_mismatch",
	stir.CodeDestMismatch:         "shaken.dest_mismatch",
	stir.CodeDivMismatch:          "shaken.dest_mismatch",
	stir.CodeStaleIat:             "shaken.stale",
	stir.CodeUntrustedCert:        "shaken.untrusted",
	stir.CodeCertValidity:         "shaken.untrusted",
	stir.CodeCertKey:              "shaken.untrusted",
	stir.CodeCertSigAlg:           "shaken.untrusted",
	stir.CodeCertVersion:          "shaken.untrusted",
	stir.CodeCertTNAuthList:       "shaken.untrusted",
	stir.CodeCertBasicConstraints: "shaken.untrusted",
	stir.CodeCertKeyUsage:         "shaken.untrusted",
	stir.CodeCertPolicies:         "shaken.untrusted",
	stir.CodeCertExtension:        "shaken.untrusted",
	stir.CodeMalformed:            "shaken.malformed",
	stir.CodeCompactForm:          "shaken.malformed",
	stir.CodeUnsupportedAlg:       "shaken.malformed",
	stir.CodeNonstandardTN:        "shaken.malformed",
	stir.CodeInfoMismatch:         "shaken.malformed",
	stir.CodeFetchFailed:          "shaken.cert_unavailable",
	stir.CodeInsecureX5U:          "shaken.cert_unavailable",
}

// shaken verifies the PASSporTs the call carries, only when it carries one
// and a verifier is configured.
func (ev *eval) shaken() {
	v := ev.e.cfg.Shaken
	c := ev.c
	if v == nil || len(c.Signalling.Identity) == 0 {
		return
	}
	r := v.Verify(c.Signalling.Identity, c.Caller.E164, c.Dialled.E164, c.StartedAt)
	ev.stir = summarise(r)
	switch r.Status {
	case stir.Verified:
		switch r.Attest {
		case "A":
			ev.add("shaken.verified_a", "PASSporT verified, attestation A")
		case "B":
			ev.add("shaken.verified_b", "PASSporT verified, attestation B")
		default:
			ev.add("shaken.verified_c", "PASSporT verified, attestation "+r.Attest)
		}
	case stir.Unverified:
		ev.add("shaken.unverified", "signing certificate not cached yet; fetching")
	case stir.Failed:
		for _, reason := range r.Reasons {
			if code, ok := shakenMarker[reason.Code]; ok && reason.Severity == stir.Fatal && !ev.has(code) {
				ev.add(code, reason.Text)
			}
		}
	}
}

// summarise keeps what the call record needs of a stir.Result.
func summarise(r stir.Result) *call.Shaken {
	s := &call.Shaken{Status: string(r.Status), Attest: r.Attest, OrigID: r.OrigID}
	for _, reason := range r.Reasons {
		s.Reasons = append(s.Reasons, call.ShakenReason{Code: string(reason.Code), Fatal: reason.Severity == stir.Fatal, Cause: reason.Cause, Text: reason.Text})
	}
	return s
}
