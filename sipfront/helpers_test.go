package sipfront

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store/sqlite"
)

// fakeScreener is a func-field fake: a nil field gets a harmless default
// (allow everything, default policy, no routes).
type fakeScreener struct {
	ScreenFn func(ctx context.Context, in node.Incoming) (*call.Call, error)
	PolicyFn func(tenant string) (call.Policy, error)
	RouteFn  func(tenant, id string) (call.Route, error)
}

var _ Screener = (*fakeScreener)(nil)

func (f *fakeScreener) Screen(ctx context.Context, in node.Incoming) (*call.Call, error) {
	if f.ScreenFn != nil {
		return f.ScreenFn(ctx, in)
	}
	return &call.Call{ID: "01JDQ0000000000000000000AA", Verdict: call.Verdict{Score: 0.018, Action: call.Allow}}, nil
}

func (f *fakeScreener) Policy(tenant string) (call.Policy, error) {
	if f.PolicyFn != nil {
		return f.PolicyFn(tenant)
	}
	return call.DefaultPolicy(), nil
}

func (f *fakeScreener) Route(tenant, id string) (call.Route, error) {
	if f.RouteFn != nil {
		return f.RouteFn(tenant, id)
	}
	return call.Route{}, call.Errorf(call.NotFound, "no route %q", id)
}

// detScreener answers deterministically from the call: block when the
// dialled number ends in 9, flag when it ends in 5, allow otherwise; the
// record id is fixed. For tests comparing two servers.
func detScreener() *fakeScreener {
	return &fakeScreener{ScreenFn: func(ctx context.Context, in node.Incoming) (*call.Call, error) {
		a := call.Allow
		switch in.Dialled[len(in.Dialled)-1] {
		case '9':
			a = call.Block
		case '5':
			a = call.Flag
		}
		return &call.Call{ID: "01JDQ0000000000000000000AA", Verdict: call.Verdict{Score: 0.5, Action: a}}, nil
	}}
}

// nodeFixture opens a real node on a SQLite file in a temporary directory,
// with tenant "bank" (GB).
func nodeFixture(t testing.TB) *node.Node {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rf.db"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := seal.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, node.Config{ApplianceID: "sip-test"}, st, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.CreateTenant(ctx, "bank", "Bank", "GB"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		st.Close()
	})
	return n
}

// startSIP starts a server on loopback ports chosen by the kernel (UDP and
// TCP unless cfg names its own) and closes it at the end of the test.
func startSIP(t testing.TB, cfg Config, s Screener) *Server {
	t.Helper()
	if cfg.UDP == "" && cfg.TCP == "" && cfg.TLS == "" {
		cfg.UDP, cfg.TCP = "127.0.0.1:0", "127.0.0.1:0"
	}
	if cfg.Tenant == "" && cfg.TenantHeader == "" {
		cfg.Tenant = "bank"
	}
	srv, err := New(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// sipClient sends requests and reads answers over UDP or a stream.
type sipClient struct {
	t    testing.TB
	conn net.Conn
	udp  bool
	rd   *bufio.Reader
}

func dialSIP(t testing.TB, network string, addr net.Addr) *sipClient {
	t.Helper()
	c, err := net.Dial(network, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sipClient{t: t, conn: c, udp: network == "udp", rd: bufio.NewReader(c)}
}

func (c *sipClient) send(msg string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next answer, or nil at the deadline or end of stream.
func (c *sipClient) read(wait time.Duration) *sip.Response {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(wait))
	var raw []byte
	if c.udp {
		buf := make([]byte, 65536)
		n, err := c.conn.Read(buf)
		if err != nil {
			return nil
		}
		raw = buf[:n]
	} else {
		for {
			line, err := c.rd.ReadString('\n')
			raw = append(raw, line...)
			if err != nil {
				if len(raw) == 0 || err == io.EOF || isTimeout(err) {
					return nil
				}
				c.t.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
		}
	}
	msg, err := answerParser.ParseSIP(raw)
	if err != nil {
		c.t.Fatalf("answer does not parse: %v\n%s", err, raw)
	}
	res, ok := msg.(*sip.Response)
	if !ok {
		c.t.Fatalf("got a request, want an answer:\n%s", raw)
	}
	return res
}

// answerParser reads answers in tests; its header checks let an answer
// that echoes a malformed Via be read.
var answerParser = newParser(true)

func netipAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// roundTrip sends msg and returns the answer, failing the test if none
// comes within 5 s.
func (c *sipClient) roundTrip(msg string) *sip.Response {
	c.t.Helper()
	c.send(msg)
	res := c.read(5 * time.Second)
	if res == nil {
		c.t.Fatalf("no answer to:\n%s", msg)
	}
	return res
}

func header(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func toTag(res *sip.Response) string { return tag(header(res, "To")) }

// invite is a typical INVITE as an SBC sends it; fields left empty get
// defaults, extra holds additional header lines ("Name: value").
type invite struct {
	method    string // "" => INVITE
	transport string // "" => UDP
	uri       string // Request-URI; "" => sip:+442071838750@ringfence.example;user=phone
	from      string // From value; "" => a UK mobile
	callID    string // "" => a fixed id
	branch    string
	to        string // To value; "" => the Request-URI without parameters
	extra     []string
}

func (m invite) String() string {
	if m.method == "" {
		m.method = "INVITE"
	}
	if m.transport == "" {
		m.transport = "UDP"
	}
	if m.uri == "" {
		m.uri = "sip:+442071838750@ringfence.example;user=phone"
	}
	if m.from == "" {
		m.from = `"Alice" <sip:+447400123456@carrier.example;user=phone>;tag=1928301774`
	}
	if m.callID == "" {
		m.callID = "a84b4c76e66710@sbc.example"
	}
	if m.branch == "" {
		m.branch = "z9hG4bK776asdhds"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", m.method, m.uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s 192.0.2.10:5060;branch=%s\r\n", m.transport, m.branch)
	b.WriteString("Max-Forwards: 70\r\n")
	if m.to == "" {
		m.to = "<" + strings.SplitN(m.uri, ";", 2)[0] + ">"
	}
	fmt.Fprintf(&b, "To: %s\r\n", m.to)
	fmt.Fprintf(&b, "From: %s\r\n", m.from)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", m.callID)
	fmt.Fprintf(&b, "CSeq: 1 %s\r\n", m.method)
	b.WriteString("Contact: <sip:sbc@192.0.2.10:5060>\r\n")
	for _, h := range m.extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}
