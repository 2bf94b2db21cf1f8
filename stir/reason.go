package stir

import (
	"strconv"
	"strings"
)

// Code is the stable identifier of one verification finding. Codes are part
// of the API: a code is never renamed, reused or given another meaning.
// docs/stir.md lists them with their SIP causes.
type Code string

// Verification codes: the Identity header and the PASSporT.
const (
	// CodeMalformed: the Identity header or the PASSporT cannot be decoded,
	// or a required claim is missing or has the wrong type (438).
	CodeMalformed Code = "malformed"
	// CodeCompactForm: the PASSporT is in compact form ("..signature"); its
	// claims would have to be rebuilt from the SIP request, which this
	// verifier does not do (438).
	CodeCompactForm Code = "compact_form"
	// CodeUnsupportedAlg: alg is not ES256, in the header parameter or the
	// JWS header (437).
	CodeUnsupportedAlg Code = "unsupported_alg"
	// CodeUnsupportedPPT: a PASSporT type this verifier does not know
	// (neither shaken nor div). Reported and ignored; never fatal.
	CodeUnsupportedPPT Code = "unsupported_ppt"
	// CodeBadSignature: the ES256 signature does not verify with the key of
	// the certificate named by x5u (438).
	CodeBadSignature Code = "bad_signature"
	// CodeStaleIat: iat is further from the call's start than the freshness
	// window, in the past or the future (403 Stale Date).
	CodeStaleIat Code = "stale_iat"
	// CodeOrigMismatch: orig.tn differs from the caller's number (438).
	CodeOrigMismatch Code = "orig_mismatch"
	// CodeDestMismatch: the dialled number is not in dest.tn, directly or
	// through a div PASSporT chain (438).
	CodeDestMismatch Code = "dest_mismatch"
	// CodeNonstandardTN: orig or dest is not the RFC 8225 object: a JSON
	// string wrapping the object (libstirshaken), or a bare string where an
	// array belongs. Fatal for the string-wrapped object (438).
	CodeNonstandardTN Code = "nonstandard_tn"
	// CodeDivMismatch: a div PASSporT whose div claim does not continue the
	// diversion chain from the shaken PASSporT's dest (438).
	CodeDivMismatch Code = "div_mismatch"
	// CodeInfoMismatch: the header's info parameter is absent or differs
	// from the PASSporT's x5u; x5u is used (438 when they differ).
	CodeInfoMismatch Code = "info_mismatch"
	// CodeInsecureX5U: x5u is not an https URL (http only when allowed by
	// Config.AllowHTTP); nothing is fetched (436).
	CodeInsecureX5U Code = "insecure_x5u"
	// CodeFetchFailed: the certificate could not be fetched or parsed; the
	// failure is cached for Config.NegativeTTL (436).
	CodeFetchFailed Code = "fetch_failed"
	// CodeCertPending: the certificate is not cached yet; a background
	// fetch was started. No SIP cause: the call is Unverified, not failed.
	CodeCertPending Code = "cert_pending"
	// CodeUntrustedCert: the certificate does not chain to a configured
	// STI-CA root (437).
	CodeUntrustedCert Code = "untrusted_cert"
)

// Certificate profile codes (ATIS-1000080, RFC 8226): CheckCertificate
// reports them and Verify reports them for the signing certificate. All
// start with "cert_"; see Code.Certificate. Their SIP cause is 437.
const (
	// CodeCertValidity: the certificate (or its chain) is not valid at the
	// call's start.
	CodeCertValidity Code = "cert_validity"
	// CodeCertKey: the subject key is not ECDSA P-256.
	CodeCertKey Code = "cert_key"
	// CodeCertSigAlg: the certificate is not signed with ecdsa-with-SHA256.
	CodeCertSigAlg Code = "cert_sig_alg"
	// CodeCertVersion: not an X.509 v3 certificate.
	CodeCertVersion Code = "cert_version"
	// CodeCertTNAuthList: the TNAuthList extension (1.3.6.1.5.5.7.1.26) is
	// missing, critical, undecodable, without exactly one SPC entry, or on a
	// CA certificate; or its SPC is not digits and capital letters.
	CodeCertTNAuthList Code = "cert_tnauthlist"
	// CodeCertBasicConstraints: basic constraints missing, not critical, or
	// with the wrong CA flag for the certificate's role.
	CodeCertBasicConstraints Code = "cert_basic_constraints"
	// CodeCertKeyUsage: key usage missing, not critical, without the bit the
	// role needs (digitalSignature for an end entity, keyCertSign for a CA),
	// with other bits, or not DER-encoded (trailing zero bits).
	CodeCertKeyUsage Code = "cert_key_usage"
	// CodeCertPolicies: certificate policies missing (end entity or
	// intermediate), critical, not exactly one OID, not under the SHAKEN
	// arc 2.16.840.1.114569.1.1, or present on a root.
	CodeCertPolicies Code = "cert_policies"
	// CodeCertExtension: an extension ATIS-1000080 does not specify.
	CodeCertExtension Code = "cert_extension"
	// CodeCertSubject: the subject name lacks, repeats or misformats a
	// required attribute (CN, O, C; for an end entity also serialNumber),
	// has an e-mail address, is empty, or its CN does not name the role
	// ("SHAKEN <SPC>" for an end entity, "SHAKEN" in a CA's).
	CodeCertSubject Code = "cert_subject"
	// CodeCertIssuer: the issuer name lacks CN, O or C.
	CodeCertIssuer Code = "cert_issuer"
	// CodeCertSerial: the serial number has fewer than 64 bits or more than
	// 20 octets.
	CodeCertSerial Code = "cert_serial"
	// CodeCertSKI: the subject key identifier is missing or not 20 bytes
	// (the SHA-1 of the key).
	CodeCertSKI Code = "cert_ski"
	// CodeCertAKI: the authority key identifier is missing, has no key
	// identifier, or (on a root) differs from the subject key identifier.
	CodeCertAKI Code = "cert_aki"
	// CodeCertCRL: CRL distribution points missing (end entity,
	// intermediate), present on a root, not a single http(s) URL, or not
	// on a known STI-PA CRL host.
	CodeCertCRL Code = "cert_crl"
)

// Certificate reports whether c is a certificate profile code (cert_*).
func (c Code) Certificate() bool { return strings.HasPrefix(string(c), "cert_") }

// Severity says whether a finding fails verification.
type Severity uint8

const (
	// Fatal findings make the PASSporT Failed.
	Fatal Severity = iota
	// Warning findings are reported but leave a PASSporT verifiable: a
	// deviation from a profile that does not weaken the signature (most
	// production STI certificates have some; see docs/stir.md).
	Warning
)

// String returns "fatal" or "warning".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "fatal"
}

// MarshalText encodes the severity as its String.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes "fatal" or "warning".
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "warning":
		*s = Warning
	default:
		*s = Fatal
	}
	return nil
}

// SIP response codes a STIR verification service uses for its findings
// (RFC 8224 section 13; RFC 9410 carries them in a Reason header field).
const (
	CauseStaleDate             = 403 // "Stale Date"
	CauseBadIdentityInfo       = 436 // "Bad Identity Info"
	CauseUnsupportedCredential = 437 // "Unsupported Credential"
	CauseInvalidIdentityHeader = 438 // "Invalid Identity Header"
)

// CauseText is the reason phrase of a STIR SIP cause, "" for others.
func CauseText(cause int) string {
	switch cause {
	case CauseStaleDate:
		return "Stale Date"
	case CauseBadIdentityInfo:
		return "Bad Identity Info"
	case CauseUnsupportedCredential:
		return "Unsupported Credential"
	case CauseInvalidIdentityHeader:
		return "Invalid Identity Header"
	}
	return ""
}

// causeOf is the SIP cause of each code; 0 means none (not an error a
// verifier returns).
func causeOf(c Code) int {
	switch c {
	case CodeStaleIat:
		return CauseStaleDate
	case CodeInsecureX5U, CodeFetchFailed:
		return CauseBadIdentityInfo
	case CodeUnsupportedAlg, CodeUntrustedCert:
		return CauseUnsupportedCredential
	case CodeMalformed, CodeCompactForm, CodeBadSignature, CodeOrigMismatch,
		CodeDestMismatch, CodeNonstandardTN, CodeDivMismatch, CodeInfoMismatch:
		return CauseInvalidIdentityHeader
	case CodeUnsupportedPPT, CodeCertPending:
		return 0
	}
	if c.Certificate() {
		return CauseUnsupportedCredential
	}
	return 0
}

// Reason is one finding about one Identity header (a PASSporT) or one
// certificate. Text is for people and never contains a phone number.
type Reason struct {
	Code     Code     `json:"code"`
	Severity Severity `json:"severity"`
	// Cause is the SIP status a verifier returns for it (403, 436, 437,
	// 438), 0 when none applies.
	Cause int    `json:"cause,omitempty"`
	Text  string `json:"text"`
	// Passport is the index in Result.Passports of the PASSporT concerned
	// (the Identity header value, in order). -1 for CheckCertificate.
	Passport int `json:"passport"`
}

func fatal(c Code, text string) Reason {
	return Reason{Code: c, Severity: Fatal, Cause: causeOf(c), Text: text, Passport: -1}
}

func warn(c Code, text string) Reason {
	return Reason{Code: c, Severity: Warning, Cause: causeOf(c), Text: text, Passport: -1}
}

// String is one line: code, severity and text.
func (r Reason) String() string {
	return string(r.Code) + " (" + r.Severity.String() + "): " + r.Text
}

// ReasonHeader renders the RFC 9410 Reason header field value for a cause,
// naming the failed PASSporT by its compact form ("..signature") in the ppi
// parameter when sig is not empty:
//
//	STIR ;cause=438 ;text="Invalid Identity Header" ;ppi="..c2ln"
func ReasonHeader(cause int, sig string) string {
	var b strings.Builder
	b.WriteString("STIR ;cause=")
	b.WriteString(strconv.Itoa(cause))
	if t := CauseText(cause); t != "" {
		b.WriteString(` ;text="`)
		b.WriteString(t)
		b.WriteByte('"')
	}
	if sig != "" && isBase64URL(sig) {
		b.WriteString(` ;ppi="..`)
		b.WriteString(sig)
		b.WriteByte('"')
	}
	return b.String()
}
