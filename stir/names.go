package stir

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"

	"net/url"
	"regexp"
	"strings"
)

// Attribute types of subject and issuer names.
var (
	oidCN           = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidCountry      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidEmail        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidSAN          = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// KnownCRLHosts are the hosts of the STI-PAs' CRLs: the US STI-PA
// (iconectiv) and the Canadian STI-PA (CST-GA, Neustar). A CRL distribution
// point elsewhere is reported (cert_crl): ATIS-1000080 has it name "the file
// containing the SHAKEN CRL hosted by the STI-PA". A host matches itself and
// its subdomains. Not read concurrently with changes: set it at start-up.
var KnownCRLHosts = []string{"iconectiv.com", "ccid.neustar"}

// cpSubjectSNLeaf is the date from which an end entity's subject carries a
// serialNumber attribute (SHAKEN CP 1.3, as the linters date it); like the
// linter, only certificates under CP 1.3 or without a SHAKEN policy are held
// to it (see docs/stir.md).
var cpSubjectSNLeaf = cp13Leaf

func countAttr(n []pkix.AttributeTypeAndValue, oid asn1.ObjectIdentifier) (count int, first string) {
	for _, a := range n {
		if a.Type.Equal(oid) {
			if count == 0 {
				first, _ = a.Value.(string)
			}
			count++
		}
	}
	return count, first
}

// checkNames checks the subject and issuer names (ATIS-1000080 section
// 6.4.1, SHAKEN CP 3.1): C, O and CN exactly once each, a two-letter
// country, no e-mail address; an end entity's CN is "SHAKEN <SPC>" and, from
// CP 1.3, its DN has one serialNumber; a CA's CN contains "SHAKEN".
func checkNames(cert *x509.Certificate, role Role, add func(Severity, Code, string, ...any)) {
	subj := cert.Subject.Names
	if len(subj) == 0 {
		if findExt(cert, oidSAN) == nil {
			add(Warning, CodeCertSubject, "subject is empty and there is no subjectAltName")
		} else {
			add(Warning, CodeCertSubject, "subject is empty")
		}
	} else {
		var missing, repeated []string
		for _, a := range []struct {
			name string
			oid  asn1.ObjectIdentifier
		}{{"CN", oidCN}, {"O", oidOrganization}, {"C", oidCountry}} {
			switch n, _ := countAttr(subj, a.oid); {
			case n == 0:
				missing = append(missing, a.name)
			case n > 1:
				repeated = append(repeated, a.name)
			}
		}
		if len(missing) > 0 {
			add(Warning, CodeCertSubject, "subject lacks %s", strings.Join(missing, ", "))
		}
		if len(repeated) > 0 {
			add(Warning, CodeCertSubject, "subject has more than one %s", strings.Join(repeated, ", "))
		}
		if n, c := countAttr(subj, oidCountry); n == 1 && !isCountry(c) {
			add(Warning, CodeCertSubject, "subject country %q is not an ISO 3166 two-letter code", c)
		}
		if n, _ := countAttr(subj, oidEmail); n > 0 {
			add(Warning, CodeCertSubject, "subject has an e-mail address")
		}
		n, cn := countAttr(subj, oidCN)
		switch role {
		case EndEntity:
			if spc := SPC(cert); n == 1 && spc == "" && !shakenSPCName.MatchString(cn) {
				add(Warning, CodeCertSubject, "subject CN does not contain \"SHAKEN <SPC>\"")
			} else if n == 1 && spc != "" && cn != "SHAKEN "+spc {
				if strings.Contains(cn, "SHAKEN "+spc) {
					add(Warning, CodeCertSubject, "subject CN is ambiguous: not exactly \"SHAKEN <SPC>\"")
				} else {
					add(Warning, CodeCertSubject, "subject CN does not contain \"SHAKEN <SPC>\" for SPC %q", spc)
				}
			}
			cpv := shakenPolicyVersion(cert)
			switch sn, _ := countAttr(subj, oidSerialNumber); {
			case sn > 1:
				add(Warning, CodeCertSubject, "subject has %d serialNumber attributes", sn)
			case sn == 0 && (cpv == 0 || cpv == 3) && !cert.NotBefore.Before(cpSubjectSNLeaf):
				add(Warning, CodeCertSubject, "subject lacks a serialNumber attribute (SHAKEN CP 1.3)")
			}
		default:
			if n == 1 && !strings.Contains(cn, "SHAKEN") {
				add(Warning, CodeCertSubject, "%s subject CN does not contain \"SHAKEN\"", role)
			}
		}
	}

	var missing []string
	for _, a := range []struct {
		name string
		oid  asn1.ObjectIdentifier
	}{{"CN", oidCN}, {"O", oidOrganization}, {"C", oidCountry}} {
		if n, _ := countAttr(cert.Issuer.Names, a.oid); n == 0 {
			missing = append(missing, a.name)
		}
	}
	if len(missing) > 0 {
		add(Warning, CodeCertIssuer, "issuer lacks %s", strings.Join(missing, ", "))
	}
}

// shakenSPCName is "SHAKEN <SPC>" inside a CN, for certificates whose SPC
// cannot be read.
var shakenSPCName = regexp.MustCompile(`(^|\s)SHAKEN [0-9A-Za-z]+(\s|$)`)

func isCountry(c string) bool {
	return len(c) == 2 && 'A' <= c[0] && c[0] <= 'Z' && 'A' <= c[1] && c[1] <= 'Z'
}

// checkSerial: at least 64 bits from a CSPRNG (ATIS-1000080 section
// 6.4.1.1), at most 20 octets (RFC 5280). A negative serial number never
// gets here: Go refuses to parse the certificate.
func checkSerial(cert *x509.Certificate, add func(Severity, Code, string, ...any)) {
	if cert.SerialNumber == nil {
		return
	}
	bits := cert.SerialNumber.BitLen()
	switch {
	case cert.SerialNumber.Sign() <= 0:
		add(Warning, CodeCertSerial, "serial number is not positive")
	case bits < 64:
		add(Warning, CodeCertSerial, "serial number has %d bits, fewer than 64", bits)
	case bits > 20*8-1:
		add(Warning, CodeCertSerial, "serial number is longer than 20 octets")
	}
}

// checkKeyIdentifiers: every STI certificate has a subject key identifier,
// the 160-bit SHA-1 of its key, and an authority key identifier with a key
// identifier; a root's names its own key (ATIS-1000080 section 6.4.1).
func checkKeyIdentifiers(cert *x509.Certificate, role Role, add func(Severity, Code, string, ...any)) {
	ski := findExt(cert, oidSKI)
	switch {
	case ski == nil:
		add(Warning, CodeCertSKI, "subject key identifier extension missing")
	case len(cert.SubjectKeyId) != sha1.Size:
		add(Warning, CodeCertSKI, "subject key identifier is %d bytes, not the 20 of a SHA-1", len(cert.SubjectKeyId))
	}
	aki := findExt(cert, oidAKI)
	switch {
	case aki == nil:
		add(Warning, CodeCertAKI, "authority key identifier extension missing")
	case len(cert.AuthorityKeyId) == 0:
		add(Warning, CodeCertAKI, "authority key identifier has no keyIdentifier")
	case role == Root && ski != nil && !bytes.Equal(cert.AuthorityKeyId, cert.SubjectKeyId):
		add(Warning, CodeCertAKI, "root authority key identifier differs from its subject key identifier")
	}
}

// checkCRL: end-entity and intermediate certificates name the STI-PA's CRL
// in a single distribution point holding one http(s) URL; roots have none
// (ATIS-1000080 section 6.4.1). The cRLIssuer field v004 added is not
// required (see docs/stir.md).
func checkCRL(cert *x509.Certificate, role Role, add func(Severity, Code, string, ...any)) {
	dp := findExt(cert, oidCRLDP)
	if role == Root {
		if dp != nil {
			add(Warning, CodeCertCRL, "root certificate has CRL distribution points")
		}
		return
	}
	if dp == nil {
		add(Warning, CodeCertCRL, "CRL distribution points extension missing")
		return
	}
	var points []asn1.RawValue
	if rest, err := asn1.Unmarshal(dp.Value, &points); err != nil || len(rest) != 0 {
		add(Warning, CodeCertCRL, "CRL distribution points cannot be decoded")
		return
	}
	if len(points) != 1 {
		add(Warning, CodeCertCRL, "%d CRL distribution points, not one", len(points))
	}
	if len(cert.CRLDistributionPoints) != 1 {
		add(Warning, CodeCertCRL, "%d CRL URLs, not one", len(cert.CRLDistributionPoints))
	}
	for _, s := range cert.CRLDistributionPoints {
		u, err := url.Parse(s)
		switch {
		case err != nil || u.Host == "":
			add(Warning, CodeCertCRL, "CRL URL %q is not an http(s) URL", s)
		case u.Scheme != "http" && u.Scheme != "https":
			add(Warning, CodeCertCRL, "CRL URL scheme %q is not http(s)", u.Scheme)
		case !knownCRLHost(u.Hostname()):
			add(Warning, CodeCertCRL, "CRL host %q is not a known STI-PA CRL host", u.Hostname())
		}
	}
}

func knownCRLHost(h string) bool {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	for _, k := range KnownCRLHosts {
		if h == k || strings.HasSuffix(h, "."+k) {
			return true
		}
	}
	return false
}
