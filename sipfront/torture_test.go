package sipfront

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// The RFC 4475 and RFC 5118 torture messages, fed to a real server over a
// real node over UDP and TCP. tortureWant says what each must get; it is
// checked against the classification in EXPECTED-*.tsv, and the table is
// in docs/sip.md ("Conformance").

const tortureDir = "../../shared/testdata/sip-torture"

type tortureCase struct {
	file     string // rfc4475/wsinv.dat
	expected string // the classification in EXPECTED-*.tsv
	note     string
}

func tortureCases(t testing.TB) []tortureCase {
	t.Helper()
	var out []tortureCase
	for _, set := range []string{"rfc4475", "rfc5118"} {
		b, err := os.ReadFile(filepath.Join(tortureDir, "EXPECTED-"+set+".tsv"))
		if err != nil {
			t.Skipf("torture messages not available: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			f := strings.Split(line, "\t")
			c := tortureCase{file: set + "/" + f[0], expected: f[len(f)-2], note: f[len(f)-1]}
			out = append(out, c)
		}
	}
	return out
}

// An answer is written as the status code, several as "405,484"; "-" is
// no answer (a response, an ACK, or a request with no Via to answer);
// "closed" means sipgo's stream parser could not frame or parse the
// message and closed the TCP connection (after the answers listed before
// it, if any).
var tortureWant = map[string]struct{ udp, tcp string }{
	// RFC 4475 3.1.1: valid
	"rfc4475/wsinv.dat":      {"481", "481"}, // valid, but its To has a tag: not an initial INVITE
	"rfc4475/intmeth.dat":    {"405", "405"},
	"rfc4475/esc01.dat":      {"484", "484"},
	"rfc4475/escnull.dat":    {"405", "405"},
	"rfc4475/esc02.dat":      {"405", "405"},
	"rfc4475/lwsdisp.dat":    {"200", "200"},
	"rfc4475/longreq.dat":    {"484", "484"},
	"rfc4475/dblreq.dat":     {"405", "405,484,closed"}, // TCP: a stream of two requests, then stray octets
	"rfc4475/semiuri.dat":    {"200", "200"},
	"rfc4475/transports.dat": {"200", "200"},
	"rfc4475/mpart01.dat":    {"405", "405"},
	"rfc4475/unreason.dat":   {"-", "-"},
	"rfc4475/noreason.dat":   {"-", "-"},
	// 3.1.2: invalid
	"rfc4475/badinv01.dat":   {"400", "400"},
	"rfc4475/clerr.dat":      {"400", "waiting"}, // TCP: waits for 9999 octets that never come
	"rfc4475/ncl.dat":        {"400", "closed"},
	"rfc4475/scalar02.dat":   {"400", "400"},
	"rfc4475/scalarlg.dat":   {"-", "-"},
	"rfc4475/quotbal.dat":    {"400", "400"},
	"rfc4475/ltgtruri.dat":   {"400", "closed"},
	"rfc4475/lwsruri.dat":    {"400", "closed"},
	"rfc4475/lwsstart.dat":   {"400", "closed"},
	"rfc4475/trws.dat":       {"400", "closed"},
	"rfc4475/escruri.dat":    {"400", "400"},
	"rfc4475/baddate.dat":    {"400", "400"},
	"rfc4475/regbadct.dat":   {"400", "400"},
	"rfc4475/badaspec.dat":   {"400", "400"},
	"rfc4475/baddn.dat":      {"400", "400"},
	"rfc4475/badvers.dat":    {"505", "505"},
	"rfc4475/mismatch01.dat": {"400", "400"},
	"rfc4475/mismatch02.dat": {"400", "400"},
	"rfc4475/bigcode.dat":    {"-", "closed"},
	// 3.2, 3.3, 3.4: transaction, application, backward compatibility
	"rfc4475/badbranch.dat": {"200", "200"},
	"rfc4475/insuf.dat":     {"400", "400"},
	"rfc4475/unkscm.dat":    {"416", "416"},
	"rfc4475/novelsc.dat":   {"416", "closed"},
	"rfc4475/unksm2.dat":    {"405", "405"},
	"rfc4475/bext01.dat":    {"420", "420"},
	"rfc4475/invut.dat":     {"484", "484"}, // the body is not read: no 415
	"rfc4475/regaut01.dat":  {"405", "405"},
	"rfc4475/multi01.dat":   {"400", "400"},
	"rfc4475/mcl01.dat":     {"400", "400,closed"},
	"rfc4475/bcast.dat":     {"-", "-"},
	"rfc4475/zeromf.dat":    {"200", "200"}, // a redirect server is the target, not a proxy: no 483
	"rfc4475/cparam01.dat":  {"405", "405"},
	"rfc4475/cparam02.dat":  {"405", "405"},
	"rfc4475/regescrt.dat":  {"405", "405"},
	"rfc4475/sdp01.dat":     {"484", "484"},    // answers carry no body: no 406
	"rfc4475/inv2543.dat":   {"302", "closed"}, // TCP: no Content-Length on a stream
	// RFC 5118
	"rfc5118/ipv6-good.dat":                     {"405", "405"},
	"rfc5118/ipv6-bad.dat":                      {"400", "closed"},
	"rfc5118/port-ambiguous.dat":                {"405", "405"},
	"rfc5118/port-unambiguous.dat":              {"405", "405"},
	"rfc5118/via-received-param-with-delim.dat": {"405", "405"},
	"rfc5118/via-received-param-no-delim.dat":   {"200", "200"},
	"rfc5118/ipv6-in-sdp.dat":                   {"484", "484,closed"},
	"rfc5118/mult-ip-in-header.dat":             {"405", "405"},
	"rfc5118/mult-ip-in-sdp.dat":                {"484", "484,closed"},
	"rfc5118/ipv4-mapped-ipv6.dat":              {"484", "484,closed"},
	"rfc5118/ipv6-bug-abnf-3-colons.dat":        {"400", "400"},
	"rfc5118/ipv6-correct-abnf-2-colons.dat":    {"200", "200"},
}

func TestTorture(t *testing.T) {
	cases := tortureCases(t)
	n := nodeFixture(t)
	reg := prometheus.NewRegistry()
	srv := startSIP(t, Config{UDPWorkers: 1, Metrics: reg}, n)
	udp := dialSIP(t, "udp", srv.UDPAddr())

	var table strings.Builder
	fmt.Fprintf(&table, "| message | expected (RFC) | UDP | TCP | Warning |\n| --- | --- | --- | --- | --- |\n")
	for i, c := range cases {
		msg, err := os.ReadFile(filepath.Join(tortureDir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		probe := invite{method: "OPTIONS", callID: fmt.Sprintf("probe-%d", i)}.String()
		gotUDP, warning := tortureUDP(t, udp, msg, probe, fmt.Sprintf("probe-%d", i))
		gotTCP := tortureTCP(t, srv.TCPAddr(), msg, strings.Replace(probe, "/UDP", "/TCP", 1), fmt.Sprintf("probe-%d", i))
		want, ok := tortureWant[c.file]
		if !ok {
			t.Errorf("%s: no expectation in tortureWant (got udp %s, tcp %s)", c.file, gotUDP, gotTCP)
		} else if gotUDP != want.udp || gotTCP != want.tcp {
			t.Errorf("%s (%s): udp %s tcp %s, want udp %s tcp %s", c.file, c.expected, gotUDP, gotTCP, want.udp, want.tcp)
		}
		for _, got := range []string{gotUDP, gotTCP} {
			if p := classify(c.expected, got); p != "" {
				t.Errorf("%s: %s contradicts %q: %s", c.file, got, c.expected, p)
			}
		}
		fmt.Fprintf(&table, "| %s | %s | %s | %s | %s |\n", c.file, c.expected, gotUDP, gotTCP, warning)
	}
	t.Logf("torture results:\n%s", table.String())

	// Still answering on both transports.
	if res := udp.roundTrip(invite{method: "OPTIONS", callID: "after"}.String()); res.StatusCode != 200 {
		t.Errorf("OPTIONS over UDP after the torture: %d", res.StatusCode)
	}
	tc := dialSIP(t, "tcp", srv.TCPAddr())
	if res := tc.roundTrip(invite{method: "OPTIONS", transport: "TCP", callID: "after"}.String()); res.StatusCode != 200 {
		t.Errorf("OPTIONS over TCP after the torture: %d", res.StatusCode)
	}
	for _, tr := range []string{"udp", "tcp"} {
		if counter(t, reg, "ringfence_sip_parse_failures_total", "transport", tr) == 0 {
			t.Errorf("no parse failures counted for %s", tr)
		}
	}
}

// classify checks an outcome against the RFC classification; "" if they
// agree.
func classify(expected, got string) string {
	first := strings.Split(got, ",")[0]
	refused := first == "-" || first == "closed" || first >= "4" && first != "484"
	switch {
	case expected == "reject" || expected == "reject-400":
		if !refused && !strings.HasPrefix(first, "4") {
			return "an invalid message was accepted"
		}
	case strings.HasPrefix(expected, "accept"):
		if first == "400" || first == "505" {
			return "a valid message was refused as malformed"
		}
	}
	return ""
}

// tortureUDP sends msg, then the probe, and returns the answers that came
// before the probe's (a single UDP worker keeps the order) and the first
// one's Warning text.
func tortureUDP(t *testing.T, c *sipClient, msg []byte, probe, probeID string) (string, string) {
	t.Helper()
	c.send(string(msg))
	c.send(probe)
	var got []string
	warning := ""
	for {
		res := c.read(5 * time.Second)
		if res == nil {
			t.Fatalf("no answer to the probe")
		}
		if header(res, "Call-ID") == probeID {
			break
		}
		if len(got) == 0 {
			warning = header(res, "Warning")
			if u := header(res, "Unsupported"); u != "" {
				warning = "Unsupported: " + u
			}
		}
		got = append(got, answerOf(t, res))
	}
	if len(got) == 0 {
		return "-", ""
	}
	return strings.Join(got, ","), warning
}

// tortureTCP sends msg and then the probe on a new connection and returns
// the answers that came before the probe's, as for tortureUDP.
func tortureTCP(t *testing.T, addr net.Addr, msg []byte, probe, probeID string) string {
	t.Helper()
	answers, end := streamAnswers(t, addr, msg, probe, probeID)
	var got []string
	for _, res := range answers {
		got = append(got, answerOf(t, res))
	}
	if end != "" {
		got = append(got, end)
	}
	if len(got) == 0 {
		return "-"
	}
	return strings.Join(got, ",")
}

// streamAnswers sends msg and then the probe on a new TCP connection and
// returns the answers up to the probe's. end is "" when the probe was
// answered, "closed" when the server closed the connection first, and
// "waiting" when the stream stalled: a Content-Length larger than what
// follows swallows the probe, and only the read deadline ends the wait.
func streamAnswers(t *testing.T, addr net.Addr, msg []byte, probe, probeID string) (answers []*sip.Response, end string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(msg)
	conn.Write([]byte(probe))
	conn.SetReadDeadline(time.Now().Add(time.Second))
	rd := bufio.NewReader(conn)
	for {
		var raw []byte
		for {
			line, err := rd.ReadString('\n')
			raw = append(raw, line...)
			if err != nil {
				if isTimeout(err) {
					return answers, "waiting"
				}
				return answers, "closed"
			}
			if line == "\r\n" {
				break
			}
		}
		m, err := answerParser.ParseSIP(raw)
		if err != nil {
			t.Fatalf("answer does not parse: %v\n%s", err, raw)
		}
		res := m.(*sip.Response)
		if header(res, "Call-ID") == probeID {
			return answers, ""
		}
		answers = append(answers, res)
	}
}

// answerOf checks an answer's form and returns its status.
func answerOf(t *testing.T, res *sip.Response) string {
	t.Helper()
	if res.Reason == "" || res.Reason == "Error" {
		t.Errorf("%d without a reason phrase", res.StatusCode)
	}
	if res.StatusCode == 400 && header(res, "Warning") == "" {
		t.Errorf("400 without a Warning")
	}
	if res.GetHeader("Via") == nil && res.GetHeader(defectName) == nil { // an echoed malformed Via reads as a defect
		t.Errorf("%d without a Via", res.StatusCode)
	}
	return strconv.Itoa(res.StatusCode)
}
