package sipfront

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// outcome is how an INVITE was answered, the label of
// ringfence_sip_invites_total.
type outcome uint8

const (
	outAllow    outcome = iota // 302, verdict allow
	outFlag                    // 302, verdict flag
	outBlock                   // 608 or 603
	outUnscored                // 302 unscored: failed open
	outOverload                // 503: over MaxInFlight, the UDP queue's wait or the budget, failed closed
	outError                   // not screened: 503 on an engine error, or 400, 403, 416, 420, 481, 484
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"allow", "flag", "block", "unscored", "rejected_overload", "error"}

// Transports, the label of ringfence_sip_parse_failures_total.
const (
	transportUDP = iota
	transportTCP
	transportTLS
	nTransports
)

var transportNames = [nTransports]string{"udp", "tcp", "tls"}

// metrics are the SIP front end's Prometheus instruments.
type metrics struct {
	invites         [nOutcomes]prometheus.Counter
	parseFailures   [nTransports]prometheus.Counter
	reply           prometheus.Histogram
	retransmissions prometheus.Counter
	fallbacks       prometheus.Counter
	collectors      []prometheus.Collector
}

func newMetrics(inFlight *atomic.Int64, queued func() float64) *metrics {
	invites := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringfence_sip_invites_total",
		Help: "Initial INVITEs answered (retransmissions not counted), by outcome.",
	}, []string{"outcome"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringfence_sip_parse_failures_total",
		Help: "Requests refused as malformed (400, 505) or dropped as unparseable, by transport.",
	}, []string{"transport"})
	m := &metrics{
		reply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ringfence_sip_reply_seconds",
			Help:    "Time from an INVITE's arrival (the kernel's receive time on UDP where available) to its answer being ready to send.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3},
		}),
		retransmissions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringfence_sip_retransmissions_total",
			Help: "INVITE retransmissions answered from the answer cache or absorbed while the first copy was screened.",
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringfence_sip_fallbacks_total",
			Help: "UDP datagrams the fast path passed to sipgo's parser.",
		}),
	}
	for o := range m.invites {
		m.invites[o] = invites.WithLabelValues(outcomeNames[o])
	}
	for t := range m.parseFailures {
		m.parseFailures[t] = failures.WithLabelValues(transportNames[t])
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ringfence_sip_in_flight",
		Help: "INVITEs being screened now.",
	}, func() float64 { return float64(inFlight.Load()) })
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ringfence_sip_udp_queued",
		Help: "UDP datagrams read and waiting for an evaluator.",
	}, queued)
	m.collectors = []prometheus.Collector{invites, failures, m.reply, m.retransmissions, m.fallbacks, gauge, waiting}
	return m
}

// register adds the instruments to reg; nothing is registered on error.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return errors.New("sip metrics already registered: one Server per registry")
			}
			return err
		}
	}
	return nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	for _, c := range m.collectors {
		reg.Unregister(c)
	}
}

func (m *metrics) invite(o outcome) { m.invites[o].Inc() }
