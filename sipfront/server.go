// Package sipfront is ringfence's SIP redirect server: an SBC or a carrier
// sends the INVITE, ringfence screens the call and answers 302 (allow,
// flag: Contact = the original Request-URI, the verdict in X-Ringfence
// headers), 608 or 603 (block), or per the ingress route's failure policy
// 302 unscored or 503. Answers are stateless and deterministic under
// retransmission. docs/sip.md describes the behaviour for operators.
//
// UDP has a lean path for the common case (fastpath.go, udp.go); TCP, TLS
// and unusual datagrams go through sipgo (sipgo.go). Both produce the same
// request (message.go) and share validation, mapping (mapping.go) and the
// answer (reply.go).
package sipfront

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/ringfence/ringfence/accesslog"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
)

// Screener is what the SIP front end needs from a node (*node.Node
// satisfies it).
type Screener interface {
	Screen(ctx context.Context, in node.Incoming) (*call.Call, error)
	Policy(tenant string) (call.Policy, error)
	Route(tenant, id string) (call.Route, error)
}

var _ Screener = (*node.Node)(nil)

// Config holds the SIP front end's settings. Zero values are useful
// defaults, except that a tenant (Tenant or TenantHeader) and at least one
// listener are required.
type Config struct {
	UDP, TCP, TLS     string // listen addresses such as ":5060" ("" = off)
	CertFile, KeyFile string // certificate and key (PEM) for TLS; TLS 1.2 minimum
	// Tenant owns the calls arriving on these listeners.
	Tenant string
	// TenantHeader, if set, names a header carrying the tenant id (e.g.
	// "X-Ringfence-Tenant"), for an SBC serving several tenants; it wins
	// over Tenant when present.
	TenantHeader string
	// RouteHeader names the header carrying the ingress route id; "" =>
	// "X-Ingress-Route".
	RouteHeader string
	// RouteBySource maps source prefixes (CIDR) to route ids, used when the
	// route header is absent; the longest matching prefix wins.
	RouteBySource map[string]string
	Appliance     string // node name for call records; "" => the node's
	// MaxInFlight bounds concurrent evaluations, and on UDP the datagrams
	// waiting for an evaluator; over it the ingress route's
	// fail-open/closed policy applies. 0 => 4096.
	MaxInFlight int
	// Budget is the engine's deadline per call. On UDP an INVITE that
	// waited longer than Budget since it reached the host is answered by
	// the failure policy unscreened, and fractions of it bound the wait
	// for an evaluator (half normally, a twentieth under sustained
	// overload): beyond them new INVITEs get the failure policy's answer
	// at once (see udp.go). 0 => 50ms.
	Budget time.Duration
	// Idle closes a TCP or TLS connection silent this long (a TLS
	// handshake included). SBCs send CRLF keep-alives (RFC 5626) or
	// reconnect. 0 => 10 minutes.
	Idle time.Duration
	// AnswerCache bounds the INVITE answers kept for retransmissions
	// (per generation; two are kept). 0 => 1<<18.
	AnswerCache int
	// UDPWorkers is the number of goroutines screening UDP datagrams (one
	// more reads the socket). 0 => GOMAXPROCS (at least 2).
	UDPWorkers int
	// Access, if set, logs every answered request with the client's
	// address pseudonymised (accesslog.Writer).
	Access  AccessLog
	Log     *slog.Logger          // nil => discard; used as given (the caller names the component)
	Metrics prometheus.Registerer // nil => not registered
	Now     func() time.Time      // nil => time.Now
}

// AccessLog records one answered request (accesslog.Writer).
type AccessLog interface {
	Log(client netip.Addr, e accesslog.Entry)
}

// answerTTL is how long an INVITE answer is kept for retransmissions:
// Timer B, 64*T1, after which a client gives up retransmitting.
const answerTTL = 32 * time.Second

// Server is the SIP redirect server. New, then Listen, then Close. Safe for
// concurrent use.
type Server struct {
	cfg     Config
	scr     Screener
	log     *slog.Logger
	m       *metrics
	agent   string // this server's name in Warning headers and To-tags
	sources []sourceRoute
	answers *answers
	tlsConf *tls.Config

	dgramParser *sip.Parser // lenient Content-Length: for datagrams
	tp          *sip.TransportLayer

	inFlight atomic.Int64
	udpQueue atomic.Pointer[udpQueue] // set by Listen when UDP is on, for the metrics
	deadline atomic.Pointer[sharedDeadline]
	ctx      context.Context // cancelled by Close; parent of screening deadlines
	cancel   context.CancelFunc

	mu        sync.Mutex
	listening bool
	closing   bool
	wg        sync.WaitGroup
	udp       *net.UDPConn
	tcp, tls  net.Listener
}

// New checks cfg and returns a server over s. It loads the TLS certificate
// and registers the metrics, so a bad certificate or a second server on
// one registry fails here.
func New(cfg Config, s Screener) (*Server, error) {
	if s == nil {
		return nil, errors.New("sip: no screener")
	}
	if cfg.UDP == "" && cfg.TCP == "" && cfg.TLS == "" {
		return nil, errors.New("sip: no listener configured (UDP, TCP or TLS)")
	}
	if cfg.Tenant == "" && cfg.TenantHeader == "" {
		return nil, errors.New("sip: a tenant or a tenant header is required")
	}
	if cfg.Tenant != "" && !call.ValidID(cfg.Tenant) {
		return nil, fmt.Errorf("sip: tenant %q: not a tenant id", cfg.Tenant)
	}
	if cfg.Appliance != "" && !call.ValidID(cfg.Appliance) {
		return nil, fmt.Errorf("sip: appliance %q: not an appliance id", cfg.Appliance)
	}
	if cfg.RouteHeader == "" {
		cfg.RouteHeader = "X-Ingress-Route"
	}
	for _, h := range []string{cfg.TenantHeader, cfg.RouteHeader} {
		if h != "" && !isToken(h) {
			return nil, fmt.Errorf("sip: header name %q: not a SIP token", h)
		}
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4096
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 10 * time.Minute
	}
	if cfg.Budget <= 0 {
		cfg.Budget = 50 * time.Millisecond
	}
	if cfg.AnswerCache <= 0 {
		cfg.AnswerCache = 1 << 18
	}
	if cfg.UDPWorkers <= 0 {
		cfg.UDPWorkers = max(2, runtime.GOMAXPROCS(0))
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	srv := &Server{
		cfg:         cfg,
		scr:         s,
		log:         cfg.Log,
		agent:       cfg.Appliance,
		answers:     newAnswers(cfg.AnswerCache, answerTTL),
		dgramParser: newParser(true),
	}
	if srv.agent == "" {
		srv.agent = "ringfence"
	}
	for cidr, route := range cfg.RouteBySource {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, fmt.Errorf("sip: route by source %q: %w", cidr, err)
		}
		if !call.ValidID(route) {
			return nil, fmt.Errorf("sip: route by source %q: %q is not a route id", cidr, route)
		}
		srv.sources = append(srv.sources, sourceRoute{prefix: p.Masked(), route: route})
	}
	slices.SortFunc(srv.sources, func(a, b sourceRoute) int { return b.prefix.Bits() - a.prefix.Bits() })
	if cfg.TLS != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sip: tls certificate: %w", err)
		}
		srv.tlsConf = ServerTLS(cert)
	}
	srv.ctx, srv.cancel = context.WithCancel(context.Background())
	srv.m = newMetrics(&srv.inFlight, func() float64 {
		if q := srv.udpQueue.Load(); q != nil {
			return float64(len(q.items))
		}
		return 0
	})
	if err := srv.m.register(cfg.Metrics); err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	srv.tp = newTransportLayer(srv)
	return srv, nil
}

// udpBuffer is the socket buffer size asked for on the UDP listener.
const udpBuffer = 8 << 20

// Listen binds every configured listener, synchronously, so a busy port
// fails here, then serves them on goroutines the server owns until ctx is
// cancelled or Close is called. It can be called once.
func (s *Server) Listen(ctx context.Context) error {
	s.mu.Lock()
	if s.listening || s.closing {
		s.mu.Unlock()
		return errors.New("sip: Listen called twice or after Close")
	}
	s.listening = true
	s.mu.Unlock()

	var (
		lc       net.ListenConfig
		udp      *net.UDPConn
		tcp, tln net.Listener
	)
	fail := func(err error) error {
		if udp != nil {
			udp.Close()
		}
		if tcp != nil {
			tcp.Close()
		}
		return err
	}
	if s.cfg.UDP != "" {
		pc, err := lc.ListenPacket(ctx, "udp", s.cfg.UDP)
		if err != nil {
			return fail(fmt.Errorf("sip: listen udp %s: %w", s.cfg.UDP, err))
		}
		udp = pc.(*net.UDPConn)
		// A deep receive buffer absorbs bursts, so that under overload a
		// request is read late and answered by the failure policy (a fast
		// 503 or unscored 302) rather than dropped unseen by the kernel.
		// The kernel caps it at net.core.rmem_max; errors are harmless.
		udp.SetReadBuffer(udpBuffer)
		udp.SetWriteBuffer(udpBuffer)
	}
	if s.cfg.TCP != "" {
		l, err := lc.Listen(ctx, "tcp", s.cfg.TCP)
		if err != nil {
			return fail(fmt.Errorf("sip: listen tcp %s: %w", s.cfg.TCP, err))
		}
		tcp = idleListener{Listener: l, idle: s.cfg.Idle}
	}
	if s.cfg.TLS != "" {
		l, err := lc.Listen(ctx, "tcp", s.cfg.TLS)
		if err != nil {
			return fail(fmt.Errorf("sip: listen tls %s: %w", s.cfg.TLS, err))
		}
		tln = tls.NewListener(idleListener{Listener: l, idle: s.cfg.Idle}, s.tlsConf)
	}
	s.udp, s.tcp, s.tls = udp, tcp, tln

	if s.udp != nil {
		s.udp.SetReadBuffer(8 << 20) // best effort: absorbs bursts
		s.udp.SetWriteBuffer(4 << 20)
		KernelTimestamps(s.udp)
		var conn batchConn = ipv4.NewPacketConn(s.udp)
		if a, ok := s.udp.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
			conn = ipv6.NewPacketConn(s.udp)
		}
		q := newUDPQueue(s.cfg.MaxInFlight)
		s.udpQueue.Store(q)
		s.wg.Go(newUDPReader(s, conn, q).run)
		for range s.cfg.UDPWorkers {
			s.wg.Go(newUDPWorker(s, conn, q).run)
		}
	}
	serve := func(name string, l net.Listener, f func(net.Listener) error) {
		s.wg.Go(func() {
			if err := f(l); err != nil && s.ctx.Err() == nil {
				s.log.Error("sip listener stopped", "transport", name, "error", err)
			}
		})
	}
	if s.tcp != nil {
		serve("tcp", s.tcp, s.tp.ServeTCP)
	}
	if s.tls != nil {
		serve("tls", s.tls, s.tp.ServeTLS)
	}
	s.wg.Go(func() {
		select {
		case <-ctx.Done():
			s.shutdown()
		case <-s.ctx.Done():
		}
	})
	s.log.Info("sip listening", "udp", addrString(s.UDPAddr()), "tcp", addrString(s.TCPAddr()), "tls", addrString(s.TLSAddr()))
	return nil
}

// ServerTLS is the TLS configuration of every ringfence listener that
// takes TLS (SIP here, HTTPS in cmd/ringfence): TLS 1.2 minimum and, for
// 1.2, only ECDHE suites with AEAD ciphers (TLS 1.3's suites are all modern
// and not configurable).
func ServerTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// UDPAddr returns the bound UDP address, nil if UDP is off or not bound.
func (s *Server) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// TCPAddr returns the bound TCP address, nil if TCP is off or not bound.
func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// TLSAddr returns the bound TLS address, nil if TLS is off or not bound.
func (s *Server) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr()
}

// track registers a request goroutine; false once the server is closing.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

// shutdown stops accepting and reading: it closes the listeners, the UDP
// socket and sipgo's connections. Safe to call more than once.
func (s *Server) shutdown() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.mu.Unlock()
	s.cancel()
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.tls != nil {
		s.tls.Close()
	}
	s.tp.Close()
}

// Close stops the listeners and waits for every goroutine the server
// started (UDP workers, accept loops, requests being answered). sipgo's
// per-connection readers end as their connections, closed here, fail.
func (s *Server) Close() error {
	s.shutdown()
	s.wg.Wait()
	s.m.unregister(s.cfg.Metrics)
	return nil
}
