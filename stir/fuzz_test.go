package stir

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fuzz targets for the two parsers: the Identity header and the PASSporT
// (decoded and checked through Verify). Seed corpora are in
// testdata/fuzz/<target>/ beside the seeds added here.

func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{
		"eyJhIjoxfQ.eyJiIjoyfQ.c2ln;info=<https://cert.example/sp.pem>;alg=ES256;ppt=shaken",
		"eyJhIjoxfQ.eyJiIjoyfQ.c2ln ; info = <https://x/a;b> ; ppt=\"shaken\" ; foo=bar",
		"..c2ln;info=<https://cert.example/sp.pem>",
		"a.b.c.d", "a..c", ".b.c", "a.b.", ";info=<>", "a.b.c;info=https://x", "a.b.c;info=<x>;info=<y>",
		"a.b.c;alg=\"ES256\";ppt=shaken,d.e.f;info=<https://x/,y>",
	} {
		f.Add(s)
	}
	if bare, header := refIdentityOrEmpty(f); bare != "" {
		f.Add(bare)
		f.Add(header)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrCompactForm) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrCompactForm", err)
			}
		} else {
			h, c, sig := id.Parts()
			if h == "" || c == "" || sig == "" || strings.Count(id.JWS, ".") != 2 {
				t.Fatalf("accepted %q as %+v", s, id)
			}
			if !isBase64URL(h) || !isBase64URL(c) || !isBase64URL(sig) {
				t.Fatalf("accepted non-base64url parts in %q", s)
			}
		}
		for _, v := range splitValues(nil, s) {
			if v == "" || v != trimLWS(v) {
				t.Fatalf("splitValues gave %q", v)
			}
		}
	})
}

// fuzzKey signs the fuzzed PASSporTs; fuzzVerifier has its certificate
// cached at fuzzX5U and fetches nothing.
var (
	fuzzOnce     sync.Once
	fuzzKey      *ecdsa.PrivateKey
	fuzzVerifier *Verifier
)

const fuzzX5U = "https://cert.example/sp.pem"

type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in fuzzing")
}

func fuzzSetup(t testing.TB) (*ecdsa.PrivateKey, *Verifier) {
	fuzzOnce.Do(func() {
		root := newRoot(t, "Fuzz Root")
		sp := root.sp(t, "1234")
		fuzzKey = sp.key
		fuzzVerifier = New(Config{
			Roots:      pool(root.cert),
			HTTPClient: &http.Client{Transport: noNetwork{}},
			Now:        func() time.Time { return callTime },
			MaxFetches: 1,
		})
		e := fuzzVerifier.prepare(fuzzX5U, []*x509.Certificate{sp.cert})
		e.expires, e.retryAt = callTime.Add(time.Hour), callTime.Add(time.Hour)
		fuzzVerifier.mu.Lock()
		fuzzVerifier.store(e)
		fuzzVerifier.mu.Unlock()
	})
	return fuzzKey, fuzzVerifier
}

// FuzzVerifyPassport signs arbitrary header and claims JSON with the cached
// certificate's key, so that decoding and every check after the signature
// run on fuzzed input, and verifies it with arbitrary header parameters and
// a second arbitrary Identity value.
func FuzzVerifyPassport(f *testing.F) {
	good, _ := json.Marshal(claimsFor(caller[1:], dialled[1:], callTime, "A"))
	hdr := `{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"` + fuzzX5U + `"}`
	divHdr := `{"alg":"ES256","ppt":"div","typ":"passport","x5u":"` + fuzzX5U + `"}`
	seeds := []struct{ hdr, claims, params, other string }{
		{hdr, string(good), ";info=<" + fuzzX5U + ">;alg=ES256;ppt=shaken", ""},
		{hdr, `{"attest":"B","dest":{"tn":"12155550199"},"iat":"1772445600","orig":"{\"tn\":\"12155550100\"}","origid":"x"}`, ";ppt=shaken", ""},
		{divHdr, `{"dest":{"tn":["12155550142"]},"div":{"tn":"12155550199"},"iat":1772445600,"orig":{"tn":"12155550100"}}`, ";info=<" + fuzzX5U + ">;ppt=div", "..c2ln"},
		{`{"alg":"none"}`, `{}`, "", "garbage"},
		{hdr, `{"attest":"A","dest":{"tn":[1,2]},"iat":1e9,"orig":{"tn":["+1 (215) 555-0100"]}}`, ";info=<http://x>", ""},
		{`{"alg":"ES256","ppt":"rcd","x5u":"https://other.example/x"}`, `{"rcd":{"nam":"x"}}`, ";ppt=rcd", ""},
	}
	for _, s := range seeds {
		f.Add(s.hdr, s.claims, s.params, s.other)
	}
	f.Fuzz(func(t *testing.T, hdr, claims, params, other string) {
		key, v := fuzzSetup(t)
		signing := base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
		digest := sha256.Sum256([]byte(signing))
		sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		id := signing + "." + base64.RawURLEncoding.EncodeToString(rawSig(sig)) + params
		r := v.Verify([]string{id, other}, caller, dialled, callTime)
		switch r.Status {
		case Absent, Verified, Failed, Unverified:
		default:
			t.Fatalf("status %q", r.Status)
		}
		if len(r.Passports) > MaxIdentities {
			t.Fatalf("%d passports", len(r.Passports))
		}
		for _, x := range r.Reasons {
			if x.Passport < -1 || x.Passport >= len(r.Passports) || x.Code == "" || x.Text == "" {
				t.Fatalf("bad reason %+v", x)
			}
			if x.Severity == Fatal && x.Passport >= 0 && r.Passports[x.Passport].Status == Verified {
				t.Fatalf("verified PASSporT with fatal %s", x)
			}
		}
		if r.Status == Verified && r.Attest == "" {
			t.Fatal("verified without attestation")
		}
		r.ReasonHeaders()
		if _, err := json.Marshal(r); err != nil {
			t.Fatal(err)
		}
	})
}

// rawSig converts an ASN.1 ECDSA signature to JWS R||S.
func rawSig(der []byte) []byte {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		panic(err)
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out
}

func refIdentityOrEmpty(tb testing.TB) (string, string) {
	if _, err := os.Stat(filepath.Join(sharedDir, refDir, "sp/passport.txt")); err != nil {
		return "", ""
	}
	return refIdentity(tb)
}
