package sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// GenuineLabelShare is the share of genuine calls the server flagged or
// blocked that an analyst clears with a "genuine" label.
const GenuineLabelShare = 0.2

// Run screens every call of t, dispatching in event-time order with
// cfg.Concurrency requests in flight, so one caller's calls reach the server
// roughly in order. After each screen it reports the call's end: what the
// Call says, or "rejected" after 0 s when the server blocked it. cfg.LabelAfter
// calls after a call was dispatched, it labels the call: "fraud" for
// cfg.LabelShare of fraud calls, "genuine" for GenuineLabelShare of genuine
// calls the server flagged or blocked; the labels of the last calls follow
// the last screen. Which calls get labels is fixed by cfg.Seed and the call's
// index.
//
// A transport failure or non-2xx answer to any request is counted in
// Summary.Errors and the run goes on. Run returns the summary with an error
// when more than 1% of requests failed, or when ctx ended (the summary then
// covers the calls screened so far). Only Region "GB" is implemented; Run
// refuses others.
func Run(ctx context.Context, c *Client, t Traffic, cfg Config) (Summary, error) {
	_, s, err := run(ctx, c, t, cfg)
	return s, err
}

// run is Run, also returning the runner for its per-call outcomes and
// labels (nil when it refused the config).
func run(ctx context.Context, c *Client, t Traffic, cfg Config) (*runner, Summary, error) {
	cfg = cfg.withDefaults()
	if cfg.Region != "GB" {
		return nil, Summary{}, fmt.Errorf("sim: region %q: only GB traffic is implemented", cfg.Region)
	}
	hc := c.client(cfg.Concurrency)
	if c.HTTP == nil {
		defer hc.CloseIdleConnections()
	}
	r := &runner{
		c: c, hc: hc, calls: t.Calls, cfg: cfg,
		out:      make([]outcome, len(t.Calls)),
		labelled: make([]bool, len(t.Calls)),
		finished: make([]bool, len(t.Calls)),
	}
	r.cond = sync.NewCond(&r.mu)
	start := time.Now()
	r.run(ctx)
	s := r.summary(time.Since(start))
	switch {
	case ctx.Err() != nil:
		return r, s, fmt.Errorf("sim: run stopped after %d of %d calls: %w", s.Calls, len(t.Calls), ctx.Err())
	case s.Errors*100 > s.Requests:
		return r, s, fmt.Errorf("sim: %d of %d requests failed, first: %w", s.Errors, s.Requests, r.firstErr)
	}
	return r, s, nil
}

// runner is the state of one Run.
type runner struct {
	c     *Client
	hc    *http.Client
	calls []Call
	cfg   Config
	out   []outcome // by call index; written by the one worker that screens the call
	// labelled is by call index: the label was posted. Written by the one
	// worker that labels the call; read after the run.
	labelled []bool

	mu       sync.Mutex
	cond     *sync.Cond // signalled when a call is finished
	finished []bool     // by call index: screened and its end reported (or failed)
	requests int
	failures int
	labels   int
	firstErr error
}

// outcome is the server's answer to one screen request.
type outcome struct {
	ok       bool
	recordID string
	score    float64
	action   string
	rtt      time.Duration // client round trip
	server   time.Duration // evaluated_in_us
	endRTT   time.Duration // client round trip of the call end; 0 if it failed
}

// job is one unit of work: screen call i, or label it when label is set.
type job struct {
	i     int
	label string // "", "fraud" or "genuine"
}

func (r *runner) run(ctx context.Context) {
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				r.work(ctx, j)
			}
		})
	}
	send := func(j job) bool {
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	}
	n := len(r.calls)
	for k := 0; k < n+r.cfg.LabelAfter; k++ {
		if i := k - r.cfg.LabelAfter; i >= 0 {
			if l := r.labelFor(i); l != "" && !send(job{i: i, label: l}) {
				break
			}
		}
		if k < n && !send(job{i: k}) {
			break
		}
	}
	close(jobs)
	wg.Wait()
}

func (r *runner) work(ctx context.Context, j job) {
	if j.label != "" {
		r.label(ctx, j.i, j.label)
		return
	}
	r.screen(ctx, j.i)
	r.mu.Lock()
	r.finished[j.i] = true
	r.mu.Unlock()
	r.cond.Broadcast()
}

// labelFor waits for call i to finish and says which label, if any, an
// analyst gives it.
func (r *runner) labelFor(i int) string {
	r.mu.Lock()
	for !r.finished[i] {
		r.cond.Wait()
	}
	r.mu.Unlock()
	o, c, p := r.out[i], &r.calls[i], draw(r.cfg.Seed, i)
	switch {
	case !o.ok:
		return ""
	case c.Fraud && p < r.cfg.LabelShare:
		return "fraud"
	case !c.Fraud && (o.action == "flag" || o.action == "block") && p < GenuineLabelShare:
		return "genuine"
	}
	return ""
}

type screenAnswer struct {
	RecordID      string  `json:"record_id"`
	Score         float64 `json:"score"`
	Action        string  `json:"action"`
	EvaluatedInUs int64   `json:"evaluated_in_us"`
}

// callEnd is the body of PATCH /v1/calls/{id}.
type callEnd struct {
	DurationS   float64 `json:"duration_s"`
	Result      string  `json:"result"`
	EgressRoute string  `json:"egress_route,omitempty"`
}

// label is the body of POST /v1/calls/{id}/label.
type label struct {
	Label     string `json:"label"`
	FraudType string `json:"fraud_type,omitempty"`
	Note      string `json:"note,omitempty"`
}

func (r *runner) screen(ctx context.Context, i int) {
	c := &r.calls[i]
	var a screenAnswer
	start := time.Now()
	err := r.c.do(ctx, r.hc, http.MethodPost, "/v1/screen", c.Request, &a)
	rtt := time.Since(start)
	if err == nil && a.RecordID == "" {
		err = errors.New("POST /v1/screen: answer without record_id")
	}
	if !r.count(err) {
		return
	}
	r.out[i] = outcome{
		ok: true, recordID: a.RecordID, score: a.Score, action: a.Action,
		rtt: rtt, server: time.Duration(a.EvaluatedInUs) * time.Microsecond,
	}
	end := callEnd{DurationS: c.Duration.Seconds(), Result: c.Result, EgressRoute: c.Egress}
	if a.Action == "block" {
		end = callEnd{Result: "rejected"}
	}
	start = time.Now()
	if r.count(r.c.do(ctx, r.hc, http.MethodPatch, "/v1/calls/"+url.PathEscape(a.RecordID), end, nil)) {
		r.out[i].endRTT = time.Since(start)
	}
}

func (r *runner) label(ctx context.Context, i int, kind string) {
	c := &r.calls[i]
	body := label{Label: kind, Note: "sim: " + c.Scenario}
	if kind == "fraud" {
		body.FraudType = c.FraudType
	}
	path := "/v1/calls/" + url.PathEscape(r.out[i].recordID) + "/label"
	if r.count(r.c.do(ctx, r.hc, http.MethodPost, path, body, nil)) {
		r.labelled[i] = true
		r.mu.Lock()
		r.labels++
		r.mu.Unlock()
	}
}

// count records a request's outcome and reports whether it succeeded.
func (r *runner) count(err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if err != nil {
		r.failures++
		if r.firstErr == nil {
			r.firstErr = err
		}
	}
	return err == nil
}

func (r *runner) summary(elapsed time.Duration) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{
		Errors: r.failures, Requests: r.requests, Labels: r.labels,
		ByAction: map[string]int{}, ByScenario: map[string]ScenarioStats{},
		Elapsed: elapsed,
	}
	var (
		scores                 []float64
		truth                  []bool
		rtt, server, endRTT    []time.Duration
		fraud, flagged, caught int // caught: fraud flagged or blocked
		blocked, stopped       int // stopped: fraud blocked
	)
	for i, o := range r.out {
		if !o.ok {
			continue
		}
		c := &r.calls[i]
		s.Calls++
		s.ByAction[o.action]++
		st := s.ByScenario[c.Scenario]
		st.Fraud = c.Fraud
		st.Calls++
		switch o.action {
		case "allow":
			st.Allow++
		case "flag":
			st.Flag++
		case "block":
			st.Block++
		}
		s.ByScenario[c.Scenario] = st

		hit, block := o.action == "flag" || o.action == "block", o.action == "block"
		if c.Fraud {
			fraud++
		}
		if hit {
			flagged++
			if c.Fraud {
				caught++
			}
		}
		if block {
			blocked++
			if c.Fraud {
				stopped++
			}
		}
		scores, truth = append(scores, o.score), append(truth, c.Fraud)
		rtt, server = append(rtt, o.rtt), append(server, o.server)
		if o.endRTT > 0 {
			endRTT = append(endRTT, o.endRTT)
		}
	}
	s.FlagPrecision, s.FlagRecall = ratio(caught, flagged), ratio(caught, fraud)
	s.BlockPrecision, s.BlockRecall = ratio(stopped, blocked), ratio(stopped, fraud)
	s.AUC = AUC(scores, truth)
	s.Latency, s.ServerLatency, s.EndLatency = percentiles(rtt), percentiles(server), percentiles(endRTT)
	if elapsed > 0 {
		s.Rate = float64(s.Calls) / elapsed.Seconds()
	}
	return s
}

// draw returns a number in [0,1) fixed by seed and i (SplitMix64), so the
// choice of labelled calls does not depend on scheduling.
func draw(seed int64, i int) float64 {
	z := uint64(seed) ^ uint64(i)*0x9e3779b97f4a7c15
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}
