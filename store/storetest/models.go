package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// RunModels runs the model storage suite. Each subtest calls open for a
// fresh, empty store and closes it when done.
func RunModels(t *testing.T, open func(t *testing.T) store.Store) {
	runSuite(t, open, []subtest{
		{"Versions", testModelVersions},
		{"Invalid", testModelInvalid},
		{"Transitions", testModelTransitions},
		{"TenantIsolation", testModelTenantIsolation},
		{"UnknownTenant", testModelUnknownTenant},
		{"DeleteTenantData", testModelDeleteTenantData},
		{"ConcurrentPromotions", testModelConcurrentPromotions},
		{"ConcurrentPuts", testModelConcurrentPuts},
	})
}

// newModel returns version v of tenant's model, with a report unless v is
// a multiple of 3 (so a nil report is stored too).
func newModel(tenant string, v int) store.Model {
	m := store.Model{
		Tenant:    tenant,
		Version:   v,
		Model:     fmt.Appendf(nil, `{"tenant":%q,"version":%d,"weights":[0.5,-1.25,%d]}`, tenant, v, v),
		TrainedAt: at(v),
		CreatedAt: at(v + 1),
		CreatedBy: "trainer",
	}
	if v%3 != 0 {
		m.Report = fmt.Appendf(nil, `{"auc":0.9%d,"n":%d}`, v, 1000*v)
	}
	return m
}

// stored is m as the store returns it after PutModel (status shadow).
func stored(m store.Model, status string) store.Model {
	m.Status = status
	return m
}

// summary is m as Models lists it.
func summary(m store.Model, status string) store.Model {
	m.Status, m.Model, m.Report, m.Summary = status, nil, nil, true
	return m
}

func modelChange(tenant string, v int) store.Change {
	return store.Change{Tenant: tenant, Kind: store.ChangeModel, Key: store.ModelChangeKey(v)}
}

// skipLog returns a change log reader past everything stored so far.
func skipLog(t *testing.T, s store.Store) *changeLog {
	t.Helper()
	last, err := s.LastChange(t.Context())
	must(t, err)
	return &changeLog{t: t, s: s, seen: last}
}

// statuses returns the status of each of the tenant's versions, by version
// (index 0 is version 1), as Models lists them, and checks that at most one
// is live and one shadow and that ActiveModels agrees.
func statuses(t *testing.T, s store.Store, tenant string) []string {
	t.Helper()
	ms, err := s.Models(t.Context(), tenant)
	must(t, err)
	out := make([]string, len(ms))
	count := map[string]int{}
	var live, shadow int
	for i, m := range ms {
		if want := len(ms) - i; m.Version != want || m.Tenant != tenant || !m.Summary || m.Model != nil || m.Report != nil {
			t.Errorf("Models[%d] = version %d of %q, summary %v; want summary of version %d of %q (newest first)",
				i, m.Version, m.Tenant, m.Summary, want, tenant)
			continue
		}
		out[m.Version-1] = m.Status
		count[m.Status]++
		switch m.Status {
		case store.ModelLive:
			live = m.Version
		case store.ModelShadow:
			shadow = m.Version
		}
	}
	if count[store.ModelLive] > 1 || count[store.ModelShadow] > 1 {
		t.Errorf("%s has %d live and %d shadow versions; want at most one each", tenant, count[store.ModelLive], count[store.ModelShadow])
	}
	l, sh, err := s.ActiveModels(t.Context(), tenant)
	must(t, err)
	for _, c := range []struct {
		what string
		got  *store.Model
		want int
	}{{"live", l, live}, {"shadow", sh, shadow}} {
		switch {
		case c.want == 0 && c.got != nil:
			t.Errorf("ActiveModels %s = version %d; want none", c.what, c.got.Version)
		case c.want != 0 && c.got == nil:
			t.Errorf("ActiveModels %s = none; want version %d", c.what, c.want)
		case c.want != 0:
			equal(t, "ActiveModels "+c.what, *c.got, stored(newModel(tenant, c.want), c.what))
		}
	}
	return out
}

func testModelVersions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	l := skipLog(t, s)

	m1, m2, m3 := newModel("acme", 1), newModel("acme", 2), newModel("acme", 3)
	for _, tt := range []struct {
		name string
		m    store.Model
		code string // "" for success
	}{
		{"first version not 1", newModel("acme", 2), call.Conflict},
		{"first version", m1, ""},
		{"repeat", newModel("acme", 1), call.Conflict},
		{"gap", newModel("acme", 3), call.Conflict},
		{"next version", m2, ""},
		{"next version without report, status given", func() store.Model { m := m3; m.Status = store.ModelShadow; return m }(), ""},
		{"repeat of an older version", newModel("acme", 2), call.Conflict},
		{"far ahead", newModel("acme", 9), call.Conflict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.PutModel(ctx, tt.m)
			wantCode(t, "PutModel", err, tt.code)
		})
	}
	// Each put appended its version, each put after the first also the
	// shadow it retired; the failed ones nothing.
	l.expect("PutModel", modelChange("acme", 1),
		modelChange("acme", 1), modelChange("acme", 2),
		modelChange("acme", 2), modelChange("acme", 3))

	for _, want := range []store.Model{stored(m1, store.ModelRetired), stored(m2, store.ModelRetired), stored(m3, store.ModelShadow)} {
		got, err := s.Model(ctx, "acme", want.Version)
		must(t, err)
		equal(t, fmt.Sprintf("Model %d", want.Version), got, want)
	}
	if m3.Report != nil {
		t.Fatal("test model 3 should have no report")
	}
	ms, err := s.Models(ctx, "acme")
	must(t, err)
	equal(t, "Models", ms, []store.Model{summary(m3, store.ModelShadow), summary(m2, store.ModelRetired), summary(m1, store.ModelRetired)})

	for _, v := range []int{0, 4, -1} {
		_, err := s.Model(ctx, "acme", v)
		wantCode(t, fmt.Sprintf("Model %d", v), err, call.NotFound)
	}
}

func testModelInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	l := skipLog(t, s)
	with := func(f func(m *store.Model)) store.Model {
		m := newModel("acme", 1)
		f(&m)
		return m
	}
	for _, tt := range []struct {
		name string
		m    store.Model
	}{
		{"version 0", with(func(m *store.Model) { m.Version = 0 })},
		{"negative version", with(func(m *store.Model) { m.Version = -1 })},
		{"no tenant", with(func(m *store.Model) { m.Tenant = "" })},
		{"status live", with(func(m *store.Model) { m.Status = store.ModelLive })},
		{"status retired", with(func(m *store.Model) { m.Status = store.ModelRetired })},
		{"status unknown", with(func(m *store.Model) { m.Status = "canary" })},
		{"model not JSON", with(func(m *store.Model) { m.Model = []byte(`{"w":`) })},
		{"model nil", with(func(m *store.Model) { m.Model = nil })},
		{"report not JSON", with(func(m *store.Model) { m.Report = []byte(`auc=0.9`) })},
		{"report empty", with(func(m *store.Model) { m.Report = []byte{} })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "PutModel", s.PutModel(ctx, tt.m), call.Invalid)
		})
	}
	must(t, s.PutModel(ctx, newModel("acme", 1)))
	l.expect("PutModel after invalid ones", modelChange("acme", 1))
	for _, status := range []string{"", "canary", "LIVE"} {
		wantCode(t, "SetModelStatus "+status, s.SetModelStatus(ctx, "acme", 1, status), call.Invalid)
	}
	l.expect("invalid SetModelStatus")
	if got := statuses(t, s, "acme"); fmt.Sprint(got) != "[shadow]" {
		t.Errorf("statuses after invalid writes = %v; want [shadow]", got)
	}
}

func testModelTransitions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	l := skipLog(t, s)
	const (
		sh, li, re = store.ModelShadow, store.ModelLive, store.ModelRetired
	)
	put := func(v int) func() error { return func() error { return s.PutModel(ctx, newModel("acme", v)) } }
	set := func(v int, status string) func() error {
		return func() error { return s.SetModelStatus(ctx, "acme", v, status) }
	}
	for _, step := range []struct {
		name    string
		do      func() error
		code    string   // "" for success
		want    []string // statuses by version after the step
		changed []int    // versions in the changes appended, in order
	}{
		{"put 1", put(1), "", []string{sh}, []int{1}},
		{"promote shadow 1", set(1, li), "", []string{li}, []int{1}},
		{"promote live 1 again", set(1, li), "", []string{li}, nil},
		{"put 2", put(2), "", []string{li, sh}, []int{2}},
		{"put 3 retires shadow 2", put(3), "", []string{li, re, sh}, []int{2, 3}},
		{"promote 3 retires live 1", set(3, li), "", []string{re, re, li}, []int{1, 3}},
		{"rollback to retired 1", set(1, li), "", []string{li, re, re}, []int{3, 1}},
		{"retired 2 back to shadow", set(2, sh), "", []string{li, sh, re}, []int{2}},
		{"shadow 3 displaces shadow 2", set(3, sh), "", []string{li, re, sh}, []int{2, 3}},
		{"shadow again", set(3, sh), "", []string{li, re, sh}, nil},
		{"live 1 to shadow", set(1, sh), "", []string{sh, re, re}, []int{3, 1}},
		{"retire shadow 1", set(1, re), "", []string{re, re, re}, []int{1}},
		{"retire retired 2", set(2, re), "", []string{re, re, re}, nil},
		{"promote retired 2", set(2, li), "", []string{re, li, re}, []int{2}},
		{"retire live 2", set(2, re), "", []string{re, re, re}, []int{2}},
		{"put 4 with no shadow", put(4), "", []string{re, re, re, sh}, []int{4}},
		{"absent version 5", set(5, li), call.NotFound, []string{re, re, re, sh}, nil},
		{"absent version 0", set(0, re), call.NotFound, []string{re, re, re, sh}, nil},
	} {
		t.Run(step.name, func(t *testing.T) {
			wantCode(t, step.name, step.do(), step.code)
			if got := statuses(t, s, "acme"); fmt.Sprint(got) != fmt.Sprint(step.want) {
				t.Errorf("statuses = %v; want %v", got, step.want)
			}
			var want []store.Change
			for _, v := range step.changed {
				want = append(want, modelChange("acme", v))
			}
			l.expect(step.name, want...)
		})
	}
}

func testModelTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	l := skipLog(t, s)

	must(t, s.PutModel(ctx, newModel("acme", 1)))
	must(t, s.PutModel(ctx, newModel("acme", 2)))
	must(t, s.SetModelStatus(ctx, "acme", 1, store.ModelLive))
	// Versions count per tenant: bank starts at 1 too.
	wantCode(t, "bank's PutModel version 3", s.PutModel(ctx, newModel("bank", 3)), call.Conflict)
	must(t, s.PutModel(ctx, newModel("bank", 1)))
	l.expect("writes of both tenants", modelChange("acme", 1),
		modelChange("acme", 1), modelChange("acme", 2),
		modelChange("acme", 1),
		modelChange("bank", 1))

	_, err := s.Model(ctx, "bank", 2)
	wantCode(t, "Model of another tenant's version", err, call.NotFound)
	wantCode(t, "SetModelStatus of another tenant's version", s.SetModelStatus(ctx, "bank", 2, store.ModelLive), call.NotFound)
	l.expect("failed writes")

	// bank's promotion leaves acme's live version alone.
	must(t, s.SetModelStatus(ctx, "bank", 1, store.ModelLive))
	l.expect("bank's promotion", modelChange("bank", 1))
	if got := statuses(t, s, "acme"); fmt.Sprint(got) != "[live shadow]" {
		t.Errorf("acme's statuses = %v; want [live shadow]", got)
	}
	if got := statuses(t, s, "bank"); fmt.Sprint(got) != "[live]" {
		t.Errorf("bank's statuses = %v; want [live]", got)
	}
	got, err := s.Model(ctx, "bank", 1)
	must(t, err)
	equal(t, "bank's Model 1", got, stored(newModel("bank", 1), store.ModelLive))
}

func testModelUnknownTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	must(t, s.PutModel(ctx, newModel("acme", 1)))
	l := skipLog(t, s)

	wantCode(t, "PutModel of an unknown tenant", s.PutModel(ctx, newModel("nobody", 1)), call.NotFound)
	wantCode(t, "SetModelStatus of an unknown tenant", s.SetModelStatus(ctx, "nobody", 1, store.ModelLive), call.NotFound)
	_, err := s.Model(ctx, "nobody", 1)
	wantCode(t, "Model of an unknown tenant", err, call.NotFound)
	ms, err := s.Models(ctx, "nobody")
	if err != nil || ms == nil || len(ms) != 0 {
		t.Errorf("Models of an unknown tenant = %v, %v; want empty, nil", ms, err)
	}
	live, shadow, err := s.ActiveModels(ctx, "nobody")
	if live != nil || shadow != nil || err != nil {
		t.Errorf("ActiveModels of an unknown tenant = %v, %v, %v; want nil, nil, nil", live, shadow, err)
	}
	l.expect("failed writes")
}

func testModelDeleteTenantData(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	tenant(t, s, "bank")
	for _, id := range []string{"acme", "bank"} {
		must(t, s.PutModel(ctx, newModel(id, 1)))
		must(t, s.SetModelStatus(ctx, id, 1, store.ModelLive))
		must(t, s.PutModel(ctx, newModel(id, 2)))
	}
	_, err := s.DeleteTenantData(ctx, "acme")
	must(t, err)
	if got := statuses(t, s, "acme"); len(got) != 0 {
		t.Errorf("acme's statuses after DeleteTenantData = %v; want none", got)
	}
	_, err = s.Model(ctx, "acme", 1)
	wantCode(t, "Model after DeleteTenantData", err, call.NotFound)
	l := skipLog(t, s)
	wantCode(t, "PutModel of an offboarded tenant", s.PutModel(ctx, newModel("acme", 1)), call.NotFound)
	wantCode(t, "SetModelStatus of an offboarded tenant", s.SetModelStatus(ctx, "acme", 1, store.ModelLive), call.NotFound)
	l.expect("writes of an offboarded tenant")
	if got := statuses(t, s, "bank"); fmt.Sprint(got) != "[live shadow]" {
		t.Errorf("bank's statuses after acme's deletion = %v; want [live shadow]", got)
	}
}

// testModelConcurrentPromotions promotes two versions at once, many times
// over: both calls succeed (they queue; neither may fail on the other's
// half-done work), and whichever ran last is the one live version.
func testModelConcurrentPromotions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	const rounds = 10
	prevLive := 0
	for r := range rounds {
		a, b := 2*r+1, 2*r+2
		must(t, s.PutModel(ctx, newModel("acme", a)))
		must(t, s.PutModel(ctx, newModel("acme", b)))
		l := skipLog(t, s)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, v := range []int{a, b} {
			wg.Go(func() { errs[i] = s.SetModelStatus(ctx, "acme", v, store.ModelLive) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: promotion of version %d: %v", r, []int{a, b}[i], err)
			}
		}
		live, shadow, err := s.ActiveModels(ctx, "acme")
		must(t, err)
		if live == nil || (live.Version != a && live.Version != b) || shadow != nil {
			t.Fatalf("round %d: ActiveModels = %v, %v; want version %d or %d live and no shadow", r, live, shadow, a, b)
		}
		first := a + b - live.Version // promoted first, retired by the second
		got := statuses(t, s, "acme")
		for v := 1; v <= b; v++ {
			want := store.ModelRetired
			if v == live.Version {
				want = store.ModelLive
			}
			if got[v-1] != want {
				t.Errorf("round %d: version %d is %q; want %q", r, v, got[v-1], want)
			}
		}
		// The first promotion retired the previous round's live version
		// (none in round 0) and made itself live; the second retired the
		// first and made itself live.
		var want []store.Change
		if prevLive != 0 {
			want = append(want, modelChange("acme", prevLive))
		}
		l.expect(fmt.Sprintf("round %d", r), append(want,
			modelChange("acme", first), modelChange("acme", first), modelChange("acme", live.Version))...)
		prevLive = live.Version
	}
}

// testModelConcurrentPuts stores the same next version twice at once: one
// wins, the other is a Conflict, and the series has no gap or repeat.
func testModelConcurrentPuts(t *testing.T, s store.Store) {
	ctx := t.Context()
	tenant(t, s, "acme")
	const rounds = 10
	for v := 1; v <= rounds; v++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { errs[i] = s.PutModel(ctx, newModel("acme", v)) })
		}
		wg.Wait()
		codes := []string{call.ErrorCode(errs[0]), call.ErrorCode(errs[1])}
		if !(codes[0] == "" && codes[1] == call.Conflict || codes[0] == call.Conflict && codes[1] == "") {
			t.Fatalf("version %d: concurrent PutModel errors %v, %v; want one nil and one Conflict", v, errs[0], errs[1])
		}
	}
	if got := statuses(t, s, "acme"); len(got) != rounds || got[rounds-1] != store.ModelShadow {
		t.Errorf("statuses = %v; want %d versions, the newest shadow", got, rounds)
	}
}
