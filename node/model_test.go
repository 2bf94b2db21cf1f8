package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/model"
	"github.com/ringfence/ringfence/privacy"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/sim"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// modelStart is a Monday: the history runs Monday to Wednesday and the
// clock of the model tests stands on Thursday morning.
var modelStart = time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)

const (
	modelSpan   = 72 * time.Hour
	modelTenant = "bank"
	// modelTestShare is TrainModel's default share of the period kept to
	// test on.
	modelTestShare = 1.0 / 3
)

// simHistory returns calls of simulated traffic (seed) over modelSpan from
// modelStart as call-history rows in event-time order, every call labelled
// with its truth except every 10th, left unlabelled. Start times are whole
// seconds, so the split the tests compute matches the stored times exactly.
func simHistory(seed int64, calls int) (sim.Traffic, []historyRow) {
	tr := sim.Generate(sim.Config{Seed: seed, Calls: calls, Start: modelStart, Span: modelSpan})
	rows := make([]historyRow, len(tr.Calls))
	for i, sc := range tr.Calls {
		label, fraudType := "genuine", ""
		if sc.Fraud {
			label, fraudType = "fraud", sc.FraudType
		}
		if i%10 == 9 {
			label, fraudType = "", ""
		}
		rows[i] = historyFromSim(sc, label, fraudType)
	}
	return tr, rows
}

// historyFromSim is one simulated call as a history row.
func historyFromSim(sc sim.Call, label, fraudType string) historyRow {
	q := sc.Request
	r := historyRow{
		CallRef: q.CallRef, StartedAt: q.StartedAt.Truncate(time.Second).Format(time.RFC3339Nano),
		Caller: q.Caller, Dialled: q.Dialled, UserRef: q.UserRef, IngressRoute: q.IngressRoute, ApplianceID: q.ApplianceID,
		Label: label, FraudType: fraudType,
		Signalling: historySignals{From: q.Signalling.From, PAI: q.Signalling.PAI, Verstat: q.Signalling.Verstat, Privacy: q.Signalling.Privacy, UserAgent: q.Signalling.UserAgent},
	}
	if sc.Result != "" {
		d := sc.Duration.Seconds()
		r.DurationS, r.Result, r.EgressRoute = &d, sc.Result, sc.Egress
	}
	return r
}

// rowTime is a history row's start time.
func rowTime(t *testing.T, r historyRow) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, r.StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// partCounts counts rows as TrainModel splits them with the default test
// share: given, unlabelled and fraud-labelled calls before the cut (train)
// and from it (test); excluded says which rows a restriction leaves out.
type partCounts struct{ examples, unlabelled, excluded, fraud int }

func splitCounts(t *testing.T, rows []historyRow, excluded func(historyRow) bool) (train, test partCounts) {
	t.Helper()
	first, last := rowTime(t, rows[0]), rowTime(t, rows[len(rows)-1])
	cut := first.Add(time.Duration(float64(last.Sub(first)) * (1 - modelTestShare)))
	for _, r := range rows {
		p := &test
		if rowTime(t, r).Before(cut) {
			p = &train
		}
		p.examples++
		switch {
		case excluded != nil && excluded(r):
			p.excluded++
		case r.Label == "":
			p.unlabelled++
		case r.Label == "fraud":
			p.fraud++
		}
	}
	return train, test
}

// newModelEnv opens a node over SQLite with a fake clock standing an hour
// after modelSpan, creates modelTenant with the simulator's routes and
// do-not-originate list, and imports rows through ImportCalls.
func newModelEnv(t *testing.T, tr sim.Traffic, rows []historyRow) *privEnv {
	t.Helper()
	ctx := t.Context()
	e := openPrivEnv(t, newPrivClock(modelStart.Add(modelSpan+time.Hour)))
	if _, _, err := e.n.CreateTenant(ctx, modelTenant, "Bank", "GB"); err != nil {
		t.Fatal(err)
	}
	for _, r := range tr.Routes {
		if err := e.n.PutRoute(ctx, modelTenant, call.Route{ID: r.ID, Kind: call.RouteKind(r.Kind), Country: r.Country, FailOpen: r.FailOpen}); err != nil {
			t.Fatal(err)
		}
	}
	if len(tr.DNO) > 0 {
		var dno strings.Builder
		for _, num := range tr.DNO {
			fmt.Fprintf(&dno, "%s,published\n", num)
		}
		if _, err := e.n.ImportList(ctx, modelTenant, call.DNOList, strings.NewReader(dno.String()), ""); err != nil {
			t.Fatal(err)
		}
	}
	importRows(t, e.n, rows)
	return e
}

// importRows imports rows as NDJSON; every row must be imported.
func importRows(t *testing.T, n *Node, rows []historyRow) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	res, err := n.ImportCalls(t.Context(), modelTenant, &b, CallsNDJSON)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != len(rows) || res.RejectedCount != 0 {
		t.Fatalf("import: %d of %d rows imported, rejected %v", res.Imported, len(rows), res.Rejected)
	}
}

// modelCaller and modelDialled are the numbers of the k-th call the tests
// screen live: a new caller and dialled number each time, so no velocity
// window counts one call into the next one's verdict.
func modelCaller(k int) string  { return fmt.Sprintf("+447700900%03d", k) }
func modelDialled(k int) string { return fmt.Sprintf("+44207946%04d", 1000+k) }

// modelHasCode reports whether v carries a marker of the model family.
func modelHasCode(v call.Verdict) bool {
	return slices.ContainsFunc(v.Markers, func(m call.Marker) bool { return strings.HasPrefix(m.Code, "model.") })
}

// sameVerdict reports whether a and b say the same (the time they took
// aside).
func sameVerdict(a, b call.Verdict) bool {
	a.Elapsed, b.Elapsed = 0, 0
	return reflect.DeepEqual(a, b)
}

// checkModelScored checks a verdict scored by model m (stored version
// `version`): the policy names it, the signal markers are evidence with
// weight 0, and m.Base() plus the model markers' weights is the score's
// log-odds.
func checkModelScored(t *testing.T, what string, v call.Verdict, m *model.Model, version int) {
	t.Helper()
	tag := fmt.Sprintf("+model-%d", version)
	if !strings.HasSuffix(v.Policy, tag) {
		t.Errorf("%s: policy %q; want it to end %q", what, v.Policy, tag)
	}
	if m == nil {
		t.Fatalf("%s: no model in the engine", what)
	}
	logit, models := m.Base(), 0
	for _, mk := range v.Markers {
		if strings.HasPrefix(mk.Code, "model.") {
			logit += mk.Weight
			models++
			continue
		}
		if mk.Weight != 0 || !strings.HasPrefix(mk.Detail, "evidence; ") {
			t.Errorf("%s: signal marker %s has weight %g, detail %q; want 0 and evidence", what, mk.Code, mk.Weight, mk.Detail)
		}
	}
	if models == 0 {
		t.Fatalf("%s: no model.* marker among %v", what, v.Markers)
	}
	if v.Score <= 0 || v.Score >= 1 {
		t.Fatalf("%s: score %g", what, v.Score)
	}
	if want := math.Log(v.Score / (1 - v.Score)); math.Abs(logit-want) > 1e-6 {
		t.Errorf("%s: base %g + model markers = %g; logit(score %g) = %g", what, m.Base(), logit, v.Score, want)
	}
}

// TestModelLifecycle takes a tenant's model through its life on a node
// over SQLite: trained on three days of imported, labelled simulator
// traffic into shadow (scored beside the live verdict, recorded, never
// acted on), promoted, a second version trained and promoted, rolled back
// to the first, and retired, which restores the hand-set scoring exactly.
// A second node on the same store follows every step through the change
// feed.
func TestModelLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tr, rows := simHistory(11, 1200)
	wantTrain, wantTest := splitCounts(t, rows, nil)
	for part, c := range map[string]partCounts{"train": wantTrain, "test": wantTest} {
		if labelled := c.examples - c.unlabelled; c.fraud < 10 || labelled-c.fraud < 10 {
			t.Fatalf("the %s part has %d fraud and %d genuine labels: the scenario is too small to test anything", part, c.fraud, labelled-c.fraud)
		}
	}
	e := newModelEnv(t, tr, rows)
	a := e.n

	// B: another node on the same SQLite file, as a second process would
	// be, following the change feed.
	st, err := sqlite.Open(ctx, e.path)
	if err != nil {
		t.Fatal(err)
	}
	st.Now = e.clk.Now
	b, err := Open(ctx, Config{Now: e.clk.Now, Follow: FollowConfig{Poll: 10 * time.Millisecond}}, st, seal.NewKeyringWithKeystore(e.mk, e.ks))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); st.Close() })
	const limit = 5 * time.Second
	bHas := func(live, shadow string) func() bool {
		label := func(m *model.Model) string {
			if m == nil {
				return ""
			}
			return m.Label
		}
		return func() bool { l, s := b.engine.Models(modelTenant); return label(l) == live && label(s) == shadow }
	}

	// The probe is evaluated by the engine without being observed, so its
	// hand-set verdict stays the same while nothing else changes.
	probe := func(n *Node) call.Verdict {
		t.Helper()
		c := &call.Call{
			Tenant: modelTenant, Caller: n.engine.Number(modelTenant, "+447700900999"), Dialled: n.engine.Number(modelTenant, "+442079469999"),
			StartedAt: e.clk.Now(), Review: call.Review{Status: call.Unreviewed},
		}
		live, _, err := n.engine.Evaluate(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return live
	}
	handSet := probe(a)
	if strings.Contains(handSet.Policy, "+model") || modelHasCode(handSet) {
		t.Fatalf("a model scores before any is trained: %+v", handSet)
	}
	k := 0
	screen := func(n *Node) *call.Call {
		t.Helper()
		c, err := n.Screen(ctx, Incoming{Tenant: modelTenant, Caller: modelCaller(k), Dialled: modelDialled(k)})
		if err != nil {
			t.Fatal(err)
		}
		k++
		return c
	}
	stored := func(c *call.Call) *call.Call {
		t.Helper()
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := a.Call(ctx, modelTenant, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	statuses := func() map[int]string {
		t.Helper()
		vs, err := a.Models(ctx, modelTenant)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]string{}
		for i, v := range vs {
			if i > 0 && v.Version >= vs[i-1].Version {
				t.Errorf("Models not newest first: %d after %d", v.Version, vs[i-1].Version)
			}
			out[v.Version] = v.Status
		}
		return out
	}

	// Version 1, in shadow.
	v1, err := a.TrainModel(ctx, modelTenant, TrainOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || v1.Status != store.ModelShadow || v1.Report == nil || v1.Report.Training == nil || v1.Report.Model == nil || v1.Report.Baseline == nil {
		t.Fatalf("first training: version %d, status %q, report %+v", v1.Version, v1.Status, v1.Report)
	}
	tg, ts := v1.Report.Training, v1.Report.Test
	if tg.Examples != wantTrain.examples || tg.Unlabelled != wantTrain.unlabelled || tg.Excluded != 0 || tg.FitFraud+tg.CalibrateFraud != wantTrain.fraud {
		t.Errorf("training %+v; want %d examples, %d unlabelled, %d fraud", tg, wantTrain.examples, wantTrain.unlabelled, wantTrain.fraud)
	}
	if ts.Examples != wantTest.examples || ts.Unlabelled != wantTest.unlabelled || ts.Used != wantTest.examples-wantTest.unlabelled || ts.Fraud != wantTest.fraud {
		t.Errorf("test set %+v; want %d examples, %d unlabelled, %d fraud", ts, wantTest.examples, wantTest.unlabelled, wantTest.fraud)
	}
	if auc := v1.Report.Model.AUC; auc < 0.8 {
		t.Errorf("the model's ROC AUC on the test days is %.3f; the simulator's fraud is easier than that", auc)
	}
	if rep, err := a.ModelReport(ctx, modelTenant, 1); err != nil || rep.Report == nil || !reflect.DeepEqual(*rep.Report, *v1.Report) {
		t.Errorf("stored report of version 1 differs from the one returned (%v)", err)
	}
	if got := probe(a); !sameVerdict(got, handSet) {
		t.Errorf("a shadow model changed the live verdict:\n%+v\nwas\n%+v", got, handSet)
	}
	c := screen(a)
	if strings.Contains(c.Verdict.Policy, "+model") || modelHasCode(c.Verdict) {
		t.Errorf("with version 1 in shadow the live verdict is model-scored: policy %q, markers %v", c.Verdict.Policy, c.Verdict.Markers)
	}
	if c.Shadow == nil {
		t.Fatal("with version 1 in shadow a call has no shadow verdict")
	}
	_, sm := a.engine.Models(modelTenant)
	checkModelScored(t, "shadow verdict", *c.Shadow, sm, 1)
	if got := stored(c); got.Shadow == nil || !sameVerdict(*got.Shadow, *c.Shadow) || !sameVerdict(got.Verdict, c.Verdict) {
		t.Errorf("stored record: live %+v, shadow %+v; screened live %+v, shadow %+v", got.Verdict, got.Shadow, c.Verdict, *c.Shadow)
	}
	eventually(t, "version 1 in shadow on B", limit, bHas("", "1"))

	// Promoted: version 1 scores the live verdict.
	if err := a.SetModelStatus(ctx, modelTenant, 1, store.ModelLive); err != nil {
		t.Fatal(err)
	}
	c = screen(a)
	lm, _ := a.engine.Models(modelTenant)
	checkModelScored(t, "live verdict of version 1", c.Verdict, lm, 1)
	if c.Shadow != nil {
		t.Errorf("with no shadow model or policy the call has a shadow verdict %+v", *c.Shadow)
	}
	if got := stored(c); !sameVerdict(got.Verdict, c.Verdict) || got.Shadow != nil {
		t.Errorf("stored record: live %+v, shadow %v; screened %+v", got.Verdict, got.Shadow, c.Verdict)
	}

	// Version 2 joins in shadow beside live version 1, then is promoted.
	v2, err := a.TrainModel(ctx, modelTenant, TrainOptions{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.Status != store.ModelShadow {
		t.Fatalf("second training: version %d, status %q", v2.Version, v2.Status)
	}
	c = screen(a)
	lm, sm = a.engine.Models(modelTenant)
	checkModelScored(t, "live verdict beside version 2", c.Verdict, lm, 1)
	if c.Shadow == nil {
		t.Fatal("with version 2 in shadow a call has no shadow verdict")
	}
	checkModelScored(t, "shadow verdict of version 2", *c.Shadow, sm, 2)
	if got, want := statuses(), map[int]string{1: store.ModelLive, 2: store.ModelShadow}; !reflect.DeepEqual(got, want) {
		t.Errorf("statuses %v; want %v", got, want)
	}
	if err := a.SetModelStatus(ctx, modelTenant, 2, store.ModelLive); err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(), map[int]string{1: store.ModelRetired, 2: store.ModelLive}; !reflect.DeepEqual(got, want) {
		t.Errorf("after promoting version 2: statuses %v; want %v", got, want)
	}
	c = screen(a)
	lm, _ = a.engine.Models(modelTenant)
	checkModelScored(t, "live verdict of version 2", c.Verdict, lm, 2)
	eventually(t, "version 2 live on B", limit, bHas("2", ""))

	// Rolled back to version 1.
	if err := a.SetModelStatus(ctx, modelTenant, 1, store.ModelLive); err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(), map[int]string{1: store.ModelLive, 2: store.ModelRetired}; !reflect.DeepEqual(got, want) {
		t.Errorf("after the rollback: statuses %v; want %v", got, want)
	}
	c = screen(a)
	lm, _ = a.engine.Models(modelTenant)
	checkModelScored(t, "live verdict after the rollback", c.Verdict, lm, 1)
	if c.Shadow != nil {
		t.Errorf("after the rollback the call has a shadow verdict %+v", *c.Shadow)
	}
	eventually(t, "rollback to version 1 on B", limit, bHas("1", ""))
	bl, _ := b.engine.Models(modelTenant)
	checkModelScored(t, "B's live verdict after the rollback", screen(b).Verdict, bl, 1)

	// Refused status changes leave everything as it was.
	if err := a.SetModelStatus(ctx, modelTenant, 1, "canary"); call.ErrorCode(err) != call.Invalid {
		t.Errorf("status canary: %v; want Invalid", err)
	}
	if err := a.SetModelStatus(ctx, modelTenant, 3, store.ModelLive); call.ErrorCode(err) != call.NotFound {
		t.Errorf("unknown version 3: %v; want NotFound", err)
	}
	if _, err := a.ModelReport(ctx, modelTenant, 3); call.ErrorCode(err) != call.NotFound {
		t.Errorf("report of unknown version 3: %v; want NotFound", err)
	}

	// Retired: the hand-set scoring returns, exactly, on both nodes.
	if err := a.SetModelStatus(ctx, modelTenant, 1, store.ModelRetired); err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(), map[int]string{1: store.ModelRetired, 2: store.ModelRetired}; !reflect.DeepEqual(got, want) {
		t.Errorf("after retiring: statuses %v; want %v", got, want)
	}
	if got := probe(a); !sameVerdict(got, handSet) {
		t.Errorf("after retiring the model the verdict is\n%+v\nnot the hand-set\n%+v", got, handSet)
	}
	c = screen(a)
	if strings.Contains(c.Verdict.Policy, "+model") || modelHasCode(c.Verdict) || c.Shadow != nil {
		t.Errorf("after retiring: policy %q, markers %v, shadow %v", c.Verdict.Policy, c.Verdict.Markers, c.Shadow)
	}
	eventually(t, "retirement on B", limit, bHas("", ""))
	if got := probe(b); !sameVerdict(got, handSet) {
		t.Errorf("after retiring B's verdict is\n%+v\nnot the hand-set\n%+v", got, handSet)
	}

	// Every step is audited.
	es, err := a.AuditEntries(ctx, modelTenant, store.AuditFilter{ActionPrefix: "model."})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, en := range es {
		got[en.Action+" "+en.Object]++
	}
	want := map[string]int{"model.train 1": 1, "model.train 2": 1, "model.live 1": 2, "model.live 2": 1, "model.retired 1": 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("model audit entries %v; want %v", got, want)
	}
}

// TestModelExcludesRestricted restricts processing of a subject's data
// through a rights case: the next training leaves out every call of
// theirs and counts them, where the one before the case used them.
func TestModelExcludesRestricted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const subject = "+447400123456"
	tr, rows := simHistory(12, 1000)
	// Three labelled calls of the subject on the first day, well inside
	// the training part.
	for i, h := range []time.Duration{2, 5, 9} {
		at := modelStart.Add(h * time.Hour).Format(time.RFC3339Nano)
		label := []string{"genuine", "fraud", "genuine"}[i]
		fraudType := map[string]string{"fraud": "impersonation"}[label]
		rows = append(rows, historyRow{
			CallRef: fmt.Sprintf("subject-%d", i), StartedAt: at, Caller: subject, Dialled: "+442079460123",
			UserRef: "cust-subject", Label: label, FraudType: fraudType,
		})
	}
	slices.SortStableFunc(rows, func(x, y historyRow) int { return rowTime(t, x).Compare(rowTime(t, y)) })
	bySubject := func(r historyRow) bool { return r.Caller == subject }
	wantTrain, wantTest := splitCounts(t, rows, bySubject)
	if wantTrain.excluded < 3 || wantTest.excluded != 0 {
		t.Fatalf("the subject has %d calls in the training part and %d in the test part; want 3 and 0", wantTrain.excluded, wantTest.excluded)
	}
	e := newModelEnv(t, tr, rows)
	n := e.n

	before, err := n.TrainModel(ctx, modelTenant, TrainOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := before.Report.Training.Excluded; got != 0 {
		t.Fatalf("before any restriction training excluded %d calls", got)
	}

	v, err := n.OpenCase(ctx, modelTenant, CaseRequest{Type: privacy.Restriction, Number: subject})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.StepCase(ctx, modelTenant, v.ID, CaseStep{Step: "confirm_identity"}); err != nil {
		t.Fatal(err)
	}
	if v, err = n.Fulfil(ctx, modelTenant, v.ID, FulfilOptions{}); err != nil {
		t.Fatal(err)
	}
	if v.Status != privacy.Completed {
		t.Fatalf("restriction case %s after Fulfil", v.Status)
	}

	after, err := n.TrainModel(ctx, modelTenant, TrainOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	bt, at := before.Report.Training, after.Report.Training
	if at.Excluded != wantTrain.excluded {
		t.Errorf("training excluded %d calls; want the subject's %d", at.Excluded, wantTrain.excluded)
	}
	if at.Examples != bt.Examples || at.Unlabelled != bt.Unlabelled {
		t.Errorf("training saw %d examples (%d unlabelled) after the restriction, %d (%d) before", at.Examples, at.Unlabelled, bt.Examples, bt.Unlabelled)
	}
	// The subject's calls here are all labelled: each one excluded is one
	// fewer used.
	if used, was := at.Fit+at.Calibrate, bt.Fit+bt.Calibrate; was-used != at.Excluded {
		t.Errorf("training used %d calls after the restriction, %d before; want %d fewer", used, was, at.Excluded)
	}
	if got := after.Report.Test.Excluded; got != 0 {
		t.Errorf("the test part excluded %d calls; the subject has none there", got)
	}
}

// TestModelTrainNeedsLabels refuses to train, with Conflict and a message
// saying what is missing, when either part of the period has fewer than
// 10 fraud or 10 genuine labels, or there are no records at all; nothing
// is stored.
func TestModelTrainNeedsLabels(t *testing.T) {
	t.Parallel()
	// labels returns one call an hour over three days, labelled by pick
	// from its index (0..71).
	labels := func(pick func(i int) string) []historyRow {
		rows := make([]historyRow, 72)
		for i := range rows {
			l := pick(i)
			rows[i] = historyRow{
				CallRef: fmt.Sprintf("c%d", i), StartedAt: modelStart.Add(time.Duration(i) * time.Hour).Format(time.RFC3339Nano),
				Caller: fmt.Sprintf("+4474005%05d", i), Dialled: "+442079460123", Label: l,
			}
		}
		return rows
	}
	for _, tc := range []struct {
		name string
		rows []historyRow
		want []string // in the message
	}{
		{"no records", nil, []string{"no call records"}},
		{"no labels", labels(func(int) string { return "" }), []string{"training part", "0 fraud and 0 genuine", "at least 10"}},
		{"few fraud", labels(func(i int) string {
			if i%12 == 0 {
				return "fraud" // 6 in all
			}
			return "genuine"
		}), []string{"training part", "4 fraud and 44 genuine", "at least 10"}},
		// The last third (hours 48..71) has 9 genuine and 15 fraud labels.
		{"few genuine in the test part", labels(func(i int) string {
			if i < 48 {
				return []string{"fraud", "genuine"}[i%2]
			}
			if i < 57 {
				return "genuine"
			}
			return "fraud"
		}), []string{"test part", "15 fraud and 9 genuine", "at least 10"}},
		// Enough of each in both parts, but the training part's fraud is
		// all in its first hours: none in the latest calls, which training
		// holds out to calibrate on.
		{"no fraud in the calibration slice", labels(func(i int) string {
			if i < 10 || (i >= 48 && i < 60) {
				return "fraud"
			}
			return "genuine"
		}), []string{"training part", "calibration slice", "label more calls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			e := newModelEnv(t, sim.Traffic{}, tc.rows)
			_, err := e.n.TrainModel(ctx, modelTenant, TrainOptions{})
			if call.ErrorCode(err) != call.Conflict {
				t.Fatalf("TrainModel: %v; want Conflict", err)
			}
			for _, w := range tc.want {
				if msg := call.ErrorMessage(err); !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			if vs, err := e.n.Models(ctx, modelTenant); err != nil || len(vs) != 0 {
				t.Errorf("after the refusal the tenant has models %v (%v)", vs, err)
			}
			if l, s := e.n.engine.Models(modelTenant); l != nil || s != nil {
				t.Error("after the refusal the engine holds a model")
			}
		})
	}
}
