package sipfront

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
)

// benchInvite is an INVITE as an SBC sends it to ringfence: P-Asserted-
// Identity with a carrier verstat, an Identity header, an SDP body. The
// branch ends in 9 digits the benchmarks overwrite to make each call new.
const benchInvite = "INVITE sip:+442071838750@ringfence.example;user=phone SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-sbc-000000000\r\n" +
	"Max-Forwards: 69\r\n" +
	"From: \"Alice\" <sip:+447400123456@carrier.example;user=phone>;tag=as4f1c2d\r\n" +
	"To: <sip:+442071838750@ringfence.example;user=phone>\r\n" +
	"Call-ID: 5d8f0b1c2e3a4f56@192.0.2.10\r\n" +
	"CSeq: 102 INVITE\r\n" +
	"Contact: <sip:+447400123456@192.0.2.10:5060;transport=udp>\r\n" +
	"P-Asserted-Identity: <sip:+447400123456@carrier.example;user=phone;verstat=TN-Validation-Passed-A>\r\n" +
	"Identity: eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0In0.eyJhdHRlc3QiOiJBIn0.c2lnbmF0dXJl;info=<https://cert.carrier.example/sti.pem>;alg=ES256;ppt=shaken\r\n" +
	"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, UPDATE\r\n" +
	"Supported: 100rel, timer\r\n" +
	"User-Agent: SBC 9.1\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 130\r\n" +
	"\r\n" +
	"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 20000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"

// setBranch writes n into the last 9 digits of the branch.
func setBranch(msg []byte, at int, n int) { setDigits(msg[at:at+9], n) }

// setDigits writes n into d, right-aligned, zero-padded.
func setDigits(d []byte, n int) {
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
}

func branchAt(msg []byte) int {
	return len("INVITE sip:+442071838750@ringfence.example;user=phone SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-sbc-")
}

// fixedScreener answers every call with one prepared verdict: the
// benchmarks then measure the front end alone.
func fixedScreener() *fakeScreener {
	c := &call.Call{ID: "01JDQ0000000000000000000AA", Verdict: call.Verdict{Score: 0.006, Action: call.Allow,
		Markers: []call.Marker{{Code: "verstat.passed_a", Weight: -2}, {Code: "route.unknown", Weight: 0.3}}}}
	return &fakeScreener{
		ScreenFn: func(context.Context, node.Incoming) (*call.Call, error) { return c, nil },
		RouteFn: func(_, id string) (call.Route, error) {
			return call.Route{ID: id, Kind: call.Domestic, FailOpen: true}, nil
		},
	}
}

// BenchmarkFastPath reads a typical INVITE and builds its reply into a
// reused buffer, with no network and a screener that costs nothing: the
// front end's own cost per call.
func BenchmarkFastPath(b *testing.B) {
	s, err := New(Config{UDP: ":0", Tenant: "bank"}, fixedScreener())
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.10:5060")
	msg := []byte(benchInvite)
	at := branchAt(msg)
	var r request
	w := reply{b: make([]byte, 0, 2048)}
	run := func(name string, fast, late bool, each func(i int)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for i := 0; b.Loop(); i++ {
				each(i)
				w.b = w.b[:0]
				if !s.answerDatagram(&r, &w, msg, src, late, fast) {
					b.Fatal("no answer")
				}
			}
		})
	}
	n := 0
	run("invite", true, false, func(int) { n++; setBranch(msg, at, n) })
	run("retransmission", true, false, func(int) {})
	run("invite-sipgo", false, false, func(int) { n++; setBranch(msg, at, n) })
	// The overload path: answered by the failure policy, unscreened.
	run("invite-shed", true, true, func(int) { n++; setBranch(msg, at, n) })
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !s.scan(msg, &r) {
				b.Fatal("fast path declined")
			}
		}
	})
	opts := []byte(invite{method: "OPTIONS"}.String())
	b.Run("options", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w.b = w.b[:0]
			s.datagram(&r, &w, opts, src, false)
		}
	})
}

// BenchmarkUDP sends INVITEs through a real UDP socket to a listening
// server and waits for every answer: calls/s and round-trip percentiles,
// with a screener that costs nothing and with a real node (SQLite
// recorder, every signal on). Clients share the cores with the server.
func BenchmarkUDP(b *testing.B) {
	b.Run("fake", func(b *testing.B) { benchUDP(b, fixedScreener()) })
	b.Run("node", func(b *testing.B) { benchUDP(b, nodeFixture(b)) })
}

func benchUDP(b *testing.B, scr Screener) {
	const clients, window = 4, 32
	srv := startSIP(b, Config{UDP: "127.0.0.1:0", Tenant: "bank"}, scr)
	var next atomic.Int64
	var lost atomic.Int64
	var mu sync.Mutex
	var rtts []time.Duration
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			conn, err := net.Dial("udp", srv.UDPAddr().String())
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			sent := map[string]time.Time{}
			var local []time.Duration
			msg := []byte(benchInvite)
			at := branchAt(msg)
			var callerAt []int
			for i := 0; ; {
				j := indexOf(msg[i:], "+447400123456")
				if j < 0 {
					break
				}
				callerAt = append(callerAt, i+j)
				i += j + 1
			}
			buf := make([]byte, 4096)
			send := func() bool {
				i := next.Add(1)
				if i > int64(b.N) {
					return false
				}
				setBranch(msg, at, int(i))
				for _, p := range callerAt { // many callers, as velocity windows see them
					setDigits(msg[p+9:p+13], int(i)%10000)
				}
				sent[strconv.Itoa(int(i))] = time.Now()
				conn.Write(msg)
				return true
			}
			for range window {
				if !send() {
					break
				}
			}
			for len(sent) > 0 {
				conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := conn.Read(buf)
				if err != nil {
					lost.Add(int64(len(sent)))
					clear(sent)
					for range window {
						if !send() {
							break
						}
					}
					continue
				}
				key := branchKey(buf[:n])
				if t0, ok := sent[key]; ok {
					local = append(local, time.Since(t0))
					delete(sent, key)
				}
				send()
			}
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(rtts)
	b.ReportMetric(float64(len(rtts))/elapsed.Seconds(), "calls/s")
	if len(rtts) > 0 {
		b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(lost.Load()), "lost")
}

// branchKey returns the counter in the answer's branch.
func branchKey(ans []byte) string {
	i := indexOf(ans, "branch=z9hG4bK-sbc-")
	if i < 0 {
		return ""
	}
	j := i + len("branch=z9hG4bK-sbc-")
	n, _ := strconv.Atoi(string(ans[j : j+9]))
	return strconv.Itoa(n)
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}
