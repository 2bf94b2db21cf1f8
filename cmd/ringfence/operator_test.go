package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/privacy"
)

// TestOperatorVerbs runs the operator verbs on a data directory: a rights
// case shows in `dsar list` with its deadline, `retention run --dry-run`
// reports without deleting, `audit checkpoint` signs and `audit verify`
// says ok, `keys rotate` rewraps, and `tenant offboard` needs --yes.
func TestOperatorVerbs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	runOK := func(args ...string) string {
		t.Helper()
		var out, errs bytes.Buffer
		if err := run(ctx, args, &out, &errs); err != nil {
			t.Fatalf("ringfence %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errs.String())
		}
		return out.String()
	}
	runOK("keys", "generate", "--out", filepath.Join(dir, "master.key"))
	runOK("tenant", "create", "--data", dir, "bank")

	c := Config{Data: dir}
	c.defaults()
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Node.Screen(ctx, node.Incoming{Tenant: "bank", Caller: "+447400123456", Dialled: "+442079460123"}); err != nil {
		t.Fatal(err)
	}
	cv, err := m.Node.OpenCase(ctx, "bank", node.CaseRequest{Type: privacy.Access, Number: "+447400123456", Received: time.Now().Add(-40 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Node.StepCase(ctx, "bank", cv.ID, node.CaseStep{Step: "confirm_identity", At: time.Now().Add(-40 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	m.Close()

	if out := runOK("dsar", "list", "--data", dir, "--tenant", "bank"); !strings.Contains(out, cv.ID) || !strings.Contains(out, "OVERDUE") {
		t.Errorf("dsar list does not show the overdue case:\n%s", out)
	}
	if out := runOK("retention", "run", "--dry-run", "--data", dir); !strings.Contains(out, `"dry_run": true`) {
		t.Errorf("retention run --dry-run:\n%s", out)
	}
	if out := runOK("audit", "checkpoint", "--data", dir); !strings.Contains(out, "checkpoint at seq") {
		t.Errorf("audit checkpoint:\n%s", out)
	}
	if out := runOK("audit", "verify", "--data", dir); !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("audit verify:\n%s", out)
	}
	if out := runOK("keys", "rotate", "--data", dir, "--tenant", "bank"); !strings.Contains(out, "key version 2") || !strings.Contains(out, `"calls":1`) {
		t.Errorf("keys rotate:\n%s", out)
	}
	if err := run(ctx, []string{"tenant", "offboard", "--data", dir, "bank"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("tenant offboard without --yes: %v", err)
	}
	if out := runOK("tenant", "offboard", "--yes", "--data", dir, "bank"); !strings.Contains(out, "keys destroyed") {
		t.Errorf("tenant offboard:\n%s", out)
	}
	if out := runOK("audit", "verify", "--data", dir); !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("audit verify after offboarding:\n%s", out)
	}
}
