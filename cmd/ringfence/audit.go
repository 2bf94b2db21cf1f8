package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/ringfence/ringfence/audit"
)

// auditCmd verifies the audit log or signs a checkpoint of it.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "checkpoint") {
		return errors.New("usage: ringfence audit verify | ringfence audit checkpoint  [--config FILE]")
	}
	sub := args[0]
	c, rest, err := parseFlags("audit "+sub, args[1:], stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("audit %s: unexpected argument %q", sub, rest[0])
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		return err
	}
	defer m.Close()
	if sub == "checkpoint" {
		cp, err := m.Audit.Checkpoint(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "checkpoint at seq %d, hash %x, key %s\n", cp.Seq, cp.Hash, cp.KeyID)
		return nil
	}
	rep, err := audit.Verify(ctx, m.Store, m.auditKey())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep.String())
	if !rep.OK() {
		return errors.New("audit log verification failed")
	}
	return nil
}
