package model_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/model"
	"github.com/ringfence/ringfence/screen"
)

func featureIndex(t testing.TB, name string) int {
	t.Helper()
	i := slices.Index(model.Names(), name)
	if i < 0 {
		t.Fatalf("no feature %s", name)
	}
	return i
}

func TestSchemaCoversEngineMarkers(t *testing.T) {
	names := model.Names()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("feature %s twice", n)
		}
		seen[n] = true
	}
	for _, s := range screen.Signals {
		if !seen[s.Code] {
			t.Errorf("engine marker %s has no feature: add it and bump model.SchemaVersion", s.Code)
		}
	}
	if len(names) != model.Width || len(model.Schema) != model.Width {
		t.Errorf("Width %d, names %d", model.Width, len(names))
	}
}

// routeTable is a func-field fake of the engine's route lookup.
type routeTable struct {
	route func(tenant, id string) (call.Route, bool)
}

func (r routeTable) Route(tenant, id string) (call.Route, bool) { return r.route(tenant, id) }

func TestExtract(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no zone data:", err)
	}
	x := &model.Extractor{Region: "GB", Location: london, Routes: routeTable{func(tenant, id string) (call.Route, bool) {
		switch id {
		case "intl-nl":
			return call.Route{ID: id, Kind: call.International, Country: "NL"}, true
		case "uk":
			return call.Route{ID: id, Kind: call.Domestic, Country: "GB"}, true
		}
		return call.Route{}, false
	}}}
	gbMobile := call.Number{E164: "+447400123456", Valid: true, Possible: true, Type: call.TypeMobile, Region: "GB"}
	nlMobile := call.Number{E164: "+31612345678", Valid: true, Possible: true, Type: call.TypeMobile, Region: "NL"}
	// Saturday 1 March 2025, 23:30 in London (GMT).
	saturdayNight := time.Date(2025, 3, 1, 23, 30, 0, 0, time.UTC)
	// Wednesday 2 July 2025, 11:00 in London is 10:00 UTC (BST).
	wednesdayMorning := time.Date(2025, 7, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		c    call.Call
		v    call.Verdict
		want map[string]float32 // every other feature must be 0
	}{
		{
			name: "velocity counts parsed from details",
			c:    call.Call{Caller: gbMobile, StartedAt: wednesdayMorning, Ingress: "uk", UserRef: "u1", Signalling: call.Signalling{PAI: []string{"<sip:x>"}}},
			v: call.Verdict{Markers: []call.Marker{
				{Code: "velocity.caller_hour", Detail: "12 calls in the last hour"},
				{Code: "velocity.short_calls", Detail: "6 of 8 ended calls were short"},
				{Code: "velocity.sweep", Detail: "garbled"},
				{Code: "model.something", Detail: "ignored"},
			}},
			want: map[string]float32{
				"velocity.caller_hour": 1, "count.caller_hour": float32(math.Log(13)),
				"velocity.short_calls": 1, "count.ended_day": float32(math.Log(9)), "share.short_calls": 0.75,
				"velocity.sweep": 1, "count.sweep": 0,
				"caller.present": 1, "caller.valid": 1, "caller.home": 1, "type.mobile": 1, "customer.ref": 1,
				"ingress.country_is_caller": 1,
				"time.hour_sin":             float32(math.Sin(2 * math.Pi * 11 / 24)), "time.hour_cos": float32(math.Cos(2 * math.Pi * 11 / 24)),
			},
		},
		{
			name: "withheld caller at the weekend at night, no route",
			c:    call.Call{Caller: call.Number{Withheld: true}, StartedAt: saturdayNight, Signalling: call.Signalling{UserAgent: "PBX"}},
			v:    call.Verdict{Markers: []call.Marker{{Code: "cli.withheld"}}},
			want: map[string]float32{
				"cli.withheld": 1, "ingress.missing": 1, "sig.no_pai": 1, "sig.user_agent": 1,
				"time.night": 1, "time.weekend": 1,
				"time.hour_sin": float32(math.Sin(2 * math.Pi * 23.5 / 24)), "time.hour_cos": float32(math.Cos(2 * math.Pi * 23.5 / 24)),
			},
		},
		{
			name: "consortium details",
			c:    call.Call{StartedAt: wednesdayMorning, Ingress: "elsewhere", Signalling: call.Signalling{PAI: []string{"<sip:x>"}}},
			v: call.Verdict{Markers: []call.Marker{
				{Code: "consortium.reported", Detail: "members=3 types=spoofing,enumeration confidence=0.83"},
				{Code: "consortium.reported_multi", Detail: "members=3"},
				{Code: "consortium.recent", Detail: "last report 5h ago"},
			}},
			want: map[string]float32{
				"consortium.reported": 1, "consortium.reported_multi": 1, "consortium.recent": 1,
				"count.consortium_members": float32(math.Log(4)), "consortium.confidence": 0.83, "consortium.age": float32(math.Log(6)),
				"time.hour_sin": float32(math.Sin(2 * math.Pi * 11 / 24)), "time.hour_cos": float32(math.Cos(2 * math.Pi * 11 / 24)),
			},
		},
		{
			name: "foreign caller on its own country's international route",
			c:    call.Call{Caller: nlMobile, StartedAt: wednesdayMorning, Ingress: "intl-nl", Signalling: call.Signalling{PAI: []string{"<sip:x>"}, Verstat: "No-TN-Validation"}},
			v:    call.Verdict{Markers: []call.Marker{{Code: "verstat.none"}}},
			want: map[string]float32{
				"verstat.none": 1, "caller.present": 1, "caller.valid": 1, "caller.foreign": 1, "type.mobile": 1,
				"ingress.international": 1, "ingress.country_is_caller": 1, "sig.verstat": 1,
				"time.hour_sin": float32(math.Sin(2 * math.Pi * 11 / 24)), "time.hour_cos": float32(math.Cos(2 * math.Pi * 11 / 24)),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := x.Extract(make([]float32, 3), &tt.c, &tt.v) // too short: grown
			if len(got) != model.Width {
				t.Fatalf("len %d, want %d", len(got), model.Width)
			}
			for j, name := range model.Names() {
				if want := tt.want[name]; math.Abs(float64(got[j]-want)) > 1e-6 {
					t.Errorf("%s = %g, want %g", name, got[j], want)
				}
			}
		})
	}
	t.Run("reused buffer is cleared and not reallocated", func(t *testing.T) {
		buf := make([]float32, model.Width)
		for i := range buf {
			buf[i] = 9
		}
		c, v := tests[0].c, tests[0].v
		allocs := testing.AllocsPerRun(100, func() { buf = x.Extract(buf, &c, &v) })
		if allocs != 0 {
			t.Errorf("%v allocations per Extract", allocs)
		}
		if buf[featureIndex(t, "time.weekend")] != 0 {
			t.Error("stale value left in the buffer")
		}
	})
}

func TestHourOfWeek(t *testing.T) {
	for _, tt := range []struct {
		at   time.Time
		want int
	}{
		{time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC), 0},           // Monday 00:00
		{time.Date(2025, 3, 9, 23, 59, 0, 0, time.UTC), 167},       // Sunday 23:59
		{time.Date(2025, 3, 5, 13, 10, 0, 0, time.UTC), 2*24 + 13}, // Wednesday 13:10
	} {
		if got := model.HourOfWeek(tt.at, nil); got != tt.want {
			t.Errorf("HourOfWeek(%s) = %d, want %d", tt.at, got, tt.want)
		}
	}
}

// synthetic returns n labelled examples over three days: fraud rate about
// 5%; feature a ("list.deny") fires on 60% of fraud and 0.2% of genuine,
// feature b ("count.caller_hour") is higher for fraud, c ("sig.identity")
// is noise.
func synthetic(n int, seed uint64) []model.Example {
	r := rand.New(rand.NewPCG(seed, 1))
	a, b, c := slices.Index(model.Names(), "list.deny"), slices.Index(model.Names(), "count.caller_hour"), slices.Index(model.Names(), "sig.identity")
	start := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	ex := make([]model.Example, n)
	flat := make([]float32, n*model.Width) // one block: fewer allocations for 1M
	for i := range ex {
		x := flat[i*model.Width : (i+1)*model.Width : (i+1)*model.Width]
		fraud := r.Float64() < 0.05
		if fraud && r.Float64() < 0.6 || !fraud && r.Float64() < 0.002 {
			x[a] = 1
		}
		x[b] = float32(r.NormFloat64())
		if fraud {
			x[b] += 1.5
		}
		if r.Float64() < 0.3 {
			x[c] = 1
		}
		// a few sparse binary features, as real vectors have
		for k := range 6 {
			if r.Float64() < 0.1 {
				x[(k*7+i)%model.Width] = 1
			}
		}
		ex[i] = model.Example{At: start.Add(time.Duration(i) * 72 * time.Hour / time.Duration(n)), X: x, Fraud: fraud}
	}
	return ex
}

func TestTrain(t *testing.T) {
	ex := synthetic(12000, 1)
	ex[0].Exclude, ex[1].Unlabelled, ex[2].Exclude = true, true, true
	m, rep, err := model.Train(ex, model.Options{Balanced: true, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	tr := rep.Training
	if tr.Excluded != 2 || tr.Unlabelled != 1 || tr.Fit+tr.Calibrate != 12000-3 {
		t.Errorf("counts: %+v", tr)
	}
	if !tr.CalibrateFrom.After(tr.From) || tr.CalibrateFrom.After(tr.To) {
		t.Errorf("calibration slice from %s is not the latest part of %s..%s", tr.CalibrateFrom, tr.From, tr.To)
	}
	w := func(name string) float64 { return m.Weights[featureIndex(t, name)] }
	if w("list.deny") < 0.5 || w("count.caller_hour") < 0.5 {
		t.Errorf("signal features not learnt: list.deny %.3f, count.caller_hour %.3f", w("list.deny"), w("count.caller_hour"))
	}
	if math.Abs(w("sig.identity")) > 0.15 {
		t.Errorf("noise feature sig.identity weighs %.3f", w("sig.identity"))
	}
	// Calibrated: the mean probability on fresh data is near the base rate.
	test := synthetic(12000, 2)
	var sum, fraud float64
	for _, e := range test {
		sum += m.Probability(e.X)
		if e.Fraud {
			fraud++
		}
	}
	if mean, rate := sum/12000, fraud/12000; math.Abs(mean-rate) > 0.012 {
		t.Errorf("mean probability %.4f, fraud rate %.4f: not calibrated", mean, rate)
	}
	ev := model.Evaluate(m, test, nil, model.Thresholds{Flag: 0.5, Block: 0.9})
	if ev.Model.AUC < 0.85 {
		t.Errorf("AUC %.3f on data it should separate", ev.Model.AUC)
	}
	if ev.Baseline != nil {
		t.Error("baseline metrics without a baseline")
	}

	t.Run("deterministic in any order", func(t *testing.T) {
		shuffled := slices.Clone(ex)
		rand.New(rand.NewPCG(9, 9)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		m2, _, err := model.Train(shuffled, model.Options{Balanced: true, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.Weights, m2.Weights) || m.Intercept != m2.Intercept || m.Calibration != m2.Calibration {
			t.Error("the same data in another order gave another model")
		}
	})
	t.Run("subsample is seeded", func(t *testing.T) {
		a, ra, err := model.Train(ex, model.Options{MaxExamples: 3000, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		b, _, _ := model.Train(ex, model.Options{MaxExamples: 3000, Seed: 5})
		c, _, _ := model.Train(ex, model.Options{MaxExamples: 3000, Seed: 6})
		if ra.Training.Subsampled != 12000-3-3000 {
			t.Errorf("subsampled %d", ra.Training.Subsampled)
		}
		if !slices.Equal(a.Weights, b.Weights) {
			t.Error("same seed, different model")
		}
		if slices.Equal(a.Weights, c.Weights) {
			t.Error("different seeds, same subset")
		}
	})
}

func TestTrainErrors(t *testing.T) {
	good := synthetic(2000, 1)
	oneClass := slices.Clone(good)
	for i := range oneClass {
		oneClass[i].Fraud = false
	}
	short := slices.Clone(good)
	short[5].X = short[5].X[:3]
	allExcluded := slices.Clone(good)
	for i := range allExcluded {
		allExcluded[i].Exclude = true
	}
	for _, tt := range []struct {
		name string
		ex   []model.Example
	}{
		{"one class", oneClass},
		{"wrong width", short},
		{"nothing usable", allExcluded},
		{"empty", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := model.Train(tt.ex, model.Options{})
			if call.ErrorCode(err) != call.Invalid {
				t.Errorf("error %v, want code invalid", err)
			}
		})
	}
}

func TestScoreAndMarkers(t *testing.T) {
	m, _, err := model.Train(synthetic(2000, 1), model.Options{Balanced: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range synthetic(50, 7) {
		p, contrib := m.Score(e.X)
		logit := m.Base()
		for _, c := range contrib {
			logit += c
		}
		if math.Abs(logit-m.Logit(e.X)) > 1e-9 || math.Abs(p-1/(1+math.Exp(-logit))) > 1e-12 {
			t.Fatalf("example %d: contributions sum to %g, Logit %g, p %g", i, logit, m.Logit(e.X), p)
		}
		ms := m.Markers(e.X, 3)
		sum := 0.0
		named := 0
		for _, mk := range ms {
			sum += mk.Weight
			if !strings.HasPrefix(mk.Code, "model.") {
				t.Errorf("marker code %s", mk.Code)
			}
			if mk.Code != "model.rest" {
				named++
			}
		}
		if named > 3 {
			t.Errorf("%d named markers, top 3", named)
		}
		if math.Abs(sum-(m.Logit(e.X)-m.Base())) > 1e-9 {
			t.Errorf("markers sum to %g, want %g", sum, m.Logit(e.X)-m.Base())
		}
		for k := 1; k < named; k++ {
			if math.Abs(ms[k].Weight) > math.Abs(ms[k-1].Weight) {
				t.Errorf("markers not by size: %v", ms)
			}
		}
	}
}

func TestModelJSON(t *testing.T) {
	m, _, err := model.Train(synthetic(2000, 1), model.Options{Balanced: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back model.Model
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Check(); err != nil {
		t.Fatal(err)
	}
	for _, e := range synthetic(100, 2) {
		if a, b := m.Probability(e.X), back.Probability(e.X); a != b {
			t.Fatalf("probability %g after a round trip, %g before", b, a)
		}
	}
	back.Schema = "features-0"
	if call.ErrorCode(back.Check()) != call.Invalid {
		t.Error("a model of another schema passes Check")
	}
}
