// Package stir verifies STIR/SHAKEN caller attestation: the Identity header
// fields of a SIP INVITE (RFC 8224), the PASSporTs they carry (RFC 8225,
// RFC 8588 shaken, RFC 8946 div) and the STI certificates that signed them
// (RFC 8226, ATIS-1000080).
//
// A Verifier checks the Identity values of one call and returns a Result:
// Verified with the attestation (A, B, C), Failed with coded Reasons, each
// carrying the SIP cause a verification service returns (403, 436, 437, 438;
// RFC 9410 Reason header values from Result.ReasonHeaders), Unverified when
// the signing certificate is not cached yet, or Absent. Verify never blocks
// on the network: certificates named by x5u are fetched in the background
// (https only, size and time limits), cached by URL with Cache-Control
// max-age, a bounded size and negative caching, and the call that triggered
// the fetch is Unverified; the next call finds the certificate cached.
//
// CheckCertificate, CheckChain and ParseTNAuthList are usable on their own,
// to lint STI certificates. The JWS verification is written here over
// crypto/ecdsa: PASSporTs are ES256 only, and a general JWT library would
// add algorithm negotiation to disable, not capability.
//
// docs/stir.md lists the reason codes, what is verified and what is
// simplified.
package stir
