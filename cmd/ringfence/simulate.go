package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ringfence/ringfence/sim"
)

// simFlags registers the simulator's traffic flags.
func simFlags(fs *flag.FlagSet, c *sim.Config) {
	fs.IntVar(&c.Calls, "calls", 20000, "screen requests to send")
	fs.Int64Var(&c.Seed, "seed", 1, "seed: the same seed gives the same traffic")
	fs.DurationVar(&c.Span, "span", 7*24*time.Hour, "event-time span the calls spread over")
	fs.Float64Var(&c.FraudShare, "fraud", sim.DefaultFraudShare, "share of calls that are fraud")
	fs.Float64Var(&c.LabelShare, "label", sim.DefaultLabelShare, "share of fraud calls an analyst confirms (negative: none)")
	fs.IntVar(&c.Concurrency, "concurrency", sim.DefaultConcurrency, "parallel requests")
}

// simulateCmd drives a running server with simulated traffic.
func simulateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "server URL")
	key := fs.String("key", os.Getenv("RINGFENCE_KEY"), "tenant API key (default $RINGFENCE_KEY)")
	var cfg sim.Config
	simFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("simulate: --key (or $RINGFENCE_KEY) is required: create a tenant with `ringfence tenant create NAME`")
	}
	sum, err := simulate(ctx, &sim.Client{URL: *url, Key: *key}, cfg)
	if err != nil {
		return err
	}
	return sum.Write(stdout)
}

// simulate sets the tenant up and runs the traffic, ending with the events
// of the last Span before now so velocity windows line up with real time.
func simulate(ctx context.Context, c *sim.Client, cfg sim.Config) (sim.Summary, error) {
	if cfg.Span <= 0 {
		cfg.Span = sim.DefaultSpan
	}
	cfg.Start = time.Now().Add(-cfg.Span).Truncate(time.Second)
	t := sim.Generate(cfg)
	if err := c.Setup(ctx, t); err != nil {
		return sim.Summary{}, fmt.Errorf("simulate: setting up the tenant: %w", err)
	}
	return sim.Run(ctx, c, t, cfg)
}
