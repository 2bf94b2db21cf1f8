package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/sim"
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
	fmt.Fprintf(stdout, "\nringfence is serving on %s\n  API:      %s/v1/  (OpenAPI: %s/v1/openapi.json)\n  metrics:  %s/metrics\n  data:     %s\n", url, url, url, url, c.Data)
	if exit {
		return nil
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	return m.Wait(ctx)
}

// demoKey creates the tenant if needed and returns a fresh API key for it.
func demoKey(ctx context.Context, m *Main, id, name string) (string, error) {
	_, key, err := m.Node.CreateTenant(ctx, id, name, "GB")
	if call.ErrorCode(err) == call.Conflict {
		return m.Node.NewAPIKey(ctx, id, "demo")
	}
	return key, err
}
