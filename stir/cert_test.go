package stir

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The zlint SHAKEN test certificates (martinisecurity/zlint, Apache-2.0),
// each named after the defect it carries. want lists findings
// ("code/severity") CheckCertificate must report; the baselines must report
// none. Every file's named defect is expected; what else a file reports
// comes from the other defects these minimal certificates carry (only
// restricts a file to its want codes).
var zlintCases = map[string]struct {
	want     []string
	only     bool // no code outside want
	parseErr bool // Go's x509 refuses the certificate
}{
	// Baselines.
	"shakenCert.pem": {}, "shakenCa.pem": {}, "shakenRoot.pem": {},
	// Key type.
	"shakenKeyAlgRSA.pem":    {want: []string{"cert_key/fatal"}},
	"shakenKeyAlgP384.pem":   {want: []string{"cert_key/fatal"}},
	"shakenCaKeyAlgRSA.pem":  {want: []string{"cert_key/fatal"}},
	"shakenCaKeyAlgP384.pem": {want: []string{"cert_key/warning"}}, // P-384 CA without CP 1.4
	"shakenCP1_4WSHA384.pem": {want: []string{"cert_key/fatal"}},   // a P-384 end entity cannot sign ES256
	// Signature algorithm.
	"shakenSigAlgSHA1.pem":   {want: []string{"cert_sig_alg/warning"}},
	"shakenCaSigAlgSHA1.pem": {want: []string{"cert_sig_alg/warning"}},
	"shakenCP1_4WSHA1.pem":   {want: []string{"cert_sig_alg/warning"}},
	"shakenCaSubjectCN.pem":  {want: []string{"cert_sig_alg/warning", "cert_subject/warning"}}, // CN without "SHAKEN"; also SHA-1 signed
	// Version.
	"shakenCertV2.pem":     {want: []string{"cert_version/warning"}},
	"shakenCaVersion2.pem": {want: []string{"cert_version/warning"}},
	// TNAuthList.
	"shakenCertEmpty.pem":         {want: []string{"cert_tnauthlist/fatal", "cert_basic_constraints/warning", "cert_key_usage/warning", "cert_policies/warning"}},
	"shakenTNAuthEmpty.pem":       {want: []string{"cert_tnauthlist/warning"}},
	"shakenTNAuthEmptyString.pem": {want: []string{"cert_tnauthlist/warning"}},
	"shakenTNAuthWithoutSPC.pem":  {want: []string{"cert_tnauthlist/warning"}},
	"shakenTNAuthMultiple.pem":    {want: []string{"cert_tnauthlist/warning"}},
	// Basic constraints.
	"shakenBasicConstNo.pem":          {want: []string{"cert_basic_constraints/warning"}},
	"shakenBasicConstNotCritical.pem": {want: []string{"cert_basic_constraints/warning"}},
	// Key usage.
	"shakenKeyUsageNotCritical.pem":       {want: []string{"cert_key_usage/warning"}},
	"shakenKeyUsageOdd.pem":               {want: []string{"cert_key_usage/warning"}},
	"shakenCaKeyUsageOddFlag.pem":         {want: []string{"cert_key_usage/warning"}},
	"shakenCaKeyUsageWithoutCertSign.pem": {want: []string{"cert_key_usage/fatal"}},
	"subjectEmpty.pem":                    {want: []string{"cert_key_usage/fatal", "cert_subject/warning"}}, // keyCertSign on an end entity, empty subject
	// Allowed for CAs: only their CRL point (Google's, not an STI-PA's) is reported.
	"shakenCaKeyUsageCertSignCRLSignDigSign.pem": {want: []string{"cert_crl/warning"}, only: true},
	"shakenCaKeyUsageCertSignDigSign.pem":        {want: []string{"cert_crl/warning"}, only: true},
	"shakenCaKeyUsageWCRL.pem":                   {want: []string{"cert_crl/warning"}, only: true},
	// Certificate policies.
	"shakenCertPolicyNo.pem":         {want: []string{"cert_policies/warning"}},
	"shakenCertPolicyCritical.pem":   {want: []string{"cert_policies/warning"}},
	"shakenCertPolicyIncorrect.pem":  {want: []string{"cert_policies/warning"}},
	"shakenCertPolicyMultiple.pem":   {want: []string{"cert_policies/warning"}},
	"shakenCaCertPolicyNo.pem":       {want: []string{"cert_policies/warning"}},
	"shakenCaCertPolicyCritical.pem": {want: []string{"cert_policies/warning"}},
	"shakenCaCertPolicyMultiple.pem": {want: []string{"cert_policies/warning"}},
	"shakenRootCertPolicy.pem":       {want: []string{"cert_policies/warning"}},
	"shakenCaEmpty.pem":              {want: []string{"cert_policies/warning", "cert_key_usage/warning"}},
	// Policy versions: the test certificates have no TNAuthList.
	"shakenCP1_1Cert.pem": {want: []string{"cert_tnauthlist/fatal"}},
	"shakenCP1_2Cert.pem": {want: []string{"cert_tnauthlist/fatal"}},
	"shakenCP1_3Cert.pem": {want: []string{"cert_tnauthlist/fatal"}},
	"shakenCP1_4Cert.pem": {want: []string{"cert_tnauthlist/fatal"}},
	// Unspecified extensions.
	"shakenExtOdd.pem":     {want: []string{"cert_extension/warning"}},
	"shakenCaExtOdd.pem":   {want: []string{"cert_extension/warning"}},
	"shakenRootExtOdd.pem": {want: []string{"cert_extension/warning"}},
	// Negative serial numbers: Go's parser rejects them (x509negativeserial);
	// the lint verb reports them unreadable.
	"shakeCaSerialNegative.pem":      {parseErr: true},
	"shakenCaSerialNegative.pem":     {parseErr: true},
	"shakenSerialNumberNegative.pem": {parseErr: true},
	// Serial numbers.
	"shakenCaSerialLess64bit.pem":     {want: []string{"cert_serial/warning"}},
	"shakenSerialNumberLess64bit.pem": {want: []string{"cert_serial/warning"}},
	"shakenSerialNumberPadded.pem":    {want: []string{"cert_serial/warning"}}, // 56 bits behind the 0x00 pad
	// Subject names.
	"shakenCaSubjectWithoutC.pem":            {want: []string{"cert_subject/warning"}},
	"shakenCaSubjectWithoutCN.pem":           {want: []string{"cert_subject/warning"}},
	"shakenCaSubjectWithoutO.pem":            {want: []string{"cert_subject/warning"}},
	"shakenCaSubjectWEmail.pem":              {want: []string{"cert_subject/warning"}},
	"shakenSubjectWithoutC.pem":              {want: []string{"cert_subject/warning"}},
	"shakenSubjectWithoutCN.pem":             {want: []string{"cert_subject/warning"}},
	"shakenSubjectWithoutO.pem":              {want: []string{"cert_subject/warning"}},
	"shakenSubjectWEmail.pem":                {want: []string{"cert_subject/warning"}},
	"shakenSubjectCN.pem":                    {want: []string{"cert_subject/warning"}}, // CN names SPC 6628, TNAuthList 6629
	"shakenSubjectAmbiguous.pem":             {want: []string{"cert_subject/warning"}}, // "Some SHAKEN 6628"
	"shakenSubjectWSerialNumberMultiple.pem": {want: []string{"cert_subject/warning"}},
	"shakenSubjectWithoutSerialNumber.pem":   {want: []string{"cert_subject/warning"}},
	"subjectEmptyNoSAN.pem":                  {want: []string{"cert_subject/warning", "cert_ski/warning"}},
	// Positive vectors of zlint's subject lints (their subject conforms);
	// their issuer has a CN only.
	"shakenSubject.pem":   {want: []string{"cert_issuer/warning"}},
	"shakenCaSubject.pem": {want: []string{"cert_issuer/warning"}},
	// Issuer names.
	"shakenCaIssuerWithoutC.pem":  {want: []string{"cert_issuer/warning"}},
	"shakenCaIssuerWithoutCN.pem": {want: []string{"cert_issuer/warning"}},
	"shakenCaIssuerWithoutO.pem":  {want: []string{"cert_issuer/warning"}},
	"shakenIssuerWithoutC.pem":    {want: []string{"cert_issuer/warning"}},
	"shakenIssuerWithoutCN.pem":   {want: []string{"cert_issuer/warning"}},
	"shakenIssuerWithoutO.pem":    {want: []string{"cert_issuer/warning"}},
	// Key identifiers.
	"shakenRootAKIWrong.pem": {want: []string{"cert_aki/warning"}},
	"shakenRootNoAKI.pem":    {want: []string{"cert_aki/warning"}},
	// CRL distribution points. Get and Unreachable are zlint's network
	// lints (the CRL cannot be fetched from the STI-PA); statically, their
	// host is not an STI-PA's.
	"shakenCRLPointFile.pem":        {want: []string{"cert_crl/warning"}},
	"shakenCRLPointGet.pem":         {want: []string{"cert_crl/warning"}},
	"shakenCRLPointMultiple.pem":    {want: []string{"cert_crl/warning"}},
	"shakenCRLPointUnreachable.pem": {want: []string{"cert_crl/warning"}},
}

func TestZlintCertificates(t *testing.T) {
	dir := filepath.Join(sharedDir, "zlint-shaken-testdata")
	files, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil || len(files) == 0 {
		t.Skipf("zlint test certificates not available: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			tc, ok := zlintCases[name]
			if !ok {
				t.Fatal("not in the table: add its expected findings")
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			certs, err := ParseCertificates(b)
			if tc.parseErr {
				if err == nil {
					t.Fatal("parsed; the table expects Go to refuse it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := certs[0]
			// Structure: at an instant inside the validity period.
			got := codes(CheckCertificate(c, c.NotBefore.Add(time.Second)))
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("missing %s; got %v", w, got)
				}
			}
			if len(tc.want) == 0 && len(got) != 0 {
				t.Errorf("conformant certificate reported %v", got)
			}
			if tc.only {
				for _, g := range got {
					if !slices.Contains(tc.want, g) {
						t.Errorf("unexpected %s; want only %v", g, tc.want)
					}
				}
			}
			// Validity: all of them expired long ago.
			if rs := CheckCertificate(c, time.Now()); !slices.Contains(codes(rs), "cert_validity/fatal") {
				t.Errorf("expired certificate not reported: %v", codes(rs))
			}
			if rs := CheckCertificate(c, c.NotBefore.Add(-time.Second)); !slices.Contains(codes(rs), "cert_validity/fatal") {
				t.Errorf("not-yet-valid certificate not reported: %v", codes(rs))
			}
		})
	}
	for name := range zlintCases {
		if !seen[name] {
			t.Errorf("%s is in the table but not in %s", name, dir)
		}
	}
}

// lintScope maps the public SHAKEN linter's error codes that fall within
// this package's profile to the code CheckCertificate uses for them. Left
// out: e_atis_ext_crl_distribution_struct (1,342 certificates without a
// cRLIssuer in their distribution point, which v004 added; zlint's own
// baselines have none, so this package does not require it) and
// e_atis_subject_c_us_ca (a CA outside the US is not a defect).
var lintScope = map[string]Code{
	"e_atis_subject_public_key": CodeCertKey, "e_atis_subject_public_key_ca": CodeCertKey,
	"e_atis_signature_algorithm": CodeCertSigAlg, "e_atis_signature_algorithm_ca": CodeCertSigAlg,
	"e_atis_version": CodeCertVersion, "e_atis_version_ca": CodeCertVersion,
	"e_atis_tn_auth_list": CodeCertTNAuthList, "e_atis_tn_auth_list_spc_format": CodeCertTNAuthList,
	"e_atis_ext_basic_constraints": CodeCertBasicConstraints,
	"e_atis_ext_key_usage":         CodeCertKeyUsage, "e_atis_ext_key_usage_ee": CodeCertKeyUsage,
	"e_atis_ext_key_usage_ca": CodeCertKeyUsage, "e_incorrect_ku_encoding": CodeCertKeyUsage,
	"e_atis_ext_certificate_policies": CodeCertPolicies, "e_atis_ext_certificate_policies_ca": CodeCertPolicies,
	"e_shaken_certificate_policies_id": CodeCertPolicies, "e_shaken_certificate_policies_id_ca": CodeCertPolicies,
	"e_atis_ext_not_specified": CodeCertExtension, "e_atis_ext_not_specified_ca": CodeCertExtension,
	"e_atis_subject_cn": CodeCertSubject, "e_atis_subject_cn_ca": CodeCertSubject, "e_atis_subject_cn_root": CodeCertSubject,
	"e_atis_subject_cn_spc": CodeCertSubject, "e_atis_subject_dn": CodeCertSubject, "e_atis_subject_dn_ca": CodeCertSubject,
	"e_atis_subject_o_required": CodeCertSubject, "e_atis_subject_o_required_ca": CodeCertSubject,
	"e_atis_subject_c_iso": CodeCertSubject, "e_atis_subject_c_iso_ca": CodeCertSubject,
	"e_us_cp_subject_sn_shall":  CodeCertSubject,
	"e_atis_serial_number_size": CodeCertSerial, "e_atis_serial_number_size_ca": CodeCertSerial,
	"e_atis_subject_key_identifier": CodeCertSKI, "e_atis_subject_key_identifier_size": CodeCertSKI,
	"e_atis_ext_authority_key_identifier": CodeCertAKI, "e_atis_ext_authority_key_identifier_ca": CodeCertAKI,
	"e_ext_authority_key_identifier_missing": CodeCertAKI, "e_ext_authority_key_identifier_no_key_identifier": CodeCertAKI,
	"e_atis_ext_crl_distribution": CodeCertCRL, "e_atis_ext_crl_distribution_ca": CodeCertCRL,
}

// agreement is a 2x2 matrix: this package's verdict against the linter's.
type agreement struct{ both, mineOnly, lintOnly, neither int }

func (a *agreement) add(mine, lint bool) {
	switch {
	case mine && lint:
		a.both++
	case mine:
		a.mineOnly++
	case lint:
		a.lintOnly++
	default:
		a.neither++
	}
}

func (a agreement) total() int { return a.both + a.mineOnly + a.lintOnly + a.neither }

func (a agreement) rate() float64 { return float64(a.both+a.neither) / float64(a.total()) }

func (a agreement) String() string {
	return fmt.Sprintf("both %5d  ours only %4d  linter only %4d  neither %5d  agreement %.2f%%",
		a.both, a.mineOnly, a.lintOnly, a.neither, 100*a.rate())
}

// TestRealWorldCertificates compares CheckCertificate with the findings of a
// public SHAKEN linter on 15,988 production STI certificates, as to
// structure: validity is not evaluated (the linter's expiry findings depend
// on when it ran), and only the linter's errors within this package's scope
// count (lintScope). The matrices are in docs/stir.md.
func TestRealWorldCertificates(t *testing.T) {
	f, err := os.Open(filepath.Join(sharedDir, "real-world", "shaken_pki_certs_with_lint_results.csv"))
	if err != nil {
		t.Skipf("real-world certificates not available: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	cats := []Code{CodeCertKey, CodeCertSigAlg, CodeCertVersion, CodeCertBasicConstraints, CodeCertKeyUsage, CodeCertPolicies, CodeCertTNAuthList, CodeCertExtension,
		CodeCertSubject, CodeCertIssuer, CodeCertSerial, CodeCertSKI, CodeCertAKI, CodeCertCRL}
	per := map[Code]*agreement{}
	for _, c := range cats {
		per[c] = &agreement{}
	}
	var inScope, anyError, fatalVsScope agreement
	var parseErrs, fatalCerts int
	disagree, fatalBy := map[string]int{}, map[string]int{}
	for _, row := range rows[1:] {
		der, err := base64.StdEncoding.DecodeString(row[col["cert_der_base64"]])
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			parseErrs++
			continue
		}
		mine := map[Code]bool{}
		fatal := false
		for _, r := range CheckCertificate(cert, time.Time{}) {
			mine[r.Code] = true
			if r.Severity == Fatal {
				fatal = true
				fatalBy[RoleOf(cert).String()+" "+r.Text]++
			}
		}
		if fatal {
			fatalCerts++
		}
		lint := map[Code]bool{}
		lintAny := false
		codes := strings.Split(row[col["issue_codes"]], ";")
		types := strings.Split(row[col["issue_types"]], ";")
		for i, code := range codes {
			if code == "" || i >= len(types) || types[i] != "error" {
				continue
			}
			lintAny = true
			if c, ok := lintScope[code]; ok {
				lint[c] = true
			}
		}
		for _, c := range cats {
			per[c].add(mine[c], lint[c])
			if mine[c] != lint[c] {
				side := "ours"
				if lint[c] {
					side = "linter"
				}
				disagree[string(c)+" "+side+" only, "+RoleOf(cert).String()+" "+cert.NotBefore.Format("2006-01")]++
			}
		}
		inScope.add(len(mine) > 0, len(lint) > 0)
		anyError.add(len(mine) > 0, lintAny)
		fatalVsScope.add(fatal, len(lint) > 0)
	}
	if parseErrs != 0 {
		t.Errorf("%d certificates Go cannot parse", parseErrs)
	}
	t.Logf("%d certificates; %d with a fatal finding (would fail Verify on the profile)", len(rows)-1, fatalCerts)
	t.Logf("%-24s %s", "any in-scope finding", inScope)
	for _, c := range cats {
		t.Logf("%-24s %s", c, per[c])
	}
	t.Logf("%-24s %s", "fatal vs in-scope", fatalVsScope)
	t.Logf("%-24s %s", "any vs all linter errors", anyError)
	for _, m := range []struct {
		name string
		m    map[string]int
	}{{"disagreement", disagree}, {"fatal", fatalBy}} {
		keys := make([]string, 0, len(m.m))
		for k := range m.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Logf("%s: %-60s %d", m.name, k, m.m[k])
		}
	}

	// Floors measured on this data set (15,988 certificates): 15,789
	// agree on whether there is an in-scope defect (the linter finds none we
	// miss), and each category agrees on at least 99.79%, except names. The
	// disagreements: CAs and roots of 2019-2020 (RSA, keyEncipherment, no
	// SHAKEN policy) that the linter exempts by date; roots carrying
	// policies; certificates of 2022 with an AIA or EKU extension
	// (ATIS-1000080 v004 forbids them, the linter applies v005's date); a
	// P-384 root and a SHA-384 intermediate, which SHAKEN CP 1.4 allows and
	// the ATIS lints do not. New categories: cert_subject (98.09%) reports
	// 252 end-entity CNs that contain "SHAKEN <SPC>" among other words (the
	// SHAKEN CP's unambiguous name; the linter that produced the data did
	// not run its ambiguity lint) and ~40 CNs of certificates the linter
	// exempts by date; cert_issuer (99.37%) has no linter counterpart (an
	// issuer without O or C, the parent CA's naming defect); cert_aki
	// reports 9 roots without an AKI, which the linter's AKI lints skip;
	// cert_serial 10 short serials issued before the linter's dates.
	if inScope.both+inScope.neither < 15785 || inScope.lintOnly > 2 || inScope.mineOnly > 205 {
		t.Errorf("in-scope agreement fell: %s", inScope)
	}
	floor := map[Code]float64{CodeCertSubject: 0.980, CodeCertIssuer: 0.993}
	for _, c := range cats {
		min, ok := floor[c]
		if !ok {
			min = 0.997
		}
		lintOnly := 2
		if c == CodeCertSubject {
			lintOnly = 6
		}
		if a := per[c]; a.rate() < min || a.lintOnly > lintOnly {
			t.Errorf("%s agreement fell: %s", c, a)
		}
	}
	if fatalCerts > 5 {
		t.Errorf("%d production certificates have fatal findings (measured 5)", fatalCerts)
	}
}

func TestParseTNAuthList(t *testing.T) {
	der := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ia5 := func(s string) []byte {
		b, err := asn1.MarshalWithParams(s, "ia5")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tagged := func(tag int, compound bool, b []byte) []byte {
		return der(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: compound, Bytes: b})
	}
	seq := func(entries ...[]byte) []byte {
		var b []byte
		for _, e := range entries {
			b = append(b, e...)
		}
		return der(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: b})
	}
	tests := []struct {
		name string
		der  []byte
		want []TNEntry
		err  bool
	}{
		{"one SPC", seq(tagged(0, true, ia5("709J"))), []TNEntry{{Kind: TNEntrySPC, SPC: "709J"}}, false},
		{"implicit SPC", seq(tagged(0, false, []byte("709J"))), []TNEntry{{Kind: TNEntrySPC, SPC: "709J", Implicit: true}}, false},
		{"SPC and a TN", seq(tagged(0, true, ia5("1234")), tagged(2, true, ia5("12155550100"))), []TNEntry{{Kind: TNEntrySPC, SPC: "1234"}, {Kind: TNEntryOne}}, false},
		{"range only", seq(tagged(1, true, der(struct{ A string }{"1"}))), []TNEntry{{Kind: TNEntryRange}}, false},
		{"empty list", seq(), nil, true},
		{"bare IA5String (libstirshaken)", ia5("https://example.com/TNAuthList"), nil, true},
		{"unknown tag", seq(tagged(5, true, ia5("x"))), nil, true},
		{"SPC not IA5", seq(tagged(0, true, der(42))), nil, true},
		{"trailing bytes", append(seq(tagged(0, true, ia5("1"))), 0), nil, true},
		{"garbage", []byte{0xff, 0x01}, nil, true},
	}
	for _, tc := range tests {
		got, err := ParseTNAuthList(tc.der)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %+v, %v", tc.name, got, err)
		}
	}
}

func TestCheckChain(t *testing.T) {
	ca := mustParseCert(t, readShared(t, refDir+"ca/ca.pem"))
	sp := mustParseCert(t, readShared(t, refDir+"sp/sp.pem"))
	wrong := mustParseCert(t, readShared(t, refDir+"sp/wrongsp.pem"))
	nb, na, rs := CheckChain(sp, nil, pool(ca))
	if len(rs) != 0 || !nb.Equal(sp.NotBefore) || !na.Equal(ca.NotAfter) { // the CA expires first
		t.Errorf("sp.pem: %v %v %v", nb, na, rs)
	}
	if _, _, rs := CheckChain(wrong, nil, pool(ca)); len(rs) != 1 || rs[0].Code != CodeUntrustedCert {
		t.Errorf("wrongsp.pem: %v", rs)
	}
	if _, _, rs := CheckChain(sp, nil, nil); len(rs) != 1 || rs[0].Code != CodeUntrustedCert {
		t.Errorf("no roots: %v", rs)
	}
	// The window is the intersection of the chain's validity.
	root := newRoot(t, "Root")
	inter := root.intermediate(t, "Inter")
	leaf := inter.sp(t, "1234", func(c *x509.Certificate) { c.NotAfter = inter.cert.NotAfter.Add(time.Hour) })
	if _, na, rs := CheckChain(leaf.cert, pool(inter.cert), pool(root.cert)); len(rs) != 0 || !na.Equal(inter.cert.NotAfter) {
		t.Errorf("window end %v, want the intermediate's %v (%v)", na, inter.cert.NotAfter, rs)
	}
}

func TestCheckCertificateOwnPKI(t *testing.T) {
	root := newRoot(t, "Root")
	inter := root.intermediate(t, "Inter")
	sp := inter.sp(t, "709J")
	for _, c := range []*x509.Certificate{root.cert, inter.cert, sp.cert} {
		if rs := CheckCertificate(c, callTime); len(rs) != 0 {
			t.Errorf("%s (%s): %v", c.Subject.CommonName, RoleOf(c), rs)
		}
	}
	if got := SPC(sp.cert); got != "709J" {
		t.Errorf("SPC %q", got)
	}
	if rs := CheckCertificateAs(inter.cert, EndEntity, callTime); !slices.Contains(codes(rs), "cert_basic_constraints/fatal") {
		t.Errorf("CA as end entity: %v", codes(rs))
	}
	lower := inter.sp(t, "709j")
	if rs := CheckCertificate(lower.cert, callTime); !slices.Equal(codes(rs), []string{"cert_tnauthlist/warning"}) {
		t.Errorf("lower-case SPC: %v", codes(rs))
	}
}

func TestParseCertificates(t *testing.T) {
	root := newRoot(t, "Root")
	sp := root.sp(t, "1")
	sp.chain = []*x509.Certificate{root.cert}
	junk := append([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), sp.pem()...)
	for name, in := range map[string][]byte{"pem chain": sp.pem(), "der": append(append([]byte{}, sp.cert.Raw...), root.cert.Raw...), "other blocks": junk} {
		certs, err := ParseCertificates(in)
		if err != nil || len(certs) != 2 || !certs[0].Equal(sp.cert) {
			t.Errorf("%s: %d certificates, %v", name, len(certs), err)
		}
	}
	for name, in := range map[string][]byte{"empty": nil, "text": []byte("hello"), "key only": []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")} {
		if _, err := ParseCertificates(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
