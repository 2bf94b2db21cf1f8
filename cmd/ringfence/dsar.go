package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ringfence/ringfence/store"
)

// dsarCmd lists a tenant's data-subject rights cases with their deadlines,
// for an operator watching what is due (privacy officers work on cases
// through the API).
func dsarCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return errors.New("usage: ringfence dsar list --tenant ID [--status open|awaiting_identity|paused|in_progress|completed|refused]")
	}
	var tenant, status string
	c, rest, err := parseFlags("dsar list", args[1:], stderr, func(fs *flag.FlagSet, c *Config) {
		fs.StringVar(&tenant, "tenant", "", "the tenant id")
		fs.StringVar(&status, "status", "", "only cases with this status")
	})
	if err != nil {
		return err
	}
	if tenant == "" || len(rest) != 0 {
		return errors.New("dsar list: --tenant ID is required and takes no arguments")
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		return err
	}
	defer m.Close()
	cases, err := m.Node.Cases(ctx, tenant, store.CaseFilter{Status: status, Limit: 1000})
	if err != nil {
		return err
	}
	now := time.Now()
	for _, cv := range cases {
		due := "clock not started"
		if d := cv.Deadline; d.Started {
			due = "due " + d.Due.Format("2006-01-02")
			if !cv.Status.Terminal() {
				switch left := d.DaysLeft(now); {
				case d.Overdue(now):
					due += fmt.Sprintf(" OVERDUE by %d days", -left)
				case d.Paused:
					due += " (paused)"
				default:
					due += fmt.Sprintf(" (%d days left)", left)
				}
			}
		}
		fmt.Fprintf(stdout, "%s  %-18s %-18s received %s  %s\n", cv.ID, cv.Type, cv.Status, cv.Received().Format("2006-01-02"), due)
	}
	fmt.Fprintf(stdout, "%d cases\n", len(cases))
	return nil
}
