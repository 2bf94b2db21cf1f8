package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/sim"
	"github.com/ringfence/ringfence/store"
)

// demoTenants are the tenants the demo creates, each screened with its own
// simulated traffic.
var demoTenants = []struct{ id, name string }{
	{"demo-bank", "Demo Bank plc"},
	{"demo-building-society", "Demo Building Society"},
}

// demoCmd starts a server on SQLite in a local directory, creates the demo
// tenants, simulates traffic against itself, prints the summary and serves
// until interrupted (or exits with --exit).
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var exit bool
	var sc sim.Config
	c, _, err := parseFlags("demo", append([]string{"--data=ringfence-demo"}, args...), stderr, func(fs *flag.FlagSet, c *Config) {
		fs.StringVar(&c.HTTP.Addr, "http", c.HTTP.Addr, "HTTP listen address")
		fs.BoolVar(&exit, "exit", false, "exit after the summary instead of serving")
		simFlags(fs, &sc)
	})
	if err != nil {
		return err
	}
	if c.MasterKeyEnv == "" {
		if _, err := os.Stat(c.MasterKeyFile); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(c.MasterKeyFile), 0o700); err != nil {
				return err
			}
			if _, err := seal.GenerateMasterKeyFile(c.MasterKeyFile); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "\n!!! DEMO: generated a new master key in %s.\n!!! Anyone with this file can read the demo data. For real data keep the key\n!!! outside the data directory (--master-key-file) or in an environment variable.\n\n", c.MasterKeyFile)
		}
	}
	m := &Main{Config: c, Log: newLogger(c, stderr)}
	if err := m.Run(ctx); err != nil {
		return err
	}
	defer m.Close()
	url := "http://" + m.Addr
	for i, dt := range demoTenants {
		key, err := demoKey(ctx, m, dt.id, dt.name)
		if err != nil {
			return err
		}
		cfg := sc
		cfg.Seed += int64(i)
		fmt.Fprintf(stdout, "\n== %s (%s): simulating %d calls over %s of event time\n", dt.name, dt.id, cfg.Calls, cfg.Span)
		sum, err := simulate(ctx, &sim.Client{URL: url, Key: key}, cfg)
		if err != nil {
			return err
		}
		if err := sum.Write(stdout); err != nil {
			return err
		}
		if i == 0 {
			defer fmt.Fprintf(stdout, "\nTry it:\n  curl -s -H 'Authorization: Bearer %s' -d '{\"caller\":\"+447400123456\",\"dialled\":\"+442038705200\"}' %s/v1/screen\n", key, url)
		}
	}
	if m.Consortium != nil {
		if err := demoConsortium(ctx, m, stdout); err != nil {
			return fmt.Errorf("demo consortium: %w", err)
		}
	}
	fmt.Fprintf(stdout, "\nringfence is serving on %s\n  API:      %s/v1/  (OpenAPI: %s/v1/openapi.json)\n  metrics:  %s/metrics\n  data:     %s\n", url, url, url, url, c.Data)
	if exit {
		return nil
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	return m.Wait(ctx)
}

// demoConsortium puts the demo tenants in one consortium and shows a
// fraud confirmed at the first protecting the second on its next call.
func demoConsortium(ctx context.Context, m *Main, stdout io.Writer) error {
	svc := m.Consortium
	if _, err := m.Store.ConsortiumInfo(ctx, svc.ID); call.ErrorCode(err) == call.NotFound {
		info := store.ConsortiumInfo{Name: "ringfence demo consortium", Terms: "demo-1",
			Reciprocity: store.Reciprocity{ContributionWindow: 90 * 24 * time.Hour, GracePeriod: 30 * 24 * time.Hour}}
		if err := svc.Setup(ctx, "operator", info); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	for _, dt := range demoTenants {
		if err := svc.Join(ctx, dt.id, "operator", "demo-1"); err != nil && call.ErrorCode(err) != call.Conflict {
			return err
		}
	}
	a, b := demoTenants[0].id, demoTenants[1].id
	// The second bank's policy blocks a number another member confirmed
	// as fraud in the last week (by default that only flags).
	p, err := m.Node.Policy(b)
	if err != nil {
		return err
	}
	if p.Actions["consortium.recent"] != call.Block {
		p.Actions = maps.Clone(p.Actions)
		p.Actions["consortium.recent"] = call.Block
		if _, err := m.Node.PutPolicy(ctx, b, p); err != nil {
			return err
		}
	}
	// A number no earlier demo run reported.
	fraudster, dialled := fmt.Sprintf("+447911%06d", rand.IntN(1_000_000)), "+442079460000"
	screen := func(tenant string) (*call.Call, error) {
		return m.Node.Screen(ctx, node.Incoming{Tenant: tenant, Caller: fraudster, Dialled: dialled})
	}
	before, err := screen(b)
	if err != nil {
		return err
	}
	first, err := screen(a)
	if err != nil {
		return err
	}
	analyst := node.As(ctx, call.Principal{Tenant: a, Role: call.Analyst, Actor: "user:demo-analyst"})
	if _, err := m.Node.Label(analyst, a, first.ID, call.Label{Label: call.Fraud, FraudType: "impersonation", By: "demo-analyst"}); err != nil {
		return err
	}
	after, err := screen(b)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n== Consortium: %s and %s share confirmed fraud\n", a, b)
	fmt.Fprintf(stdout, "  %s calls %s:       %-5s score %.3f\n", fraudster, b, before.Verdict.Action, before.Verdict.Score)
	fmt.Fprintf(stdout, "  (%s's policy blocks numbers another member confirmed as fraud in the last 7 days)\n", b)
	fmt.Fprintf(stdout, "  an analyst at %s confirms a call from it as fraud (impersonation)\n", a)
	fmt.Fprintf(stdout, "  %s calls %s again: %-5s score %.3f  markers:", fraudster, b, after.Verdict.Action, after.Verdict.Score)
	for _, mk := range after.Verdict.Markers {
		fmt.Fprintf(stdout, " %s", mk.Code)
	}
	fmt.Fprintln(stdout)
	return nil
}

// demoKey creates the tenant if needed and returns a fresh API key for it.
func demoKey(ctx context.Context, m *Main, id, name string) (string, error) {
	_, key, err := m.Node.CreateTenant(ctx, id, name, "GB")
	if call.ErrorCode(err) == call.Conflict {
		return m.Node.NewAPIKey(ctx, id, "demo", call.Admin)
	}
	return key, err
}
