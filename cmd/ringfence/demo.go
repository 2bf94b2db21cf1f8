package main

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/console"
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
		httpFlags(fs, c)
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
	// HTTPS, with a self-signed pair made for the demo unless one is given.
	var roots *x509.CertPool
	cacert := ""
	if c.HTTP.CertFile == "" {
		if c.HTTP.CertFile, c.HTTP.KeyFile, roots, err = selfSigned(filepath.Join(c.Data, "tls")); err != nil {
			return err
		}
		cacert = " --cacert " + c.HTTP.CertFile
		fmt.Fprintf(stderr, "DEMO: serving HTTPS with a self-signed certificate (%s); your browser will ask you to accept it.\n", c.HTTP.CertFile)
	}
	m := &Main{Config: c, Log: newLogger(c, stderr)}
	if err := m.Run(ctx); err != nil {
		return err
	}
	defer m.Close()
	url := "https://" + m.Addr
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
	}}
	keys := make([]string, len(demoTenants))
	for i, dt := range demoTenants {
		if keys[i], err = demoKey(ctx, m, dt.id, dt.name); err != nil {
			return err
		}
	}
	pw, err := demoUser(ctx, m)
	if err != nil {
		return err
	}
	if m.Consortium == nil {
		for i, dt := range demoTenants {
			cfg := sc
			cfg.Seed += int64(i)
			fmt.Fprintf(stdout, "\n== %s (%s): simulating %d calls over %s of event time\n", dt.name, dt.id, cfg.Calls, cfg.Span)
			sum, err := simulate(ctx, &sim.Client{URL: url, Key: keys[i], HTTP: hc}, cfg)
			if err != nil {
				return err
			}
			if err := sum.Write(stdout); err != nil {
				return err
			}
		}
	} else if err := demoSharing(ctx, m, sim.Sharing{URL: url, HTTP: hc}, keys, sc, stdout); err != nil {
		return fmt.Errorf("demo consortium: %w", err)
	}
	fmt.Fprintf(stdout, "\nringfence is serving on %s\n  console:  %s/console/  (tenant %s, user demo-analyst, password %s)\n  API:      %s/v1/  (OpenAPI: %s/v1/openapi.json)\n  metrics:  %s/metrics\n  data:     %s\n", url, url, demoTenants[0].id, pw, url, url, url, c.Data)
	fmt.Fprintf(stdout, "\nTry it:\n  curl -s%s -H 'Authorization: Bearer %s' -d '{\"caller\":\"+447400123456\",\"dialled\":\"+442038705200\"}' %s/v1/screen\n", cacert, keys[0], url)
	if exit {
		return nil
	}
	fmt.Fprintln(stdout, "A trickle of simulated calls keeps arriving at "+demoTenants[0].id+" (watch the console's live calls). Press Ctrl-C to stop.")
	live, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); demoTrickle(live, &sim.Client{URL: url, Key: keys[0], HTTP: hc}) }()
	err = m.Wait(ctx)
	stop()
	<-done
	return err
}

// demoTrickle screens a few simulated calls at the first demo bank every
// few seconds until ctx ends, so the console's live feed has something to
// show. No analyst labels them: that is the console user's job.
func demoTrickle(ctx context.Context, c *sim.Client) {
	const every = 5 * time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cfg := sim.Config{Seed: now.UnixNano(), Calls: 8, Start: now.Add(-every), Span: every, FraudShare: 0.25, LabelShare: -1, Concurrency: 1}
			sim.Run(ctx, c, sim.Generate(cfg), cfg) // a failed trickle is not worth stopping the demo for
		}
	}
}

// demoTerms is the demo consortium's terms version.
const demoTerms = "demo-1"

// demoControl is a tenant outside the consortium that gets the second
// bank's traffic too, to show what sharing gains.
var demoControl = struct{ id, name string }{"demo-building-society-control", "Demo Building Society (outside the consortium)"}

// demoSharing puts the demo banks in one consortium and runs the
// simulator's sharing experiment: the first bank's traffic (its analysts'
// fraud labels are shared), then the second bank's traffic at a control
// tenant outside the consortium and at the second bank inside it. It
// prints each bank's summary and the gain, then shows one number confirmed
// at the first bank blocked at the second on its next call.
func demoSharing(ctx context.Context, m *Main, exp sim.Sharing, keys []string, sc sim.Config, stdout io.Writer) error {
	svc := m.Consortium
	if _, err := m.Store.ConsortiumInfo(ctx, svc.ID); call.ErrorCode(err) == call.NotFound {
		info := store.ConsortiumInfo{Name: "ringfence demo consortium", Terms: demoTerms,
			Reciprocity: store.Reciprocity{ContributionWindow: 90 * 24 * time.Hour, GracePeriod: 30 * 24 * time.Hour}}
		if err := svc.Setup(ctx, "operator", info); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	control, err := demoKey(ctx, m, demoControl.id, demoControl.name)
	if err != nil {
		return err
	}
	// The second bank (and its control) block a number another member
	// confirmed as fraud in the last week; by default that only flags.
	for _, id := range []string{demoTenants[1].id, demoControl.id} {
		if err := blockRecentReports(ctx, m, id); err != nil {
			return err
		}
	}
	cfg := sc
	if cfg.Span <= 0 {
		cfg.Span = sim.DefaultSpan
	}
	cfg.Start = time.Now().Add(-cfg.Span).Truncate(time.Second)
	a, b := demoTenants[0], demoTenants[1]
	fmt.Fprintf(stdout, "\n== Consortium: %s and %s share confirmed fraud; %d calls each over %s of event time\n", a.name, b.name, cfg.Calls, cfg.Span)
	exp.Terms, exp.Member, exp.Without, exp.With, exp.Config = demoTerms, keys[0], control, keys[1], cfg
	sum, err := exp.Run(ctx)
	if err != nil {
		return err
	}
	for _, part := range []struct {
		title string
		sum   sim.Summary
	}{{a.name + " (" + a.id + ")", sum.Member}, {b.name + " (" + b.id + ", in the consortium)", sum.With.Summary}} {
		fmt.Fprintf(stdout, "\n== %s\n", part.title)
		if err := part.sum.Write(stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\n== Gain from sharing: %s's traffic outside the consortium (%s) and inside it\n", b.name, demoControl.id)
	if err := sum.Write(stdout); err != nil {
		return err
	}
	return demoOneNumber(ctx, m, stdout)
}

// blockRecentReports makes the tenant's policy block a number another
// member confirmed as fraud in the last 7 days.
func blockRecentReports(ctx context.Context, m *Main, tenant string) error {
	p, err := m.Node.Policy(tenant)
	if err != nil || p.Actions["consortium.recent"] == call.Block {
		return err
	}
	p.Actions = maps.Clone(p.Actions)
	p.Actions["consortium.recent"] = call.Block
	_, err = m.Node.PutPolicy(ctx, tenant, p)
	return err
}

// demoOneNumber shows one number, fresh in every run, confirmed as fraud
// at the first bank and blocked at the second on its next call.
func demoOneNumber(ctx context.Context, m *Main, stdout io.Writer) error {
	a, b := demoTenants[0].id, demoTenants[1].id
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
	fmt.Fprintf(stdout, "\n== One number, step by step\n")
	fmt.Fprintf(stdout, "  %s calls %s:       %-5s score %.3f\n", fraudster, b, before.Verdict.Action, before.Verdict.Score)
	fmt.Fprintf(stdout, "  an analyst at %s confirms a call from it as fraud (impersonation): the label files a consortium report\n", a)
	fmt.Fprintf(stdout, "  %s calls %s again: %-5s score %.3f  markers:", fraudster, b, after.Verdict.Action, after.Verdict.Score)
	for _, mk := range after.Verdict.Markers {
		fmt.Fprintf(stdout, " %s", mk.Code)
	}
	fmt.Fprintln(stdout)
	return nil
}

// demoUser creates the first demo tenant's console analyst, or gives it a
// fresh password in a demo directory used before, and returns the password.
func demoUser(ctx context.Context, m *Main) (string, error) {
	const id = "demo-analyst"
	pw, err := createUser(ctx, m.Store, demoTenants[0].id, id, call.Analyst, "")
	if call.ErrorCode(err) != call.Conflict {
		return pw, err
	}
	u, err := m.Store.User(ctx, demoTenants[0].id, id)
	if err != nil {
		return "", err
	}
	pw = crand.Text()
	if u.PasswordHash, err = console.HashPassword(pw); err != nil {
		return "", err
	}
	return pw, m.Store.UpdateUser(ctx, u)
}

// demoKey creates the tenant if needed and returns a fresh API key for it.
func demoKey(ctx context.Context, m *Main, id, name string) (string, error) {
	_, key, err := m.Node.CreateTenant(ctx, id, name, "GB")
	if call.ErrorCode(err) == call.Conflict {
		return m.Node.NewAPIKey(ctx, id, "demo", call.Admin)
	}
	return key, err
}
