package stir

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"testing"
	"time"
)

// The libstirshaken reference material (signalwire/libstirshaken, MIT): an
// STI-CA, an STI-SP certificate and a PASSporT it signed, and a "wrong" SP
// certificate. The PASSporT's x5u is http://shaken.signalwire.cloud/sp.pem;
// the test transport sends that request to an httptest TLS server.

const refDir = "libstirshaken-ref/"

// refIdentity returns the two signed forms in passport.txt: the bare
// PASSporT and the SIP Identity header (signed again: ECDSA signatures are
// randomised, both verify).
func refIdentity(t testing.TB) (bare, header string) {
	t.Helper()
	txt := string(readShared(t, refDir+"sp/passport.txt"))
	jws := regexp.MustCompile(`(?m)^(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)(;info=.*)?$`)
	m := jws.FindAllStringSubmatch(txt, -1)
	if len(m) != 2 {
		t.Fatalf("passport.txt: found %d signed PASSporTs, want 2", len(m))
	}
	return m[0][1], m[1][0]
}

// rewrite sends every request to the test server, whatever its URL.
type rewrite struct {
	target *url.URL
	next   http.RoundTripper
}

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = r.target.Scheme, r.target.Host
	return r.next.RoundTrip(req)
}

func refVerifier(t *testing.T, spFile string) (*Verifier, *certServer) {
	cs := newCertServer(t, true)
	cs.put("/sp.pem", readShared(t, refDir+"sp/"+spFile), nil)
	target, _ := url.Parse(cs.URL)
	ca := mustParseCert(t, readShared(t, refDir+"ca/ca.pem"))
	v := newVerifier(t, Config{
		Roots:      pool(ca),
		AllowHTTP:  true, // the reference x5u is http://
		HTTPClient: &http.Client{Transport: rewrite{target, cs.Client().Transport}},
	})
	return v, cs
}

func TestReferencePassport(t *testing.T) {
	bare, header := refIdentity(t)
	const orig, dest = "01256789999", "01256500600" // the PASSporT's numbers
	iat := time.Unix(1603458131, 0)

	t.Run("parse", func(t *testing.T) {
		id, err := ParseIdentity(header)
		if err != nil {
			t.Fatal(err)
		}
		if id.Info != "http://shaken.signalwire.cloud/sp.pem" || id.Alg != "ES256" || id.PPT != "shaken" {
			t.Errorf("parameters: %+v", id)
		}
	})

	for _, tc := range []struct {
		sp      string
		sigOK   bool
		trusted bool
	}{
		{"sp.pem", true, true},
		{"wrongsp.pem", false, false},
	} {
		t.Run(tc.sp, func(t *testing.T) {
			v, cs := refVerifier(t, tc.sp)
			if err := v.Fetch(context.Background(), "http://shaken.signalwire.cloud/sp.pem"); err != nil {
				t.Fatal(err)
			}
			for _, form := range []string{header, bare} {
				// At the call's real time: stale, and non-object orig/dest.
				r := v.Verify([]string{form}, orig, dest, time.Now())
				if r.Status != Failed || !r.HasFatal(CodeStaleIat) || !r.HasFatal(CodeNonstandardTN) {
					t.Errorf("now: %s", describe(r))
				}
				if got := r.HasFatal(CodeBadSignature); got == tc.sigOK {
					t.Errorf("now: bad_signature=%v, want %v: %s", got, !tc.sigOK, describe(r))
				}
				// At its iat: fresh; still not RFC 8225 orig/dest objects.
				r = v.Verify([]string{form}, orig, dest, iat.Add(5*time.Second))
				if r.Status != Failed || r.Has(CodeStaleIat) || !r.HasFatal(CodeNonstandardTN) {
					t.Errorf("at iat: %s", describe(r))
				}
				if got := r.HasFatal(CodeBadSignature); got == tc.sigOK {
					t.Errorf("at iat: bad_signature=%v, want %v: %s", got, !tc.sigOK, describe(r))
				}
				if got := r.HasFatal(CodeUntrustedCert); got == tc.trusted {
					t.Errorf("at iat: untrusted_cert=%v, want %v: %s", got, !tc.trusted, describe(r))
				}
				p := r.Passports[0]
				if p.OrigTN != orig || !slices.Equal(p.DestTN, []string{dest}) || p.Attest != "A" || p.OrigID != "ref" {
					t.Errorf("claims: %+v", p)
				}
				// The numbers inside the strings are still compared.
				r = v.Verify([]string{form}, "+441256789999", dest, iat)
				if !r.HasFatal(CodeOrigMismatch) {
					t.Errorf("orig in another form: %s", describe(r))
				}
			}
			if n := cs.count("/sp.pem"); n != 1 {
				t.Errorf("%d fetches, want 1 (cached)", n)
			}
		})
	}

	t.Run("http refused by default", func(t *testing.T) {
		v := newVerifier(t, Config{})
		r := v.Verify([]string{header}, orig, dest, iat)
		if !r.HasFatal(CodeInsecureX5U) {
			t.Errorf("%s", describe(r))
		}
		if v.Stats().Fetches != 0 {
			t.Error("fetched an http x5u")
		}
	})

	t.Run("sp.pem profile", func(t *testing.T) {
		// The reference SP certificate predates the SHAKEN profile: its
		// TNAuthList is a bare IA5String URL, and it has no key usage, basic
		// constraints or policies.
		sp := mustParseCert(t, readShared(t, refDir+"sp/sp.pem"))
		got := codes(CheckCertificate(sp, time.Time{}))
		for _, want := range []string{"cert_tnauthlist/warning", "cert_key_usage/warning", "cert_basic_constraints/warning", "cert_policies/warning"} {
			if !slices.Contains(got, want) {
				t.Errorf("missing %s in %v", want, got)
			}
		}
	})
}
