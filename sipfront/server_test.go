package sipfront

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/store"
)

// TestVerdicts screens calls through a real node over UDP and TCP and
// checks each verdict's answer and record.
func TestVerdicts(t *testing.T) {
	ctx := context.Background()
	n := nodeFixture(t)
	if _, err := n.AddListEntry(ctx, "bank", call.DenyList, "+447700900123", "fraud", time.Time{}); err != nil {
		t.Fatal(err)
	}
	srv := startSIP(t, Config{Appliance: "sbc-edge-1"}, n)

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			c := dialSIP(t, network, map[string]net.Addr{"udp": srv.UDPAddr(), "tcp": srv.TCPAddr()}[network])
			tp := strings.ToUpper(network)

			// allow: 302 to the original Request-URI, verdict headers, record stored
			uri := "sip:+442071838750@ringfence.example;user=phone"
			res := c.roundTrip(invite{transport: tp, uri: uri, callID: "allow-" + network,
				extra: []string{"X-Ingress-Route: uk-1"}}.String())
			if res.StatusCode != 302 || res.Reason != "Moved Temporarily" {
				t.Fatalf("allow: %d %s", res.StatusCode, res.Reason)
			}
			if got := header(res, "Contact"); got != "<"+uri+">" {
				t.Errorf("Contact %q, want <%s>", got, uri)
			}
			if header(res, "X-Ringfence-Action") != "allow" || header(res, "X-Ringfence-Score") != "0.024" {
				t.Errorf("allow: action %q score %q", header(res, "X-Ringfence-Action"), header(res, "X-Ringfence-Score"))
			}
			if header(res, "X-Ringfence-Markers") != "route.unknown" {
				t.Errorf("markers %q, want route.unknown", header(res, "X-Ringfence-Markers"))
			}
			id := header(res, "X-Ringfence-Record")
			rec, err := n.Call(ctx, "bank", id)
			if err != nil {
				t.Fatalf("record %q: %v", id, err)
			}
			if rec.Caller.E164 != "+447400123456" || rec.Dialled.E164 != "+442071838750" || rec.Ingress != "uk-1" ||
				rec.ApplianceID != "sbc-edge-1" || rec.Signalling.ViaCount != 1 {
				t.Errorf("record %+v", rec)
			}
			if len(toTag(res)) != 16 {
				t.Errorf("To-tag %q, want 16 hex digits", toTag(res))
			}

			// block: the caller is on the deny list; default policy answers 608
			res = c.roundTrip(invite{transport: tp, callID: "block-" + network,
				from: "<sip:+447700900123@carrier.example>;tag=9"}.String())
			if res.StatusCode != 608 || res.Reason != "Rejected" || header(res, "X-Ringfence-Action") != "block" {
				t.Fatalf("block: %d %s action %q", res.StatusCode, res.Reason, header(res, "X-Ringfence-Action"))
			}
			if !strings.Contains(header(res, "X-Ringfence-Markers"), "list.deny") || header(res, "Call-Info") != "" {
				t.Errorf("block: markers %q Call-Info %q", header(res, "X-Ringfence-Markers"), header(res, "Call-Info"))
			}
		})
	}

	// flag, the RFC 9410 Reason on a STIR failure, and a withheld caller
	p, _ := n.Policy("bank")
	p.FlagAt, p.Redress = 0.2, "https://bank.example/redress"
	if _, err := n.PutPolicy(ctx, "bank", p); err != nil {
		t.Fatal(err)
	}
	c := dialSIP(t, "udp", srv.UDPAddr())
	res := c.roundTrip(invite{callID: "stir", extra: []string{
		"P-Asserted-Identity: <sip:+447400123456@carrier.example;verstat=TN-Validation-Failed;user=phone>"}}.String())
	if res.StatusCode != 302 || header(res, "X-Ringfence-Action") != "flag" {
		t.Fatalf("stir failure: %d %q", res.StatusCode, header(res, "X-Ringfence-Action"))
	}
	if got := header(res, "Reason"); got != `STIR ;cause=438 ;text="Invalid Identity Header"` {
		t.Errorf("Reason %q", got)
	}
	res = c.roundTrip(invite{callID: "withheld", extra: []string{"Privacy: id"}}.String())
	if !strings.Contains(header(res, "X-Ringfence-Markers"), "cli.withheld") {
		t.Errorf("Privacy: id: markers %q, want cli.withheld", header(res, "X-Ringfence-Markers"))
	}

	// block with Call-Info redress, then 603 when the policy says so
	res = c.roundTrip(invite{callID: "redress", from: "<sip:+447700900123@carrier.example>;tag=9"}.String())
	if res.StatusCode != 608 || header(res, "Call-Info") != "<https://bank.example/redress>;purpose=jwscallinfo" {
		t.Fatalf("608: %d Call-Info %q", res.StatusCode, header(res, "Call-Info"))
	}
	p, _ = n.Policy("bank")
	p.BlockWith = 603
	if _, err := n.PutPolicy(ctx, "bank", p); err != nil {
		t.Fatal(err)
	}
	res = c.roundTrip(invite{callID: "decline", from: "<sip:+447700900123@carrier.example>;tag=9"}.String())
	if res.StatusCode != 603 || res.Reason != "Decline" || header(res, "Call-Info") != "" {
		t.Fatalf("603: %d %s Call-Info %q", res.StatusCode, res.Reason, header(res, "Call-Info"))
	}

	// no telephone number anywhere: 484
	res = c.roundTrip(invite{callID: "nonumber", uri: "sip:reception@bank.example"}.String())
	if res.StatusCode != 484 || !strings.Contains(header(res, "Warning"), "dialled") {
		t.Fatalf("no number: %d Warning %q", res.StatusCode, header(res, "Warning"))
	}
}

// TestRetransmission checks that copies of an INVITE get the identical
// answer and the call is recorded once, until the 32 s window ends.
func TestRetransmission(t *testing.T) {
	ctx := context.Background()
	n := nodeFixture(t)
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	srv := startSIP(t, Config{Now: now}, n)
	c := dialSIP(t, "udp", srv.UDPAddr())

	msg := invite{callID: "retrans-1"}.String()
	first := c.roundTrip(msg)
	for range 3 {
		again := c.roundTrip(msg)
		if again.String() != first.String() {
			t.Fatalf("retransmission answered differently:\n%s\nvs\n%s", again, first)
		}
	}
	// over TCP too: the cache is shared by every transport
	tc := dialSIP(t, "tcp", srv.TCPAddr())
	if res := tc.roundTrip(msg); header(res, "X-Ringfence-Record") != header(first, "X-Ringfence-Record") || toTag(res) != toTag(first) {
		t.Fatalf("TCP copy: record %q tag %q", header(res, "X-Ringfence-Record"), toTag(res))
	}
	calls, _, err := n.Calls(ctx, "bank", store.CallFilter{})
	if err != nil || len(calls) != 1 {
		t.Fatalf("calls recorded: %d (%v), want 1", len(calls), err)
	}

	// A new branch is a new transaction, a new call.
	other := c.roundTrip(invite{callID: "retrans-1", branch: "z9hG4bKother"}.String())
	if header(other, "X-Ringfence-Record") == header(first, "X-Ringfence-Record") {
		t.Error("new branch answered from the cache")
	}
	// After the window the copy is screened again (the To-tag, derived
	// from the request, stays).
	mu.Lock()
	clock = clock.Add(answerTTL + time.Second)
	mu.Unlock()
	late := c.roundTrip(msg)
	if header(late, "X-Ringfence-Record") == header(first, "X-Ringfence-Record") || toTag(late) != toTag(first) {
		t.Errorf("after 32 s: record %q tag %q", header(late, "X-Ringfence-Record"), toTag(late))
	}
}

// TestRetransmissionWhileScreening checks that a copy arriving while the
// first is still being screened is absorbed and the call screened once.
func TestRetransmissionWhileScreening(t *testing.T) {
	release := make(chan struct{})
	var screened atomic.Int32
	f := &fakeScreener{ScreenFn: func(ctx context.Context, in node.Incoming) (*call.Call, error) {
		screened.Add(1)
		<-release
		return &call.Call{ID: "01JDQ0000000000000000000AB", Verdict: call.Verdict{Action: call.Allow}}, nil
	}}
	srv := startSIP(t, Config{UDP: "127.0.0.1:0"}, f)
	c := dialSIP(t, "udp", srv.UDPAddr())
	msg := invite{callID: "slow"}.String()
	c.send(msg)
	for screened.Load() == 0 {
		runtime.Gosched()
	}
	c.send(msg) // absorbed: no answer of its own
	c.send(invite{method: "OPTIONS", callID: "probe"}.String())
	if res := c.read(5 * time.Second); res == nil || header(res, "Call-ID") != "probe" {
		t.Fatalf("first answer should be the probe's, got %v", res)
	}
	close(release)
	if res := c.read(5 * time.Second); res == nil || res.StatusCode != 302 {
		t.Fatalf("answer to the INVITE: %v", res)
	}
	if screened.Load() != 1 {
		t.Errorf("screened %d times", screened.Load())
	}
}

// TestMethods covers everything but INVITE, and INVITEs refused before
// screening.
func TestMethods(t *testing.T) {
	srv := startSIP(t, Config{UDPWorkers: 1}, &fakeScreener{})
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			c := dialSIP(t, network, map[string]net.Addr{"udp": srv.UDPAddr(), "tcp": srv.TCPAddr()}[network])
			tp := strings.ToUpper(network)
			inv := c.roundTrip(invite{transport: tp, callID: "m-" + network}.String())

			// ACK is absorbed: the next answer is the OPTIONS one
			c.send(invite{transport: tp, method: "ACK", callID: "m-" + network}.String())
			res := c.roundTrip(invite{transport: tp, method: "OPTIONS", callID: "opt-" + network}.String())
			if res.StatusCode != 200 || header(res, "Allow") != allowed || header(res, "Call-ID") != "opt-"+network {
				t.Fatalf("OPTIONS: %d Allow %q Call-ID %q", res.StatusCode, header(res, "Allow"), header(res, "Call-ID"))
			}
			res = c.roundTrip(invite{transport: tp, method: "CANCEL", callID: "m-" + network}.String())
			if res.StatusCode != 200 || toTag(res) != toTag(inv) {
				t.Errorf("CANCEL: %d tag %q, want 200 and the INVITE's tag %q", res.StatusCode, toTag(res), toTag(inv))
			}
			for _, m := range []string{"REGISTER", "BYE", "MESSAGE", "SUBSCRIBE"} {
				res = c.roundTrip(invite{transport: tp, method: m, callID: m}.String())
				if res.StatusCode != 405 || header(res, "Allow") != allowed {
					t.Errorf("%s: %d Allow %q", m, res.StatusCode, header(res, "Allow"))
				}
			}
			res = c.roundTrip(invite{transport: tp, callID: "req", extra: []string{"Require: 100rel, nosuchthing"}}.String())
			if res.StatusCode != 420 || header(res, "Unsupported") != "nosuchthing" {
				t.Errorf("Require: %d Unsupported %q", res.StatusCode, header(res, "Unsupported"))
			}
			res = c.roundTrip(strings.Replace(invite{transport: tp, callID: "reinvite"}.String(), "ringfence.example>\r\n", "ringfence.example>;tag=abc\r\n", 1))
			if res.StatusCode != 481 || toTag(res) != "abc" {
				t.Errorf("re-INVITE: %d tag %q", res.StatusCode, toTag(res))
			}
			res = c.roundTrip(invite{transport: tp, callID: "tel", uri: "tel:+442071838750"}.String())
			if res.StatusCode != 302 {
				t.Errorf("tel: Request-URI: %d", res.StatusCode)
			}
			res = c.roundTrip(invite{transport: tp, callID: "im", uri: "im:alice@example.com"}.String())
			if res.StatusCode != 416 {
				t.Errorf("im: Request-URI: %d", res.StatusCode)
			}
		})
	}
}

// TestFailurePolicy checks fail-open and fail-closed per route, on engine
// errors and over MaxInFlight.
func TestFailurePolicy(t *testing.T) {
	routes := map[string]call.Route{"open": {ID: "open", Kind: call.Domestic, FailOpen: true}, "closed": {ID: "closed", Kind: call.Domestic}}
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	f := &fakeScreener{
		ScreenFn: func(ctx context.Context, in node.Incoming) (*call.Call, error) {
			switch in.Signalling.UserAgent {
			case "hold":
				entered <- struct{}{}
				<-block
			case "slow":
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return nil, call.Errorf(call.Unavailable, "engine down")
		},
		RouteFn: func(tenant, id string) (call.Route, error) {
			if r, ok := routes[id]; ok {
				return r, nil
			}
			return call.Route{}, call.Errorf(call.NotFound, "no route")
		},
	}
	reg := prometheus.NewRegistry()
	srv := startSIP(t, Config{MaxInFlight: 1, Budget: 20 * time.Millisecond, Metrics: reg}, f)
	c := dialSIP(t, "udp", srv.UDPAddr())
	ask := func(id, route, agent string) (int, string, string) {
		extra := []string{"User-Agent: " + agent}
		if route != "" {
			extra = append(extra, "X-Ingress-Route: "+route)
		}
		res := c.roundTrip(invite{callID: id, extra: extra}.String())
		return res.StatusCode, header(res, "X-Ringfence-Action"), header(res, "Retry-After")
	}
	for _, tc := range []struct {
		id, route, agent string
		status           int
		action, retry    string
	}{
		{"e1", "open", "", 302, "unscored", ""},
		{"e2", "closed", "", 503, "", "1"},
		{"e3", "nosuch", "", 503, "", "1"}, // unknown route: fails closed
		{"e4", "", "", 503, "", "1"},       // no route at all
		{"t1", "open", "slow", 302, "unscored", ""},
		{"t2", "closed", "slow", 503, "", "1"},
	} {
		if st, a, r := ask(tc.id, tc.route, tc.agent); st != tc.status || a != tc.action || r != tc.retry {
			t.Errorf("%s route %q: %d %q Retry-After %q, want %d %q %q", tc.id, tc.route, st, a, r, tc.status, tc.action, tc.retry)
		}
	}

	// One call in flight holds the only slot: the next fails per route.
	holder := dialSIP(t, "tcp", srv.TCPAddr())
	holder.send(invite{transport: "TCP", callID: "hold", extra: []string{"User-Agent: hold"}}.String())
	<-entered
	if st, a, _ := ask("o1", "open", ""); st != 302 || a != "unscored" {
		t.Errorf("over MaxInFlight, open route: %d %q", st, a)
	}
	if st, _, r := ask("o2", "closed", ""); st != 503 || r != "1" {
		t.Errorf("over MaxInFlight, closed route: %d Retry-After %q", st, r)
	}
	close(block)
	holder.read(5 * time.Second)

	want := map[string]float64{"unscored": 3, "error": 5, "rejected_overload": 1}
	for outcome, n := range want {
		if got := counter(t, reg, "ringfence_sip_invites_total", "outcome", outcome); got != n {
			t.Errorf("invites{outcome=%s} = %v, want %v", outcome, got, n)
		}
	}
}

// TestMapping checks how a call is read from the INVITE: tenant, route,
// caller, dialled number and signalling.
func TestMapping(t *testing.T) {
	var got node.Incoming
	f := &fakeScreener{ScreenFn: func(ctx context.Context, in node.Incoming) (*call.Call, error) {
		got = in
		return &call.Call{ID: "01JDQ0000000000000000000AC", Verdict: call.Verdict{Action: call.Allow}}, nil
	}}
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	srv, err := New(Config{UDP: ":0", Tenant: "bank", TenantHeader: "X-Ringfence-Tenant", Appliance: "edge-2",
		RouteBySource: map[string]string{"192.0.2.0/24": "carrier-a", "192.0.2.128/25": "carrier-b"},
		Now:           func() time.Time { return clock }}, f)
	if err != nil {
		t.Fatal(err)
	}
	src := netipAddrPort("192.0.2.200:5060")
	tests := []struct {
		name   string
		msg    invite
		src    string
		check  func(in node.Incoming) bool
		status int
	}{
		{"defaults", invite{}, "", func(in node.Incoming) bool {
			return in.Tenant == "bank" && in.Caller == "+447400123456" && in.Dialled == "+442071838750" &&
				in.Ingress == "carrier-b" && in.Appliance == "edge-2" && in.StartedAt.Equal(clock) && in.Signalling.ViaCount == 1
		}, 302},
		{"tenant header", invite{extra: []string{"X-Ringfence-Tenant: insurer"}}, "", func(in node.Incoming) bool { return in.Tenant == "insurer" }, 302},
		{"bad tenant header", invite{extra: []string{"X-Ringfence-Tenant: no such/tenant"}}, "", nil, 403},
		{"route header wins", invite{extra: []string{"X-Ingress-Route: intl-1"}}, "", func(in node.Incoming) bool { return in.Ingress == "intl-1" }, 302},
		{"bad route header", invite{extra: []string{"X-Ingress-Route: a b"}}, "", nil, 400},
		{"shorter prefix", invite{}, "192.0.2.7:5060", func(in node.Incoming) bool { return in.Ingress == "carrier-a" }, 302},
		{"Via host", invite{}, "198.51.100.1:5060", func(in node.Incoming) bool { return in.Ingress == "192.0.2.10" }, 302},
		{"PAI first", invite{extra: []string{"P-Asserted-Identity: <sip:+447400999888@carrier.example>, <tel:+447400111222>"}}, "",
			func(in node.Incoming) bool { return in.Caller == "+447400999888" && len(in.Signalling.PAI) == 2 }, 302},
		{"anonymous From", invite{from: `"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1`}, "",
			func(in node.Incoming) bool { return in.Caller == "anonymous" }, 302},
		{"Privacy id", invite{extra: []string{"Privacy: id;critical", "P-Asserted-Identity: <tel:+447400999888>"}}, "",
			func(in node.Incoming) bool { return in.Caller == "anonymous" && in.Signalling.Privacy == "id;critical" }, 302},
		{"dialled from To", invite{uri: "sip:ingress@bank.example", to: "<tel:+442071838751>"}, "",
			func(in node.Incoming) bool { return in.Dialled == "+442071838751" }, 302},
		{"no number", invite{uri: "sip:ingress@bank.example"}, "", nil, 484},
		{"dialled user params", invite{uri: "sip:+442071838750;npdi;rn=+442071000000@bank.example;user=phone", to: "<sip:+442071838750@bank.example>"}, "",
			func(in node.Incoming) bool { return in.Dialled == "+442071838750" }, 302},
		{"verstat in From", invite{from: "<sip:+447400123456@carrier.example;verstat=TN-Validation-Passed-A>;tag=7"}, "",
			func(in node.Incoming) bool { return in.Signalling.Verstat == "TN-Validation-Passed-A" }, 302},
		{"signalling", invite{extra: []string{"Identity: eyJhbGciOiJFUzI1NiJ9.e30.c2ln;info=<https://cert.example/c.pem>;alg=ES256;ppt=shaken",
			"Diversion: <tel:+442071000001>;reason=unconditional", "User-Agent: SBC 9.1", "Via: SIP/2.0/UDP 198.51.100.2;branch=z9hG4bK2"}}, "",
			func(in node.Incoming) bool {
				s := in.Signalling
				return len(s.Identity) == 1 && strings.HasPrefix(s.Identity[0], "eyJ") && s.Diversion == "<tel:+442071000001>;reason=unconditional" &&
					s.UserAgent == "SBC 9.1" && s.ViaCount == 2 && strings.Contains(s.From, "tag=1928301774")
			}, 302},
		{"history-info", invite{extra: []string{"History-Info: <sip:+442071000001@bank.example>;index=1"}}, "",
			func(in node.Incoming) bool {
				return in.Signalling.Diversion == "<sip:+442071000001@bank.example>;index=1"
			}, 302},
		{"overlong caller", invite{from: "<sip:" + strings.Repeat("7", 100) + "@carrier.example>;tag=1"}, "",
			func(in node.Incoming) bool { return len(in.Caller) == 64 }, 302},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got = node.Incoming{}
			from := src
			if tc.src != "" {
				from = netipAddrPort(tc.src)
			}
			var r request
			var w reply
			tc.msg.callID = "map-" + strings.ReplaceAll(tc.name, " ", "-")
			if !srv.datagram(&r, &w, []byte(tc.msg.String()), from, false) {
				t.Fatal("no answer")
			}
			if !strings.HasPrefix(string(w.b), fmt.Sprintf("SIP/2.0 %d ", tc.status)) {
				t.Fatalf("answer %q, want %d", strings.SplitN(string(w.b), "\r\n", 2)[0], tc.status)
			}
			if tc.check != nil && tc.status == 302 && !tc.check(got) {
				t.Errorf("mapped %+v", got)
			}
			if tc.status == 302 {
				if err := got.Validate(clock); err != nil {
					t.Errorf("mapped call refused by the node: %v", err)
				}
			}
		})
	}
}

// TestTLS answers over TLS 1.2+ and refuses older versions.
func TestTLS(t *testing.T) {
	cert, key := selfSigned(t)
	srv := startSIP(t, Config{TLS: "127.0.0.1:0", CertFile: cert, KeyFile: key}, &fakeScreener{})
	for name, conf := range map[string]*tls.Config{
		"TLS 1.0":          {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
		"TLS 1.1":          {MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11},
		"TLS 1.2 CBC only": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}},
	} {
		conf.InsecureSkipVerify = true
		if c, err := tls.Dial("tcp", srv.TLSAddr().String(), conf); err == nil {
			c.Close()
			t.Errorf("%s handshake succeeded", name)
		}
	}
	tc, err := tls.Dial("tcp", srv.TLSAddr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	c := &sipClient{t: t, conn: tc, rd: bufioReader(tc)}
	res := c.roundTrip(invite{transport: "TLS", callID: "tls-1"}.String())
	if res.StatusCode != 302 || header(res, "X-Ringfence-Action") != "allow" {
		t.Fatalf("over TLS: %d %q", res.StatusCode, header(res, "X-Ringfence-Action"))
	}
}

// TestListen checks that a busy port fails Listen, that Listen is once
// only and that Close stops every goroutine.
func TestListen(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := startSIP(t, Config{}, &fakeScreener{})
	for _, cfg := range []Config{{UDP: srv.UDPAddr().String()}, {TCP: srv.TCPAddr().String()}} {
		cfg.Tenant = "bank"
		other, err := New(cfg, &fakeScreener{})
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Listen(context.Background()); err == nil {
			t.Errorf("Listen on a busy port %+v succeeded", cfg)
		}
		other.Close()
	}
	if err := srv.Listen(context.Background()); err == nil {
		t.Error("second Listen succeeded")
	}
	c := dialSIP(t, "tcp", srv.TCPAddr())
	c.roundTrip(invite{transport: "TCP", method: "OPTIONS"}.String())
	srv.Close()
	c.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}

	// ctx cancellation stops the server too.
	ctx, cancel := context.WithCancel(context.Background())
	s2, err := New(Config{UDP: "127.0.0.1:0", Tenant: "bank"}, &fakeScreener{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	s2.Close()

	for _, bad := range []Config{{Tenant: "bank"}, {UDP: ":0"}, {UDP: ":0", Tenant: "no such"},
		{UDP: ":0", Tenant: "bank", RouteBySource: map[string]string{"10.0.0.0/33": "x"}},
		{TLS: ":0", Tenant: "bank", CertFile: "/nonexistent"}} {
		if _, err := New(bad, &fakeScreener{}); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
}

// TestMetrics checks the instruments are registered and move.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := startSIP(t, Config{Metrics: reg}, &fakeScreener{})
	c := dialSIP(t, "udp", srv.UDPAddr())
	msg := invite{callID: "metrics"}.String()
	c.roundTrip(msg)
	c.roundTrip(msg)
	c.roundTrip("INVITE sip:+442071838750@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n")
	if got := counter(t, reg, "ringfence_sip_invites_total", "outcome", "allow"); got != 1 {
		t.Errorf("invites{allow} = %v", got)
	}
	if got := counter(t, reg, "ringfence_sip_retransmissions_total", "", ""); got != 1 {
		t.Errorf("retransmissions = %v", got)
	}
	if got := counter(t, reg, "ringfence_sip_parse_failures_total", "transport", "udp"); got != 1 {
		t.Errorf("parse failures{udp} = %v", got)
	}
	mfs, _ := reg.Gather()
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"ringfence_sip_reply_seconds", "ringfence_sip_in_flight", "ringfence_sip_fallbacks_total"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	if _, err := New(Config{UDP: ":0", Tenant: "bank", Metrics: reg}, &fakeScreener{}); err == nil {
		t.Error("second server on one registry accepted")
	}
}

func counter(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetName() == label && l.GetValue() == value
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// selfSigned writes a throwaway certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ringfence test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestIPv6 serves a UDP and a TCP listener on ::1.
func TestIPv6(t *testing.T) {
	srv, err := New(Config{UDP: "[::1]:0", TCP: "[::1]:0", Tenant: "bank"}, &fakeScreener{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(context.Background()); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	for _, network := range []string{"udp", "tcp"} {
		c := dialSIP(t, network, map[string]net.Addr{"udp": srv.UDPAddr(), "tcp": srv.TCPAddr()}[network])
		msg := strings.Replace(invite{transport: strings.ToUpper(network), callID: "v6-" + network}.String(), "192.0.2.10:5060", "[2001:db8::10]:5060", 1)
		if res := c.roundTrip(msg); res.StatusCode != 302 {
			t.Errorf("%s over IPv6: %d", network, res.StatusCode)
		}
	}
}

// TestLate checks that a datagram that waited in the socket buffer longer
// than the budget is answered by the failure policy, unscreened.
func TestLate(t *testing.T) {
	screened := false
	f := &fakeScreener{
		ScreenFn: func(context.Context, node.Incoming) (*call.Call, error) { screened = true; return nil, nil },
		RouteFn: func(_, id string) (call.Route, error) {
			return call.Route{ID: id, Kind: call.Domestic, FailOpen: id == "open"}, nil
		},
	}
	reg := prometheus.NewRegistry()
	srv, err := New(Config{UDP: ":0", Tenant: "bank", Metrics: reg}, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ route, want string }{{"open", "SIP/2.0 302 "}, {"closed", "SIP/2.0 503 "}} {
		var r request
		var w reply
		msg := invite{callID: "late-" + tc.route, extra: []string{"X-Ingress-Route: " + tc.route}}.String()
		srv.datagram(&r, &w, []byte(msg), netipAddrPort("192.0.2.10:5060"), true)
		if !strings.HasPrefix(string(w.b), tc.want) {
			t.Errorf("late INVITE on %s route: %q", tc.route, strings.SplitN(string(w.b), "\r\n", 2)[0])
		}
	}
	if screened {
		t.Error("a late INVITE was screened")
	}
	if got := counter(t, reg, "ringfence_sip_invites_total", "outcome", "rejected_overload"); got != 1 {
		t.Errorf("invites{rejected_overload} = %v", got)
	}
}
