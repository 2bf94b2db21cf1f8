package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestAUC(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	randScores, randTruth := make([]float64, 20000), make([]bool, 20000)
	for i := range randScores {
		randScores[i], randTruth[i] = r.Float64(), r.IntN(4) == 0
	}
	for _, tc := range []struct {
		name   string
		scores []float64
		fraud  []bool
		want   float64 // NaN: want NaN
		tol    float64
	}{
		{"perfect", []float64{0.1, 0.2, 0.8, 0.9}, []bool{false, false, true, true}, 1, 0},
		{"inverse", []float64{0.9, 0.8, 0.2, 0.1}, []bool{false, false, true, true}, 0, 0},
		{"all tied", []float64{0.5, 0.5, 0.5, 0.5}, []bool{false, true, false, true}, 0.5, 0},
		// pairs (fraud, genuine): (0.5,0.1)=1 (0.5,0.5)=½ (0.9,0.1)=1 (0.9,0.5)=1 -> 3.5/4
		{"some ties", []float64{0.1, 0.5, 0.5, 0.9}, []bool{false, false, true, true}, 0.875, 0},
		{"unsorted", []float64{0.3, 0.9, 0.1, 0.7}, []bool{false, true, false, true}, 1, 0},
		{"random", randScores, randTruth, 0.5, 0.02},
		{"no fraud", []float64{0.1, 0.2}, []bool{false, false}, math.NaN(), 0},
		{"no genuine", []float64{0.1, 0.2}, []bool{true, true}, math.NaN(), 0},
		{"empty", nil, nil, math.NaN(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AUC(tc.scores, tc.fraud)
			if math.IsNaN(tc.want) != math.IsNaN(got) || math.Abs(got-tc.want) > tc.tol {
				t.Errorf("AUC = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	ms := time.Millisecond
	seq := func(n int) []time.Duration {
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = time.Duration(n-i) * ms // descending: percentiles must sort
		}
		return d
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Percentiles
	}{
		{"empty", nil, Percentiles{}},
		{"one", []time.Duration{7 * ms}, Percentiles{7 * ms, 7 * ms, 7 * ms, 7 * ms}},
		{"ten", seq(10), Percentiles{5 * ms, 9 * ms, 10 * ms, 10 * ms}},
		{"hundred", seq(100), Percentiles{50 * ms, 90 * ms, 99 * ms, 100 * ms}},
		{"thousand and one", seq(1001), Percentiles{501 * ms, 901 * ms, 991 * ms, 1001 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentiles(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
