package sipfront

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
)

// holdScreener blocks the screening of calls whose User-Agent is "hold"
// until release is closed, telling entered when one starts; it allows
// every other call. Routes "open" and "closed" fail open and closed.
func holdScreener(entered chan<- struct{}, release <-chan struct{}) *fakeScreener {
	return &fakeScreener{
		ScreenFn: func(ctx context.Context, in node.Incoming) (*call.Call, error) {
			if in.Signalling.UserAgent == "hold" {
				entered <- struct{}{}
				<-release
			}
			return &call.Call{ID: "01JDQ0000000000000000000AC", Verdict: call.Verdict{Score: 0.1, Action: call.Allow}}, nil
		},
		RouteFn: func(_, id string) (call.Route, error) {
			return call.Route{ID: id, Kind: call.Domestic, FailOpen: id == "open"}, nil
		},
	}
}

// waitQueued waits until n datagrams wait in the UDP queue.
func waitQueued(t *testing.T, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // a safety bound
	for len(srv.udpQueue.Load().items) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d datagrams queued, want %d", len(srv.udpQueue.Load().items), n)
		}
		runtime.Gosched()
	}
}

// TestShedding checks the UDP overload path: while the evaluators are
// behind, the reader answers new INVITEs at once by their route's failure
// policy (and other requests as usual), and the calls it had queued are
// still screened. "Behind" is a full queue here (MaxInFlight 1, with the
// only evaluator held), then a standing queue.
func TestShedding(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		wait time.Duration // let the queued datagram age this long before the next INVITEs
	}{
		{"queue full", Config{MaxInFlight: 1, Budget: time.Minute}, 0},
		// The queue has not been empty for half the budget: a standing
		// queue, whose oldest datagram waited more than a twentieth of it.
		{"standing queue", Config{MaxInFlight: 100, Budget: 80 * time.Millisecond}, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entered, release := make(chan struct{}, 1), make(chan struct{})
			reg := prometheus.NewRegistry()
			cfg := tc.cfg
			cfg.UDP, cfg.UDPWorkers, cfg.Metrics = "127.0.0.1:0", 1, reg
			srv := startSIP(t, cfg, holdScreener(entered, release))
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()
			c := dialSIP(t, "udp", srv.UDPAddr())
			ua := func(v string) string { return "User-Agent: " + v }
			route := func(v string) string { return "X-Ingress-Route: " + v }
			onRoute := func(v string) []string {
				if v == "" {
					return nil
				}
				return []string{route(v)}
			}

			// The only evaluator is held by the first call; the second waits in the queue.
			c.send(invite{callID: "held", extra: []string{ua("hold"), route("closed")}}.String())
			<-entered
			c.send(invite{callID: "queued", extra: onRoute("closed")}.String())
			waitQueued(t, srv, 1)
			time.Sleep(tc.wait)

			// Behind: answered by the reader, at once, by the route's policy.
			for _, q := range []struct {
				callID, route string
				status        int
				action, retry string
			}{
				{"shed-open", "open", 302, "unscored", ""},
				{"shed-closed", "closed", 503, "", "1"},
				{"shed-none", "", 503, "", "1"}, // no route: fails closed
			} {
				res := c.roundTrip(invite{callID: q.callID, extra: onRoute(q.route)}.String())
				if res.StatusCode != q.status || header(res, "X-Ringfence-Action") != q.action || header(res, "Retry-After") != q.retry {
					t.Errorf("%s: %d %q Retry-After %q, want %d %q %q", q.callID, res.StatusCode,
						header(res, "X-Ringfence-Action"), header(res, "Retry-After"), q.status, q.action, q.retry)
				}
			}
			// A retransmission gets the same answer; OPTIONS is answered as usual.
			if res := c.roundTrip(invite{callID: "shed-closed", extra: onRoute("closed")}.String()); res.StatusCode != 503 {
				t.Errorf("retransmission of a shed INVITE: %d", res.StatusCode)
			}
			if res := c.roundTrip(invite{method: "OPTIONS", callID: "probe"}.String()); res.StatusCode != 200 {
				t.Errorf("OPTIONS while behind: %d", res.StatusCode)
			}

			// Once released, both calls taken earlier are answered: the held
			// one screened, the queued one screened or, if it waited longer
			// than the budget, by the policy.
			close(release)
			got := map[string]*sip.Response{}
			for range 2 {
				res := c.read(10 * time.Second)
				if res == nil {
					t.Fatalf("answers after the release: %d of 2", len(got))
				}
				got[header(res, "Call-ID")] = res
			}
			if res := got["held"]; res == nil || res.StatusCode != 302 || header(res, "X-Ringfence-Action") != "allow" {
				t.Errorf("held call: %v", res)
			}
			if res := got["queued"]; res == nil || !(res.StatusCode == 302 && header(res, "X-Ringfence-Action") == "allow" || res.StatusCode == 503) {
				t.Errorf("queued call: %v", res)
			}
			if n := counter(t, reg, "ringfence_sip_invites_total", "outcome", "unscored"); n != 1 {
				t.Errorf("invites{unscored} = %v, want 1", n)
			}
			if n := counter(t, reg, "ringfence_sip_invites_total", "outcome", "rejected_overload"); n < 2 {
				t.Errorf("invites{rejected_overload} = %v, want at least 2", n)
			}
		})
	}
}
