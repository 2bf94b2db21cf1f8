package stir

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	caller  = "+12155550100"
	dialled = "+12155550199"
)

// env is a test PKI with an x5u server and a verifier trusting the root.
type env struct {
	root  testCA
	inter testCA
	sp    testSP
	cs    *certServer
	x5u   string
	v     *Verifier
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{root: newRoot(t, "Test STI-PA Root")}
	e.inter = e.root.intermediate(t, "Test STI-CA")
	e.sp = e.inter.sp(t, "1234")
	e.sp.chain = []*x509.Certificate{e.inter.cert}
	e.cs = newCertServer(t, true)
	e.x5u = e.cs.put("/sp.pem", e.sp.pem(), nil)
	cfg.Roots = pool(e.root.cert)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = e.cs.Client()
	}
	e.v = newVerifier(t, cfg)
	return e
}

// serve publishes an SP certificate (with the intermediate) and returns its x5u.
func (e *env) serve(path string, sp testSP) string {
	return e.cs.put(path, sp.pem(), nil)
}

// warm fetches x5u into the cache.
func (e *env) warm(t *testing.T, x5u string) {
	t.Helper()
	if err := e.v.Fetch(context.Background(), x5u); err != nil {
		t.Fatal(err)
	}
}

func (e *env) shaken(t *testing.T, attest string) string {
	return passport(t, e.sp.key, PPTShaken, e.x5u, claimsFor(caller[1:], dialled[1:], callTime, attest))
}

func TestVerifyFetchesThenVerifies(t *testing.T) {
	e := newEnv(t, Config{})
	id := e.shaken(t, "A")

	r := e.v.Verify([]string{id}, caller, dialled, callTime.Add(2*time.Second))
	if r.Status != Unverified || !r.Has(CodeCertPending) || r.Attest != "" {
		t.Fatalf("first call: %s", describe(r))
	}
	if r.Passports[0].Attest != "A" {
		t.Errorf("claimed attest not reported: %+v", r.Passports[0])
	}
	wait(t, e.v)

	r = e.v.Verify([]string{id}, caller, dialled, callTime.Add(2*time.Second))
	if r.Status != Verified || r.Attest != "A" || r.OrigID != "123e4567-e89b-12d3-a456-426655440000" || len(r.Reasons) != 0 {
		t.Fatalf("second call: %s", describe(r))
	}
	p := r.Passports[0]
	if p.SPC != "1234" || p.PPT != PPTShaken || p.OrigTN != caller[1:] || p.X5U != e.x5u || p.IAT != callTime.Unix() {
		t.Errorf("passport: %+v", p)
	}
	if n := e.cs.count("/sp.pem"); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	if s := e.v.Stats(); s.Hits != 1 || s.Misses != 1 || s.Fetches != 1 || s.Entries != 1 {
		t.Errorf("stats: %+v", s)
	}
	if b, err := json.Marshal(r); err != nil || !strings.Contains(string(b), `"status":"verified"`) {
		t.Errorf("JSON: %s %v", b, err)
	}
}

func TestVerifyOutcomes(t *testing.T) {
	e := newEnv(t, Config{})
	other := newRoot(t, "Other Root")
	at := callTime.Add(3 * time.Second)

	// Certificates for the certificate cases, each at its own x5u.
	expired := e.inter.sp(t, "1234", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = callTime.AddDate(-1, 0, 0), callTime.Add(-time.Hour)
	})
	future := e.inter.sp(t, "1234", func(c *x509.Certificate) { c.NotBefore = callTime.Add(time.Hour) })
	untrusted := other.sp(t, "1234")
	noTN := e.inter.sp(t, "1234", func(c *x509.Certificate) { c.ExtraExtensions = nil })
	keyAgree := e.inter.sp(t, "1234", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyAgreement })
	oddKU := e.inter.sp(t, "1234", func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageDataEncipherment })
	caSigner := e.inter.sp(t, "1234", func(c *x509.Certificate) {
		c.IsCA, c.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
	})
	noChain := e.inter.sp(t, "1234") // served without its intermediate
	for _, sp := range []*testSP{&expired, &future, &noTN, &keyAgree, &oddKU, &caSigner} {
		sp.chain = []*x509.Certificate{e.inter.cert}
	}
	urls := map[string]string{}
	for name, sp := range map[string]testSP{"expired": expired, "future": future, "untrusted": untrusted, "notn": noTN,
		"keyagree": keyAgree, "oddku": oddKU, "ca": caSigner, "nochain": noChain} {
		urls[name] = e.serve("/"+name+".pem", sp)
		e.warm(t, urls[name])
	}
	e.warm(t, e.x5u)

	good := claimsFor(caller[1:], dialled[1:], callTime, "B")
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for k, v := range good {
			c[k] = v
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	sign := func(claims map[string]any) string { return passport(t, e.sp.key, PPTShaken, e.x5u, claims) }
	signedBy := func(sp testSP, name string) string {
		return passport(t, sp.key, PPTShaken, urls[name], good)
	}
	hdr := func(h map[string]any, claims map[string]any) string {
		return signJWS(t, e.sp.key, h, claims) + ";info=<" + e.x5u + ">;alg=ES256;ppt=shaken"
	}
	wrongKey := mustKey(t)
	valid := sign(good)
	parts := strings.SplitN(valid, ".", 3)
	tamperedClaims := func() string {
		c := with("attest", "A")
		b, _ := json.Marshal(c)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}()

	tests := []struct {
		name   string
		ids    []string
		orig   string
		dest   string
		status Status
		fatal  []Code // fatal codes that must be present
		warns  []Code // warning codes that must be present
	}{
		{"valid", []string{valid}, caller, dialled, Verified, nil, nil},
		{"orig and dest without plus", []string{valid}, caller[1:], dialled[1:], Verified, nil, nil},
		{"call numbers with separators", []string{valid}, "+1 (215) 555-0100", "+1-215-555-0199", Verified, nil, nil},
		{"plus in passport numbers", []string{sign(with("orig", map[string]any{"tn": caller}))}, caller, dialled, Verified, nil, nil},
		{"unknown call numbers not compared", []string{valid}, "", "", Verified, nil, nil},
		{"wrong key", []string{passport(t, wrongKey, PPTShaken, e.x5u, good)}, caller, dialled, Failed, []Code{CodeBadSignature}, nil},
		{"tampered claims", []string{tamperedClaims}, caller, dialled, Failed, []Code{CodeBadSignature}, nil},
		{"truncated signature", []string{parts[0] + "." + parts[1] + "." + parts[2][:40]}, caller, dialled, Failed, []Code{CodeBadSignature}, nil},
		{"stale iat", []string{sign(with("iat", callTime.Add(-61*time.Second).Unix()))}, caller, dialled, Failed, []Code{CodeStaleIat}, nil},
		{"iat at the limit", []string{sign(with("iat", at.Add(-60*time.Second).Unix()))}, caller, dialled, Verified, nil, nil},
		{"future iat", []string{sign(with("iat", callTime.Add(2*time.Minute).Unix()))}, caller, dialled, Failed, []Code{CodeStaleIat}, nil},
		{"orig mismatch", []string{valid}, "+12155550101", dialled, Failed, []Code{CodeOrigMismatch}, nil},
		{"dest mismatch", []string{valid}, caller, "+12155550198", Failed, []Code{CodeDestMismatch}, nil},
		{"dest among several", []string{sign(with("dest", map[string]any{"tn": []string{"441632960000", dialled[1:]}}))}, caller, dialled, Verified, nil, nil},
		{"dest.tn as a string", []string{sign(with("dest", map[string]any{"tn": dialled[1:]}))}, caller, dialled, Verified, nil, []Code{CodeNonstandardTN}},
		{"orig as a JSON string", []string{sign(with("orig", `{"tn":"`+caller[1:]+`"}`))}, caller, dialled, Failed, []Code{CodeNonstandardTN}, nil},
		{"orig uri only", []string{sign(with("orig", map[string]any{"uri": "sip:alice@example.com"}))}, caller, dialled, Failed, []Code{CodeMalformed}, nil},
		{"no iat", []string{sign(with("iat", nil))}, caller, dialled, Failed, []Code{CodeMalformed}, nil},
		{"iat as a string", []string{sign(with("iat", "1772445600"))}, caller, dialled, Verified, nil, []Code{CodeMalformed}},
		{"attest D", []string{sign(with("attest", "D"))}, caller, dialled, Failed, []Code{CodeMalformed}, nil},
		{"no origid", []string{sign(with("origid", nil))}, caller, dialled, Verified, nil, []Code{CodeMalformed}},
		{"alg ES384 in header", []string{hdr(map[string]any{"alg": "ES384", "ppt": "shaken", "typ": "passport", "x5u": e.x5u}, good)}, caller, dialled, Failed, []Code{CodeUnsupportedAlg}, nil},
		{"alg parameter RS256", []string{strings.Replace(valid, ";alg=ES256", ";alg=RS256", 1)}, caller, dialled, Failed, []Code{CodeUnsupportedAlg}, nil},
		{"ppt parameter differs", []string{strings.Replace(valid, ";ppt=shaken", ";ppt=div", 1)}, caller, dialled, Failed, []Code{CodeMalformed}, nil},
		{"quoted ppt parameter", []string{strings.Replace(valid, ";ppt=shaken", `;ppt="shaken"`, 1)}, caller, dialled, Verified, nil, nil},
		{"info differs from x5u", []string{strings.Replace(valid, ";info=<"+e.x5u+">", ";info=<https://elsewhere.example/sp.pem>", 1)}, caller, dialled, Failed, []Code{CodeInfoMismatch}, nil},
		{"no info parameter", []string{strings.Replace(valid, ";info=<"+e.x5u+">", "", 1)}, caller, dialled, Verified, nil, []Code{CodeInfoMismatch}},
		{"typ JWT", []string{hdr(map[string]any{"alg": "ES256", "ppt": "shaken", "typ": "JWT", "x5u": e.x5u}, good)}, caller, dialled, Verified, nil, []Code{CodeMalformed}},
		{"compact form", []string{".." + parts[2] + ";info=<" + e.x5u + ">;alg=ES256;ppt=shaken"}, caller, dialled, Failed, []Code{CodeCompactForm}, nil},
		{"not a JWS", []string{"hello;info=<" + e.x5u + ">"}, caller, dialled, Failed, []Code{CodeMalformed}, nil},
		{"claims not JSON", []string{parts[0] + ".bm90IGpzb24." + parts[2] + ";info=<" + e.x5u + ">"}, caller, dialled, Failed, []Code{CodeMalformed}, nil},
		{"expired certificate", []string{signedBy(expired, "expired")}, caller, dialled, Failed, []Code{CodeCertValidity}, nil},
		{"certificate not yet valid", []string{signedBy(future, "future")}, caller, dialled, Failed, []Code{CodeCertValidity}, nil},
		{"untrusted certificate", []string{signedBy(untrusted, "untrusted")}, caller, dialled, Failed, []Code{CodeUntrustedCert}, nil},
		{"intermediate not served", []string{signedBy(noChain, "nochain")}, caller, dialled, Failed, []Code{CodeUntrustedCert}, nil},
		{"no TNAuthList", []string{signedBy(noTN, "notn")}, caller, dialled, Failed, []Code{CodeCertTNAuthList}, nil},
		{"key usage without digitalSignature", []string{signedBy(keyAgree, "keyagree")}, caller, dialled, Failed, []Code{CodeCertKeyUsage}, nil},
		{"extra key usage", []string{signedBy(oddKU, "oddku")}, caller, dialled, Verified, nil, []Code{CodeCertKeyUsage}},
		{"CA certificate as signer", []string{signedBy(caSigner, "ca")}, caller, dialled, Failed, []Code{CodeCertBasicConstraints}, nil},
		{"rcd only", []string{passport(t, e.sp.key, "rcd", e.x5u, good)}, caller, dialled, Absent, nil, []Code{CodeUnsupportedPPT}},
		{"shaken beside rcd", []string{passport(t, e.sp.key, "rcd", e.x5u, good), valid}, caller, dialled, Verified, nil, []Code{CodeUnsupportedPPT}},
		{"two values on one line", []string{passport(t, e.sp.key, "rcd", e.x5u, good) + " , " + valid}, caller, dialled, Verified, nil, []Code{CodeUnsupportedPPT}},
		{"verified and failed shaken", []string{sign(with("iat", callTime.Add(-time.Hour).Unix())), valid}, caller, dialled, Verified, []Code{CodeStaleIat}, nil},
		{"empty values", []string{"", "  "}, caller, dialled, Absent, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.v.Verify(tc.ids, tc.orig, tc.dest, at)
			if r.Status != tc.status {
				t.Errorf("status %s, want %s: %s", r.Status, tc.status, describe(r))
			}
			for _, c := range tc.fatal {
				if !r.HasFatal(c) {
					t.Errorf("no fatal %s: %s", c, describe(r))
				}
			}
			for _, c := range tc.warns {
				if !r.Has(c) || r.HasFatal(c) {
					t.Errorf("no warning-only %s: %s", c, describe(r))
				}
			}
			if r.Status == Verified && (r.Attest != "B" || (r.OrigID == "") != (tc.name == "no origid")) {
				t.Errorf("attest %q origid %q", r.Attest, r.OrigID)
			}
			if r.Status == Failed && len(r.ReasonHeaders()) == 0 {
				t.Errorf("failed without a Reason header: %s", describe(r))
			}
			for _, x := range r.Reasons {
				if strings.Contains(x.Text, "215555") {
					t.Errorf("reason text holds a phone number: %s", x.Text)
				}
			}
		})
	}
	if n := e.v.Stats().Fetches; n != 9 {
		t.Errorf("%d fetches, want only the 9 warm-ups", n)
	}
}

func TestVerifyIntermediatesConfigured(t *testing.T) {
	e := newEnv(t, Config{})
	sp := e.inter.sp(t, "5678") // served without the intermediate
	x5u := e.serve("/bare.pem", sp)
	v := newVerifier(t, Config{Roots: pool(e.root.cert), Intermediates: pool(e.inter.cert), HTTPClient: e.cs.Client()})
	if err := v.Fetch(context.Background(), x5u); err != nil {
		t.Fatal(err)
	}
	id := passport(t, sp.key, PPTShaken, x5u, claimsFor(caller[1:], dialled[1:], callTime, "C"))
	r := v.Verify([]string{id}, caller, dialled, callTime)
	if r.Status != Verified || r.Attest != "C" || r.Passports[0].SPC != "5678" {
		t.Fatalf("%s", describe(r))
	}
}

func TestVerifyStrictProfile(t *testing.T) {
	e := newEnv(t, Config{StrictProfile: true})
	sp := e.inter.sp(t, "1234", func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageDataEncipherment })
	sp.chain = []*x509.Certificate{e.inter.cert}
	x5u := e.serve("/odd.pem", sp)
	e.warm(t, x5u)
	r := e.v.Verify([]string{passport(t, sp.key, PPTShaken, x5u, claimsFor(caller, dialled, callTime, "A"))}, caller, dialled, callTime)
	if r.Status != Failed || !r.HasFatal(CodeCertKeyUsage) {
		t.Fatalf("%s", describe(r))
	}
}

func TestVerifyDiversion(t *testing.T) {
	e := newEnv(t, Config{})
	// The diverting carrier has its own certificate.
	divSP := e.inter.sp(t, "9999")
	divSP.chain = []*x509.Certificate{e.inter.cert}
	divX5U := e.serve("/div.pem", divSP)
	const original, forwarded, second = "12155550199", "12155550142", "441632960111"

	shaken := passport(t, e.sp.key, PPTShaken, e.x5u, claimsFor(caller[1:], original, callTime, "A"))
	div := func(from, to string, key testSP, x5u string) string {
		c := map[string]any{
			"orig": map[string]any{"tn": caller[1:]},
			"dest": map[string]any{"tn": []string{to}},
			"div":  map[string]any{"tn": from},
			"iat":  callTime.Unix(),
		}
		return passport(t, key.key, PPTDiv, x5u, c)
	}
	div1 := div(original, forwarded, divSP, divX5U)
	div2 := div(forwarded, second, divSP, divX5U)
	stray := div("12155550000", forwarded, divSP, divX5U)
	forged := div(original, forwarded, testSP{key: mustKey(t)}, divX5U)

	// Nothing cached: everything pending.
	r := e.v.Verify([]string{shaken, div1}, caller, "+"+forwarded, callTime)
	if r.Status != Unverified || r.Passports[1].Status != Unverified || r.Passports[1].PPT != PPTDiv {
		t.Fatalf("cold: %s", describe(r))
	}
	wait(t, e.v)

	tests := []struct {
		name   string
		ids    []string
		dest   string
		status Status
		fatal  []Code
		div    Status // status of the last PASSporT
	}{
		{"diverted once", []string{shaken, div1}, forwarded, Verified, nil, Verified},
		{"div first", []string{div1, shaken}, forwarded, Verified, nil, Verified},
		{"diverted twice", []string{shaken, div1, div2}, second, Verified, nil, Verified},
		{"chain broken", []string{shaken, div2}, second, Failed, []Code{CodeDestMismatch, CodeDivMismatch}, Failed},
		{"not diverted, stray div", []string{shaken, stray}, original, Verified, []Code{CodeDivMismatch}, Failed},
		{"forged div", []string{shaken, forged}, forwarded, Failed, []Code{CodeDestMismatch, CodeBadSignature}, Failed},
		{"div alone", []string{div1}, forwarded, Absent, []Code{CodeDivMismatch}, Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.v.Verify(tc.ids, caller, "+"+tc.dest, callTime)
			if r.Status != tc.status || r.Passports[len(r.Passports)-1].Status != tc.div {
				t.Errorf("status %s (last %s), want %s (%s): %s", r.Status, r.Passports[len(r.Passports)-1].Status, tc.status, tc.div, describe(r))
			}
			for _, c := range tc.fatal {
				if !r.HasFatal(c) {
					t.Errorf("no fatal %s: %s", c, describe(r))
				}
			}
		})
	}

	// A div PASSporT whose certificate is not cached keeps the shaken one
	// pending when its dest depends on it.
	late := e.inter.sp(t, "7777")
	late.chain = []*x509.Certificate{e.inter.cert}
	lateX5U := e.serve("/late.pem", late)
	r = e.v.Verify([]string{shaken, div(original, forwarded, late, lateX5U)}, caller, "+"+forwarded, callTime)
	if r.Status != Unverified || r.Passports[0].Status != Unverified {
		t.Fatalf("div pending: %s", describe(r))
	}
}

func TestVerifyBestAttestation(t *testing.T) {
	e := newEnv(t, Config{})
	e.warm(t, e.x5u)
	r := e.v.Verify([]string{e.shaken(t, "C"), e.shaken(t, "A"), e.shaken(t, "B")}, caller, dialled, callTime)
	if r.Status != Verified || r.Attest != "A" {
		t.Fatalf("%s attest %s", describe(r), r.Attest)
	}
}

func TestVerifyTooManyValues(t *testing.T) {
	e := newEnv(t, Config{})
	e.warm(t, e.x5u)
	ids := slices.Repeat([]string{e.shaken(t, "A")}, MaxIdentities+3)
	r := e.v.Verify(ids, caller, dialled, callTime)
	if r.Status != Verified || len(r.Passports) != MaxIdentities || !r.Has(CodeMalformed) {
		t.Fatalf("%s", describe(r))
	}
}

func TestVerifyAbsentAllocatesNothing(t *testing.T) {
	v := newVerifier(t, Config{})
	if n := testing.AllocsPerRun(100, func() {
		if v.Verify(nil, caller, dialled, callTime).Status != Absent {
			t.Fatal("not absent")
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestReasonHeaders(t *testing.T) {
	e := newEnv(t, Config{})
	e.warm(t, e.x5u)
	stale := passport(t, e.sp.key, PPTShaken, e.x5u, claimsFor(caller[1:], dialled[1:], callTime.Add(-time.Hour), "A"))
	bad := passport(t, mustKey(t), PPTShaken, e.x5u, claimsFor(caller[1:], dialled[1:], callTime, "A"))
	r := e.v.Verify([]string{stale, bad, e.shaken(t, "A")}, caller, dialled, callTime)
	got := r.ReasonHeaders()
	sig := func(id string) string { return strings.Split(strings.Split(id, ";")[0], ".")[2] }
	want := []string{
		`STIR ;cause=403 ;text="Stale Date" ;ppi="..` + sig(stale) + `"`,
		`STIR ;cause=438 ;text="Invalid Identity Header" ;ppi="..` + sig(bad) + `"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if ReasonHeader(437, "") != `STIR ;cause=437 ;text="Unsupported Credential"` {
		t.Error(ReasonHeader(437, ""))
	}
}

func TestCauses(t *testing.T) {
	want := map[Code]int{
		CodeMalformed: 438, CodeCompactForm: 438, CodeUnsupportedAlg: 437, CodeUnsupportedPPT: 0,
		CodeBadSignature: 438, CodeStaleIat: 403, CodeOrigMismatch: 438, CodeDestMismatch: 438,
		CodeNonstandardTN: 438, CodeDivMismatch: 438, CodeInfoMismatch: 438, CodeInsecureX5U: 436,
		CodeFetchFailed: 436, CodeCertPending: 0, CodeUntrustedCert: 437, CodeCertValidity: 437,
		CodeCertKey: 437, CodeCertSigAlg: 437, CodeCertVersion: 437, CodeCertTNAuthList: 437,
		CodeCertBasicConstraints: 437, CodeCertKeyUsage: 437, CodeCertPolicies: 437, CodeCertExtension: 437,
	}
	for c, cause := range want {
		if got := causeOf(c); got != cause {
			t.Errorf("%s: cause %d, want %d", c, got, cause)
		}
		if cause != 0 && CauseText(cause) == "" {
			t.Errorf("%d has no text", cause)
		}
	}
}
