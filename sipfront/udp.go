package sipfront

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
	pooledSize  = 4 << 10  // queued datagrams up to this size reuse pooled buffers
)

// The UDP path is a reader and a few evaluators with a bounded queue
// between them. The reader drains the socket at full speed (recvmmsg,
// nothing but a copy per datagram) and queues each datagram for the
// evaluators, which screen it and send the answers (sendmmsg). Screening
// is pure CPU but not free, and it waits when the recorder is behind, so
// under overload the evaluators fall behind. The reader then stops
// queueing and answers what it reads itself, at once, on the cheap path:
// an INVITE by its ingress route's failure policy (302 unscored or 503,
// unscreened and unrecorded), anything else as usual. So the excess is
// answered in microseconds instead of being lost in the socket buffer or
// answered late, and the calls that are screened keep their latency.
//
// When to stop queueing is CoDel's idea, as adaptive queueing in servers
// uses it: a queue that empties now and then is absorbing bursts and
// stalls, one that stays non-empty is a standing queue that only adds
// delay. So the reader queues a datagram while the oldest datagram
// waiting in the queue has waited less than looseWait, or, once the queue
// has not been empty for looseWait, less than tightWait; never more than
// MaxInFlight datagrams; and never one that already waited longer than
// looseWait in the socket buffer (a reader that was descheduled). Waits
// count from the kernel's receive time. An evaluator still answers by the
// policy a datagram that waited longer than the whole budget (a stall
// while it was queued).

// looseWait and tightWait bound the wait of the oldest queued datagram
// for the reader to keep queueing, normally and under overload: under
// overload the calls screened wait about tightWait.
func (s *Server) looseWait() time.Duration { return s.cfg.Budget / 2 }
func (s *Server) tightWait() time.Duration { return s.cfg.Budget / 20 }

// udpItem is a datagram waiting for an evaluator.
type udpItem struct {
	b       *[]byte // from udpQueue.bufs when it fits pooledSize
	addr    net.Addr
	arrived time.Time // the kernel's receive time where known, else when read
}

// udpQueue is the reader's queue to the evaluators. The reader alone
// writes items and arrival times; the evaluators count what they take, so
// the reader knows the arrival time of the oldest datagram still waiting.
type udpQueue struct {
	items chan udpItem
	taken atomic.Uint64 // datagrams taken by the evaluators so far
	bufs  sync.Pool     // *[]byte of capacity pooledSize
}

func newUDPQueue(size int) *udpQueue {
	q := &udpQueue{items: make(chan udpItem, size)}
	q.bufs.New = func() any { b := make([]byte, 0, pooledSize); return &b }
	return q
}

// udpReader reads the socket and queues datagrams, or answers them itself
// when the evaluators are behind.
type udpReader struct {
	s       *Server
	conn    batchConn
	q       *udpQueue
	in, out []ipv4.Message
	req     request
	w       reply
	invited [batchSize]time.Time // arrival of the INVITE each reply answers; zero for other replies
	queued  uint64               // datagrams queued so far
	arrival []int64              // unix ns arrival of datagram i at i % len (len > cap(q.items)): the oldest waiting is at q.taken
	emptyAt int64                // unix ns when the queue was last seen empty
}

func newUDPReader(s *Server, conn batchConn, q *udpQueue) *udpReader {
	r := &udpReader{s: s, conn: conn, q: q, in: make([]ipv4.Message, batchSize), out: newOut()}
	for i := range r.in {
		r.in[i].Buffers = [][]byte{make([]byte, maxDatagram)}
		if OOBSize > 0 {
			r.in[i].OOB = make([]byte, OOBSize)
		}
	}
	r.arrival = make([]int64, cap(q.items)+1)
	return r
}

func newOut() []ipv4.Message {
	out := make([]ipv4.Message, batchSize)
	for i := range out {
		out[i].Buffers = [][]byte{make([]byte, 0, 1024)}
	}
	return out
}

// run reads until the socket is closed, then closes the queue so the
// evaluators finish what is in it and stop.
func (r *udpReader) run() {
	defer close(r.q.items)
	s := r.s
	for {
		n, err := r.conn.ReadBatch(r.in, 0)
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
			m := &r.in[i]
			b := m.Buffers[0][:m.N]
			if len(b) >= 4 && string(b[:4]) == "ACK " {
				continue // the ACK for a final answer: absorbed, here already
			}
			arrived := now
			if t, ok := ReceivedAt(m.OOB[:m.NN]); ok {
				arrived = t
			}
			if r.admit(now, arrived) {
				r.enqueue(b, m.Addr, arrived)
				continue
			}
			// The evaluators are behind: answer now, by the failure policy.
			r.w.b = r.out[k].Buffers[0][:0]
			if s.datagram(&r.req, &r.w, b, udpAddrPort(m.Addr), true) {
				r.out[k].Buffers[0] = r.w.b
				r.out[k].Addr = m.Addr
				r.invited[k] = time.Time{}
				if r.req.method == "INVITE" {
					r.invited[k] = arrived
				}
				k++
			}
		}
		if !send(s, r.conn, r.out[:k], r.invited[:k]) {
			return
		}
	}
}

// admit reports whether a datagram the kernel received at arrived, read
// at now, may be queued (see the queue limits above).
func (r *udpReader) admit(now, arrived time.Time) bool {
	t := now.UnixNano()
	loose := int64(r.s.looseWait())
	if t-arrived.UnixNano() > loose {
		return false
	}
	taken := r.q.taken.Load()
	waiting := r.queued - taken
	if waiting == 0 {
		r.emptyAt = t
		return true
	}
	if waiting >= uint64(cap(r.q.items)) {
		return false
	}
	limit := loose
	if t-r.emptyAt > loose {
		limit = int64(r.s.tightWait()) // a standing queue
	}
	return t-r.arrival[taken%uint64(len(r.arrival))] <= limit
}

func (r *udpReader) enqueue(b []byte, addr net.Addr, arrived time.Time) {
	var buf *[]byte
	if len(b) <= pooledSize {
		buf = r.q.bufs.Get().(*[]byte)
	} else {
		buf = new([]byte) // rare: not kept in the pool
	}
	*buf = append((*buf)[:0], b...)
	r.arrival[r.queued%uint64(len(r.arrival))] = arrived.UnixNano()
	r.queued++
	r.q.items <- udpItem{b: buf, addr: addr, arrived: arrived} // never blocks: admit checked the room
}

// udpWorker is an evaluator: it takes up to a batch of queued datagrams,
// answers each in turn (screening included) and writes the batch of
// replies. Workers share the queue.
type udpWorker struct {
	s       *Server
	conn    batchConn
	q       *udpQueue
	batch   []udpItem
	out     []ipv4.Message
	req     request
	w       reply
	invited [batchSize]time.Time
}

func newUDPWorker(s *Server, conn batchConn, q *udpQueue) *udpWorker {
	return &udpWorker{s: s, conn: conn, q: q, batch: make([]udpItem, 0, batchSize), out: newOut()}
}

// run works until the reader closes the queue and it is empty.
func (w *udpWorker) run() {
	s := w.s
	for {
		it, ok := <-w.q.items
		if !ok {
			return
		}
		w.batch = append(w.batch[:0], it)
	fill:
		for len(w.batch) < batchSize {
			select {
			case it, ok := <-w.q.items:
				if !ok {
					break fill
				}
				w.batch = append(w.batch, it)
			default:
				break fill
			}
		}
		w.q.taken.Add(uint64(len(w.batch)))
		now := time.Now()
		k := 0
		for _, it := range w.batch {
			late := now.Sub(it.arrived) > s.cfg.Budget
			w.w.b = w.out[k].Buffers[0][:0]
			if s.datagram(&w.req, &w.w, *it.b, udpAddrPort(it.addr), late) {
				w.out[k].Buffers[0] = w.w.b
				w.out[k].Addr = it.addr
				w.invited[k] = time.Time{}
				if w.req.method == "INVITE" {
					w.invited[k] = it.arrived
				}
				k++
			}
			if cap(*it.b) == pooledSize {
				w.q.bufs.Put(it.b)
			}
		}
		clear(w.batch) // drop the addresses
		// When closing, the write fails; keep taking until the reader
		// closes the queue.
		send(s, w.conn, w.out[:k], w.invited[:k])
		// Let the reader in: with every P busy screening, a reader the
		// network poller woke would wait for preemption (10 ms) while
		// the socket buffer fills.
		runtime.Gosched()
	}
}

// send writes a batch of replies and records the reply time of the INVITEs
// among them; false once the server is closing.
func send(s *Server, conn batchConn, out []ipv4.Message, invited []time.Time) bool {
	for sent := 0; sent < len(out); {
		c, err := conn.WriteBatch(out[sent:], 0)
		if err != nil {
			if s.ctx.Err() != nil {
				return false
			}
			s.log.Debug("udp write failed", "error", err)
			c = max(c, 1) // skip the datagram that failed
		}
		sent += c
	}
	for _, t := range invited {
		if !t.IsZero() {
			s.m.reply.Observe(time.Since(t).Seconds())
		}
	}
	return true
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
