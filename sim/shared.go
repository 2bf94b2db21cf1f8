package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"text/tabwriter"
	"time"
)

// poolStream separates the pool's random streams from Generate's.
const poolStream = 0x9001_0000_0000

// own returns the k-th number of the common fraud pool in place of the
// fraudster's fresh number, with probability g.shared; otherwise fresh. It
// draws nothing when g.shared is 0, so traffic without sharing is
// unchanged.
func (g *gen) own(fresh string) string {
	if g.shared <= 0 || !g.chance(g.shared) {
		return fresh
	}
	n := poolNumber(g.pool, g.pooled)
	g.pooled++
	return n
}

// poolNumber is the k-th number of the fraud pool seeded by pool: a GB
// mobile, the same for every tenant generated with that Pool.
func poolNumber(pool int64, k int) string {
	g := gen{r: rand.New(rand.NewPCG(uint64(pool), poolStream+uint64(k)))}
	return g.gbMobile()
}

// DefaultSharedFraud is the Config.SharedFraud of a Sharing experiment
// whose Config leaves it zero.
const DefaultSharedFraud = 0.5

// Sharing measures what the fraud-sharing consortium adds: one member's
// analysts confirm fraud, then the same traffic of a second bank runs at a
// tenant outside the consortium and at a tenant inside it, and the
// difference is the gain from sharing.
//
// The caller sets the consortium up on the server (terms version Terms,
// and a grace period long enough that a member that joined just now
// receives the signal) and creates the three tenants. The two B tenants
// should have the same policy.
type Sharing struct {
	URL  string       // the server's base URL
	HTTP *http.Client // nil: one with timeouts and a keep-alive pool
	// Terms is the consortium's current terms version, accepted on joining.
	Terms string
	// Member is tenant A's admin API key: Run joins it to the consortium
	// and runs its traffic first, its analysts' fraud labels (sim labels
	// with consortium fraud types) filing the consortium's reports.
	Member string
	// Without is the admin API key of a tenant that is not a member and
	// never joins; it gets the second bank's traffic without sharing.
	Without string
	// With is the admin API key of a tenant that Run joins just before
	// running the second bank's traffic at it: the same traffic with
	// sharing.
	With string
	// Config is A's traffic. The second bank's is the same with Seed+1, so
	// the banks share only the pooled fraudsters. SharedFraud 0 means
	// DefaultSharedFraud (negative: none); a zero Start is set once to now
	// minus Span, so the B runs send identical traffic.
	Config Config
}

// SharingSummary is what a Sharing experiment found.
type SharingSummary struct {
	Member Summary // tenant A's run
	// Confirmed is how many distinct numbers A's analysts confirmed as
	// fraud; Callers how many of them called the second bank, and
	// SharedCalls how many fraud calls they made there (that run's
	// screened calls).
	Confirmed, Callers, SharedCalls int
	Without, With                   SharingArm
}

// SharingArm is the second bank's traffic screened without or with the
// consortium.
type SharingArm struct {
	Summary Summary
	// SharedFlagRecall and SharedBlockRecall are the share of the fraud
	// calls from numbers A confirmed that were flagged or blocked, and
	// blocked (NaN when there were none).
	SharedFlagRecall, SharedBlockRecall float64
	// GenuineFlagged is the share of genuine calls flagged or blocked: the
	// false-positive rate (NaN without genuine calls).
	GenuineFlagged float64
	// SharedCalls is the number of fraud calls from numbers A confirmed
	// screened in this run.
	SharedCalls int
}

// Run runs the experiment: A's traffic, then the second bank's at Without,
// then the same at With. It fails when a tenant's consortium standing is
// not what the experiment needs (A or With not a member after joining,
// With not receiving the signal, Without a member), or when a run fails.
func (s Sharing) Run(ctx context.Context) (SharingSummary, error) {
	switch {
	case s.Member == "" || s.Without == "" || s.With == "":
		return SharingSummary{}, errors.New("sim: sharing: three tenants' API keys are required")
	case s.Member == s.Without || s.Member == s.With || s.Without == s.With:
		return SharingSummary{}, errors.New("sim: sharing: the three tenants' API keys must differ")
	case s.Terms == "":
		return SharingSummary{}, errors.New("sim: sharing: the consortium's terms version is required")
	}
	a := s.Config
	if a.SharedFraud == 0 {
		a.SharedFraud = DefaultSharedFraud
	}
	if a.Span <= 0 {
		a.Span = DefaultSpan
	}
	if a.Start.IsZero() {
		a.Start = time.Now().Add(-a.Span).Truncate(time.Second)
	}
	b := a
	b.Seed++

	member := &Client{URL: s.URL, Key: s.Member, HTTP: s.HTTP}
	without := &Client{URL: s.URL, Key: s.Without, HTTP: s.HTTP}
	with := &Client{URL: s.URL, Key: s.With, HTTP: s.HTTP}

	if err := member.join(ctx, s.Terms, false); err != nil {
		return SharingSummary{}, fmt.Errorf("sim: sharing: the member: %w", err)
	}
	st, err := without.consortiumStatus(ctx)
	if err != nil {
		return SharingSummary{}, fmt.Errorf("sim: sharing: the tenant without sharing: %w", err)
	}
	if st.Member {
		return SharingSummary{}, errors.New("sim: sharing: the tenant without sharing is a consortium member")
	}

	var out SharingSummary
	ra, sum, err := setupAndRun(ctx, member, a)
	out.Member = sum
	if err != nil {
		return out, fmt.Errorf("sim: sharing: the member's traffic: %w", err)
	}
	confirmed := map[string]bool{}
	for i, c := range ra.calls {
		if c.Fraud && ra.labelled[i] && c.Request.Caller != "anonymous" {
			confirmed[c.Request.Caller] = true
		}
	}
	out.Confirmed = len(confirmed)

	tb := Generate(b)
	rw, sum, err := runOn(ctx, without, tb, b)
	out.Without = arm(rw, sum, confirmed)
	if err != nil {
		return out, fmt.Errorf("sim: sharing: traffic without sharing: %w", err)
	}
	if err := with.join(ctx, s.Terms, true); err != nil {
		return out, fmt.Errorf("sim: sharing: the tenant with sharing: %w", err)
	}
	rs, sum, err := runOn(ctx, with, tb, b)
	out.With = arm(rs, sum, confirmed)
	if err != nil {
		return out, fmt.Errorf("sim: sharing: traffic with sharing: %w", err)
	}
	callers := map[string]bool{}
	for _, c := range tb.Calls {
		if c.Fraud && confirmed[c.Request.Caller] {
			callers[c.Request.Caller] = true
			out.SharedCalls++
		}
	}
	out.Callers = len(callers)
	return out, nil
}

// setupAndRun generates cfg's traffic and runs it at c.
func setupAndRun(ctx context.Context, c *Client, cfg Config) (*runner, Summary, error) {
	return runOn(ctx, c, Generate(cfg), cfg)
}

// runOn sets c's tenant up for t and runs it. The runner is never nil.
func runOn(ctx context.Context, c *Client, t Traffic, cfg Config) (*runner, Summary, error) {
	if err := c.Setup(ctx, t); err != nil {
		return &runner{}, Summary{}, err
	}
	r, s, err := run(ctx, c, t, cfg)
	if r == nil {
		r = &runner{}
	}
	return r, s, err
}

// arm measures one run of the second bank's traffic against the numbers
// the member confirmed.
func arm(r *runner, s Summary, confirmed map[string]bool) SharingArm {
	var shared, sharedHit, sharedBlock, genuine, genuineHit int
	for i, o := range r.out {
		if !o.ok {
			continue
		}
		c := &r.calls[i]
		hit := o.action == "flag" || o.action == "block"
		switch {
		case c.Fraud && confirmed[c.Request.Caller]:
			shared++
			if hit {
				sharedHit++
			}
			if o.action == "block" {
				sharedBlock++
			}
		case !c.Fraud:
			genuine++
			if hit {
				genuineHit++
			}
		}
	}
	return SharingArm{
		Summary:          s,
		SharedFlagRecall: ratio(sharedHit, shared), SharedBlockRecall: ratio(sharedBlock, shared),
		GenuineFlagged: ratio(genuineHit, genuine),
		SharedCalls:    shared,
	}
}

// memberStatus is the part of GET /v1/consortium the experiment reads.
type memberStatus struct {
	Member   bool `json:"member"`
	Receives bool `json:"receives"`
}

// consortiumStatus returns the tenant's consortium standing.
func (c *Client) consortiumStatus(ctx context.Context) (memberStatus, error) {
	hc := c.client(1)
	if c.HTTP == nil {
		defer hc.CloseIdleConnections()
	}
	var st memberStatus
	err := c.do(ctx, hc, http.MethodGet, "/v1/consortium", nil, &st)
	return st, err
}

// join accepts the consortium's terms for the tenant (already being a
// member is fine) and checks it is a member afterwards and, with receive,
// that it receives the signal.
func (c *Client) join(ctx context.Context, terms string, receive bool) error {
	hc := c.client(1)
	if c.HTTP == nil {
		defer hc.CloseIdleConnections()
	}
	err := c.do(ctx, hc, http.MethodPut, "/v1/consortium/membership", map[string]string{"terms": terms}, nil)
	var apiErr *APIError
	if err != nil && !(errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict) {
		return fmt.Errorf("joining the consortium: %w", err)
	}
	st, err := c.consortiumStatus(ctx)
	switch {
	case err != nil:
		return err
	case !st.Member:
		return fmt.Errorf("not a consortium member after joining (terms %q current?)", terms)
	case receive && !st.Receives:
		return errors.New("a member that does not receive the consortium signal: the consortium needs a grace period")
	}
	return nil
}

// Write prints the comparison, ending with the line "without sharing:
// recall X, with sharing: recall Y on the N calls from numbers other
// members confirmed".
func (s SharingSummary) Write(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "the member's analysts confirmed %d numbers as fraud; %d of them made %d fraud calls to the second bank\n",
		s.Confirmed, s.Callers, s.SharedCalls); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\twithout sharing\twith sharing\t\n")
	row := func(name string, f func(SharingArm) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", name, f(s.Without), f(s.With))
	}
	row("flag or block recall, calls from confirmed numbers", func(a SharingArm) string { return figure(a.SharedFlagRecall) })
	row("block recall, calls from confirmed numbers", func(a SharingArm) string { return figure(a.SharedBlockRecall) })
	row("flag or block recall, all fraud", func(a SharingArm) string { return figure(a.Summary.FlagRecall) })
	row("flag or block precision, all calls", func(a SharingArm) string { return figure(a.Summary.FlagPrecision) })
	row("genuine calls flagged or blocked", func(a SharingArm) string { return percent(a.GenuineFlagged) })
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "without sharing: recall %s, with sharing: recall %s on the %d calls from numbers other members confirmed\n",
		figure(s.Without.SharedFlagRecall), figure(s.With.SharedFlagRecall), s.With.SharedCalls)
	return err
}

func percent(f float64) string {
	if f != f {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", 100*f)
}
