package stir

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The test PKI: an STI-CA root, an intermediate, and STI-SP certificates
// with a TNAuthList, generated per test run.

const sharedDir = "../../shared/testdata/stir-shaken"

// callTime is the start of the test calls; certificates are valid around it.
var callTime = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

type testSP struct {
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	chain []*x509.Certificate // intermediates served after the leaf
}

func (sp testSP) pem() []byte {
	var b []byte
	for _, c := range append([]*x509.Certificate{sp.cert}, sp.chain...) {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

var serial atomic.Int64

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub any, signer any) *x509.Certificate {
	t.Helper()
	// At least 64 bits (ATIS-1000080 6.4.1.1).
	tmpl.SerialNumber = new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(serial.Add(1)))
	// The SHAKEN profile: a 160-bit subject key identifier on every
	// certificate, a root's AKI naming itself, the STI-PA's CRL below roots.
	if len(tmpl.SubjectKeyId) == 0 {
		if k, ok := pub.(*ecdsa.PublicKey); ok {
			if b, err := k.Bytes(); err == nil {
				h := sha1.Sum(b)
				tmpl.SubjectKeyId = h[:]
			}
		}
	}
	if parent == nil {
		parent = tmpl
		tmpl.AuthorityKeyId = tmpl.SubjectKeyId
	} else if tmpl.CRLDistributionPoints == nil {
		tmpl.CRLDistributionPoints = []string{"https://authenticate-api.iconectiv.com/download/v1/crl"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var shakenCP13 = mustOID("2.16.840.1.114569.1.1.3")

func mustOID(s string) x509.OID {
	o, err := x509.ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

func newRoot(t testing.TB, name string) testCA {
	k := mustKey(t)
	c := mustCert(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "SHAKEN " + name, Organization: []string{"Test STI-PA"}, Country: []string{"US"}},
		NotBefore: callTime.AddDate(-2, 0, 0), NotAfter: callTime.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, &k.PublicKey, k)
	return testCA{c, k}
}

func (ca testCA) intermediate(t testing.TB, name string) testCA {
	k := mustKey(t)
	c := mustCert(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "SHAKEN " + name, Organization: []string{"Test STI-CA"}, Country: []string{"US"}},
		NotBefore: callTime.AddDate(-1, 0, 0), NotAfter: callTime.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		Policies: []x509.OID{shakenCP13},
	}, ca.cert, &k.PublicKey, ca.key)
	return testCA{c, k}
}

// tnAuthList encodes a TNAuthList with one SPC entry (RFC 8226, explicit tags).
func tnAuthList(t testing.TB, spc string) []byte {
	t.Helper()
	ia5, err := asn1.MarshalWithParams(spc, "ia5")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: ia5})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: entry})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

type spOpt func(*x509.Certificate)

// sp issues an STI-SP certificate under ca, valid a year around callTime.
func (ca testCA) sp(t testing.TB, spc string, opts ...spOpt) testSP {
	k := mustKey(t)
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "SHAKEN " + spc, Organization: []string{"Test Carrier"}, Country: []string{"US"}, SerialNumber: "1"},
		NotBefore: callTime.AddDate(0, -6, 0), NotAfter: callTime.AddDate(0, 6, 0),
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
		Policies:        []x509.OID{shakenCP13},
		ExtraExtensions: []pkix.Extension{{Id: OIDTNAuthList, Value: tnAuthList(t, spc)}},
	}
	for _, o := range opts {
		o(tmpl)
	}
	c := mustCert(t, tmpl, ca.cert, &k.PublicKey, ca.key)
	return testSP{cert: c, key: k}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// claimsFor returns shaken claims for a call from orig to dest at iat.
func claimsFor(orig, dest string, iat time.Time, attest string) map[string]any {
	return map[string]any{
		"attest": attest,
		"dest":   map[string]any{"tn": []string{dest}},
		"iat":    iat.Unix(),
		"orig":   map[string]any{"tn": orig},
		"origid": "123e4567-e89b-12d3-a456-426655440000",
	}
}

// signJWS signs a PASSporT with key (ES256, R||S).
func signJWS(t testing.TB, key *ecdsa.PrivateKey, hdr, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// passport returns a full-form Identity header value signed by key.
func passport(t testing.TB, key *ecdsa.PrivateKey, ppt, x5u string, claims map[string]any) string {
	t.Helper()
	hdr := map[string]any{"alg": "ES256", "ppt": ppt, "typ": "passport", "x5u": x5u}
	return signJWS(t, key, hdr, claims) + ";info=<" + x5u + ">;alg=ES256;ppt=" + ppt
}

// certServer serves x5u resources from an httptest TLS server and counts
// requests per path.
type certServer struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	header map[string]http.Header
	status map[string]int
	hits   map[string]int
	block  chan struct{} // requests to /slow wait on it
}

func newCertServer(t testing.TB, tls bool) *certServer {
	cs := &certServer{files: map[string][]byte{}, header: map[string]http.Header{}, status: map[string]int{}, hits: map[string]int{}, block: make(chan struct{})}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.mu.Lock()
		cs.hits[r.URL.Path]++
		body, ok := cs.files[r.URL.Path]
		hdr := cs.header[r.URL.Path]
		status := cs.status[r.URL.Path]
		cs.mu.Unlock()
		if r.URL.Path == "/slow" {
			select {
			case <-cs.block:
			case <-r.Context().Done():
			}
			return
		}
		for k, v := range hdr {
			w.Header()[k] = v
		}
		switch {
		case status != 0:
			w.WriteHeader(status)
		case !ok:
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Write(body)
		}
	})
	cs.Server = httptest.NewUnstartedServer(h)
	cs.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		cs.Server.StartTLS()
	} else {
		cs.Server.Start()
	}
	t.Cleanup(func() {
		close(cs.block)
		cs.Server.Close()
	})
	return cs
}

func (cs *certServer) put(path string, body []byte, hdr http.Header) string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.files[path] = body
	cs.header[path] = hdr
	return cs.URL + path
}

func (cs *certServer) setStatus(path string, status int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.status[path] = status
}

func (cs *certServer) count(path string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.hits[path]
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newVerifier returns a Verifier closed at the end of the test.
func newVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v := New(cfg)
	t.Cleanup(func() { v.Close() })
	return v
}

// wait lets the fetches Verify started complete.
func wait(t testing.TB, v *Verifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Wait(ctx); err != nil {
		t.Fatal("fetches did not complete:", err)
	}
}

func readShared(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir, rel))
	if err != nil {
		t.Skipf("shared STIR/SHAKEN test material not available: %v", err)
	}
	return b
}

func mustParseCert(t testing.TB, pemBytes []byte) *x509.Certificate {
	t.Helper()
	certs, err := ParseCertificates(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func codes(rs []Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Code)+"/"+r.Severity.String())
	}
	return out
}

func describe(r Result) string {
	var b strings.Builder
	b.WriteString(string(r.Status))
	for _, x := range r.Reasons {
		b.WriteString("\n  [" + string(rune('0'+x.Passport)) + "] " + x.String())
	}
	return b.String()
}
