package node

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/model"
	"github.com/ringfence/ringfence/store"
)

// TrainOptions choose the data and settings of a training run.
type TrainOptions struct {
	From, To  time.Time // labelled records started in [From, To); zero To: now, zero From: a year before To
	TestShare float64   // the latest share of the period kept to evaluate on; 0 => 1/3
	Seed      uint64
	// Promote makes the new model live at once when it beats the live
	// scoring on the test calls on both ROC AUC and recall at 0.5%
	// false-positive rate; otherwise it stays in shadow.
	Promote bool
}

// ModelView describes a stored model version.
type ModelView struct {
	Version   int           `json:"version"`
	Status    string        `json:"status"`
	TrainedAt time.Time     `json:"trained_at"`
	CreatedBy string        `json:"created_by"`
	Report    *model.Report `json:"report,omitempty"`
}

// minTrainingLabels is the fewest labelled calls of each kind a training
// run accepts.
const minTrainingLabels = 10

// TrainModel trains a model on the tenant's labelled call records: the
// earlier part of the period to train, the later part to test, compared
// with the live scores those test calls got. Subjects who restricted or
// objected to processing are left out, as are unlabelled calls; the report
// counts both. The model is stored as the next version in shadow (scored
// beside the live scoring and recorded, never acted on) and, with
// opts.Promote, made live if it wins. Audited.
func (n *Node) TrainModel(ctx context.Context, tenant string, opts TrainOptions) (ModelView, error) {
	if err := n.rec.sync(ctx); err != nil {
		return ModelView{}, err
	}
	ex, live, err := n.examples(ctx, tenant, opts.From, opts.To)
	if err != nil {
		return ModelView{}, err
	}
	share := opts.TestShare
	if share == 0 {
		share = 1.0 / 3
	}
	if share <= 0 || share >= 1 {
		return ModelView{}, call.Errorf(call.Invalid, "test_share: must be between 0 and 1")
	}
	cut := ex[0].At.Add(time.Duration(float64(ex[len(ex)-1].At.Sub(ex[0].At)) * (1 - share)))
	i := 0
	for i < len(ex) && ex[i].At.Before(cut) {
		i++
	}
	train, test, baseline := ex[:i], ex[i:], live[i:]
	if err := enoughLabels(train, "training"); err != nil {
		return ModelView{}, err
	}
	if err := enoughLabels(test, "test"); err != nil {
		return ModelView{}, err
	}
	m, trep, err := model.Train(train, model.Options{Balanced: true, Seed: opts.Seed})
	if call.ErrorCode(err) == call.Invalid {
		// The request was well formed; the stored labels cannot be trained
		// on (such as no fraud among the latest calls, held out to calibrate).
		return ModelView{}, call.Errorf(call.Conflict, "the training part of the period cannot be trained on: %s (label more calls, or widen from/to)", call.ErrorMessage(err))
	}
	if err != nil {
		return ModelView{}, err
	}
	p, err := n.Policy(tenant)
	if err != nil {
		return ModelView{}, err
	}
	rep := model.Evaluate(m, test, baseline, model.Thresholds{Flag: p.FlagAt, Block: p.BlockAt})
	rep.Training = trep.Training
	mj, err := json.Marshal(m)
	if err != nil {
		return ModelView{}, err
	}
	rj, err := json.Marshal(rep)
	if err != nil {
		return ModelView{}, err
	}
	versions, err := n.store.Models(ctx, tenant)
	if err != nil {
		return ModelView{}, err
	}
	next := 1
	if len(versions) > 0 {
		next = versions[0].Version + 1
	}
	now := n.now().UTC()
	row := store.Model{Tenant: tenant, Version: next, Status: store.ModelShadow, Model: mj, Report: rj, TrainedAt: now, CreatedAt: now, CreatedBy: actor(ctx)}
	if err := n.store.PutModel(ctx, row); err != nil {
		return ModelView{}, err
	}
	if err := n.audit(ctx, tenant, "model.train", strconv.Itoa(next), map[string]any{
		"training": rep.Training, "auc": rep.Model.AUC, "baseline_auc": rep.Baseline.AUC}); err != nil {
		return ModelView{}, err
	}
	if err := n.loadModels(ctx, tenant); err != nil {
		return ModelView{}, err
	}
	view := ModelView{Version: next, Status: store.ModelShadow, TrainedAt: now, CreatedBy: row.CreatedBy, Report: &rep}
	if opts.Promote && beats(rep) {
		if err := n.SetModelStatus(ctx, tenant, next, store.ModelLive); err != nil {
			return view, err
		}
		view.Status = store.ModelLive
	}
	return view, nil
}

// beats reports whether the model beat the live scoring on the agreed
// metrics: ROC AUC and recall at 0.5% false-positive rate.
func beats(r model.Report) bool {
	if r.Model == nil || r.Baseline == nil || len(r.Model.RecallAtFPR) == 0 || len(r.Baseline.RecallAtFPR) == 0 {
		return false
	}
	return r.Model.AUC > r.Baseline.AUC && r.Model.RecallAtFPR[0].Recall > r.Baseline.RecallAtFPR[0].Recall
}

func enoughLabels(ex []model.Example, part string) error {
	var fraud, genuine int
	for _, e := range ex {
		switch {
		case e.Exclude || e.Unlabelled:
		case e.Fraud:
			fraud++
		default:
			genuine++
		}
	}
	if fraud < minTrainingLabels || genuine < minTrainingLabels {
		return call.Errorf(call.Conflict, "the %s part of the period has %d fraud and %d genuine labelled calls; at least %d of each are needed (label more calls, or widen from/to)", part, fraud, genuine, minTrainingLabels)
	}
	return nil
}

// examples reads the tenant's call records started in [from, to), oldest
// first, as training examples with the live score each got. Features come
// from the stored call and verdict, so training sees what scoring saw.
func (n *Node) examples(ctx context.Context, tenant string, from, to time.Time) ([]model.Example, []float64, error) {
	t, err := n.Tenant(tenant)
	if err != nil {
		return nil, nil, err
	}
	if to.IsZero() {
		to = n.now()
	}
	if from.IsZero() {
		from = to.AddDate(-1, 0, 0)
	}
	x := model.Extractor{Region: t.Region, Location: model.Zone(t.Region), Routes: n.engine}
	var ex []model.Example
	var live []float64
	f := store.CallFilter{From: from, To: to, Limit: 1000}
	for {
		rows, err := n.store.Calls(ctx, tenant, f)
		if err != nil {
			return nil, nil, err
		}
		for _, row := range rows {
			c, err := n.openCall(row)
			if err != nil {
				return nil, nil, err
			}
			v := signalVerdict(c.Verdict)
			e := model.Example{At: c.StartedAt, X: x.Extract(nil, c, &v), Fraud: row.Review == call.Fraud}
			e.Unlabelled = row.Review != call.Fraud && row.Review != call.Genuine
			for _, p := range [][]byte{row.CallerPseudonym, row.UserPseudonym} {
				if restricted, objected := n.Limits(tenant, p); restricted || objected {
					e.Exclude = true
				}
			}
			ex = append(ex, e)
			live = append(live, c.Verdict.Score)
		}
		if len(rows) < f.Limit {
			break
		}
		f.Before = rows[len(rows)-1].ID
	}
	if len(ex) == 0 {
		return nil, nil, call.Errorf(call.Conflict, "no call records between %s and %s to train on", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	// Newest first from the store; oldest first for a time split.
	idx := make([]int, len(ex))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return ex[a].At.Compare(ex[b].At) })
	sx, sl := make([]model.Example, len(ex)), make([]float64, len(ex))
	for i, j := range idx {
		sx[i], sl[i] = ex[j], live[j]
	}
	return sx, sl, nil
}

// signalVerdict is a stored verdict as the signals made it: without the
// model's own markers (a model-scored verdict keeps the signal markers as
// evidence).
func signalVerdict(v call.Verdict) call.Verdict {
	out := v
	out.Markers = make([]call.Marker, 0, len(v.Markers))
	for _, m := range v.Markers {
		if strings.HasPrefix(m.Code, "model.") {
			continue
		}
		m.Detail = strings.TrimPrefix(m.Detail, "evidence; ")
		out.Markers = append(out.Markers, m)
	}
	return out
}

// SetModelStatus makes a version live (promote, or roll back to an older
// one), the shadow, or retired, on every node. Audited.
func (n *Node) SetModelStatus(ctx context.Context, tenant string, version int, status string) error {
	if _, err := n.tenantKeys(tenant); err != nil {
		return err
	}
	if status != store.ModelLive && status != store.ModelShadow && status != store.ModelRetired {
		return call.Errorf(call.Invalid, "status: must be live, shadow or retired")
	}
	if err := n.store.SetModelStatus(ctx, tenant, version, status); err != nil {
		return err
	}
	if err := n.audit(ctx, tenant, "model."+status, strconv.Itoa(version), nil); err != nil {
		return err
	}
	return n.loadModels(ctx, tenant)
}

// Models lists the tenant's model versions, newest first.
func (n *Node) Models(ctx context.Context, tenant string) ([]ModelView, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return nil, err
	}
	ms, err := n.store.Models(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]ModelView, len(ms))
	for i, m := range ms {
		out[i] = ModelView{Version: m.Version, Status: m.Status, TrainedAt: m.TrainedAt, CreatedBy: m.CreatedBy}
	}
	return out, nil
}

// ModelReport returns a stored version with its evaluation report.
func (n *Node) ModelReport(ctx context.Context, tenant string, version int) (ModelView, error) {
	if _, err := n.tenantKeys(tenant); err != nil {
		return ModelView{}, err
	}
	m, err := n.store.Model(ctx, tenant, version)
	if err != nil {
		return ModelView{}, err
	}
	v := ModelView{Version: m.Version, Status: m.Status, TrainedAt: m.TrainedAt, CreatedBy: m.CreatedBy}
	if m.Report != nil {
		v.Report = new(model.Report)
		if err := json.Unmarshal(m.Report, v.Report); err != nil {
			return ModelView{}, fmt.Errorf("decode report of model %d: %w", version, err)
		}
	}
	return v, nil
}

// loadModels reads the tenant's live and shadow models into the engine.
func (n *Node) loadModels(ctx context.Context, tenant string) error {
	live, shadow, err := n.store.ActiveModels(ctx, tenant)
	if err != nil {
		return err
	}
	lm, err := decodeModel(live)
	if err != nil {
		return err
	}
	sm, err := decodeModel(shadow)
	if err != nil {
		return err
	}
	return n.engine.SetModels(tenant, lm, sm)
}

func decodeModel(row *store.Model) (*model.Model, error) {
	if row == nil {
		return nil, nil
	}
	m := new(model.Model)
	if err := json.Unmarshal(row.Model, m); err != nil {
		return nil, fmt.Errorf("decode model %d: %w", row.Version, err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("model %d: %w", row.Version, err)
	}
	m.Label = strconv.Itoa(row.Version)
	return m, nil
}

// EvaluateModel evaluates a stored version on the tenant's labelled
// records started in [from, to), against the live scores those calls got.
func (n *Node) EvaluateModel(ctx context.Context, tenant string, version int, from, to time.Time) (model.Report, error) {
	if err := n.rec.sync(ctx); err != nil {
		return model.Report{}, err
	}
	row, err := n.store.Model(ctx, tenant, version)
	if err != nil {
		return model.Report{}, err
	}
	m, err := decodeModel(&row)
	if err != nil {
		return model.Report{}, err
	}
	ex, live, err := n.examples(ctx, tenant, from, to)
	if err != nil {
		return model.Report{}, err
	}
	if err := enoughLabels(ex, "evaluation"); err != nil {
		return model.Report{}, err
	}
	p, err := n.Policy(tenant)
	if err != nil {
		return model.Report{}, err
	}
	rep := model.Evaluate(m, ex, live, model.Thresholds{Flag: p.FlagAt, Block: p.BlockAt})
	return rep, n.audit(ctx, tenant, "model.evaluate", strconv.Itoa(version), map[string]any{"auc": rep.Model.AUC, "baseline_auc": rep.Baseline.AUC})
}
