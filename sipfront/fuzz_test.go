package sipfront

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/numbering"
)

// Fuzz targets for the two parsers: the INVITE-to-call mapping, and the
// fast scanner against sipgo's parser. Their corpora are seeded with the
// torture messages, seedMessages and testdata/fuzz.

var fuzzClock = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var fuzzSource = netip.MustParseAddrPort("192.0.2.200:5060")

// fuzzServer is a server, never listening, over the deterministic fake.
func fuzzServer(t testing.TB) *Server {
	t.Helper()
	s, err := New(Config{UDP: ":0", Tenant: "bank", TenantHeader: "X-Ringfence-Tenant",
		RouteBySource: map[string]string{"192.0.2.0/24": "carrier-a"},
		Now:           func() time.Time { return fuzzClock }}, detScreener())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedMessages are typical and atypical requests beside the torture set.
func seedMessages() []string {
	return []string{
		invite{}.String(),
		invite{callID: "pai", extra: []string{
			"P-Asserted-Identity: <sip:+447400123456@carrier.example;user=phone;verstat=TN-Validation-Passed-A>, <tel:+447400123456>",
			"Identity: eyJhbGciOiJFUzI1NiJ9.e30.c2ln;info=<https://cert.example/c.pem>;alg=ES256;ppt=shaken",
			"Privacy: none", "User-Agent: SBC/1.0", "X-Ingress-Route: uk-1", "X-Ringfence-Tenant: bank"}}.String(),
		invite{uri: "tel:+442071838759", callID: "tel"}.String(),
		invite{callID: "withheld", from: `"Anonymous" <sip:anonymous@anonymous.invalid>;tag=x`, extra: []string{"Privacy: id"}}.String(),
		invite{callID: "div", extra: []string{"Diversion: <tel:+442071000001>;reason=unconditional", "History-Info: <sip:+442071000001@x>;index=1"}}.String(),
		invite{method: "OPTIONS"}.String(),
		invite{method: "CANCEL"}.String(),
		invite{method: "ACK"}.String(),
		invite{method: "REGISTER"}.String(),
		invite{callID: "req", extra: []string{"Require: 100rel"}}.String(),
		strings.Replace(invite{callID: "rport"}.String(), ";branch=", ";rport;branch=", 1),
		strings.Replace(invite{callID: "compact"}.String(), "From: ", "f: ", 1),
		strings.Replace(invite{callID: "folded"}.String(), "Max-Forwards: 70", "Max-Forwards:\r\n 70", 1),
		strings.Replace(invite{callID: "twovias"}.String(), "Max-Forwards: 70", "Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKa, SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKb", 1),
		strings.Replace(invite{callID: "escaped"}.String(), "+442071838750@", "%2B4420718387%35%30@", 1),
		strings.Replace(invite{callID: "npdi"}.String(), "+442071838750@", "+442071838750;npdi;rn=+442071000000@", 1),
	}
}

// seedCorpus adds the torture messages and seedMessages to f.
func seedCorpus(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(tortureDir, "rfc*", "*.dat"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	for _, m := range seedMessages() {
		f.Add([]byte(m))
	}
}

// readRequest reads b as the UDP path does: the fast path if it takes it
// (fast), else sipgo. ok is false when there is no request to map.
func readRequest(s *Server, b []byte, fast bool, r *request) bool {
	if fast && s.scan(b, r) {
		return true
	}
	msg, err := s.dgramParser.ParseSIP(b)
	if err != nil {
		return false
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return false
	}
	fromSipgo(req, s.cfg.TenantHeader, s.cfg.RouteHeader, r)
	return true
}

// FuzzInvite checks the INVITE-to-call mapping: it never panics, a mapped
// call has a dialled number and is one the node accepts, and a refusal is
// a domain error the SIP side has a status for. The whole datagram path
// runs too, on both parsers.
func FuzzInvite(f *testing.F) {
	seedCorpus(f)
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fast := range []bool{true, false} {
			var r request
			if !readRequest(s, b, fast, &r) {
				continue
			}
			for _, v := range append([]string{r.from, r.to}, r.pai...) {
				if got, want := headerNumber(v), numbering.HeaderNumber(v); got != want {
					t.Fatalf("headerNumber(%q) = %q, numbering says %q", v, got, want)
				}
			}
			if got, want := uriUser(r.uri), numbering.HeaderNumber("<"+r.uri+">"); got != want {
				t.Fatalf("uriUser(%q) = %q, numbering says %q", r.uri, got, want)
			}
			if r.method != "INVITE" {
				continue
			}
			in, err := s.incoming(&r, fuzzSource.Addr())
			if err != nil {
				switch call.ErrorCode(err) {
				case call.Invalid, call.Forbidden:
				default:
					t.Fatalf("mapping error %v has no SIP status", err)
				}
				continue
			}
			if !looksLikeNumber(in.Dialled) {
				t.Fatalf("mapped call has dialled %q", in.Dialled)
			}
			if err := in.Validate(fuzzClock); err != nil {
				t.Fatalf("mapped call refused by the node: %v\n%+v", err, in)
			}
		}
		for _, fast := range []bool{true, false} {
			var r request
			var w reply
			s.answerDatagram(&r, &w, b, fuzzSource, false, fast)
		}
	})
}

// FuzzFastPath checks that whenever the fast scanner takes a datagram,
// sipgo's parser reads the same request from it and the two answers agree:
// the same call is screened and the reply is the same, To-tag included.
func FuzzFastPath(f *testing.F) {
	seedCorpus(f)
	fast, slow := fuzzServer(f), fuzzServer(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r1, r2 request
		if !fast.scan(b, &r1) {
			return
		}
		if !readRequest(slow, b, false, &r2) {
			t.Fatalf("the fast path took a datagram sipgo cannot parse")
		}
		if st, w := r2.validate(); st != 0 || !r2.supportedScheme() {
			t.Fatalf("the fast path took a request the sipgo path refuses: %d %s", st, w)
		}
		if d := diffRequests(&r1, &r2); d != "" {
			t.Fatalf("the paths read different requests: %s", d)
		}
		if r1.method == "INVITE" {
			in1, err1 := fast.incoming(&r1, fuzzSource.Addr())
			in2, err2 := slow.incoming(&r2, fuzzSource.Addr())
			if !reflect.DeepEqual(in1, in2) || (err1 == nil) != (err2 == nil) {
				t.Fatalf("the paths map different calls:\n%+v %v\n%+v %v", in1, err1, in2, err2)
			}
		}
		var w1, w2 reply
		ok1 := fast.answerDatagram(&r1, &w1, b, fuzzSource, false, true)
		ok2 := slow.answerDatagram(&r2, &w2, b, fuzzSource, false, false)
		if ok1 != ok2 || withoutContact(w1.b) != withoutContact(w2.b) {
			t.Fatalf("the paths answer differently:\n%s\n---\n%s", w1.b, w2.b)
		}
	})
}

// diffRequests compares what both paths read, except the Request-URI's
// spelling (sipgo re-serialises it); its number must agree.
func diffRequests(a, b *request) string {
	type view struct {
		Method, Version, From, To, CallID, CSeq, Privacy, Agent, Tenant, Route string
		Vias, PAI, Identity, Divert, History                                   []string
		Branch, FromTag, ToTag, ViaHost                                        string
		Rport                                                                  bool
		Counts                                                                 [nSingle]int
		Dialled                                                                string
	}
	v := func(r *request) view {
		counts := r.counts
		counts[hContentLength] = 0 // sipgo adds one to a message without
		return view{r.method, r.version, r.from, r.to, r.callID, r.cseq, r.privacy, r.agent, r.tenant, r.route,
			nonNil(r.vias), nonNil(r.pai), nonNil(r.identity), nonNil(r.divert), nonNil(r.history),
			r.branch, r.fromTag, r.toTag, r.viaHost, r.rport, counts, uriUser(r.uri)}
	}
	va, vb := v(a), v(b)
	if !reflect.DeepEqual(va, vb) {
		return fmt.Sprintf("\nfast  %#v\nsipgo %#v", va, vb)
	}
	return ""
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func withoutContact(b []byte) string {
	var out []string
	for _, l := range strings.Split(string(b), "\r\n") {
		if !strings.HasPrefix(l, "Contact: ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n")
}
