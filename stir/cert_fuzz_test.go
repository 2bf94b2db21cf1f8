package stir

import (
	"encoding/asn1"
	"encoding/base64"
	"encoding/csv"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Fuzz targets for what the verifier does with the bytes of a fetched x5u
// resource (chosen by whoever signed the PASSporT): ParseCertificates, the
// SHAKEN profile checks, the TNAuthList decoder, and prepare, which runs
// them all on a fetch. Seeds: zlint's SHAKEN certificates, libstirshaken's
// test PKI and real production certificates from ../shared (when there),
// a chain of this package's test PKI, and testdata/fuzz/<target>.

// certSeeds adds every certificate file under ../shared, each as it is,
// and up to n real-world certificates (DER) of the public survey.
func certSeeds(f *testing.F, n int) {
	for _, pat := range []string{"zlint-shaken-testdata/*.pem", "libstirshaken-ref/*/*.pem"} {
		files, _ := filepath.Glob(filepath.Join(sharedDir, pat))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	fh, err := os.Open(filepath.Join(sharedDir, "real-world", "shaken_pki_certs_with_lint_results.csv"))
	if err != nil {
		return
	}
	defer fh.Close()
	cr := csv.NewReader(fh)
	cr.FieldsPerRecord = -1
	seen := map[string]bool{} // one certificate per set of findings
	for added := 0; added < n; {
		rec, err := cr.Read()
		if err != nil {
			return
		}
		if len(rec) < 10 || seen[rec[7]] {
			continue
		}
		if der, err := base64.StdEncoding.DecodeString(rec[len(rec)-1]); err == nil {
			seen[rec[7]] = true
			f.Add(der)
			added++
		}
	}
}

// checkCertReasons checks findings about certificates: each has a known
// severity, the SIP cause of its code, no PASSporT, and one line of
// printable text (the text is stored with the call and shown in the
// console; certificate contents in it are quoted).
func checkCertReasons(t *testing.T, rs []Reason) {
	t.Helper()
	for _, r := range rs {
		if !r.Code.Certificate() && r.Code != CodeUntrustedCert {
			t.Fatalf("certificate finding with code %q", r.Code)
		}
		if r.Severity != Fatal && r.Severity != Warning || r.Cause != causeOf(r.Code) || r.Passport != -1 {
			t.Fatalf("finding %+v", r)
		}
		if r.Text == "" || !utf8.ValidString(r.Text) || strings.ContainsFunc(r.Text, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			t.Fatalf("finding %s has text %q", r.Code, r.Text)
		}
	}
}

// FuzzCertificates feeds arbitrary x5u bodies to ParseCertificates and,
// when they parse, to the profile checks for every role, SPC and prepare
// (the chain checked against a test root). Checks: no panic; a parse
// error gives no certificates and success at least one; findings as
// checkCertReasons; prepare keeps the leaf's SPC and trusts a certificate
// exactly when the chain check raised nothing.
func FuzzCertificates(f *testing.F) {
	certSeeds(f, 40)
	root := newRoot(f, "Fuzz Root")
	sp := root.sp(f, "709J")
	sp.chain = append(sp.chain, root.cert)
	f.Add(sp.pem())
	f.Add(append(slices.Clip(sp.cert.Raw), root.cert.Raw...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	v := New(Config{Roots: pool(root.cert), HTTPClient: &http.Client{Transport: noNetwork{}}, Now: func() time.Time { return callTime }})
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := ParseCertificates(b)
		if err != nil {
			if certs != nil {
				t.Fatalf("error %v with %d certificates", err, len(certs))
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
		for _, c := range certs {
			checkCertReasons(t, CheckCertificate(c, callTime))
			for _, role := range []Role{EndEntity, Intermediate, Root} {
				checkCertReasons(t, CheckCertificateAs(c, role, time.Time{}))
			}
			if spc := SPC(c); strings.ContainsFunc(spc, func(c rune) bool { return c >= utf8.RuneSelf }) {
				t.Fatalf("SPC %q is not IA5", spc)
			}
		}
		e := v.prepare("https://cert.example/sp.pem", certs)
		checkCertReasons(t, e.profile)
		if e.spc != SPC(certs[0]) {
			t.Fatalf("prepared SPC %q, SPC says %q", e.spc, SPC(certs[0]))
		}
		untrusted := slices.ContainsFunc(e.profile, func(r Reason) bool { return r.Code == CodeUntrustedCert })
		if e.trusted == untrusted {
			t.Fatalf("trusted = %v with findings %v", e.trusted, e.profile)
		}
	})
}

// FuzzParseTNAuthList feeds arbitrary DER to the TNAuthList decoder.
// Checks: no panic; a list it accepts is not empty, its SPCs are IA5 and
// only SPC entries are marked implicit; and the SPC entries, encoded again
// with RFC 8226's explicit tags, decode to the same SPCs.
func FuzzParseTNAuthList(f *testing.F) {
	ia5 := func(s string) []byte { b, _ := asn1.MarshalWithParams(s, "ia5"); return b }
	for _, spcs := range [][]string{{"709J"}, {"1234", "5678"}, {""}} {
		f.Add(encodeTNAuthList(spcs, ia5))
	}
	f.Add([]byte{0x30, 0x06, 0x80, 0x04, '7', '0', '9', 'J'})               // implicit SPC
	f.Add([]byte{0x30, 0x08, 0xa1, 0x06, 0x30, 0x04, 0x16, 0x02, '1', '2'}) // a range
	f.Add([]byte{0x30, 0x00})
	f.Add(ia5("https://example.com/TNAuthList"))
	f.Fuzz(func(t *testing.T, der []byte) {
		list, err := ParseTNAuthList(der)
		if err != nil {
			return
		}
		if len(list) == 0 {
			t.Fatal("accepted an empty list")
		}
		var spcs []string
		for _, e := range list {
			if e.Implicit && e.Kind != TNEntrySPC || e.Kind != TNEntrySPC && e.SPC != "" {
				t.Fatalf("entry %+v", e)
			}
			if e.Kind != TNEntrySPC {
				continue
			}
			if strings.ContainsFunc(e.SPC, func(c rune) bool { return c >= utf8.RuneSelf }) {
				t.Fatalf("SPC %q is not IA5", e.SPC)
			}
			spcs = append(spcs, e.SPC)
		}
		if len(spcs) == 0 {
			return
		}
		again, err := ParseTNAuthList(encodeTNAuthList(spcs, ia5))
		if err != nil {
			t.Fatalf("SPCs %q encoded again do not decode: %v", spcs, err)
		}
		for i, e := range again {
			if e.Kind != TNEntrySPC || e.Implicit || e.SPC != spcs[i] {
				t.Fatalf("SPCs %q decode again as %+v", spcs, again)
			}
		}
	})
}

// encodeTNAuthList encodes a TNAuthList of SPC entries with explicit tags.
func encodeTNAuthList(spcs []string, ia5 func(string) []byte) []byte {
	var body []byte
	for _, s := range spcs {
		e, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: ia5(s)})
		body = append(body, e...)
	}
	b, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	return b
}
