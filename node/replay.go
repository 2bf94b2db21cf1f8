package node

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/screen"
	"github.com/ringfence/ringfence/store"
)

// Replay bounds.
const (
	maxReplayCalls   = 100_000 // calls a replay reads at most (the newest)
	maxReplayChanged = 50      // changed calls a replay lists
	replayPage       = 1000
)

// Replay is how a tenant's stored calls would have been judged under a
// candidate policy, beside how they were judged when screened. It holds no
// phone number except ReplayChange.Caller, which front ends must mask.
type Replay struct {
	Since        time.Time `json:"since"`
	Calls        int       `json:"calls"`         // stored calls read (started at or after Since)
	Replayed     int       `json:"replayed"`      // calls re-scored (Calls less the skipped)
	SkippedModel int       `json:"skipped_model"` // scored by a learned model: not replayable from markers
	Unscored     int       `json:"unscored"`      // never scored (a front end failed open): not replayable
	// Capped is true when more than 100,000 calls started since Since: the
	// newest 100,000 were replayed.
	Capped bool `json:"capped"`
	// Live counts the replayed calls by the action they were given when
	// screened; Candidate by the action under the candidate policy.
	Live      map[call.Action]int `json:"live"`
	Candidate map[call.Action]int `json:"candidate"`
	// ChangedCount is how many replayed calls change action; Changed lists
	// the newest 50 of them, newest first.
	ChangedCount int            `json:"changed_count"`
	Changed      []ReplayChange `json:"changed"`
}

// ReplayChange is one call whose action the candidate policy changes.
type ReplayChange struct {
	RecordID  string      `json:"record_id"`
	StartedAt time.Time   `json:"started_at"`
	From      call.Action `json:"from"` // as screened
	To        call.Action `json:"to"`   // under the candidate
	LiveScore float64     `json:"live_score"`
	Score     float64     `json:"score"`
	// Caller is the call's caller number, for a front end to show masked.
	// It is never written to the audit log.
	Caller call.Number `json:"-"`
}

// signalWeight is each marker code's default weight, as the engine uses it.
var signalWeight = func() map[string]float64 {
	m := make(map[string]float64, len(screen.Signals))
	for _, s := range screen.Signals {
		m[s.Code] = s.Weight
	}
	return m
}()

// ReplayPolicy re-scores the tenant's calls started at or after since under
// the candidate policy p, without changing anything. Each call is
// re-scored from its stored verdict's markers exactly as the engine scores:
// logistic(p.Prior + the sum of the markers' weights, each p.Weights[code]
// if set, else the code's default weight), then the least action of each
// marker (p.Actions) and p's thresholds. Calls scored by a learned model
// (verdict policy "v<N>+model-...") and unscored calls are counted apart.
// The markers' velocity and list facts are those at screening time: a
// replay answers "what would these verdicts have been", not "what would
// the engine say now". p.Shadow is ignored. Invalid if p is not a valid
// policy or names an unknown marker code; NotFound for an unknown tenant.
// Audited as policy.replay with counts only.
func (n *Node) ReplayPolicy(ctx context.Context, tenant string, p call.Policy, since time.Time) (Replay, error) {
	if _, err := n.Policy(tenant); err != nil {
		return Replay{}, err
	}
	if err := n.checkPolicy(p); err != nil {
		return Replay{}, err
	}
	if err := n.rec.sync(ctx); err != nil {
		return Replay{}, err
	}
	r := Replay{
		Since:     since.UTC(),
		Live:      map[call.Action]int{call.Allow: 0, call.Flag: 0, call.Block: 0},
		Candidate: map[call.Action]int{call.Allow: 0, call.Flag: 0, call.Block: 0},
		Changed:   []ReplayChange{},
	}
	f := store.CallFilter{From: since, Limit: replayPage}
	for r.Calls < maxReplayCalls {
		f.Limit = min(replayPage, maxReplayCalls-r.Calls)
		rows, err := n.store.Calls(ctx, tenant, f)
		if err != nil {
			return Replay{}, err
		}
		for _, row := range rows {
			if err := n.replayOne(&r, p, row); err != nil {
				return Replay{}, err
			}
		}
		if len(rows) < f.Limit {
			break
		}
		f.Before = rows[len(rows)-1].ID
	}
	if r.Calls == maxReplayCalls {
		f.Limit = 1
		more, err := n.store.Calls(ctx, tenant, f)
		if err != nil {
			return Replay{}, err
		}
		r.Capped = len(more) > 0
	}
	detail := map[string]any{
		"since": r.Since.Format(time.RFC3339), "calls": r.Calls, "replayed": r.Replayed,
		"skipped_model": r.SkippedModel, "unscored": r.Unscored, "changed": r.ChangedCount, "capped": r.Capped,
	}
	if err := n.audit(ctx, tenant, "policy.replay", "policy", detail); err != nil {
		return Replay{}, err
	}
	return r, nil
}

// replayOne re-scores one stored call into r.
func (n *Node) replayOne(r *Replay, p call.Policy, row store.Call) error {
	r.Calls++
	var v verdicts
	if err := json.Unmarshal(row.Verdict, &v); err != nil {
		return fmt.Errorf("decode verdict %s: %w", row.ID, err)
	}
	switch {
	case strings.Contains(v.Live.Policy, "+model-"):
		r.SkippedModel++
		return nil
	case !v.Live.Action.Valid():
		r.Unscored++
		return nil
	}
	r.Replayed++
	score, action := rescore(p, v.Live.Markers)
	r.Live[v.Live.Action]++
	r.Candidate[action]++
	if action == v.Live.Action {
		return nil
	}
	r.ChangedCount++
	if len(r.Changed) >= maxReplayChanged {
		return nil
	}
	ch := ReplayChange{RecordID: row.ID, StartedAt: row.StartedAt, From: v.Live.Action, To: action, LiveScore: v.Live.Score, Score: score}
	c, err := n.openCall(row) // only for the listed few: the caller, shown masked
	if err != nil {
		return err
	}
	ch.Caller = c.Caller
	r.Changed = append(r.Changed, ch)
	return nil
}

// rescore scores markers under p as the engine does (screen's policy
// apply and decide), summing in the markers' order so the floating-point
// result is the engine's to the bit. A code the engine no longer knows
// keeps its stored weight unless p overrides it.
func rescore(p call.Policy, markers []call.Marker) (float64, call.Action) {
	action := call.Allow
	logit := p.Prior
	for _, m := range markers {
		w, ok := p.Weights[m.Code]
		if !ok {
			if w, ok = signalWeight[m.Code]; !ok {
				w = m.Weight
			}
		}
		logit += w
		if a, ok := p.Actions[m.Code]; ok && a.Rank() > action.Rank() {
			action = a
		}
	}
	score := 1 / (1 + math.Exp(-logit))
	switch {
	case score >= p.BlockAt:
		action = call.Block
	case score >= p.FlagAt && action != call.Block:
		action = call.Flag
	}
	return score, action
}

// checkPolicy validates p as PutPolicy does: its fields, and the marker
// codes of its weights and actions.
func (n *Node) checkPolicy(p call.Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if math.IsNaN(p.Prior) {
		return call.Errorf(call.Invalid, "prior: must be a number")
	}
	for code, w := range p.Weights {
		if math.IsNaN(w) {
			return call.Errorf(call.Invalid, "weights.%s: must be a number", code)
		}
		if !n.engine.KnownMarker(code) {
			return call.Errorf(call.Invalid, "weights.%s: no such marker code (see docs/markers.md)", code)
		}
	}
	for code := range p.Actions {
		if !n.engine.KnownMarker(code) {
			return call.Errorf(call.Invalid, "actions.%s: no such marker code (see docs/markers.md)", code)
		}
	}
	return nil
}
