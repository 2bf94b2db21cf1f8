// Command overload measures how a running ringfence behaves at and above
// the rate it can sustain, on its SIP front end (UDP) or on POST
// /v1/screen. The load is open loop: calls are sent on a fixed schedule
// (a constant arrival rate) whether or not earlier ones were answered, as
// independent callers do; a closed-loop client would slow down with the
// server and never overload it.
//
// For each step (an offered rate held for -duration) it prints the rate
// actually sent, the answers by outcome per second, the calls not answered
// within -wait, latency percentiles of the scored calls (those the engine
// evaluated) and of the policy answers (503, unscored), the answers that
// contradict the ingress route's failure policy, and the server's largest
// RSS during the step. bench/overload.sh drives it; see its header.
//
//	overload -key KEY -pid PID -rates 10000,20000 sip
//	overload -key KEY -pid PID -rates 5000,10000 http
//	overload -key KEY -pid PID -find -rates 4000 sip     # search the sustainable rate
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/sim"
)

type options struct {
	url        string
	key        string
	sip        string
	rates      []int
	duration   time.Duration
	wait       time.Duration
	pid        int
	calls      int
	seed       int64
	setup      bool
	failClosed map[string]bool
	find       bool
	findStep   time.Duration
	findP99    time.Duration
	maxRate    int
	csv        string
	label      string
	maxOut     int
	settle     bool
}

func main() {
	var o options
	var rates, closed string
	flag.StringVar(&o.url, "url", "http://127.0.0.1:18081", "ringfence HTTP API: setup, /metrics, and the target in http mode")
	flag.StringVar(&o.key, "key", os.Getenv("RINGFENCE_KEY"), "tenant API key (admin: the setup installs routes and the DNO list)")
	flag.StringVar(&o.sip, "sip", "127.0.0.1:5060", "ringfence SIP UDP address (sip mode)")
	flag.StringVar(&rates, "rates", "5000", "offered calls/s, one step each, comma-separated (with -find: the first rate tried)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each step sends")
	flag.DurationVar(&o.wait, "wait", 2*time.Second, "a call not answered within this is counted as lost")
	flag.IntVar(&o.pid, "pid", 0, "server process id: RSS from /proc and waiting for it to go idle between steps (0: RSS from /metrics)")
	flag.IntVar(&o.calls, "calls", 50000, "distinct simulated calls, cycled")
	flag.Int64Var(&o.seed, "seed", 7, "simulator seed")
	flag.BoolVar(&o.setup, "setup", true, "install the simulator's routes (with -fail-closed) and DNO numbers first")
	flag.StringVar(&closed, "fail-closed", "uk-domestic-2,intl-1,intl-us", "ingress routes set to fail closed (503 under overload); the others fail open (unscored)")
	flag.BoolVar(&o.find, "find", false, "search the sustainable rate: raise the rate by 25% per step until more than 1% of calls are not scored or their p99 is over -find-p99, print it last")
	flag.DurationVar(&o.findStep, "find-duration", 5*time.Second, "step length while searching")
	flag.DurationVar(&o.findP99, "find-p99", 200*time.Millisecond, "highest p99 latency of the scored calls a sustained step may have")
	flag.IntVar(&o.maxRate, "max-rate", 200000, "highest rate -find tries")
	flag.StringVar(&o.csv, "csv", "", "append one CSV row per step to this file")
	flag.StringVar(&o.label, "label", "", "label of this run in the CSV (e.g. before, after)")
	flag.IntVar(&o.maxOut, "max-outstanding", 8192, "http: requests waiting for an answer at most; above it a request is not sent and counted as such")
	flag.BoolVar(&o.settle, "settle", true, "with -pid, wait (up to 30 s) before each step until the server is idle")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: overload [flags] sip|http")
		flag.PrintDefaults()
	}
	flag.Parse()
	for _, f := range strings.Split(rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			fmt.Fprintf(os.Stderr, "overload: -rates: %q is not a positive rate\n", f)
			os.Exit(2)
		}
		o.rates = append(o.rates, r)
	}
	o.failClosed = map[string]bool{}
	for _, r := range strings.Split(closed, ",") {
		if r = strings.TrimSpace(r); r != "" {
			o.failClosed[r] = true
		}
	}
	if flag.NArg() != 1 || (flag.Arg(0) != "sip" && flag.Arg(0) != "http") {
		flag.Usage()
		os.Exit(2)
	}
	if o.key == "" {
		fmt.Fprintln(os.Stderr, "overload: -key (or RINGFENCE_KEY) is required")
		os.Exit(2)
	}
	if err := run(o, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		os.Exit(1)
	}
}

// generator runs one step: rate calls/s for d, and returns what came back.
type generator interface {
	step(rate int, d time.Duration) (*result, error)
	close()
}

func run(o options, mode string) error {
	traffic := sim.Generate(sim.Config{
		Seed: o.seed, Calls: o.calls, LabelShare: -1,
		Span: 24 * time.Hour, Start: time.Now().Add(-24 * time.Hour),
	})
	failOpen := map[string]bool{}
	for i, r := range traffic.Routes {
		r.FailOpen = !o.failClosed[r.ID]
		traffic.Routes[i] = r
		failOpen[r.ID] = r.FailOpen
	}
	if o.setup {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := (&sim.Client{URL: o.url, Key: o.key}).Setup(ctx, traffic)
		cancel()
		if err != nil {
			return err
		}
	}
	var g generator
	var err error
	if mode == "sip" {
		g, err = newSIPGen(o, traffic.Calls, failOpen)
	} else {
		g, err = newHTTPGen(o, traffic.Calls, failOpen)
	}
	if err != nil {
		return err
	}
	defer g.close()

	rss := rssReader(o)
	t := newTable(mode, o)
	t.header()
	one := func(rate int, d time.Duration) (*result, error) {
		if o.settle && o.pid > 0 {
			settle(o.pid)
		}
		stop := rss.watch()
		t0, ok0 := cpuTicks(o.pid)
		self0 := selfCPU()
		start := time.Now()
		r, err := g.step(rate, d)
		if err != nil {
			stop()
			return nil, err
		}
		r.rss = stop()
		r.cpu = -1
		if t1, ok1 := cpuTicks(o.pid); ok0 && ok1 {
			r.cpu = float64(t1-t0) / clockTicks / time.Since(start).Seconds()
		}
		r.genCPU = (selfCPU() - self0).Seconds() / time.Since(start).Seconds()
		if o.pid > 0 && !alive(o.pid) {
			r.died = true
		}
		t.row(r)
		if r.died {
			return r, fmt.Errorf("the server (pid %d) is gone", o.pid)
		}
		return r, nil
	}
	if !o.find {
		for _, rate := range o.rates {
			if _, err := one(rate, o.duration); err != nil {
				return err
			}
		}
		t.footer()
		return nil
	}
	best := 0
	for rate := o.rates[0]; rate <= o.maxRate; rate = rate * 5 / 4 {
		r, err := one(rate, o.findStep)
		if err != nil {
			return err
		}
		if !r.sustained(o.findP99) {
			break
		}
		best = rate
	}
	t.footer()
	if best == 0 {
		return errors.New("no step was sustained: lower the first rate")
	}
	fmt.Printf("sustainable %d\n", best)
	return nil
}
