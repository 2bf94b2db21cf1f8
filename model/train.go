package model

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"gonum.org/v1/gonum/optimize"

	"github.com/ringfence/ringfence/call"
)

// Version is the format version of a serialised Model.
const Version = 1

// Example is one call for training or evaluation.
type Example struct {
	At         time.Time // the call's start (event time): splits are by time
	X          []float32 // the feature vector (Extract), Width long
	Fraud      bool      // the label: confirmed fraud (true) or genuine
	Unlabelled bool      // no analyst label: skipped by Train and Evaluate, and counted
	Exclude    bool      // the data subject restricted or objected to processing: skipped and counted
}

// Options tunes Train. Zero values are useful defaults.
type Options struct {
	L2               float64 // L2 penalty on the standardised weights, per unit of (weighted) example; 0 => 1e-4; negative => none
	CalibrationShare float64 // latest share of the training period held out to calibrate on; 0 => 0.2
	// Balanced weighs each class so both carry equal total weight in the
	// loss (fraud is rare); the calibration undoes the shift in the
	// probabilities. false => every example weighs 1.
	Balanced      bool
	MaxIterations int              // optimiser major iterations; 0 => 200
	MaxExamples   int              // when more usable examples than this, train on a seeded random subset of them; 0 => all
	Seed          uint64           // seeds the subset draw; training is deterministic given the data and Seed
	Now           func() time.Time // stamps TrainedAt; nil => the latest example's time
}

// Model is a trained, calibrated logistic regression over the feature
// schema. It is immutable after Train (or Unmarshal) and safe for
// concurrent use. It serialises to JSON with encoding/json.
type Model struct {
	Version   int       `json:"version"`
	Schema    string    `json:"schema"`   // SchemaVersion it was trained on
	Features  []string  `json:"features"` // feature names, in vector order
	Weights   []float64 `json:"weights"`  // per standardised feature
	Intercept float64   `json:"intercept"`
	Mean      []float64 `json:"mean"`  // scaler: feature means on the training set
	Scale     []float64 `json:"scale"` // scaler: feature standard deviations (1 where constant)
	// Calibration maps the raw log-odds s to A·s+B (Platt scaling).
	Calibration Platt     `json:"calibration"`
	TrainedAt   time.Time `json:"trained_at"`
	Training    Training  `json:"training"`
	// Label names the model in verdicts (the stored version number, set
	// by whoever loads it); not serialised.
	Label string `json:"-"`

	// Derived on first use: weights in raw feature space, already calibrated.
	once  sync.Once
	raw   []float64 // A·w_j/scale_j
	base  float64   // calibrated log-odds at the mean vector
	zero  float64   // calibrated log-odds of the zero vector: base - Σ raw_j·mean_j
	codes []string  // marker codes model.<feature>
}

// Platt is a logistic calibration p = σ(A·s + B) of raw log-odds s.
type Platt struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// Training records what Train did: the counts of examples it used and
// skipped, and how the optimiser ended.
type Training struct {
	Examples       int       `json:"examples"`   // examples given
	Unlabelled     int       `json:"unlabelled"` // skipped: no label
	Excluded       int       `json:"excluded"`   // skipped: restricted or objected subjects
	Subsampled     int       `json:"subsampled"` // skipped: over MaxExamples
	Fit            int       `json:"fit"`        // used to fit the weights
	FitFraud       int       `json:"fit_fraud"`
	Calibrate      int       `json:"calibrate"` // held out to calibrate
	CalibrateFraud int       `json:"calibrate_fraud"`
	From           time.Time `json:"from"` // first and last call time used
	To             time.Time `json:"to"`
	CalibrateFrom  time.Time `json:"calibrate_from"` // start of the held-out slice
	L2             float64   `json:"l2"`
	Balanced       bool      `json:"balanced"`
	Iterations     int       `json:"iterations"`
	Evaluations    int       `json:"evaluations"`
	Loss           float64   `json:"loss"` // final objective
	Status         string    `json:"status"`
	Seconds        float64   `json:"seconds"` // wall time of the fit (informational; not in the contract)
}

// Train fits a model to the labelled, unexcluded examples: it splits them by
// time into a fitting set and the latest CalibrationShare for calibration,
// standardises the features on the fitting set, minimises the (optionally
// class-balanced) log-loss plus L2 with L-BFGS and the analytic gradient,
// then fits Platt scaling on the held-out slice. The returned Report holds
// the Training summary. Given the same examples (in any order) and
// options, it returns the same model.
//
// Errors are *call.Error with code Invalid: a vector of the wrong width,
// too few usable examples, or one class missing from either part.
func Train(examples []Example, opts Options) (*Model, Report, error) {
	start := time.Now()
	if opts.L2 == 0 {
		opts.L2 = 1e-4
	}
	opts.L2 = max(opts.L2, 0)
	if opts.CalibrationShare <= 0 || opts.CalibrationShare >= 1 {
		opts.CalibrationShare = 0.2
	}
	if opts.MaxIterations <= 0 {
		opts.MaxIterations = 200
	}
	tr := Training{Examples: len(examples), L2: opts.L2, Balanced: opts.Balanced}
	use := make([]int, 0, len(examples))
	for i := range examples {
		e := &examples[i]
		switch {
		case len(e.X) != Width:
			return nil, Report{}, call.Errorf(call.Invalid, "example %d: %d features, the schema %s has %d", i, len(e.X), SchemaVersion, Width)
		case e.Exclude:
			tr.Excluded++
		case e.Unlabelled:
			tr.Unlabelled++
		default:
			use = append(use, i)
		}
	}
	if opts.MaxExamples > 0 && len(use) > opts.MaxExamples {
		r := rand.New(rand.NewPCG(opts.Seed, 0x6d6f64656c))
		r.Shuffle(len(use), func(a, b int) { use[a], use[b] = use[b], use[a] })
		tr.Subsampled = len(use) - opts.MaxExamples
		use = use[:opts.MaxExamples]
	}
	// Order by time, then by index: the same data in any order gives the
	// same split and the same sums.
	slices.SortFunc(use, func(a, b int) int {
		if c := examples[a].At.Compare(examples[b].At); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	if len(use) < 20 {
		return nil, Report{}, call.Errorf(call.Invalid, "%d usable examples: need at least 20", len(use))
	}
	cut := int(math.Round(float64(len(use)) * (1 - opts.CalibrationShare)))
	fit, held := use[:cut], use[cut:]
	tr.Fit, tr.Calibrate = len(fit), len(held)
	tr.From, tr.To, tr.CalibrateFrom = examples[use[0]].At, examples[use[len(use)-1]].At, examples[held[0]].At
	for _, i := range fit {
		if examples[i].Fraud {
			tr.FitFraud++
		}
	}
	for _, i := range held {
		if examples[i].Fraud {
			tr.CalibrateFraud++
		}
	}
	if tr.FitFraud == 0 || tr.FitFraud == tr.Fit || tr.CalibrateFraud == 0 || tr.CalibrateFraud == tr.Calibrate {
		return nil, Report{}, call.Errorf(call.Invalid, "both classes are needed in the fitting set (%d of %d fraud) and the calibration slice (%d of %d fraud)", tr.FitFraud, tr.Fit, tr.CalibrateFraud, tr.Calibrate)
	}

	m := &Model{Version: Version, Schema: SchemaVersion, Features: Names()}
	m.Mean, m.Scale = scaler(examples, fit)
	wPos, wNeg := 1.0, 1.0
	if opts.Balanced {
		wPos = float64(tr.Fit) / (2 * float64(tr.FitFraud))
		wNeg = float64(tr.Fit) / (2 * float64(tr.Fit-tr.FitFraud))
	}
	obj := &objective{ex: examples, idx: fit, mean: m.Mean, scale: m.Scale, wPos: wPos, wNeg: wNeg, l2: opts.L2}
	obj.norm = wPos*float64(tr.FitFraud) + wNeg*float64(tr.Fit-tr.FitFraud)
	p := optimize.Problem{
		Func: func(b []float64) float64 { return obj.eval(b, nil) },
		Grad: func(g, b []float64) { obj.eval(b, g) },
	}
	init := make([]float64, Width+1)
	// Start at the intercept that fits the weighted base rate.
	init[Width] = math.Log(wPos * float64(tr.FitFraud) / (wNeg * float64(tr.Fit-tr.FitFraud)))
	res, err := optimize.Minimize(p, init, &optimize.Settings{
		MajorIterations:   opts.MaxIterations,
		GradientThreshold: 1e-7,
		Concurrent:        1,
	}, &optimize.LBFGS{})
	if err != nil && res == nil {
		return nil, Report{}, fmt.Errorf("model: fit: %w", err)
	}
	tr.Iterations, tr.Evaluations = res.Stats.MajorIterations, res.Stats.FuncEvaluations
	tr.Loss, tr.Status = res.F, res.Status.String()
	if err != nil {
		tr.Status += ": " + err.Error() // e.g. the iteration limit: the weights are still the best found
	}
	m.Weights = slices.Clone(res.X[:Width])
	m.Intercept = res.X[Width]

	// Platt scaling on the held-out slice, unweighted: it learns the true
	// base rate back.
	m.Calibration = Platt{A: 1, B: 0}
	s := make([]float64, len(held))
	y := make([]bool, len(held))
	for k, i := range held {
		s[k], y[k] = m.rawLogit(examples[i].X), examples[i].Fraud
	}
	m.Calibration, err = fitPlatt(s, y)
	if err != nil {
		return nil, Report{}, err
	}
	if opts.Now != nil {
		m.TrainedAt = opts.Now().UTC()
	} else {
		m.TrainedAt = tr.To.UTC()
	}
	tr.Seconds = time.Since(start).Seconds()
	m.Training = tr
	return m, Report{Training: &tr}, nil
}

// scaler returns the mean and standard deviation of each feature over the
// examples idx; a constant feature gets scale 1.
func scaler(ex []Example, idx []int) (mean, scale []float64) {
	mean, scale = make([]float64, Width), make([]float64, Width)
	for _, i := range idx {
		for j, v := range ex[i].X {
			mean[j] += float64(v)
		}
	}
	n := float64(len(idx))
	for j := range mean {
		mean[j] /= n
	}
	for _, i := range idx {
		for j, v := range ex[i].X {
			d := float64(v) - mean[j]
			scale[j] += d * d
		}
	}
	for j := range scale {
		scale[j] = math.Sqrt(scale[j] / n)
		if scale[j] < 1e-9 {
			scale[j] = 1
		}
	}
	return mean, scale
}

// objective is the weighted mean log-loss of a logistic regression on
// standardised features plus l2/2·|w|². The parameters are the Width
// standardised weights and then the intercept. It works on the raw vectors:
// z_j = (x_j-mean_j)/scale_j is folded into the weights, so no standardised
// copy of the data is made.
type objective struct {
	ex          []Example
	idx         []int
	mean, scale []float64
	wPos, wNeg  float64
	norm        float64 // total example weight
	l2          float64
}

// chunks is the fixed number of slices the data is summed in: partial sums
// are added in chunk order, so results do not depend on scheduling.
const chunks = 16

func (o *objective) eval(b []float64, grad []float64) float64 {
	// Raw-space weights: logit = c + Σ v_j x_j.
	v := make([]float64, Width)
	c := b[Width]
	for j := range Width {
		v[j] = b[j] / o.scale[j]
		c -= v[j] * o.mean[j]
	}
	type part struct {
		loss, rsum float64
		rx         []float64 // Σ r_i x_ij
	}
	parts := make([]part, chunks)
	workers := min(runtime.GOMAXPROCS(0), chunks)
	next := make(chan int, chunks)
	for k := range chunks {
		next <- k
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range next {
				lo, hi := k*len(o.idx)/chunks, (k+1)*len(o.idx)/chunks
				p := part{}
				if grad != nil {
					p.rx = make([]float64, Width)
				}
				for _, i := range o.idx[lo:hi] {
					e := &o.ex[i]
					z := c + dot(v, e.X)
					w := o.wNeg
					if e.Fraud {
						w = o.wPos
					}
					// log-loss: log(1+e^z) - y·z, computed stably.
					var l float64
					if z > 0 {
						l = z + math.Log1p(math.Exp(-z))
					} else {
						l = math.Log1p(math.Exp(z))
					}
					pr := 1 / (1 + math.Exp(-z))
					r := pr
					if e.Fraud {
						l -= z
						r = pr - 1
					}
					p.loss += w * l
					if grad != nil {
						r *= w
						p.rsum += r
						axpy(p.rx, r, e.X)
					}
				}
				parts[k] = p
			}
		})
	}
	wg.Wait()
	var loss, rsum float64
	var rx []float64
	if grad != nil {
		rx = make([]float64, Width)
	}
	for _, p := range parts {
		loss += p.loss
		if grad != nil {
			rsum += p.rsum
			for j := range rx {
				rx[j] += p.rx[j]
			}
		}
	}
	loss /= o.norm
	for j := range Width {
		loss += o.l2 / 2 * b[j] * b[j]
	}
	if grad != nil {
		for j := range Width {
			grad[j] = (rx[j]-o.mean[j]*rsum)/o.scale[j]/o.norm + o.l2*b[j]
		}
		grad[Width] = rsum / o.norm
	}
	return loss
}

func dot(v []float64, x []float32) float64 {
	var s0, s1, s2, s3 float64
	x = x[:len(v)]
	i := 0
	for ; i+4 <= len(v); i += 4 {
		s0 += v[i] * float64(x[i])
		s1 += v[i+1] * float64(x[i+1])
		s2 += v[i+2] * float64(x[i+2])
		s3 += v[i+3] * float64(x[i+3])
	}
	for ; i < len(v); i++ {
		s0 += v[i] * float64(x[i])
	}
	return s0 + s1 + s2 + s3
}

func axpy(dst []float64, a float64, x []float32) {
	x = x[:len(dst)]
	for j, xv := range x {
		if xv != 0 {
			dst[j] += a * float64(xv)
		}
	}
}

// fitPlatt fits p = σ(A·s+B) to labels y by Newton's method on the
// log-loss with Platt's smoothed targets (which keep it finite when the
// classes separate), halving each step until the loss does not grow (as
// Platt's and Lin's method does: plain Newton diverges on small or
// separable sets).
func fitPlatt(s []float64, y []bool) (Platt, error) {
	var pos, neg float64
	for _, f := range y {
		if f {
			pos++
		} else {
			neg++
		}
	}
	hi, lo := (pos+1)/(pos+2), 1/(neg+2)
	target := func(i int) float64 {
		if y[i] {
			return hi
		}
		return lo
	}
	// loss is the cross-entropy against the smoothed targets, computed
	// without overflow for large |a·s+b|.
	loss := func(a, b float64) float64 {
		var l float64
		for i, si := range s {
			z := a*si + b
			t := target(i)
			if z >= 0 {
				l += t*math.Log1p(math.Exp(-z)) + (1-t)*(z+math.Log1p(math.Exp(-z)))
			} else {
				l += t*(-z+math.Log1p(math.Exp(z))) + (1-t)*math.Log1p(math.Exp(z))
			}
		}
		return l
	}
	a, b := 1.0, 0.0
	cur := loss(a, b)
	for range 100 {
		var ga, gb, haa, hab, hbb float64
		for i, si := range s {
			p := 1 / (1 + math.Exp(-(a*si + b)))
			d := p - target(i)
			w := max(p*(1-p), 1e-12)
			ga += d * si
			gb += d
			haa += w * si * si
			hab += w * si
			hbb += w
		}
		haa += 1e-9 // a touch of ridge: a constant s has no slope to fit
		hbb += 1e-9
		det := haa*hbb - hab*hab
		if det <= 0 || math.IsNaN(det) {
			break
		}
		da := (hbb*ga - hab*gb) / det
		db := (haa*gb - hab*ga) / det
		step := 1.0
		for ; step > 1e-10; step /= 2 {
			if l := loss(a-step*da, b-step*db); l <= cur+1e-12 {
				a, b, cur = a-step*da, b-step*db, l
				break
			}
		}
		if step <= 1e-10 || (math.Abs(step*da) < 1e-10 && math.Abs(step*db) < 1e-10) {
			break
		}
	}
	if math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0) || a <= 0 {
		return Platt{}, call.Errorf(call.Invalid, "calibration did not converge to an increasing map (slope %g): too few or unrepresentative calibration examples", a)
	}
	return Platt{A: a, B: b}, nil
}

// prepare derives the raw-space calibrated weights once.
func (m *Model) prepare() {
	m.once.Do(func() {
		a := m.Calibration.A
		m.raw = make([]float64, len(m.Weights))
		m.codes = make([]string, len(m.Features))
		for j, f := range m.Features {
			m.codes[j] = "model." + f
		}
		m.base = a*m.Intercept + m.Calibration.B
		m.zero = m.base
		for j, w := range m.Weights {
			m.raw[j] = a * w / m.Scale[j]
			m.zero -= m.raw[j] * m.Mean[j]
		}
	})
}

// rawLogit is the uncalibrated log-odds of x.
func (m *Model) rawLogit(x []float32) float64 {
	s := m.Intercept
	for j, w := range m.Weights {
		s += w * (float64(x[j]) - m.Mean[j]) / m.Scale[j]
	}
	return s
}

// Logit returns the calibrated log-odds of fraud for x (Width long). It
// allocates nothing.
func (m *Model) Logit(x []float32) float64 {
	m.prepare()
	s := m.zero
	x = x[:len(m.raw)]
	for j, w := range m.raw {
		s += w * float64(x[j])
	}
	return s
}

// Base is the calibrated log-odds of a call whose every feature is at its
// training mean: the model's prior. Score's contributions are relative to
// it.
func (m *Model) Base() float64 {
	m.prepare()
	return m.base
}

// Score returns the calibrated probability of fraud for x and each
// feature's contribution to its log-odds, relative to a call with every
// feature at its training mean: Base() + Σ contributions = logit(p).
func (m *Model) Score(x []float32) (p float64, contributions []float64) {
	m.prepare()
	contributions = make([]float64, len(m.raw))
	s := m.base
	for j, w := range m.raw {
		c := w * (float64(x[j]) - m.Mean[j])
		contributions[j] = c
		s += c
	}
	return sigmoid(s), contributions
}

// Probability returns the calibrated probability of fraud for x.
func (m *Model) Probability(x []float32) float64 { return sigmoid(m.Logit(x)) }

// Markers returns up to top markers model.<feature> for the features with
// the largest absolute contributions to x's log-odds (ties by schema
// order), and, when other features contribute too, one marker model.rest
// carrying the sum of the others, so the markers add up to logit(p) -
// Base(). Features contributing less than 0.01 log-odds get no marker of
// their own. Detail holds the feature's value, never a number of the call.
func (m *Model) Markers(x []float32, top int) []call.Marker {
	m.prepare()
	top = max(top, 0)
	// Keep the top contributions in a small sorted list: no full sort.
	best := make([]int, 0, top)
	rest := 0.0
	contrib := func(j int) float64 { return m.raw[j] * (float64(x[j]) - m.Mean[j]) }
	for j := range m.raw {
		c := contrib(j)
		rest += c
		if math.Abs(c) < 0.01 || top == 0 {
			continue
		}
		if len(best) == top && math.Abs(c) <= math.Abs(contrib(best[top-1])) {
			continue
		}
		if len(best) < top {
			best = append(best, j)
		} else {
			best[top-1] = j
		}
		for k := len(best) - 1; k > 0 && math.Abs(contrib(best[k])) > math.Abs(contrib(best[k-1])); k-- {
			best[k], best[k-1] = best[k-1], best[k]
		}
	}
	ms := make([]call.Marker, 0, len(best)+1)
	for _, j := range best {
		c := contrib(j)
		ms = append(ms, call.Marker{Code: m.codes[j], Weight: c, Detail: "value " + strconv.FormatFloat(float64(x[j]), 'g', 3, 32)})
		rest -= c
	}
	if math.Abs(rest) >= 1e-9 {
		ms = append(ms, call.Marker{Code: "model.rest", Weight: rest, Detail: "the other features together"})
	}
	return ms
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// Check reports whether the model can score vectors of this build's
// schema: an *call.Error with code Invalid when its format version, schema
// version or widths differ (an older model read from disk after an
// upgrade).
func (m *Model) Check() error {
	switch {
	case m.Version != Version:
		return call.Errorf(call.Invalid, "model format %d: this build reads format %d", m.Version, Version)
	case m.Schema != SchemaVersion:
		return call.Errorf(call.Invalid, "model trained on feature schema %s: this build extracts %s", m.Schema, SchemaVersion)
	case len(m.Features) != Width || len(m.Weights) != Width || len(m.Mean) != Width || len(m.Scale) != Width:
		return call.Errorf(call.Invalid, "model has %d features, the schema %d", len(m.Weights), Width)
	}
	for j, s := range m.Scale {
		if !(s > 0) {
			return call.Errorf(call.Invalid, "model scale of %s is %g: must be positive", m.Features[j], s)
		}
	}
	return nil
}
