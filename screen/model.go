package screen

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/model"
)

// modelTop is how many model.<feature> markers a model-scored verdict
// carries besides model.rest.
const modelTop = 5

// signalMax is how many signal markers one evaluation holds.
const signalMax = len(eval{}.found)

// evidencePrefix starts the detail of a signal marker in a model-scored
// verdict: the marker explains, the model scores.
const evidencePrefix = "evidence; "

// modelCodes are the codes the model family can emit: model.<feature> for
// every feature of the schema, and model.rest.
var modelCodes = func() map[string]bool {
	m := map[string]bool{"model.rest": true}
	for _, n := range model.Names() {
		m["model."+n] = true
	}
	return m
}()

// modelSet is one tenant's models. It is immutable once stored, except for
// the extractor cache.
type modelSet struct {
	t                  *tenant // the tenant they were set for: a removed and re-added tenant starts without
	live, shadow       *model.Model
	liveTag, shadowTag string                          // "+model-<version>", appended to the policy version
	x                  atomic.Pointer[model.Extractor] // for the tenant's region, built on first use
	labels             [2]atomic.Pointer[label]        // last verdict Policy made for the live and shadow verdicts
}

// label caches a policy version with a model tag, so a verdict does not
// allocate its Policy string.
type label struct {
	p        *policy
	tag, out string
}

// label returns p's version followed by tag, from slot i's cache when it
// was last made for the same policy and tag.
func (ms *modelSet) label(i int, p *policy, tag string) string {
	if l := ms.labels[i].Load(); l != nil && l.p == p && l.tag == tag {
		return l.out
	}
	l := &label{p: p, tag: tag, out: p.version + tag}
	ms.labels[i].Store(l)
	return l.out
}

// featurePool holds feature vectors, so a model-scored evaluation does not
// allocate one.
var featurePool = sync.Pool{New: func() any {
	b := make([]float32, model.Width)
	return &b
}}

// SetModels sets the tenant's live and shadow models; nil clears one. Both
// nil restores the hand-set scoring exactly.
//
// With a live model, the model scores the live verdict: after every other
// signal family has fired, the model reads the call and those markers
// (model.Extractor), and the verdict's score is its calibrated probability.
// The signal markers stay in the verdict with weight 0 and their detail
// prefixed "evidence; "; the model's markers follow (model.<feature> for
// the 5 largest contributions and model.rest), and the model's Base() plus
// their weights is the score's log-odds. The policy's thresholds and
// actions still apply (an action such as dno.listed => block holds whatever
// the model says); policy weights do not. The verdict's Policy is the
// policy version plus "+model-<name>" (the model's Label: its stored version).
//
// Evaluate returns a shadow verdict when the tenant has a shadow policy or
// a shadow model: the shadow policy (else the live one) scored by the
// shadow model (else the live model, else the hand-set weights), that is,
// what the call would get if the shadow parts were made live. The live
// verdict never depends on the shadow parts.
//
// The models must not be changed after the call (model.Model is immutable
// after Train or Unmarshal). SetModels is safe for concurrent use with
// Evaluate, which sees either the old models or the new ones. It returns a
// *call.Error with code NotFound for an unknown tenant, and Invalid for a
// model this build cannot score (model.Model.Check).
func (e *Engine) SetModels(tenantID string, live, shadow *model.Model) error {
	t, err := e.mustTenant(tenantID)
	if err != nil {
		return err
	}
	for _, m := range []struct {
		name string
		m    *model.Model
	}{{"live", live}, {"shadow", shadow}} {
		if m.m == nil {
			continue
		}
		if err := m.m.Check(); err != nil {
			return call.Errorf(call.Invalid, "%s model: %s", m.name, call.ErrorMessage(err))
		}
	}
	e.pruneModels()
	if live == nil && shadow == nil {
		e.models.Delete(tenantID)
		return nil
	}
	ms := &modelSet{t: t, live: live, shadow: shadow}
	if live != nil {
		ms.liveTag = "+model-" + modelName(live)
	}
	if shadow != nil {
		ms.shadowTag = "+model-" + modelName(shadow)
	}
	e.models.Store(tenantID, ms)
	return nil
}

// Models returns the tenant's live and shadow models, nil where none is set
// (and both nil for an unknown tenant).
func (e *Engine) Models(tenantID string) (live, shadow *model.Model) {
	ms := e.modelsOf(tenantID, e.tenant(tenantID))
	if ms == nil {
		return nil, nil
	}
	return ms.live, ms.shadow
}

// modelsOf returns the models set for tenant t (id), nil when none.
func (e *Engine) modelsOf(id string, t *tenant) *modelSet {
	v, ok := e.models.Load(id)
	if !ok || t == nil {
		return nil
	}
	ms := v.(*modelSet)
	if ms.t != t {
		return nil // set for a tenant since removed
	}
	return ms
}

// pruneModels drops the models of removed tenants (RemoveTenant does not
// know about them). SetModels is rare, so a scan is cheap enough.
func (e *Engine) pruneModels() {
	e.models.Range(func(k, v any) bool {
		if e.tenant(k.(string)) != v.(*modelSet).t {
			e.models.CompareAndDelete(k, v)
		}
		return true
	})
}

// extractor returns the feature extractor for the tenant's current region.
func (ms *modelSet) extractor(e *Engine) *model.Extractor {
	ms.t.mu.RLock() // SetTenant may replace info
	region := ms.t.info.Region
	ms.t.mu.RUnlock()
	if x := ms.x.Load(); x != nil && x.Region == region {
		return x
	}
	x := &model.Extractor{Region: region, Location: model.Zone(region), Routes: e}
	ms.x.Store(x)
	return x
}

// modelVerdicts returns the live and shadow verdicts of the collected
// markers under policy p when the tenant has models (see SetModels).
func (ev *eval) modelVerdicts(p *policy, ms *modelSet) (live call.Verdict, shadow *call.Verdict) {
	found := ev.found[:ev.n]
	buf := featurePool.Get().(*[]float32)
	sofar := call.Verdict{Markers: found}
	x := ms.extractor(ev.e).Extract(*buf, ev.c, &sofar)

	evidence := evidenceDetails(found)
	if ms.live != nil {
		live = p.score(found, evidence, ms.live, ms.label(0, p, ms.liveTag), x)
	} else {
		live = p.apply(found)
	}
	sp, sm, tag := p.Shadow, ms.shadow, ms.shadowTag
	if sp != nil || sm != nil {
		if sp == nil {
			sp = p
		}
		if sm == nil {
			sm, tag = ms.live, ms.liveTag
		}
		var s call.Verdict
		if sm != nil {
			s = sp.score(found, evidence, sm, ms.label(1, sp, tag), x)
		} else {
			s = sp.apply(found)
		}
		shadow = &s
	}
	*buf = x
	featurePool.Put(buf)
	return live, shadow
}

// score weighs the call under p with model m scoring feature vector x:
// the signal markers found become evidence (weight 0, detail evidence[i]),
// the model's markers carry the log-odds, and the verdict names version.
func (p *policy) score(found []call.Marker, evidence [signalMax]string, m *model.Model, version string, x []float32) call.Verdict {
	mm := m.Markers(x, modelTop)
	v := call.Verdict{Policy: version, Action: call.Allow}
	v.Markers = make([]call.Marker, len(found), len(found)+len(mm))
	for i, mk := range found {
		mk.Weight, mk.Detail = 0, evidence[i]
		v.Markers[i] = mk
		p.raise(&v, mk.Code)
	}
	logit := m.Base()
	for _, mk := range mm {
		logit += mk.Weight
		v.Markers = append(v.Markers, mk)
		p.raise(&v, mk.Code)
	}
	p.decide(&v, logit)
	return v
}

// evidenceDetails returns each marker's detail prefixed "evidence; ",
// built in one allocation.
func evidenceDetails(found []call.Marker) (out [signalMax]string) {
	n := 0
	for _, m := range found {
		if m.Detail != "" {
			n += len(evidencePrefix) + len(m.Detail)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, m := range found {
		if m.Detail != "" {
			b.WriteString(evidencePrefix)
			b.WriteString(m.Detail)
		}
	}
	all, off := b.String(), 0
	for i, m := range found {
		if m.Detail == "" {
			out[i] = evidencePrefix
			continue
		}
		end := off + len(evidencePrefix) + len(m.Detail)
		out[i], off = all[off:end], end
	}
	return out
}

// raise raises v's action to the policy's action for the marker code.
func (p *policy) raise(v *call.Verdict, code string) {
	if a, ok := p.actions[code]; ok && a.Rank() > v.Action.Rank() {
		v.Action = a
	}
}

// modelName names a model in verdicts: its Label (the stored version the
// node sets), else its training time.
func modelName(m *model.Model) string {
	if m.Label != "" {
		return m.Label
	}
	return m.TrainedAt.UTC().Format("20060102T150405Z")
}
