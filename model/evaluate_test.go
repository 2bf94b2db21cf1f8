package model_test

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/model"
)

// scored builds test examples whose baseline scores are s and labels y; the
// model's vectors are all zero (its scores are irrelevant here).
func scored(y []bool) []model.Example {
	ex := make([]model.Example, len(y))
	for i := range ex {
		ex[i] = model.Example{At: time.Unix(int64(i), 0), X: make([]float32, model.Width), Fraud: y[i]}
	}
	return ex
}

func TestEvaluateMetrics(t *testing.T) {
	m, _, err := model.Train(synthetic(2000, 1), model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	T, F := true, false
	tests := []struct {
		name         string
		s            []float64
		y            []bool
		auc          float64
		flagP, flagR float64 // at 0.5
		recall1      float64 // recall at 1% FPR (0.5% the same here)
	}{
		{"perfect", []float64{0.9, 0.8, 0.3, 0.2, 0.1}, []bool{T, T, F, F, F}, 1, 1, 1, 1},
		{"reversed", []float64{0.1, 0.2, 0.7, 0.8, 0.9}, []bool{T, T, F, F, F}, 0, 0, 0, 0},
		{"all tied", []float64{0.5, 0.5, 0.5, 0.5}, []bool{T, F, T, F}, 0.5, 0.5, 1, 0},
		// one genuine call outscores one of two fraud calls: 3 of 4 pairs right
		{"one swap", []float64{0.9, 0.7, 0.6, 0.2}, []bool{T, F, T, F}, 0.75, 2.0 / 3, 1, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := scored(tt.y)
			ex = append(ex, model.Example{X: make([]float32, model.Width), Exclude: true}, model.Example{X: make([]float32, model.Width), Unlabelled: true})
			r := model.Evaluate(m, ex, append(tt.s, 0.99, 0.99), model.Thresholds{Flag: 0.5, Block: 0.95})
			b := r.Baseline
			if r.Test.Excluded != 1 || r.Test.Unlabelled != 1 || r.Test.Used != len(tt.y) {
				t.Errorf("test counts %+v", r.Test)
			}
			if math.Abs(b.AUC-tt.auc) > 1e-12 {
				t.Errorf("AUC %g, want %g", b.AUC, tt.auc)
			}
			if math.Abs(b.FlagAt.Precision-tt.flagP) > 1e-12 || math.Abs(b.FlagAt.Recall-tt.flagR) > 1e-12 {
				t.Errorf("at flag: precision %g recall %g, want %g %g", b.FlagAt.Precision, b.FlagAt.Recall, tt.flagP, tt.flagR)
			}
			if got := b.RecallAtFPR[1].Recall; math.Abs(got-tt.recall1) > 1e-12 || b.RecallAtFPR[1].Reached > 0.01 {
				t.Errorf("recall at 1%% FPR %g (reached FPR %g), want %g", got, b.RecallAtFPR[1].Reached, tt.recall1)
			}
			calls := 0
			for _, bin := range b.Calibration {
				calls += bin.Calls
			}
			if len(b.Calibration) != 10 || calls != len(tt.y) {
				t.Errorf("calibration: %d bins holding %d calls", len(b.Calibration), calls)
			}
		})
	}
}

func TestCalibrationTable(t *testing.T) {
	m, _, err := model.Train(synthetic(2000, 1), model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := []float64{0.05, 0.05, 0.15, 0.95, 1.0}
	y := []bool{false, true, false, true, true}
	b := model.Evaluate(m, scored(y), s, model.Thresholds{Flag: 0.5, Block: 0.9}).Baseline.Calibration
	for _, tt := range []struct {
		bin, calls int
		mean, obs  float64
	}{{0, 2, 0.05, 0.5}, {1, 1, 0.15, 0}, {9, 2, 0.975, 1}} {
		got := b[tt.bin]
		if got.Calls != tt.calls || math.Abs(got.MeanScore-tt.mean) > 1e-12 || math.Abs(got.ObservedFraud-tt.obs) > 1e-12 {
			t.Errorf("bin %d: %+v, want %d calls, mean %g, observed %g", tt.bin, got, tt.calls, tt.mean, tt.obs)
		}
	}
}

func TestReport(t *testing.T) {
	train := synthetic(3000, 1)
	m, tr, err := model.Train(train, model.Options{Balanced: true})
	if err != nil {
		t.Fatal(err)
	}
	test := synthetic(3000, 2)
	live := make([]float64, len(test))
	for i, e := range test {
		if e.Fraud {
			live[i] = 0.6
		} else {
			live[i] = 0.1
		}
	}
	r := model.Evaluate(m, test, live, model.Thresholds{Flag: 0.5, Block: 0.9})
	r.Training = tr.Training
	r.Notes = []string{"a <note> & more"}

	text := r.Text()
	for _, want := range []string{"ROC AUC", "recall at 0.50% FPR", "recall at 1.00% FPR", "precision at flag", "recall at block", "calibration (model)", "unlabelled", "excluded"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	page := r.HTML()
	for _, bad := range []string{"<script", "src=", "href=", "<link", "url(", "<note>"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("HTML contains %q: not self-contained or not escaped", bad)
		}
	}
	if n := strings.Count(page, "<svg"); n != 3 {
		t.Errorf("%d SVG plots, want 3 (ROC, ROC zoomed, calibration)", n)
	}
	// Two scorers per plot.
	if n := strings.Count(page, "<polyline"); n != 6 {
		t.Errorf("%d curves, want 6", n)
	}
	// Every plotted coordinate lies inside the SVG's box.
	for _, pts := range regexp.MustCompile(`points="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		for _, p := range strings.Fields(pts[1]) {
			var x, y float64
			if _, err := fmtSscanf(p, &x, &y); err != nil || x < 0 || y < 0 || x > 416 || y > 416 {
				t.Fatalf("point %q outside the plot", p)
			}
		}
	}
}
