package sipfront

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TCP and TLS go through sipgo's transport layer: its listeners, per
// connection readers, stream framing and parser (with the hooks of
// newParser), and its connection pool to write the answer back on the
// connection the request came in on. sipgo's transaction layer (what
// sipgo.NewServer wires in) is deliberately left out: it would create an
// INVITE server transaction per request, arm a 100 Trying timer, answer
// some malformed requests itself and swallow retransmissions, which is
// what a stateless redirect server must not do. Answers are written with
// the transport layer's WriteMsg, the call sipgo's stateless
// Server.WriteResponse makes.

func newTransportLayer(s *Server) *sip.TransportLayer {
	tp := sip.NewTransportLayer(net.DefaultResolver, newParser(false), nil,
		sip.WithTransportLayerLogger(slog.New(&sipgoLog{s: s, next: s.log.Handler()})))
	tp.OnMessage(s.onMessage)
	return tp
}

// onMessage receives every message sipgo's transports read, on the
// connection's reader goroutine: requests on one connection are answered
// in order, each answer written before the next message is parsed (so an
// answer is never lost to a connection sipgo closes over a later framing
// error). Screening is CPU only and bounded by the budget, so one
// connection is held up by at most that.
func (s *Server) onMessage(msg sip.Message) {
	req, ok := msg.(*sip.Request)
	if !ok || req.IsAck() {
		return // responses are not expected; ACKs are absorbed
	}
	if !s.track() {
		return
	}
	defer s.wg.Done()
	s.serveStream(req)
}

func (s *Server) serveStream(req *sip.Request) {
	start := time.Now()
	transport := transportTCP
	if strings.EqualFold(req.Transport(), "TLS") {
		transport = transportTLS
	}
	var r request
	fromSipgo(req, s.cfg.TenantHeader, s.cfg.RouteHeader, &r)
	src, _ := netip.ParseAddrPort(req.Source())
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	a, ok := s.handle(&r, src, transport, false)
	if !ok {
		return
	}
	w := reply{res: sip.NewResponse(0, "")}
	s.render(&w, &r, &a, src)
	w.res.SetTransport(req.Transport())
	w.res.SetDestination(req.Source())
	if err := s.tp.WriteMsg(w.res); err != nil {
		s.log.Debug("sip answer not sent", "transport", transportNames[transport], "error", err)
	}
	if r.method == "INVITE" {
		s.m.reply.Observe(time.Since(start).Seconds())
	}
}

// sipgoLog is the slog handler given to sipgo. sipgo logs messages in
// full, and parse errors that quote them, which can hold phone numbers:
// only the text of warnings and errors passes, never an attribute. A
// stream that fails to parse (sipgo then closes the connection) also
// counts as a parse failure; sipgo v1.7.3 reports it only in this log.
type sipgoLog struct {
	s         *Server
	next      slog.Handler
	transport int
}

func (h *sipgoLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn
}

func (h *sipgoLog) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == "failed to parse" {
		h.s.m.parseFailures[h.transport].Inc()
	}
	if !h.next.Enabled(ctx, rec.Level) {
		return nil
	}
	out := slog.NewRecord(rec.Time, rec.Level, "sipgo: "+rec.Message, 0)
	out.AddAttrs(slog.String("transport", transportNames[h.transport]))
	return h.next.Handle(ctx, out)
}

func (h *sipgoLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		if a.Key == "caller" {
			switch v := a.Value.String(); {
			case strings.Contains(v, "TLS"):
				c.transport = transportTLS
			case strings.Contains(v, "TCP"):
				c.transport = transportTCP
			}
		}
	}
	return &c
}

func (h *sipgoLog) WithGroup(string) slog.Handler { return h }
