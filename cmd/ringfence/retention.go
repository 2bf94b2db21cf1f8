package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// retentionCmd runs the retention purge once, on the store directly (a
// running server's own schedule does the same every hour).
func retentionCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		return errors.New("usage: ringfence retention run [--dry-run] [--config FILE]")
	}
	var dry bool
	c, rest, err := parseFlags("retention run", args[1:], stderr, func(fs *flag.FlagSet, c *Config) {
		fs.BoolVar(&dry, "dry-run", false, "count what is due without deleting anything")
	})
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("retention run: unexpected argument %q", rest[0])
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		return err
	}
	defer m.Close()
	rep, err := m.purge(ctx, dry)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
