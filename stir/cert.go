package stir

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Object identifiers of the SHAKEN certificate profile.
var (
	// OIDTNAuthList is the TNAuthList extension (RFC 8226).
	OIDTNAuthList = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 26}
	// OIDShakenPolicies is the arc of the SHAKEN certificate policy OIDs
	// (2.16.840.1.114569.1.1.N for policy version 1.N).
	OIDShakenPolicies = asn1.ObjectIdentifier{2, 16, 840, 1, 114569, 1, 1}

	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidPolicies         = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidSKI              = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAKI              = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLDP            = asn1.ObjectIdentifier{2, 5, 29, 31}
)

// allowedExtensions are the extensions ATIS-1000080 specifies for STI
// certificates; any other is reported as cert_extension.
var allowedExtensions = []asn1.ObjectIdentifier{
	oidBasicConstraints, oidKeyUsage, oidPolicies, oidSKI, oidAKI, oidCRLDP, OIDTNAuthList,
}

// Role is a certificate's place in the STI PKI, which decides its profile.
type Role uint8

const (
	EndEntity    Role = iota // an STI-SP certificate that signs PASSporTs
	Intermediate             // an STI-CA intermediate
	Root                     // a self-issued STI-CA root
)

// String returns "end-entity", "intermediate" or "root".
func (r Role) String() string {
	switch r {
	case Intermediate:
		return "intermediate"
	case Root:
		return "root"
	}
	return "end-entity"
}

// RoleOf returns a certificate's role: a CA by its basic constraints, a root
// when it is also self-signed (subject equals issuer and its own key
// verifies its signature).
func RoleOf(c *x509.Certificate) Role {
	if !c.BasicConstraintsValid || !c.IsCA {
		return EndEntity
	}
	if bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil {
		return Root
	}
	return Intermediate
}

// CheckCertificate reports every defect of cert against the SHAKEN
// certificate profile of its role (ATIS-1000080 section 6.4.1, RFC 8226),
// each as a Reason with a cert_* code, Passport -1, in a fixed order: version,
// key, signature algorithm, basic constraints, key usage, policies,
// TNAuthList, subject and issuer names, serial number, key identifiers, CRL
// distribution points, unspecified extensions, then validity at at (skipped
// when at is zero). It returns nil for a conformant certificate.
//
// Severity separates what breaks trust in a PASSporT signature from what is
// only non-conformant: Fatal are a key that is not P-256 (P-384 is a
// warning for CAs, which SHAKEN CP 1.4 allows), an end entity that is a CA,
// an end entity without digitalSignature or a CA without keyCertSign, an end
// entity without a TNAuthList (not an STI certificate), and a certificate
// not valid at at. Everything else is a Warning, including a TNAuthList that
// cannot be decoded or holds no SPC, and every finding about names, serial
// numbers, key identifiers and CRL distribution points (see docs/stir.md).
func CheckCertificate(cert *x509.Certificate, at time.Time) []Reason {
	return CheckCertificateAs(cert, RoleOf(cert), at)
}

// CheckCertificateAs is CheckCertificate against the profile of role rather
// than the role the certificate claims: Verify checks a PASSporT's signing
// certificate as an EndEntity, so a CA certificate used to sign is Fatal.
func CheckCertificateAs(cert *x509.Certificate, role Role, at time.Time) []Reason {
	var out []Reason
	add := func(s Severity, c Code, format string, args ...any) {
		out = append(out, Reason{Code: c, Severity: s, Cause: causeOf(c), Text: fmt.Sprintf(format, args...), Passport: -1})
	}

	if cert.Version != 3 {
		add(Warning, CodeCertVersion, "X.509 version %d, not 3", cert.Version)
	}
	cpVersion := shakenPolicyVersion(cert)
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok {
		add(Fatal, CodeCertKey, "subject key is %s, not ECDSA P-256", cert.PublicKeyAlgorithm)
	} else if k.Curve != elliptic.P256() {
		// SHAKEN CP 1.4 lets CAs use P-384; PASSporTs are ES256 only.
		if role == EndEntity || k.Curve != elliptic.P384() {
			add(Fatal, CodeCertKey, "subject key is ECDSA %s, not P-256", k.Curve.Params().Name)
		} else if role == Intermediate && cpVersion < 4 {
			add(Warning, CodeCertKey, "CA key is ECDSA P-384, which needs SHAKEN CP 1.4 or later")
		}
	}
	switch cert.SignatureAlgorithm {
	case x509.ECDSAWithSHA256, x509.ECDSAWithSHA384: // SHA-384 with P-384 CAs (CP 1.4)
	default:
		add(Warning, CodeCertSigAlg, "signed with %s, not ecdsa-with-SHA256 (or SHA384)", cert.SignatureAlgorithm)
	}

	bc := findExt(cert, oidBasicConstraints)
	switch {
	case bc == nil:
		add(Warning, CodeCertBasicConstraints, "basic constraints extension missing")
	case role == EndEntity && cert.IsCA:
		add(Fatal, CodeCertBasicConstraints, "end-entity certificate has CA:TRUE")
	}
	if bc != nil && !bc.Critical {
		add(Warning, CodeCertBasicConstraints, "basic constraints not critical")
	}

	checkKeyUsage(cert, role, add)
	checkPolicies(cert, role, cpVersion, add)

	tn := findExt(cert, OIDTNAuthList)
	switch {
	case role != EndEntity && tn != nil:
		add(Warning, CodeCertTNAuthList, "%s certificate has a TNAuthList", role)
	case role == EndEntity && tn == nil:
		add(Fatal, CodeCertTNAuthList, "TNAuthList extension missing")
	case role == EndEntity:
		if tn.Critical {
			add(Warning, CodeCertTNAuthList, "TNAuthList extension is critical")
		}
		// A TNAuthList the CA got wrong does not weaken the signature (the
		// chain to an STI-CA does the vouching): a warning, like its format.
		list, err := ParseTNAuthList(tn.Value)
		switch {
		case err != nil:
			add(Warning, CodeCertTNAuthList, "TNAuthList cannot be decoded: %v", err)
		default:
			spc, n := "", 0
			for _, e := range list {
				if e.SPC != "" || e.Kind == TNEntrySPC {
					n++
					if spc == "" {
						spc = e.SPC
					}
				}
			}
			switch {
			case n == 0:
				add(Warning, CodeCertTNAuthList, "TNAuthList has no SPC entry")
			case spc == "":
				add(Warning, CodeCertTNAuthList, "TNAuthList SPC is empty")
			case len(list) != 1:
				add(Warning, CodeCertTNAuthList, "TNAuthList has %d entries, not a single SPC", len(list))
			}
			if spc != "" && !isSPC(spc) {
				add(Warning, CodeCertTNAuthList, "SPC %q is not only digits and capital letters", spc)
			}
			for _, e := range list {
				if e.Implicit {
					add(Warning, CodeCertTNAuthList, "TNAuthList SPC is implicitly tagged (RFC 8226 uses explicit tags)")
					break
				}
			}
		}
	}

	checkNames(cert, role, add)
	checkSerial(cert, add)
	checkKeyIdentifiers(cert, role, add)
	checkCRL(cert, role, add)

	var odd []string
	for _, e := range cert.Extensions {
		known := false
		for _, a := range allowedExtensions {
			if e.Id.Equal(a) {
				known = true
				break
			}
		}
		if !known {
			odd = append(odd, e.Id.String())
		}
	}
	if len(odd) > 0 && !cert.NotBefore.Before(atisV004Leaf) {
		add(Warning, CodeCertExtension, "extensions ATIS-1000080 does not specify: %s", strings.Join(odd, ", "))
	}

	if !at.IsZero() {
		switch {
		case at.Before(cert.NotBefore):
			add(Fatal, CodeCertValidity, "not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
		case at.After(cert.NotAfter):
			add(Fatal, CodeCertValidity, "expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return out
}

func checkKeyUsage(cert *x509.Certificate, role Role, add func(Severity, Code, string, ...any)) {
	ku := findExt(cert, oidKeyUsage)
	if ku == nil {
		if role == EndEntity {
			add(Warning, CodeCertKeyUsage, "key usage extension missing")
		} else {
			add(Warning, CodeCertKeyUsage, "key usage extension missing on a CA certificate")
		}
		return
	}
	if !ku.Critical {
		add(Warning, CodeCertKeyUsage, "key usage not critical")
	}
	if !derMinimalBits(ku.Value) {
		add(Warning, CodeCertKeyUsage, "key usage BIT STRING is not DER (trailing zero bits)")
	}
	switch role {
	case EndEntity:
		if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
			add(Fatal, CodeCertKeyUsage, "key usage lacks digitalSignature")
		}
		if other := cert.KeyUsage &^ x509.KeyUsageDigitalSignature; other != 0 {
			add(Warning, CodeCertKeyUsage, "key usage has %s besides digitalSignature", keyUsageNames(other))
		}
	default:
		if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
			add(Fatal, CodeCertKeyUsage, "CA key usage lacks keyCertSign")
		}
		allowed := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		if other := cert.KeyUsage &^ allowed; other != 0 {
			add(Warning, CodeCertKeyUsage, "CA key usage has %s", keyUsageNames(other))
		}
	}
}

// Dates from which certificates must follow later revisions of the profile
// (as the SHAKEN linters apply them: publication plus the 90 days CAs get,
// plus review time for policy changes).
var (
	// SHAKEN CP 1.3 (approved 2021-08-18): its policy OID for CA
	// certificates issued from then, for end-entity ones from 2022-01-10.
	cp13CA   = time.Date(2021, 8, 18, 0, 0, 0, 0, time.UTC)
	cp13Leaf = time.Date(2022, 1, 10, 0, 0, 0, 0, time.UTC)
	// ATIS-1000080 v004 (2021-10-18): no unspecified extensions, for
	// certificates issued from 2022-01-16.
	atisV004Leaf = time.Date(2022, 1, 16, 0, 0, 0, 0, time.UTC)
)

// shakenPolicyVersion returns N of the first SHAKEN policy OID
// 2.16.840.1.114569.1.1.N, 0 when there is none.
func shakenPolicyVersion(cert *x509.Certificate) int {
	arc := OIDShakenPolicies.String() + "."
	for _, id := range policyStrings(cert) {
		if rest, ok := strings.CutPrefix(id, arc); ok {
			if n, err := strconv.Atoi(rest); err == nil {
				return n
			}
		}
	}
	return 0
}

func checkPolicies(cert *x509.Certificate, role Role, cpVersion int, add func(Severity, Code, string, ...any)) {
	cp := findExt(cert, oidPolicies)
	if role == Root {
		if cp != nil {
			add(Warning, CodeCertPolicies, "root certificate has a certificate policies extension")
		}
		return
	}
	if cp == nil {
		add(Warning, CodeCertPolicies, "certificate policies extension missing")
		return
	}
	if cp.Critical {
		add(Warning, CodeCertPolicies, "certificate policies extension is critical")
	}
	ids := policyStrings(cert)
	if len(ids) != 1 {
		add(Warning, CodeCertPolicies, "%d policy OIDs, not exactly one", len(ids))
	}
	arc := OIDShakenPolicies.String() + "."
	for _, id := range ids {
		if !strings.HasPrefix(id, arc) || strings.Count(id, ".") != strings.Count(arc, ".") {
			add(Warning, CodeCertPolicies, "policy %s is not a SHAKEN certificate policy (%s*)", id, arc)
		}
	}
	since := cp13Leaf
	if role != EndEntity {
		since = cp13CA
	}
	if cpVersion > 0 && cpVersion < 3 && !cert.NotBefore.Before(since) {
		add(Warning, CodeCertPolicies, "SHAKEN CP 1.%d; certificates issued from %s carry CP 1.3 or later", cpVersion, since.Format("2006-01-02"))
	}
}

func policyStrings(cert *x509.Certificate) []string {
	if len(cert.Policies) > 0 {
		out := make([]string, len(cert.Policies))
		for i, p := range cert.Policies {
			out[i] = p.String()
		}
		return out
	}
	out := make([]string, len(cert.PolicyIdentifiers))
	for i, p := range cert.PolicyIdentifiers {
		out[i] = p.String()
	}
	return out
}

var keyUsageBits = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "nonRepudiation"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

func keyUsageNames(ku x509.KeyUsage) string {
	var names []string
	for _, b := range keyUsageBits {
		if ku&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return strings.Join(names, ", ")
}

// derMinimalBits reports whether a DER BIT STRING holding a named bit list
// has no trailing zero bits (X.690 section 11.2.2), as DER requires.
func derMinimalBits(ext []byte) bool {
	var bits asn1.BitString
	rest, err := asn1.Unmarshal(ext, &bits)
	if err != nil || len(rest) != 0 {
		return false
	}
	if len(bits.Bytes) == 0 {
		return true
	}
	unused := 8*len(bits.Bytes) - bits.BitLength
	last := bits.Bytes[len(bits.Bytes)-1]
	return last>>uint(unused)&1 == 1
}

func findExt(cert *x509.Certificate, oid asn1.ObjectIdentifier) *extension {
	for i := range cert.Extensions {
		if cert.Extensions[i].Id.Equal(oid) {
			e := cert.Extensions[i]
			return &extension{Critical: e.Critical, Value: e.Value}
		}
	}
	return nil
}

type extension struct {
	Critical bool
	Value    []byte
}

func isSPC(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// TNEntryKind is the choice of one TNAuthList entry (RFC 8226 section 9).
type TNEntryKind uint8

const (
	TNEntrySPC   TNEntryKind = iota // spc [0] ServiceProviderCode
	TNEntryRange                    // range [1] TelephoneNumberRange
	TNEntryOne                      // one [2] TelephoneNumber
)

// TNEntry is one entry of a TNAuthList. SPC is set for TNEntrySPC; ranges and
// single numbers are recognised but not decoded (SHAKEN uses only SPCs).
type TNEntry struct {
	Kind     TNEntryKind
	SPC      string
	Implicit bool // the SPC was implicitly tagged ([0] IMPLICIT IA5String)
}

// ParseTNAuthList decodes the value of a TNAuthList extension:
//
//	TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
//	TNEntry ::= CHOICE { spc [0] ServiceProviderCode, range [1] ..., one [2] ... }
//
// with RFC 8226's explicit tags (an implicitly tagged SPC is accepted and
// marked). It returns an error for anything else, including an empty list.
func ParseTNAuthList(der []byte) ([]TNEntry, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, fmt.Errorf("not DER: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing data after the list")
	}
	if seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, errors.New("not a SEQUENCE")
	}
	var out []TNEntry
	b := seq.Bytes
	for len(b) > 0 {
		var v asn1.RawValue
		b, err = asn1.Unmarshal(b, &v)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", len(out), err)
		}
		if v.Class != asn1.ClassContextSpecific {
			return nil, fmt.Errorf("entry %d is not a tagged TNEntry", len(out))
		}
		switch v.Tag {
		case 0:
			e := TNEntry{Kind: TNEntrySPC}
			if v.IsCompound {
				var s asn1.RawValue
				r, err := asn1.Unmarshal(v.Bytes, &s)
				if err != nil || len(r) != 0 || s.Class != asn1.ClassUniversal || s.Tag != asn1.TagIA5String {
					return nil, fmt.Errorf("entry %d: SPC is not an IA5String", len(out))
				}
				e.SPC = string(s.Bytes)
			} else {
				e.SPC, e.Implicit = string(v.Bytes), true
			}
			for i := 0; i < len(e.SPC); i++ {
				if e.SPC[i] >= 0x80 {
					return nil, fmt.Errorf("entry %d: SPC is not IA5", len(out))
				}
			}
			out = append(out, e)
		case 1:
			out = append(out, TNEntry{Kind: TNEntryRange})
		case 2:
			out = append(out, TNEntry{Kind: TNEntryOne})
		default:
			return nil, fmt.Errorf("entry %d has unknown tag [%d]", len(out), v.Tag)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// SPC returns the service provider code of a certificate's TNAuthList: the
// first SPC entry, "" when there is none or the extension cannot be decoded.
func SPC(cert *x509.Certificate) string {
	e := findExt(cert, OIDTNAuthList)
	if e == nil {
		return ""
	}
	list, err := ParseTNAuthList(e.Value)
	if err != nil {
		return ""
	}
	for _, t := range list {
		if t.Kind == TNEntrySPC {
			return t.SPC
		}
	}
	return ""
}

// CheckChain verifies that leaf chains through intermediates (which may be
// nil) to one of roots. It judges trust, not time: the chain is built at an
// instant inside leaf's validity, and the returned window is the
// intersection of the validity of the certificates on the chain found, for
// the caller to compare with the call's time. A nil roots pool trusts
// nothing. On failure it returns an untrusted_cert Reason.
func CheckChain(leaf *x509.Certificate, intermediates, roots *x509.CertPool) (notBefore, notAfter time.Time, r []Reason) {
	notBefore, notAfter = leaf.NotBefore, leaf.NotAfter
	if roots == nil {
		return notBefore, notAfter, []Reason{fatal(CodeUntrustedCert, "no STI-CA trust store configured")}
	}
	at := leaf.NotBefore.Add(time.Second)
	if at.After(leaf.NotAfter) {
		at = leaf.NotAfter
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return notBefore, notAfter, []Reason{fatal(CodeUntrustedCert, "does not chain to a trusted STI-CA: "+shortErr(err))}
	}
	for _, c := range chains[0] {
		if c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	return notBefore, notAfter, nil
}

func shortErr(err error) string {
	s := strings.TrimPrefix(err.Error(), "x509: ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// ParseCertificates reads the certificates of an x5u resource: PEM
// CERTIFICATE blocks (other blocks are skipped) or, when there is no PEM,
// concatenated DER. The signing certificate comes first, then any chain.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	sawPEM := false
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		sawPEM = true
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out), err)
		}
		out = append(out, c)
	}
	if !sawPEM {
		certs, err := x509.ParseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("neither PEM nor DER certificates: %w", err)
		}
		out = certs
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate")
	}
	return out, nil
}
