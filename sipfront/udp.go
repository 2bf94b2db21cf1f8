package sipfront

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/net/ipv4"
)

// batchConn is the batch IO of x/net's ipv4 and ipv6 PacketConns:
// recvmmsg and sendmmsg on Linux, one datagram per call elsewhere.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

const (
	batchSize   = 32
	maxDatagram = 64 << 10 // above the largest UDP payload: never truncated
)

// udpWorker reads a batch of datagrams, answers each in turn (screening
// included: the engine is pure CPU, so a worker per core keeps the cores
// busy) and writes the batch of replies. Several workers share the socket;
// the kernel hands each batch to one of them.
type udpWorker struct {
	s       *Server
	conn    batchConn
	in, out []ipv4.Message
	req     request
	w       reply
	invited [batchSize]time.Time // arrival of the INVITE each reply answers; zero for other replies
}

func newUDPWorker(s *Server, conn batchConn) *udpWorker {
	w := &udpWorker{s: s, conn: conn, in: make([]ipv4.Message, batchSize), out: make([]ipv4.Message, batchSize)}
	for i := range w.in {
		w.in[i].Buffers = [][]byte{make([]byte, maxDatagram)}
		if oobSize > 0 {
			w.in[i].OOB = make([]byte, oobSize)
		}
		w.out[i].Buffers = [][]byte{make([]byte, 0, 1024)}
	}
	return w
}

func (w *udpWorker) run() {
	s := w.s
	for {
		n, err := w.conn.ReadBatch(w.in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
				return
			}
			s.log.Warn("udp read failed", "error", err)
			time.Sleep(time.Millisecond) // do not spin on a persistent error
			continue
		}
		now := time.Now()
		k := 0
		for i := range n {
			m := &w.in[i]
			arrived, late := now, false
			if t, ok := receivedAt(m.OOB[:m.NN]); ok {
				arrived, late = t, now.Sub(t) > s.cfg.Budget
			}
			w.w.b = w.out[k].Buffers[0][:0]
			if s.datagram(&w.req, &w.w, m.Buffers[0][:m.N], udpAddrPort(m.Addr), late) {
				w.out[k].Buffers[0] = w.w.b
				w.out[k].Addr = m.Addr
				w.invited[k] = time.Time{}
				if w.req.method == "INVITE" {
					w.invited[k] = arrived
				}
				k++
			}
		}
		for sent := 0; sent < k; {
			c, err := w.conn.WriteBatch(w.out[sent:k], 0)
			if err != nil {
				if s.ctx.Err() != nil {
					return
				}
				s.log.Debug("udp write failed", "error", err)
				c = max(c, 1) // skip the datagram that failed
			}
			sent += c
		}
		for _, t := range w.invited[:k] {
			if !t.IsZero() {
				s.m.reply.Observe(time.Since(t).Seconds())
			}
		}
	}
}

func udpAddrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// datagram answers one datagram into w, and reports whether there is a
// reply to send. Requests the fast path takes never reach sipgo's parser;
// the others are parsed by sipgo and handled the same way. r is left
// holding the request.
func (s *Server) datagram(r *request, w *reply, b []byte, src netip.AddrPort, late bool) bool {
	return s.answerDatagram(r, w, b, src, late, true)
}

// answerDatagram is datagram with the fast path optional (tests compare
// the two paths).
func (s *Server) answerDatagram(r *request, w *reply, b []byte, src netip.AddrPort, late, fast bool) bool {
	if len(b) >= 4 && string(b[:4]) == "ACK " {
		r.method = "ACK"
		return false
	}
	if !fast || !s.scan(b, r) {
		if blank(b) {
			return false // a keep-alive
		}
		s.m.fallbacks.Inc()
		msg, err := s.dgramParser.ParseSIP(b)
		if err != nil {
			return s.unparseable(r, w, b, err, src)
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return false // a response: a redirect server sends no requests, so it answers none
		}
		fromSipgo(req, s.cfg.TenantHeader, s.cfg.RouteHeader, r)
	}
	a, ok := s.handle(r, src, transportUDP, late)
	if !ok {
		return false
	}
	s.render(w, r, &a, src)
	return true
}

func blank(b []byte) bool {
	for _, c := range b {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' && c != 0 {
			return false
		}
	}
	return true
}

// unparseable answers a datagram sipgo could not parse: a 400 naming the
// problem if it is a request with a Via to answer (416 if its only visible
// fault is the URI scheme), nothing for a response or an ACK. The
// addressing headers are found by a tolerant line scan.
func (s *Server) unparseable(r *request, w *reply, b []byte, err error, src netip.AddrPort) bool {
	s.m.parseFailures[transportUDP].Inc()
	rawRequest(b, r)
	if r.method == "" || r.method == "ACK" || len(r.vias) == 0 {
		return false
	}
	a := answer{status: statusBadRequest, info: "malformed message"}
	switch {
	case errors.Is(err, sip.ErrParseReadBodyIncomplete):
		a.info = "Content-Length larger than the datagram"
	case errors.Is(err, sip.ErrMessageTooLarge):
		a.status, a.info = 513, "message too large"
	case r.uri != "" && r.version == "SIP/2.0" && checkURI(r.uri) == "" && !r.supportedScheme():
		a = answerScheme
	case r.uri == "":
		a.info = "malformed Request-Line"
	case checkURI(r.uri) != "":
		a.info = checkURI(r.uri) + " (Request-URI)"
	}
	s.render(w, r, &a, src)
	return true
}

// rawRequest fills r from a message sipgo could not parse, as far as it
// can: the method, the Request-URI when the Request-Line is well formed,
// and the Via, From, To, Call-ID and CSeq values. r.method stays "" for a
// response.
func rawRequest(b []byte, r *request) {
	r.reset()
	m := string(b)
	end := strings.Index(m, "\r\n\r\n")
	if end < 0 {
		end = len(m)
	}
	lines := strings.Split(strings.ReplaceAll(m[:end], "\r\n", "\n"), "\n")
	first := lines[0]
	if strings.HasPrefix(first, "SIP/") {
		return
	}
	parts := strings.Split(first, " ")
	if !isToken(parts[0]) {
		return
	}
	r.method = parts[0]
	if len(parts) == 3 && parts[2] == "SIP/2.0" {
		r.uri, r.version = parts[1], parts[2]
	}
	for i := 1; i < len(lines); i++ {
		line := lines[i]
		for i+1 < len(lines) && lines[i+1] != "" && isLWS(lines[i+1][0]) { // folded
			i++
			line += " " + trimLWS(lines[i])
		}
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name, v = trimLWS(name), trimLWS(v)
		switch k := headerKind(name); k {
		case kVia, kFrom, kTo, kCallID, kCSeq:
			r.add(k, name, v, "", "")
		}
	}
	r.derive()
}
