package model

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Thresholds are the tenant's policy thresholds the scores are judged at.
type Thresholds struct {
	Flag  float64 // score at or above which a call is flagged
	Block float64 // score at or above which a call is blocked
}

// Report is what Train and Evaluate found. Train fills Training; Evaluate
// fills the rest. Combine them with Report.Training = trainReport.Training.
type Report struct {
	Training   *Training  `json:"training,omitempty"`
	Thresholds Thresholds `json:"thresholds"`
	Test       TestSet    `json:"test"`
	Model      *Metrics   `json:"model,omitempty"`
	Baseline   *Metrics   `json:"baseline,omitempty"` // the live scores on the same calls
	Weights    []Weight   `json:"weights,omitempty"`  // the model's largest standardised weights
	Notes      []string   `json:"notes,omitempty"`    // free text the experiment adds
}

// Weight is one feature's weight in the model, per standard deviation of
// the feature, before calibration.
type Weight struct {
	Feature string  `json:"feature"`
	Weight  float64 `json:"weight"`
}

// topWeights returns the n largest weights of m by absolute value.
func topWeights(m *Model, n int) []Weight {
	ws := make([]Weight, len(m.Weights))
	for j, w := range m.Weights {
		ws[j] = Weight{m.Features[j], w}
	}
	slices.SortStableFunc(ws, func(a, b Weight) int { return cmp.Compare(math.Abs(b.Weight), math.Abs(a.Weight)) })
	return ws[:min(n, len(ws))]
}

// TestSet counts the evaluation calls.
type TestSet struct {
	Examples   int       `json:"examples"` // given
	Unlabelled int       `json:"unlabelled"`
	Excluded   int       `json:"excluded"`
	Used       int       `json:"used"`
	Fraud      int       `json:"fraud"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
}

// Metrics are one scorer's results on the test set.
type Metrics struct {
	AUC         float64 `json:"auc"` // ROC AUC; ties count half
	FlagAt      AtScore `json:"flag_at"`
	BlockAt     AtScore `json:"block_at"`
	RecallAtFPR []AtFPR `json:"recall_at_fpr"` // at 0.5% and 1% false-positive rate
	Calibration []Bin   `json:"calibration"`   // 10 equal-width bins of the score
	Brier       float64 `json:"brier"`         // mean squared error of the score as a probability
	ROC         []Point `json:"roc"`           // one point per distinct score, from the highest
}

// AtScore is precision and recall when calls scoring at or above Score
// are called fraud.
type AtScore struct {
	Score     float64 `json:"score"`
	Flagged   int     `json:"flagged"`
	Precision float64 `json:"precision"` // NaN-free: 0 when nothing is flagged
	Recall    float64 `json:"recall"`
	FPR       float64 `json:"fpr"`
}

// AtFPR is the best recall with a false-positive rate at most FPR, over
// the thresholds the scores allow (no random tie-breaking: a scorer with
// many tied scores cannot interpolate between them).
type AtFPR struct {
	FPR       float64 `json:"fpr"`
	Recall    float64 `json:"recall"`
	Threshold float64 `json:"threshold"` // the lowest score counted as fraud
	Reached   float64 `json:"reached"`   // the false-positive rate at that threshold
}

// Bin is one row of a calibration table.
type Bin struct {
	Lo, Hi        float64 // score range [Lo, Hi), the last bin includes 1
	Calls         int
	Fraud         int
	MeanScore     float64 // mean predicted probability
	ObservedFraud float64 // share that was fraud
}

// Point is one point of a ROC curve.
type Point struct {
	FPR, TPR, Threshold float64
}

// FPRTargets are the false-positive rates recall is reported at.
var FPRTargets = []float64{0.005, 0.01}

// Evaluate scores the labelled, unexcluded test examples with m and
// compares the model with the baseline: the live engine's score of the
// same calls, baseline[i] for test[i] (nil => no baseline). It never
// fails: a test set without both classes gives AUC 0.5 and zero recalls.
func Evaluate(m *Model, test []Example, baseline []float64, th Thresholds) Report {
	r := Report{Thresholds: th, Test: TestSet{Examples: len(test)}}
	var ms, bs []float64
	var ys []bool
	for i := range test {
		e := &test[i]
		switch {
		case e.Exclude:
			r.Test.Excluded++
			continue
		case e.Unlabelled:
			r.Test.Unlabelled++
			continue
		}
		if r.Test.Used == 0 || e.At.Before(r.Test.From) {
			r.Test.From = e.At
		}
		if e.At.After(r.Test.To) {
			r.Test.To = e.At
		}
		r.Test.Used++
		if e.Fraud {
			r.Test.Fraud++
		}
		ys = append(ys, e.Fraud)
		ms = append(ms, m.Probability(e.X))
		if baseline != nil {
			bs = append(bs, baseline[i])
		}
	}
	r.Model = metrics(ms, ys, th)
	r.Weights = topWeights(m, 15)
	if baseline != nil {
		r.Baseline = metrics(bs, ys, th)
	}
	return r
}

// metrics computes every Metric of scores s against labels y.
func metrics(s []float64, y []bool, th Thresholds) *Metrics {
	m := &Metrics{}
	m.ROC = roc(s, y)
	m.AUC = auc(m.ROC)
	m.FlagAt = atScore(s, y, th.Flag)
	m.BlockAt = atScore(s, y, th.Block)
	for _, f := range FPRTargets {
		m.RecallAtFPR = append(m.RecallAtFPR, recallAt(m.ROC, f))
	}
	m.Calibration = calibration(s, y, 10)
	for i, p := range s {
		d := p - flag64(y[i])
		m.Brier += d * d
	}
	if len(s) > 0 {
		m.Brier /= float64(len(s))
	}
	return m
}

func flag64(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// roc returns the ROC curve from (0,0): one point per distinct score,
// thresholds descending, all calls tied at a score entering together.
func roc(s []float64, y []bool) []Point {
	idx := make([]int, len(s))
	var pos, neg float64
	for i := range idx {
		idx[i] = i
		if y[i] {
			pos++
		} else {
			neg++
		}
	}
	pts := []Point{{0, 0, math.MaxFloat64}}
	if pos == 0 || neg == 0 {
		return append(pts, Point{1, 1, -math.MaxFloat64})
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(s[b], s[a]) })
	var tp, fp float64
	for k := 0; k < len(idx); {
		t := s[idx[k]]
		for ; k < len(idx) && s[idx[k]] == t; k++ {
			if y[idx[k]] {
				tp++
			} else {
				fp++
			}
		}
		pts = append(pts, Point{FPR: fp / neg, TPR: tp / pos, Threshold: t})
	}
	return pts
}

// auc integrates the ROC curve with the trapezoid rule, which counts tied
// scores as half right: the Mann-Whitney statistic.
func auc(pts []Point) float64 {
	a := 0.0
	for i := 1; i < len(pts); i++ {
		a += (pts[i].FPR - pts[i-1].FPR) * (pts[i].TPR + pts[i-1].TPR) / 2
	}
	return a
}

func recallAt(pts []Point, fpr float64) AtFPR {
	best := AtFPR{FPR: fpr, Threshold: math.MaxFloat64}
	for _, p := range pts {
		if p.FPR <= fpr+1e-12 && p.TPR >= best.Recall {
			best.Recall, best.Threshold, best.Reached = p.TPR, p.Threshold, p.FPR
		}
	}
	return best
}

func atScore(s []float64, y []bool, t float64) AtScore {
	a := AtScore{Score: t}
	var tp, pos, neg, fp int
	for i, p := range s {
		if y[i] {
			pos++
		} else {
			neg++
		}
		if p >= t {
			a.Flagged++
			if y[i] {
				tp++
			} else {
				fp++
			}
		}
	}
	if a.Flagged > 0 {
		a.Precision = float64(tp) / float64(a.Flagged)
	}
	if pos > 0 {
		a.Recall = float64(tp) / float64(pos)
	}
	if neg > 0 {
		a.FPR = float64(fp) / float64(neg)
	}
	return a
}

func calibration(s []float64, y []bool, n int) []Bin {
	bins := make([]Bin, n)
	for k := range bins {
		bins[k].Lo, bins[k].Hi = float64(k)/float64(n), float64(k+1)/float64(n)
	}
	for i, p := range s {
		k := min(max(int(p*float64(n)), 0), n-1)
		bins[k].Calls++
		bins[k].MeanScore += p
		if y[i] {
			bins[k].Fraud++
		}
	}
	for k := range bins {
		if b := &bins[k]; b.Calls > 0 {
			b.MeanScore /= float64(b.Calls)
			b.ObservedFraud = float64(b.Fraud) / float64(b.Calls)
		}
	}
	return bins
}
