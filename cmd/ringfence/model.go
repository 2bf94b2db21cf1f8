package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ringfence/ringfence/model"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/store"
)

const modelUsage = `usage:
  ringfence model train --tenant ID [--from T] [--to T] [--test-share 0.33] [--promote] [--out report.html]
  ringfence model eval --tenant ID --version N [--from T] [--to T] [--out report.html]
  ringfence model list --tenant ID
  ringfence model promote|shadow|retire --tenant ID --version N   (promote an older version to roll back)`

// modelCmd trains, evaluates, lists and promotes a tenant's learned models.
func modelCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(modelUsage)
	}
	sub := args[0]
	status := map[string]string{"promote": store.ModelLive, "shadow": store.ModelShadow, "retire": store.ModelRetired}
	if _, ok := status[sub]; !ok && sub != "train" && sub != "eval" && sub != "list" {
		return errors.New(modelUsage)
	}
	var tenant, from, to, out string
	var version int
	var share float64
	var promote bool
	c, rest, err := parseFlags("model "+sub, args[1:], stderr, func(fs *flag.FlagSet, c *Config) {
		fs.StringVar(&tenant, "tenant", "", "the tenant id")
		if sub != "train" && sub != "list" {
			fs.IntVar(&version, "version", 0, "the model version")
		}
		if sub == "train" || sub == "eval" {
			fs.StringVar(&from, "from", "", "first call start time (RFC 3339; default a year before --to)")
			fs.StringVar(&to, "to", "", "end of the period (RFC 3339; default now)")
			fs.StringVar(&out, "out", "", "also write the report as a self-contained HTML file")
		}
		if sub == "train" {
			fs.Float64Var(&share, "test-share", 0, "latest share of the period kept to test on (default 1/3)")
			fs.BoolVar(&promote, "promote", false, "make the model live if it beats the live scoring on ROC AUC and recall at 0.5% FPR")
		}
	})
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("model %s: unexpected argument %q (flags only)", sub, rest[0])
	}
	if tenant == "" {
		return fmt.Errorf("model %s: --tenant ID is required", sub)
	}
	var f, t time.Time
	for _, p := range []struct {
		s   string
		dst *time.Time
		n   string
	}{{from, &f, "--from"}, {to, &t, "--to"}} {
		if p.s == "" {
			continue
		}
		if *p.dst, err = time.Parse(time.RFC3339, p.s); err != nil {
			return fmt.Errorf("model %s: %s: must be an RFC 3339 time such as 2026-01-02T15:04:05Z", sub, p.n)
		}
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		return err
	}
	defer m.Close()
	var rep model.Report
	switch sub {
	case "list":
		ms, err := m.Node.Models(ctx, tenant)
		if err != nil {
			return err
		}
		for _, v := range ms {
			fmt.Fprintf(stdout, "%4d  %-8s  trained %s by %s\n", v.Version, v.Status, v.TrainedAt.Format(time.RFC3339), v.CreatedBy)
		}
		return nil
	case "train":
		v, err := m.Node.TrainModel(ctx, tenant, node.TrainOptions{From: f, To: t, TestShare: share, Promote: promote})
		if err != nil {
			return err
		}
		rep = *v.Report
		fmt.Fprintf(stdout, "model version %d stored (%s)\n", v.Version, v.Status)
	case "eval":
		if rep, err = m.Node.EvaluateModel(ctx, tenant, version, f, t); err != nil {
			return err
		}
	default:
		if err := m.Node.SetModelStatus(ctx, tenant, version, status[sub]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "model version %d of %s is now %s\n", version, tenant, status[sub])
		return nil
	}
	fmt.Fprint(stdout, rep.Text())
	if out != "" {
		if err := os.WriteFile(out, []byte(rep.HTML()), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "report written to %s\n", out)
	}
	return nil
}
