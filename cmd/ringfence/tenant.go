package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ringfence/ringfence/call"
)

// tenantCmd creates tenants and API keys, working on the store directly.
func tenantCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "key" && args[0] != "offboard") {
		return errors.New("usage: ringfence tenant create [--region GB] [--name NAME] ID | ringfence tenant key [--role ROLE] [--key-name NAME] ID | ringfence tenant offboard --yes ID")
	}
	sub := args[0]
	var region, display, role, keyName string
	var yes bool
	c, rest, err := parseFlags("tenant "+sub, args[1:], stderr, func(fs *flag.FlagSet, c *Config) {
		if sub == "create" {
			fs.StringVar(&region, "region", "GB", "home country (ISO 3166 alpha-2) for national number formats")
			fs.StringVar(&display, "name", "", "display name (default: the id)")
		} else if sub == "offboard" {
			fs.BoolVar(&yes, "yes", false, "confirm: delete every record of the tenant and destroy its keys, irreversibly")
		} else {
			fs.StringVar(&role, "role", "admin", "the key's role: admin, analyst, auditor, privacy_officer, compliance_officer, integration or recorder")
			fs.StringVar(&keyName, "key-name", "cli", "the key's name, as the audit log shows who used it")
		}
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("tenant %s: give exactly one tenant id (flags go before it)", sub)
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		return err
	}
	defer m.Close()
	var key string
	if sub == "offboard" {
		if !yes {
			return errors.New("tenant offboard: this deletes every record of the tenant and destroys its keys; add --yes to confirm")
		}
		counts, err := m.Node.Offboard(ctx, rest[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s offboarded: %d call records, %d labels, %d list entries, %d links deleted; keys destroyed\n", rest[0], counts.Calls, counts.Labels, counts.ListEntries, counts.Links)
		return nil
	}
	if sub == "create" {
		t, k, err := m.Node.CreateTenant(ctx, rest[0], display, region)
		if err != nil {
			return err
		}
		key = k
		fmt.Fprintf(stdout, "created tenant %s (region %s); its API key, shown once:\n", t.ID, t.Region)
	} else {
		r, err := call.ParseRole(role)
		if err != nil {
			return err
		}
		if key, err = m.Node.NewAPIKey(ctx, rest[0], keyName, r); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new %s API key for tenant %s, shown once:\n", r, rest[0])
	}
	fmt.Fprintln(stdout, key)
	return nil
}
