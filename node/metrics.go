package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/call"
)

// metrics are the node's Prometheus instruments.
type metrics struct {
	reg      prometheus.Registerer
	screens  *prometheus.CounterVec
	latency  prometheus.Histogram
	records  prometheus.Counter
	commitLt prometheus.Histogram
	changes  prometheus.Counter
	feedLag  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		screens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringfence_screens_total", Help: "Calls screened, by action.",
		}, []string{"action"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ringfence_screen_seconds",
			Help:    "Time to screen a call inside the node (normalise, evaluate, queue the record).",
			Buckets: []float64{5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3},
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringfence_records_committed_total", Help: "Call records committed to the store.",
		}),
		commitLt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ringfence_recorder_commit_seconds", Help: "Time to commit one recorder batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringfence_changes_applied_total", Help: "Changes read from the change feed and applied to memory (this node's own included).",
		}),
		feedLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ringfence_change_feed_lag_seconds",
			Help:    "Time from a change's commit (the writing node's clock) to its application on this node.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.screens, m.latency, m.records, m.commitLt, m.changes, m.feedLag)
	}
	return m
}

func (m *metrics) feedSeq(f func() float64) {
	if m.reg != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ringfence_change_feed_seq", Help: "Seq of the last change this node applied from the change feed.",
		}, f))
	}
}

func (m *metrics) applied(lag time.Duration) {
	m.changes.Inc()
	m.feedLag.Observe(max(lag, 0).Seconds())
}

// recorderState registers the recorder's gauges and its loss counter.
func (m *metrics) recorderState(depth, lost, failing func() float64) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ringfence_recorder_queue_depth", Help: "Call records waiting to be committed.",
		}, depth),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ringfence_records_lost_total", Help: "Call records and call-end updates dropped because the store was failing and the recorder queue was full (or at shutdown).",
		}, lost),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ringfence_recorder_failing", Help: "1 while the recorder's commits to the store are failing (unavailable, disk full), else 0.",
		}, failing),
	)
}

func (m *metrics) screened(a call.Action, d time.Duration) {
	m.screens.WithLabelValues(string(a)).Inc()
	m.latency.Observe(d.Seconds())
}

func (m *metrics) committed(n int, d time.Duration) {
	m.records.Add(float64(n))
	m.commitLt.Observe(d.Seconds())
}
