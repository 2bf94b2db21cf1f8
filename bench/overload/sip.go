package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/ringfence/ringfence/sim"
	"github.com/ringfence/ringfence/sipfront"
)

// sipGen sends INVITEs over one UDP socket, as an SBC would (the calls of
// bench/sip/siptraffic, with the simulator's From, P-Asserted-Identity,
// verstat, Privacy and User-Agent), reads the answers on the same socket
// and acknowledges every final answer. It never retransmits: a call not
// answered within -wait is lost, which is what the SBC would see once its
// own timer fired.
type sipGen struct {
	o         options
	calls     []sim.Call
	failOpen  map[string]bool
	conn      *net.UDPConn
	pc        *ipv4.PacketConn
	local     string // host:port in Via and Contact
	host      string // the server's address in Request-URIs
	port      int    // the server's port
	localPort int
	steps     int
}

func newSIPGen(o options, calls []sim.Call, failOpen map[string]bool) (*sipGen, error) {
	raddr, err := net.ResolveUDPAddr("udp", o.sip)
	if err != nil {
		return nil, fmt.Errorf("-sip %s: %w", o.sip, err)
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, fmt.Errorf("-sip %s: %w", o.sip, err)
	}
	// Deep buffers on our side, so the generator is not what drops.
	conn.SetReadBuffer(16 << 20)
	conn.SetWriteBuffer(16 << 20)
	sipfront.KernelTimestamps(conn)
	return &sipGen{
		o: o, calls: calls, failOpen: failOpen, conn: conn, pc: ipv4.NewPacketConn(conn),
		local: conn.LocalAddr().String(), host: raddr.String(), port: raddr.Port,
		localPort: conn.LocalAddr().(*net.UDPAddr).Port,
	}, nil
}

func (g *sipGen) close() { g.conn.Close() }

// sipCall is what one INVITE's answer is checked against.
type sipCall struct {
	sentAt atomic.Int64 // unix ns; 0 = not sent yet
	done   atomic.Bool
}

func (g *sipGen) step(rate int, d time.Duration) (*result, error) {
	g.steps++
	n := int(float64(rate) * d.Seconds())
	prefix := fmt.Sprintf("ovl%d-%d-", os.Getpid(), g.steps) // answers of an earlier step are ignored
	state := make([]sipCall, n)
	r := &result{proto: "sip", offered: rate, drops: -1}
	drops0, own0 := udpDrops(g.port), udpDrops(g.localPort)
	hist0 := histogram(g.o.url, "ringfence_sip_reply_seconds")

	var sendDone atomic.Int64 // unix ns when the last INVITE went out
	recvErr := make(chan error, 1)
	go func() { recvErr <- g.receive(prefix, state, r, &sendDone) }()

	msgs := make([]ipv4.Message, 64)
	bufs := make([][]byte, len(msgs))
	for i := range bufs {
		bufs[i] = make([]byte, 0, 2048)
	}
	var sendErr error
	r.elapsed = pace(rate, n, func(from, to int) {
		for from < to {
			k := min(to-from, len(msgs))
			now := time.Now().UnixNano()
			for j := range k {
				bufs[j] = g.invite(bufs[j][:0], prefix, from+j)
				msgs[j].Buffers = [][]byte{bufs[j]}
				state[from+j].sentAt.Store(now)
			}
			for sent := 0; sent < k; {
				c, err := g.pc.WriteBatch(msgs[sent:k], 0)
				if err != nil {
					if sendErr == nil {
						sendErr = err
					}
					c = max(c, 1)
				}
				sent += c
			}
			r.sent += k
			from += k
		}
	})
	sendDone.Store(time.Now().UnixNano())
	if err := <-recvErr; err != nil {
		return nil, err
	}
	if sendErr != nil {
		fmt.Fprintln(os.Stderr, "overload: some INVITEs could not be sent:", sendErr)
	}
	for i := range state {
		if !state[i].done.Load() {
			r.n[lost]++
		}
	}
	if drops0 >= 0 {
		r.drops = udpDrops(g.port) - drops0
	}
	if own := udpDrops(g.localPort) - own0; own0 >= 0 && own > 0 {
		fmt.Fprintf(os.Stderr, "overload: this generator's socket dropped %d answers: they count as not answered\n", own)
	}
	r.serverP99 = quantileBound(hist0, histogram(g.o.url, "ringfence_sip_reply_seconds"), 0.99)
	return r, nil
}

// receive reads answers until every call is answered or -wait has passed
// since the last INVITE was sent, classifying each and acknowledging it.
func (g *sipGen) receive(prefix string, state []sipCall, r *result, sendDone *atomic.Int64) error {
	in := make([]ipv4.Message, 64)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 4096)}
		in[i].OOB = make([]byte, sipfront.OOBSize)
	}
	acks := make([]ipv4.Message, 64)
	ackBufs := make([][]byte, len(acks))
	answered := 0
	for answered < len(state) {
		if t := sendDone.Load(); t != 0 && time.Since(time.Unix(0, t)) > g.o.wait {
			return nil
		}
		g.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := g.pc.ReadBatch(in, 0)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("reading answers: %w", err)
		}
		read := time.Now().UnixNano()
		k := 0
		for _, m := range in[:n] {
			b := m.Buffers[0][:m.N]
			at := read
			if t, ok := sipfront.ReceivedAt(m.OOB[:m.NN]); ok {
				at = t.UnixNano()
			}
			i, ok := g.classify(b, prefix, state, r, at)
			if !ok {
				continue
			}
			answered++
			ackBufs[k] = g.ack(ackBufs[k][:0], b, prefix, i)
			acks[k].Buffers = [][]byte{ackBufs[k]}
			k++
		}
		for sent := 0; sent < k; {
			c, err := g.pc.WriteBatch(acks[sent:k], 0)
			if err != nil {
				c = max(c, 1) // an ACK lost is harmless here
			}
			sent += c
		}
	}
	return nil
}

// classify records one answer, received at now (the kernel's receive
// time where known); it returns the call's index and whether it was a
// final answer to a call of this step not answered before.
func (g *sipGen) classify(b []byte, prefix string, state []sipCall, r *result, now int64) (int, bool) {
	if len(b) < 12 || !bytes.HasPrefix(b, []byte("SIP/2.0 ")) {
		return 0, false
	}
	status, err := strconv.Atoi(string(b[8:11]))
	if err != nil || status < 200 {
		return 0, false
	}
	id := headerValue(b, "Call-ID")
	rest, ok := bytes.CutPrefix(id, []byte(prefix))
	if !ok {
		return 0, false
	}
	num, _, _ := bytes.Cut(rest, []byte("@"))
	i, err := strconv.Atoi(string(num))
	if err != nil || i < 0 || i >= len(state) || state[i].done.Swap(true) {
		return 0, false
	}
	lat := time.Duration(now - state[i].sentAt.Load())
	if lat > g.o.wait {
		r.n[lost]++ // answered, but too late
		return i, true
	}
	route := g.calls[i%len(g.calls)].Request.IngressRoute
	open := g.failOpen[route]
	action := string(headerValue(b, "X-Ringfence-Action"))
	switch {
	case status == 302 && action == "unscored":
		r.n[unscored]++
		r.policy = append(r.policy, lat)
		if !open {
			r.wrong++
		}
	case status == 302 && action != "":
		r.n[scored]++
		r.scored = append(r.scored, lat)
	case status == 608 || status == 603:
		r.n[blocked]++
		r.scored = append(r.scored, lat)
	case status == 503:
		r.n[rejected]++
		r.policy = append(r.policy, lat)
		if open || len(headerValue(b, "Retry-After")) == 0 {
			r.wrong++
		}
	default:
		r.n[other]++
	}
	return i, true
}

// headerValue returns the value of the first header called name (the full
// name, as ringfence writes them), or nil.
func headerValue(b []byte, name string) []byte {
	for line := range bytes.SplitSeq(b, []byte("\r\n")) {
		if len(line) == 0 {
			return nil // end of the headers
		}
		if len(line) > len(name) && line[len(name)] == ':' && bytes.EqualFold(line[:len(name)], []byte(name)) {
			return bytes.TrimSpace(line[len(name)+1:])
		}
	}
	return nil
}

const sdp = "v=0\r\no=sbc 53655765 2353687637 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// head appends the request line and the Via, Max-Forwards and From
// headers of a request about call i, the same for its INVITE and its ACK
// (one branch and tag per call), and returns the call, its sequence string
// and its Request-URI for the rest.
func (g *sipGen) head(b []byte, method, prefix string, i int) ([]byte, sim.ScreenRequest, string, string) {
	c := g.calls[i%len(g.calls)].Request
	seq := strconv.Itoa(i)
	uri := "sip:" + c.Dialled + "@" + g.host + ";user=phone"
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, " SIP/2.0\r\nVia: SIP/2.0/UDP "...)
	b = append(b, g.local...)
	b = append(b, ";branch=z9hG4bK-"...)
	b = append(b, prefix...)
	b = append(b, seq...)
	b = append(b, "\r\nMax-Forwards: 70\r\nFrom: "...)
	b = append(b, from(c)...)
	b = append(b, ";tag="...)
	b = append(b, seq...)
	return b, c, seq, uri
}

// invite appends call i's INVITE to b.
func (g *sipGen) invite(b []byte, prefix string, i int) []byte {
	b, c, seq, uri := g.head(b, "INVITE", prefix, i)
	b = append(b, "\r\nTo: <"...)
	b = append(b, uri...)
	b = append(b, ">\r\nCall-ID: "...)
	b = append(b, prefix...)
	b = append(b, seq...)
	b = append(b, "@overload.invalid\r\nCSeq: 1 INVITE\r\nContact: <sip:sbc@"...)
	b = append(b, g.local...)
	b = append(b, ">\r\n"...)
	for j, p := range c.Signalling.PAI {
		if j == 0 {
			p = withVerstat(p, c.Signalling.Verstat)
		}
		b = append(b, "P-Asserted-Identity: "...)
		b = append(b, p...)
		b = append(b, "\r\n"...)
	}
	if c.Signalling.Privacy != "" {
		b = append(b, "Privacy: "...)
		b = append(b, c.Signalling.Privacy...)
		b = append(b, "\r\n"...)
	}
	if c.Signalling.UserAgent != "" {
		b = append(b, "User-Agent: "...)
		b = append(b, c.Signalling.UserAgent...)
		b = append(b, "\r\n"...)
	}
	if c.IngressRoute != "" {
		b = append(b, "X-Ingress-Route: "...)
		b = append(b, c.IngressRoute...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Type: application/sdp\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(sdp)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, sdp...)
}

// from is the call's From value without a tag: the simulator's, else
// built from the caller.
func from(c sim.ScreenRequest) string {
	f := c.Signalling.From
	if f == "" {
		caller := c.Caller
		if caller == "" {
			caller = "anonymous"
		}
		f = "<sip:" + caller + "@sbc.example;user=phone>"
	}
	if len(c.Signalling.PAI) == 0 {
		f = withVerstat(f, c.Signalling.Verstat)
	}
	return f
}

// withVerstat adds a verstat URI parameter to a name-addr (<...>).
func withVerstat(v, verstat string) string {
	if verstat == "" {
		return v
	}
	if i := bytes.IndexByte([]byte(v), '>'); i > 0 {
		return v[:i] + ";verstat=" + verstat + v[i:]
	}
	return v
}

// ack appends the ACK for a final answer (RFC 3261 17.1.1.3: same branch
// as the INVITE, To from the answer).
func (g *sipGen) ack(b, answer []byte, prefix string, i int) []byte {
	b, _, seq, _ := g.head(b, "ACK", prefix, i)
	b = append(b, "\r\nTo: "...)
	b = append(b, headerValue(answer, "To")...)
	b = append(b, "\r\nCall-ID: "...)
	b = append(b, prefix...)
	b = append(b, seq...)
	b = append(b, "@overload.invalid\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"...)
	return b
}
