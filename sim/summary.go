package sim

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is what a Run found. Quality figures are computed over the calls
// screened successfully; a figure with an empty denominator (no fraud, no
// flags, no blocks) is NaN.
type Summary struct {
	Calls    int // calls screened (2xx answer)
	Errors   int // requests of any kind that failed: transport error or non-2xx
	Requests int // requests sent: screens, call ends and labels
	Labels   int // labels posted (fraud and genuine)

	ByAction   map[string]int           // screened calls by the server's action
	ByScenario map[string]ScenarioStats // by Call.Scenario

	// Flag treats action flag or block as a positive, Block only block.
	FlagPrecision, FlagRecall   float64
	BlockPrecision, BlockRecall float64
	AUC                         float64 // ROC AUC of the server's score against the truth

	Latency       Percentiles // client round trip of screen requests
	ServerLatency Percentiles // the server's evaluated_in_us
	EndLatency    Percentiles // client round trip of call-end updates
	Elapsed       time.Duration
	Rate          float64 // screens per second
}

// ScenarioStats counts one scenario's screened calls by action.
type ScenarioStats struct {
	Fraud              bool
	Calls              int
	Allow, Flag, Block int
}

// Percentiles of a set of durations (nearest rank).
type Percentiles struct {
	P50, P90, P99, Max time.Duration
}

// percentiles sorts d and returns its percentiles; zero for an empty d.
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(pct int) time.Duration { return d[(pct*len(d)+99)/100-1] }
	return Percentiles{P50: at(50), P90: at(90), P99: at(99), Max: d[len(d)-1]}
}

// AUC returns the area under the ROC curve of scores against the truth
// (true: fraud), from the rank-sum (Mann-Whitney U) statistic with tied
// scores counted half. It is NaN when either class is empty. Only the first
// min(len(scores), len(fraud)) pairs are used.
func AUC(scores []float64, fraud []bool) float64 {
	n := min(len(scores), len(fraud))
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	var pos, neg int
	var rankSum float64
	for i := 0; i < n; {
		j := i + 1
		for j < n && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		rank := float64(i+1+j) / 2 // mean of ranks i+1..j
		for _, k := range idx[i:j] {
			if fraud[k] {
				pos++
				rankSum += rank
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	p, q := float64(pos), float64(neg)
	return (rankSum - p*(p+1)/2) / (p * q)
}

func ratio(num, den int) float64 {
	if den == 0 {
		return math.NaN()
	}
	return float64(num) / float64(den)
}

// Write prints a compact report: screened calls per scenario by action, the
// quality figures and the latencies.
func (s Summary) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	names := slices.Clone(Scenarios)
	for name := range s.ByScenario {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names[len(Scenarios):])
	width := 0
	for _, name := range names {
		width = max(width, len(name))
	}
	// Numbers align right; names are padded here so they stay on the left.
	fmt.Fprintf(tw, "%-*s\ttruth\tcalls\tallow\tflag\tblock\tflagged\t\n", width, "scenario")
	for _, name := range names {
		st, ok := s.ByScenario[name]
		if !ok {
			continue
		}
		truth := "genuine"
		if st.Fraud {
			truth = "fraud"
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%d\t%d\t%d\t%d\t%.1f%%\t\n", width, name, truth, st.Calls, st.Allow, st.Flag, st.Block,
			100*float64(st.Flag+st.Block)/float64(st.Calls))
	}
	fmt.Fprintf(tw, "%-*s\t\t%d\t%d\t%d\t%d\t\t\n", width, "all", s.Calls, s.ByAction["allow"], s.ByAction["flag"], s.ByAction["block"])
	if err := tw.Flush(); err != nil {
		return err
	}
	var other []string // e.g. "unscored" from a server failing open
	for action, n := range s.ByAction {
		if action != "allow" && action != "flag" && action != "block" {
			other = append(other, fmt.Sprintf("%s %d", action, n))
		}
	}
	if len(other) > 0 {
		slices.Sort(other)
		if _, err := fmt.Fprintf(w, "other actions: %s\n", strings.Join(other, ", ")); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\nflag or block: precision %s  recall %s\n"+
		"block:         precision %s  recall %s\n"+
		"AUC %s\n"+
		"screen   client %s\n"+
		"         server %s\n"+
		"call end client %s\n"+
		"%d calls in %s (%.0f/s), %d labels, %d of %d requests failed\n",
		figure(s.FlagPrecision), figure(s.FlagRecall),
		figure(s.BlockPrecision), figure(s.BlockRecall),
		figure(s.AUC), s.Latency, s.ServerLatency, s.EndLatency,
		s.Calls, s.Elapsed.Round(time.Millisecond), s.Rate, s.Labels, s.Errors, s.Requests)
	return err
}

func figure(f float64) string {
	if math.IsNaN(f) {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", f)
}

// String formats the percentiles as "p50 1.2ms  p90 ...".
func (p Percentiles) String() string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s", short(p.P50), short(p.P90), short(p.P99), short(p.Max))
}

// short rounds d to three significant-ish digits for display.
func short(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
