package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// tenantCmd creates tenants and API keys, working on the store directly.
func tenantCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "key") {
		return errors.New("usage: ringfence tenant create NAME [--region GB] | ringfence tenant key NAME")
	}
	sub := args[0]
	var region, display string
	c, rest, err := parseFlags("tenant "+sub, args[1:], stderr, func(fs *flag.FlagSet, c *Config) {
		if sub == "create" {
			fs.StringVar(&region, "region", "GB", "home country (ISO 3166 alpha-2) for national number formats")
			fs.StringVar(&display, "name", "", "display name (default: the id)")
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
	if sub == "create" {
		t, k, err := m.Node.CreateTenant(ctx, rest[0], display, region)
		if err != nil {
			return err
		}
		key = k
		fmt.Fprintf(stdout, "created tenant %s (region %s); its API key, shown once:\n", t.ID, t.Region)
	} else {
		if key, err = m.Node.NewAPIKey(ctx, rest[0], "cli"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new API key for tenant %s, shown once:\n", rest[0])
	}
	fmt.Fprintln(stdout, key)
	return nil
}
