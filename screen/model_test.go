package screen_test

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/model"
	"github.com/ringfence/ringfence/screen"
)

// trainModel trains a model on n synthetic examples in which the feature
// named predictive (when 1) makes fraud likely and every other feature is
// noise.
// seq numbers the test models, as a node numbers stored versions.
var seq atomic.Int64

func trainModel(tb testing.TB, predictive string, n int, seed uint64) *model.Model {
	tb.Helper()
	j := slices.Index(model.Names(), predictive)
	if j < 0 {
		tb.Fatalf("no feature %s", predictive)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	ex := make([]model.Example, n)
	for i := range ex {
		x := make([]float32, model.Width)
		for k := range x {
			if r.Float64() < 0.2 {
				x[k] = 1
			}
		}
		x[j] = 0
		if r.Float64() < 0.4 {
			x[j] = 1
		}
		p := 0.1
		if x[j] == 1 {
			p = 0.85
		}
		ex[i] = model.Example{At: t0.Add(-time.Duration(n-i) * time.Minute), X: x, Fraud: r.Float64() < p}
	}
	m, _, err := model.Train(ex, model.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		tb.Fatalf("Train: %v", err)
	}
	if a := m.Calibration.A; !(a > 0 && a < 100) {
		tb.Fatalf("premise: calibration slope %v", a)
	}
	m.Label = strconv.FormatInt(seq.Add(1), 10)
	return m
}

var (
	privacyModelOnce sync.Once
	privacyModel     *model.Model
)

// modelOnPrivacy is a model that learnt identity.privacy predicts fraud
// (trained once: every test reads it, none changes it).
func modelOnPrivacy(tb testing.TB) *model.Model {
	privacyModelOnce.Do(func() { privacyModel = trainModel(tb, "identity.privacy", 1000, 1) })
	if privacyModel == nil {
		tb.Fatal("training failed in an earlier test")
	}
	return privacyModel
}

func logit(p float64) float64 { return math.Log(p / (1 - p)) }

func modelTag(m *model.Model) string { return "+model-" + m.Label }

// checkModelVerdict checks what holds for every model-scored verdict: the
// signal markers of the hand-set verdict hand, in order, with weight 0 and
// their detail marked as evidence, then the model's markers, whose weights
// with Base() add up to the score's log-odds.
func checkModelVerdict(t *testing.T, e *screen.Engine, v, hand call.Verdict, m *model.Model) {
	t.Helper()
	if want := hand.Policy + modelTag(m); v.Policy != want {
		t.Errorf("policy %q, want %q", v.Policy, want)
	}
	if len(v.Markers) < len(hand.Markers)+1 {
		t.Fatalf("markers %v: want the %d signal markers and the model's", codes(v), len(hand.Markers))
	}
	for i, h := range hand.Markers {
		got := v.Markers[i]
		if got.Code != h.Code || got.Weight != 0 || got.Detail != "evidence; "+h.Detail {
			t.Errorf("marker %d = %+v, want %s with weight 0 and detail %q", i, got, h.Code, "evidence; "+h.Detail)
		}
	}
	sum := m.Base()
	for _, mk := range v.Markers[len(hand.Markers):] {
		if !strings.HasPrefix(mk.Code, "model.") || !e.KnownMarker(mk.Code) {
			t.Errorf("model marker %q: want a known model.* code", mk.Code)
		}
		sum += mk.Weight
	}
	if d := math.Abs(sum - logit(v.Score)); d > 1e-9 {
		t.Errorf("Base + model weights = %v, logit(score) = %v (diff %g)", sum, logit(v.Score), d)
	}
}

func TestModelScoresLiveVerdict(t *testing.T) {
	f := newFixture(t, call.DefaultPolicy())
	m := modelOnPrivacy(t)
	withX := f.call(homeMobile, dialled, privacy("id"))
	withoutX := f.call(homeMobile, dialled)
	handX, handNoX := f.evaluate(withX), f.evaluate(withoutX)
	if !handX.Has("identity.privacy") || handNoX.Has("identity.privacy") {
		t.Fatalf("fixture: markers %v and %v", codes(handX), codes(handNoX))
	}
	if err := f.e.SetModels(tid, m, nil); err != nil {
		t.Fatal(err)
	}
	if live, shadow := f.e.Models(tid); live != m || shadow != nil {
		t.Errorf("Models = %p, %p; want %p, nil", live, shadow, m)
	}
	vX, vNoX := f.evaluate(withX), f.evaluate(withoutX)
	checkModelVerdict(t, f.e, vX, handX, m)
	checkModelVerdict(t, f.e, vNoX, handNoX, m)
	if vX.Score <= vNoX.Score {
		t.Errorf("score with identity.privacy %v <= without %v", vX.Score, vNoX.Score)
	}
	mk, ok := marker(vX, "model.identity.privacy")
	if !ok || mk.Weight <= 0 {
		t.Errorf("model.identity.privacy = %+v, %v: want a positive contribution among %v", mk, ok, codes(vX))
	}
	if mk, ok := marker(vNoX, "model.identity.privacy"); ok && mk.Weight >= 0 {
		t.Errorf("without the feature, model.identity.privacy = %+v: want a negative contribution or none", mk)
	}
	// The thresholds decide the action from the model's score.
	for _, v := range []call.Verdict{vX, vNoX} {
		want := call.Allow
		switch {
		case v.Score >= 0.9:
			want = call.Block
		case v.Score >= 0.5:
			want = call.Flag
		}
		if v.Action != want {
			t.Errorf("score %v action %s, want %s", v.Score, v.Action, want)
		}
	}
	if vX.Action == call.Allow {
		t.Errorf("score %v with the predictive feature: want at least flag (the model learnt p≈0.85)", vX.Score)
	}
}

func TestModelKeepsPolicyActions(t *testing.T) {
	m := modelOnPrivacy(t)
	for _, tc := range []struct {
		name   string
		policy func() call.Policy
		call   func(f *fixture) *call.Call
		code   string
	}{
		{"dno.listed blocks", call.DefaultPolicy, func(f *fixture) *call.Call {
			f.list(call.DNOList, tollFree, "IVR", time.Time{})
			return f.call(tollFree, dialled)
		}, "dno.listed"},
		{"action on a model code", func() call.Policy {
			p := call.DefaultPolicy()
			p.FlagAt, p.BlockAt = 0.98, 0.99 // above what the model gives: only the action blocks
			p.Actions["model.identity.privacy"] = call.Block
			return p
		}, func(f *fixture) *call.Call { return f.call(homeMobile, dialled, privacy("id")) }, "model.identity.privacy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.policy()
			f := newFixture(t, p)
			c := tc.call(f)
			if err := f.e.SetModels(tid, m, nil); err != nil {
				t.Fatal(err)
			}
			v := f.evaluate(c)
			if !v.Has(tc.code) || !strings.HasSuffix(v.Policy, modelTag(m)) {
				t.Fatalf("verdict %v under %s: want a model-scored verdict with %s", codes(v), v.Policy, tc.code)
			}
			if v.Score >= p.FlagAt {
				t.Fatalf("premise: the model's score %v must be below flag_at for the action to be what decides", v.Score)
			}
			if v.Action != call.Block {
				t.Errorf("action %s at score %v, want block", v.Action, v.Score)
			}
		})
	}
}

// verdictsEqual compares verdicts but for Elapsed (wall time).
func verdictsEqual(a, b call.Verdict) bool {
	a.Elapsed, b.Elapsed = 0, 0
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) && slices.Equal(a.Markers, b.Markers)
}

func TestClearModelsRestoresHandScoring(t *testing.T) {
	f := newFixture(t, call.DefaultPolicy())
	m := modelOnPrivacy(t)
	calls := []*call.Call{
		f.call(homeMobile, dialled, privacy("id")),
		f.call("anonymous", dialled),
		f.call(homeFixed, dialled, ingress("intl-fr")),
		f.call(dramaFixed, dialled, from("<sip:+441212345678@x>")),
	}
	var before []call.Verdict
	for _, c := range calls {
		before = append(before, f.evaluate(c))
	}
	if err := f.e.SetModels(tid, m, m); err != nil {
		t.Fatal(err)
	}
	for i, c := range calls {
		if v := f.evaluate(c); verdictsEqual(v, before[i]) {
			t.Fatalf("call %d: the model changed nothing (%v)", i, codes(v))
		}
	}
	if err := f.e.SetModels(tid, nil, nil); err != nil {
		t.Fatal(err)
	}
	if live, shadow := f.e.Models(tid); live != nil || shadow != nil {
		t.Errorf("Models after clearing = %p, %p", live, shadow)
	}
	for i, c := range calls {
		v, s, err := f.e.Evaluate(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if !verdictsEqual(v, before[i]) || s != nil {
			t.Errorf("call %d after clearing:\n got %+v (shadow %v)\nwant %+v", i, v, s, before[i])
		}
	}
}

func TestShadowModel(t *testing.T) {
	m := modelOnPrivacy(t)
	other := trainModel(t, "cli.withheld", 1000, 2)
	shadowPolicy := func() call.Policy {
		p := call.DefaultPolicy()
		s := call.DefaultPolicy()
		s.FlagAt, s.BlockAt = 0.01, 0.999 // flags nearly everything
		p.Shadow = &s
		return p
	}
	for _, tc := range []struct {
		name          string
		policy        func() call.Policy
		live, shadow  *model.Model
		shadowScorer  *model.Model // nil: hand-set weights
		shadowVersion string       // policy version the shadow verdict names, before the model tag
	}{
		{"shadow model only", call.DefaultPolicy, nil, m, m, "v1"},
		{"shadow model beside a live one", call.DefaultPolicy, other, m, m, "v1"},
		{"shadow policy and shadow model", shadowPolicy, nil, m, m, "v1-shadow"},
		{"shadow policy with the live model", shadowPolicy, m, nil, m, "v1-shadow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.policy())
			c := f.call(homeMobile, dialled, privacy("id"))
			if err := f.e.SetModels(tid, tc.live, nil); err != nil {
				t.Fatal(err)
			}
			want, _, err := f.e.Evaluate(context.Background(), c) // the live verdict without the shadow model
			if err != nil {
				t.Fatal(err)
			}
			// The hand-set verdict under the shadow policy, for its markers.
			if err := f.e.SetModels(tid, nil, nil); err != nil {
				t.Fatal(err)
			}
			_, handShadow, err := f.e.Evaluate(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			hand := f.evaluate(c)
			if handShadow == nil {
				handShadow = &hand
			}
			if err := f.e.SetModels(tid, tc.live, tc.shadow); err != nil {
				t.Fatal(err)
			}
			live, shadow, err := f.e.Evaluate(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if !verdictsEqual(live, want) {
				t.Errorf("the shadow model changed the live verdict:\n got %+v\nwant %+v", live, want)
			}
			if shadow == nil {
				t.Fatal("no shadow verdict")
			}
			hs := *handShadow
			hs.Policy = tc.shadowVersion
			checkModelVerdict(t, f.e, *shadow, hs, tc.shadowScorer)
			if tc.live != tc.shadowScorer && shadow.Score == live.Score {
				t.Errorf("shadow score %v equals the live one", shadow.Score)
			}
			if tc.shadowVersion == "v1-shadow" && shadow.Action == call.Allow {
				t.Errorf("shadow action allow at score %v: the shadow policy's flag_at 0.01 should apply", shadow.Score)
			}
		})
	}
}

func TestSetModelsErrors(t *testing.T) {
	f := newFixture(t, call.DefaultPolicy())
	m := modelOnPrivacy(t)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var old model.Model
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	old.Schema = "features-0"
	for _, tc := range []struct {
		name         string
		tenant       string
		live, shadow *model.Model
		code         string
	}{
		{"unknown tenant", "nobody", m, nil, call.NotFound},
		{"live of another schema", tid, &old, nil, call.Invalid},
		{"shadow of another schema", tid, m, &old, call.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.e.SetModels(tc.tenant, tc.live, tc.shadow)
			if call.ErrorCode(err) != tc.code {
				t.Errorf("error %v, want code %s", err, tc.code)
			}
			if live, shadow := f.e.Models(tid); live != nil || shadow != nil {
				t.Errorf("a failed SetModels left models %p, %p", live, shadow)
			}
		})
	}
}

func TestModelsOfRemovedTenant(t *testing.T) {
	f := newFixture(t, call.DefaultPolicy())
	m := modelOnPrivacy(t)
	c := f.call(homeMobile, dialled, privacy("id"))
	hand := f.evaluate(c)
	if err := f.e.SetModels(tid, m, m); err != nil {
		t.Fatal(err)
	}
	f.e.RemoveTenant(tid)
	if live, shadow := f.e.Models(tid); live != nil || shadow != nil {
		t.Errorf("Models of a removed tenant = %p, %p", live, shadow)
	}
	f.e.SetTenant(call.Tenant{ID: tid, Name: "Bank", Region: "GB"}, call.DefaultPolicy())
	for _, r := range testRoutes {
		if err := f.e.PutRoute(tid, r); err != nil {
			t.Fatal(err)
		}
	}
	if live, shadow := f.e.Models(tid); live != nil || shadow != nil {
		t.Errorf("a re-added tenant has models %p, %p", live, shadow)
	}
	if v := f.evaluate(c); !verdictsEqual(v, hand) {
		t.Errorf("re-added tenant:\n got %+v\nwant %+v", v, hand)
	}
}

func TestKnownMarkerModelCodes(t *testing.T) {
	e := screen.New(screen.Config{})
	for _, n := range model.Names() {
		if !e.KnownMarker("model." + n) {
			t.Errorf("KnownMarker(model.%s) = false", n)
		}
	}
	for code, want := range map[string]bool{
		"model.rest": true, "model.": false, "model.nope": false, "model.<feature>": false, "model": false,
	} {
		if got := e.KnownMarker(code); got != want {
			t.Errorf("KnownMarker(%q) = %v, want %v", code, got, want)
		}
	}
	// Every pattern row is a family of its own, not a Signals code, and
	// names its family's prefix.
	for _, s := range screen.PatternSignals {
		prefix, _, ok := strings.Cut(s.Code, "<")
		if !ok || s.Family == "" || s.Meaning == "" || !strings.HasPrefix(prefix, s.Family+".") {
			t.Errorf("pattern row %+v: want family.<...> with a family and meaning", s)
		}
		for _, sig := range screen.Signals {
			if strings.HasPrefix(sig.Code, prefix) {
				t.Errorf("Signals code %s falls under the pattern %s", sig.Code, s.Code)
			}
		}
	}
}

// TestSetModelsConcurrent swaps models while other goroutines evaluate:
// every verdict must be wholly hand-set or wholly one model's (run with
// -race).
func TestSetModelsConcurrent(t *testing.T) {
	f := newFixture(t, call.DefaultPolicy())
	m1 := modelOnPrivacy(t)
	m2 := trainModel(t, "cli.withheld", 1000, 2)
	c := f.call(homeMobile, dialled, privacy("id"))
	hand := f.evaluate(c)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cc := *c
				v, s, err := f.e.Evaluate(context.Background(), &cc)
				if err != nil {
					t.Error(err)
					return
				}
				if v.Policy == hand.Policy {
					if !verdictsEqual(v, hand) {
						t.Errorf("hand-set verdict %+v, want %+v", v, hand)
						return
					}
				} else {
					sum := m1.Base()
					if math.Abs(sum+modelWeights(v)-logit(v.Score)) > 1e-9 {
						sum = m2.Base()
					}
					if math.Abs(sum+modelWeights(v)-logit(v.Score)) > 1e-9 {
						t.Errorf("verdict %+v is scored by neither model", v)
						return
					}
				}
				if s != nil && s.Policy == hand.Policy {
					t.Errorf("shadow verdict not model-scored: %+v", s)
					return
				}
			}
		}()
	}
	for i := range 200 {
		var err error
		switch i % 4 {
		case 0:
			err = f.e.SetModels(tid, m1, nil)
		case 1:
			err = f.e.SetModels(tid, m2, m1)
		case 2:
			err = f.e.SetModels(tid, nil, m2)
		case 3:
			err = f.e.SetModels(tid, nil, nil)
		}
		if err != nil {
			t.Error(err)
		}
		f.e.Models(tid)
	}
	close(stop)
	wg.Wait()
}

func modelWeights(v call.Verdict) float64 {
	s := 0.0
	for _, m := range v.Markers {
		if strings.HasPrefix(m.Code, "model.") {
			s += m.Weight
		}
	}
	return s
}

// BenchmarkEvaluateModel measures what a live model adds to the per-call
// path of BenchmarkEvaluate (warm callers): extracting the features,
// scoring and explaining them. The budget is 5 µs added.
func BenchmarkEvaluateModel(b *testing.B) {
	env := env(b)
	m := trainModel(b, "identity.privacy", 2000, 3)
	run := func(b *testing.B, live *model.Model) {
		if err := env.e.SetModels(tid, live, nil); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { env.e.SetModels(tid, nil, nil) })
		r := rand.New(rand.NewPCG(3, 4))
		idx := make([]int32, b.N)
		for i := range idx {
			idx[i] = int32(r.IntN(len(env.pop)))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			j := idx[i]
			v, err := env.screenOne(&env.pop[j], env.dialled[j%100], env.ingresses[j%10], int64(time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			if live != nil && !strings.HasSuffix(v.Policy, modelTag(live)) {
				b.Fatalf("verdict under %s: not model-scored", v.Policy)
			}
		}
	}
	b.Run("hand-set", func(b *testing.B) { run(b, nil) })
	b.Run("live-model", func(b *testing.B) { run(b, m) })
}
