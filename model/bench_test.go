package model_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/model"
)

func fmtSscanf(p string, x, y *float64) (int, error) { return fmt.Sscanf(p, "%g,%g", x, y) }

// BenchmarkScore measures the per-call cost in screening: Extract into a
// reused buffer, then the calibrated log-odds (Logit), or the probability
// with contributions and the top markers (Markers) when a verdict is
// explained. The budget is 5 µs per call.
func BenchmarkScore(b *testing.B) {
	m, _, err := model.Train(synthetic(5000, 1), model.Options{Balanced: true})
	if err != nil {
		b.Fatal(err)
	}
	x := &model.Extractor{Region: "GB", Location: model.Zone("GB"), Routes: routeTable{func(_, id string) (call.Route, bool) {
		return call.Route{ID: id, Kind: call.Domestic, Country: "GB"}, true
	}}}
	c := &call.Call{
		Tenant:    "t",
		Caller:    call.Number{E164: "+447400123456", Valid: true, Possible: true, Type: call.TypeMobile, Region: "GB"},
		Dialled:   call.Number{E164: "+443456002020", Valid: true, Possible: true, Type: call.TypeUAN, Region: "GB"},
		StartedAt: time.Date(2025, 3, 5, 14, 0, 0, 0, time.UTC), Ingress: "uk-domestic-1", UserRef: "u1",
		Signalling: call.Signalling{PAI: []string{"<sip:+447400123456@x>"}, Verstat: "TN-Validation-Passed-A"},
	}
	v := &call.Verdict{Markers: []call.Marker{
		{Code: "verstat.passed_a", Detail: "carrier verified, attestation A"},
		{Code: "velocity.caller_hour", Detail: "11 calls in the last hour"},
		{Code: "link.unknown_number", Detail: "customer has other known numbers"},
	}}
	buf := make([]float32, model.Width)
	b.Run("Extract+Logit", func(b *testing.B) {
		b.ReportAllocs()
		sink := 0.0
		for b.Loop() {
			buf = x.Extract(buf, c, v)
			sink += m.Logit(buf)
		}
		_ = sink
	})
	b.Run("Extract+Markers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = x.Extract(buf, c, v)
			_ = m.Markers(buf, 5)
		}
	})
}

// BenchmarkTrain1M trains on one million synthetic labelled examples of the
// real feature width (the target is under two minutes on the project's
// 2-core machine). Generating the data is not timed.
func BenchmarkTrain1M(b *testing.B) {
	ex := synthetic(1_000_000, 1)
	b.ResetTimer()
	for b.Loop() {
		_, r, err := model.Train(ex, model.Options{Balanced: true})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.Training.Iterations), "iterations")
	}
}
