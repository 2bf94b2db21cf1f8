package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// replayNode is a node over a real SQLite file with an audit log and the
// tenant "bank" (home region GB, default policy).
func replayNode(t *testing.T) (*Node, *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, err := seal.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := audit.KeyFromSecret(mk.Derive("audit checkpoint v1"))
	n, err := Open(ctx, Config{Audit: audit.New(st, signer, "test", nil)}, st, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if _, _, err := n.CreateTenant(ctx, "bank", "", "GB"); err != nil {
		t.Fatal(err)
	}
	return n, st
}

const (
	replayDialled = "+442079460123"
	replayDenied  = "+447400555123"
)

// replayCalls screens five calls whose verdicts under the default policy
// (prior -4, flag at 0.5, block at 0.9, list.deny: block) are known by hand:
//
//	clean mobile             no marker                            0.018 allow
//	withheld                 cli.withheld +1.0                    0.047 allow
//	own number spoofed       cli.same_as_dialled +5.0             0.731 flag
//	... with From/PAI apart  + identity.from_pai_mismatch +1.5    0.924 block (by score)
//	deny-listed              list.deny +6.0 (action block)        0.881 block (by action)
func replayCalls(t *testing.T, n *Node) []*call.Call {
	t.Helper()
	ctx := t.Context()
	if _, err := n.AddListEntry(ctx, "bank", call.DenyList, replayDenied, "test", time.Time{}); err != nil {
		t.Fatal(err)
	}
	in := []Incoming{
		{Caller: "+447400123456"},
		{Caller: "anonymous"},
		{Caller: replayDialled},
		{Caller: replayDialled, Signalling: call.Signalling{From: "<sip:" + replayDialled + "@carrier.example>", PAI: []string{"<sip:+447400999888@carrier.example>"}}},
		{Caller: replayDenied},
	}
	want := []struct {
		action call.Action
		code   string
	}{{call.Allow, ""}, {call.Allow, "cli.withheld"}, {call.Flag, "cli.same_as_dialled"}, {call.Block, "identity.from_pai_mismatch"}, {call.Block, "list.deny"}}
	var out []*call.Call
	for i, c := range in {
		c.Tenant, c.Dialled = "bank", replayDialled
		got, err := n.Screen(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if got.Verdict.Action != want[i].action || (want[i].code != "" && !got.Verdict.Has(want[i].code)) {
			t.Fatalf("call %d: %s %v, want %s with %s (the test's hand-set verdicts no longer hold)", i, got.Verdict.Action, got.Verdict.Markers, want[i].action, want[i].code)
		}
		out = append(out, got)
	}
	return out
}

func TestReplayPolicy(t *testing.T) {
	t.Parallel()
	n, st := replayNode(t)
	ctx := t.Context()
	calls := replayCalls(t, n)
	live, err := n.Policy("bank")
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-24 * time.Hour)

	t.Run("rescore matches the engine to the bit", func(t *testing.T) {
		for _, c := range calls {
			score, action := rescore(live, c.Verdict.Markers)
			if score != c.Verdict.Score || action != c.Verdict.Action {
				t.Errorf("call %s: rescored %v %s, engine %v %s", c.ID, score, action, c.Verdict.Score, c.Verdict.Action)
			}
		}
	})

	counts := func(allow, flag, block int) map[call.Action]int {
		return map[call.Action]int{call.Allow: allow, call.Flag: flag, call.Block: block}
	}
	with := func(f func(p *call.Policy)) call.Policy {
		p := live
		p.Weights, p.Actions = map[string]float64{}, map[string]call.Action{}
		for k, v := range live.Weights {
			p.Weights[k] = v
		}
		for k, v := range live.Actions {
			p.Actions[k] = v
		}
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name      string
		policy    call.Policy
		candidate map[call.Action]int
		changed   []call.Action // from, to pairs, newest first
	}{
		{"live policy", live, counts(2, 1, 2), nil},
		{"block at 0.95", with(func(p *call.Policy) { p.BlockAt = 0.95 }), counts(2, 2, 1), []call.Action{call.Block, call.Flag}},
		{"block at 0.95, no deny action", with(func(p *call.Policy) { p.BlockAt = 0.95; delete(p.Actions, "list.deny") }),
			counts(2, 3, 0), []call.Action{call.Block, call.Flag, call.Block, call.Flag}},
		// logistic(-4+4.5) = 0.62: flagged.
		{"withheld weighs 4.5", with(func(p *call.Policy) { p.Weights["cli.withheld"] = 4.5 }), counts(1, 2, 2), []call.Action{call.Allow, call.Flag}},
		{"withheld blocks", with(func(p *call.Policy) { p.Actions["cli.withheld"] = call.Block }), counts(1, 1, 3), []call.Action{call.Allow, call.Block}},
		// Prior -2: clean 0.119 and withheld 0.269 flag (at 0.1); own
		// number spoofed logistic(3) = 0.953 blocks.
		{"prior -2, flag at 0.1", with(func(p *call.Policy) { p.Prior, p.FlagAt = -2, 0.1 }), counts(0, 2, 3),
			[]call.Action{call.Flag, call.Block, call.Allow, call.Flag, call.Allow, call.Flag}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(auditEntries(t, st, "policy.replay"))
			r, err := n.ReplayPolicy(ctx, "bank", tc.policy, since)
			if err != nil {
				t.Fatal(err)
			}
			if r.Calls != 5 || r.Replayed != 5 || r.SkippedModel != 0 || r.Unscored != 0 || r.Capped {
				t.Fatalf("calls %d replayed %d skipped %d unscored %d capped %v", r.Calls, r.Replayed, r.SkippedModel, r.Unscored, r.Capped)
			}
			if !sameCounts(r.Live, counts(2, 1, 2)) {
				t.Errorf("live counts %v", r.Live)
			}
			if !sameCounts(r.Candidate, tc.candidate) {
				t.Errorf("candidate counts %v, want %v", r.Candidate, tc.candidate)
			}
			if r.ChangedCount != len(tc.changed)/2 || len(r.Changed) != len(tc.changed)/2 {
				t.Fatalf("changed %d (%d listed), want %d", r.ChangedCount, len(r.Changed), len(tc.changed)/2)
			}
			for i, ch := range r.Changed {
				if ch.From != tc.changed[2*i] || ch.To != tc.changed[2*i+1] {
					t.Errorf("change %d: %s -> %s, want %s -> %s", i, ch.From, ch.To, tc.changed[2*i], tc.changed[2*i+1])
				}
				if !ch.Caller.Present() && !ch.Caller.Withheld {
					t.Errorf("change %d: no caller to show masked", i)
				}
			}
			if got := len(auditEntries(t, st, "policy.replay")); got != before+1 {
				t.Errorf("policy.replay audit entries %d, want %d", got, before+1)
			}
		})
	}

	t.Run("since bounds the calls", func(t *testing.T) {
		r, err := n.ReplayPolicy(ctx, "bank", live, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if r.Calls != 0 || r.Replayed != 0 {
			t.Fatalf("calls %d replayed %d from the future", r.Calls, r.Replayed)
		}
	})

	t.Run("live policy unchanged", func(t *testing.T) {
		if p, _ := n.Policy("bank"); p.Version != live.Version || p.BlockAt != live.BlockAt {
			t.Fatalf("replay changed the live policy: %+v", p)
		}
	})
}

// TestReplaySkips checks calls scored by a model and unscored calls are
// counted apart, not replayed.
func TestReplaySkips(t *testing.T) {
	t.Parallel()
	n, _ := replayNode(t)
	ctx := t.Context()
	now := time.Now().UTC()
	caller := n.engine.Number("bank", "+447400123456")
	dialled := n.engine.Number("bank", replayDialled)
	for i, v := range []call.Verdict{
		{Score: 0.97, Action: call.Block, Policy: "v1+model-3", Markers: []call.Marker{{Code: "model.rest", Weight: 7}}},
		{Action: call.Unscored, Policy: "v1"},
		{Score: 0.018, Action: call.Allow, Policy: "v1"},
	} {
		c := &call.Call{ID: n.ids.Next(now), Tenant: "bank", Caller: caller, Dialled: dialled, StartedAt: now.Add(time.Duration(i) * time.Second), Verdict: v, Review: call.Review{Status: call.Unreviewed}}
		if err := n.rec.enqueue(ctx, c, false, false); err != nil {
			t.Fatal(err)
		}
	}
	live, _ := n.Policy("bank")
	r, err := n.ReplayPolicy(ctx, "bank", live, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.Calls != 3 || r.Replayed != 1 || r.SkippedModel != 1 || r.Unscored != 1 || r.ChangedCount != 0 {
		t.Fatalf("%+v", r)
	}
	if !sameCounts(r.Live, map[call.Action]int{call.Allow: 1}) || !sameCounts(r.Candidate, map[call.Action]int{call.Allow: 1}) {
		t.Fatalf("live %v candidate %v", r.Live, r.Candidate)
	}
}

func TestReplayPolicyInvalid(t *testing.T) {
	t.Parallel()
	n, _ := replayNode(t)
	live, _ := n.Policy("bank")
	for _, tc := range []struct {
		name   string
		tenant string
		edit   func(p *call.Policy)
		code   string
		field  string
	}{
		{"block below flag", "bank", func(p *call.Policy) { p.BlockAt = 0.3 }, call.Invalid, "block_at:"},
		{"unknown weight code", "bank", func(p *call.Policy) { p.Weights = map[string]float64{"no.such": 1} }, call.Invalid, "weights.no.such:"},
		{"unknown action code", "bank", func(p *call.Policy) { p.Actions = map[string]call.Action{"no.such": call.Block} }, call.Invalid, "actions.no.such:"},
		{"bad action", "bank", func(p *call.Policy) { p.Actions = map[string]call.Action{"cli.withheld": "maybe"} }, call.Invalid, "actions.cli.withheld:"},
		{"unknown tenant", "nobody", func(p *call.Policy) {}, call.NotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := live
			tc.edit(&p)
			_, err := n.ReplayPolicy(t.Context(), tc.tenant, p, time.Now().Add(-time.Hour))
			if call.ErrorCode(err) != tc.code {
				t.Fatalf("err %v, want code %s", err, tc.code)
			}
			if msg := call.ErrorMessage(err); tc.field != "" && (len(msg) < len(tc.field) || msg[:len(tc.field)] != tc.field) {
				t.Fatalf("message %q does not name the field %s", msg, tc.field)
			}
		})
	}
}

func sameCounts(got, want map[call.Action]int) bool {
	for _, a := range []call.Action{call.Allow, call.Flag, call.Block, call.Unscored} {
		if got[a] != want[a] {
			return false
		}
	}
	return true
}

func auditEntries(t *testing.T, st *sqlite.DB, action string) []store.AuditEntry {
	t.Helper()
	es, err := st.AuditEntries(context.Background(), store.AuditFilter{Tenant: "bank", ActionPrefix: action, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return es
}
