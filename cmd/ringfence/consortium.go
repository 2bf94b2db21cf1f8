package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

const consortiumUsage = `usage:
  ringfence consortium create [--name NAME] --terms VERSION [--window 2160h] [--grace 720h] [--expiry 9504h]
  ringfence consortium add --terms VERSION TENANT     opt a tenant in (it accepted the terms VERSION)
  ringfence consortium remove TENANT                  opt a tenant out; its reports leave the shared view
  ringfence consortium stats                          members, reports, entries, disputes, impact
  ringfence consortium resolve --state upheld|accepted --resolution CODE DISPUTE_ID`

// consortiumCmd is the operator's side of the fraud-sharing consortium.
func consortiumCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(consortiumUsage)
	}
	sub := args[0]
	var name, terms, state, resolution string
	var window, grace, expiry time.Duration
	c, rest, err := parseFlags("consortium "+sub, args[1:], stderr, func(fs *flag.FlagSet, c *Config) {
		switch sub {
		case "create":
			fs.StringVar(&name, "name", "", "display name")
			fs.DurationVar(&window, "window", 90*24*time.Hour, "reciprocity: members receive the signal while their newest report is at most this old")
			fs.DurationVar(&grace, "grace", 30*24*time.Hour, "reciprocity: and for this long after joining")
			fs.DurationVar(&expiry, "expiry", 0, "an entry expires this long after its newest report (default 13 months, at most 6 years)")
			fallthrough
		case "add":
			fs.StringVar(&terms, "terms", "", "the terms version")
		case "resolve":
			fs.StringVar(&state, "state", "", "upheld (the entry counts again) or accepted (the entry is removed)")
			fs.StringVar(&resolution, "resolution", "", "a resolution code, e.g. evidence_confirmed, subject_rectified")
		}
	})
	if err != nil {
		return err
	}
	want := map[string]int{"create": 0, "add": 1, "remove": 1, "stats": 0, "resolve": 1}
	n, ok := want[sub]
	if !ok {
		return errors.New(consortiumUsage)
	}
	if len(rest) != n {
		return fmt.Errorf("consortium %s: takes %d argument(s) after its flags\n%s", sub, n, consortiumUsage)
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		return err
	}
	defer m.Close()
	svc := m.Consortium
	if svc == nil {
		return errors.New(`consortium: consortium.id is "off" in the configuration`)
	}
	switch sub {
	case "create":
		info := store.ConsortiumInfo{Name: name, Terms: terms, Expiry: expiry, Reciprocity: store.Reciprocity{ContributionWindow: window, GracePeriod: grace}}
		if err := svc.Setup(ctx, "operator", info); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "consortium %s set up (terms %s)\n", svc.ID, terms)
	case "add":
		if _, err := m.Node.Tenant(rest[0]); err != nil {
			return err
		}
		if err := svc.Join(ctx, rest[0], "operator", terms); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s joined consortium %s\n", rest[0], svc.ID)
	case "remove":
		if err := svc.Leave(ctx, rest[0], "operator"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s left consortium %s; its reports are withdrawn\n", rest[0], svc.ID)
	case "stats":
		st, err := svc.Stats(ctx, "operator")
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case "resolve":
		s := store.DisputeState(state)
		if s != store.DisputeUpheld && s != store.DisputeAccepted {
			return call.Errorf(call.Invalid, "--state: must be upheld or accepted")
		}
		if err := svc.Resolve(ctx, "operator", rest[0], s, resolution, ""); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dispute %s resolved: %s\n", rest[0], state)
	}
	return nil
}
