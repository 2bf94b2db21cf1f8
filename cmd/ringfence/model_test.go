package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/sim"
)

// modelDataDir prepares a data directory the way an operator would before
// training: a tenant "bank" with the simulator's routes and
// do-not-originate list, and three days of its traffic (ending a day ago)
// imported with labels, every 10th call left unlabelled. It returns the
// directory, the imported callers and how many calls were imported.
func modelDataDir(t *testing.T) (dir string, callers []string, imported int) {
	t.Helper()
	ctx := t.Context()
	dir = t.TempDir()
	c := Config{Data: dir}
	c.defaults()
	if _, err := seal.GenerateMasterKeyFile(c.MasterKeyFile); err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, _, err := m.Node.CreateTenant(ctx, "bank", "Bank", "GB"); err != nil {
		t.Fatal(err)
	}
	// The CLI reads the real clock: the history ends a day before now.
	start := time.Now().UTC().Add(-96 * time.Hour).Truncate(time.Hour)
	tr := sim.Generate(sim.Config{Seed: 5, Calls: 1500, Start: start, Span: 72 * time.Hour})
	for _, r := range tr.Routes {
		if err := m.Node.PutRoute(ctx, "bank", call.Route{ID: r.ID, Kind: call.RouteKind(r.Kind), Country: r.Country, FailOpen: r.FailOpen}); err != nil {
			t.Fatal(err)
		}
	}
	var dno strings.Builder
	for _, num := range tr.DNO {
		fmt.Fprintf(&dno, "%s,published\n", num)
	}
	if _, err := m.Node.ImportList(ctx, "bank", call.DNOList, strings.NewReader(dno.String()), ""); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i, sc := range tr.Calls {
		q := sc.Request
		row := map[string]any{
			"call_ref": q.CallRef, "started_at": q.StartedAt.Format(time.RFC3339Nano),
			"caller": q.Caller, "dialled": q.Dialled, "user_ref": q.UserRef, "ingress_route": q.IngressRoute,
			"signalling": q.Signalling,
		}
		switch {
		case i%10 == 9:
		case sc.Fraud:
			row["label"], row["fraud_type"] = "fraud", sc.FraudType
		default:
			row["label"] = "genuine"
		}
		if sc.Result != "" {
			row["result"], row["duration_s"] = sc.Result, sc.Duration.Seconds()
		}
		if err := enc.Encode(row); err != nil {
			t.Fatal(err)
		}
		if q.Caller != "anonymous" {
			callers = append(callers, q.Caller)
		}
	}
	res, err := m.Node.ImportCalls(ctx, "bank", &b, node.CallsNDJSON)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != len(tr.Calls) {
		t.Fatalf("imported %d of %d calls; rejected %v", res.Imported, len(tr.Calls), res.Rejected)
	}
	return dir, callers, res.Imported
}

// checkSelfContained checks that a report file is one self-contained page:
// no script, nothing fetched from anywhere, no caller's number.
func checkSelfContained(t *testing.T, path string, callers []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v (%v); want 0600", path, fi.Mode().Perm(), err)
	}
	page := string(b)
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.Contains(page, "</html>") || !strings.Contains(page, "ROC AUC") {
		t.Fatalf("%s is not a complete report page (%d bytes)", path, len(b))
	}
	lower := strings.ToLower(page)
	for _, bad := range []string{"<script", "src=", "href=", "<link", "url(", "@import", "<iframe", "<object", "<embed"} {
		if strings.Contains(lower, bad) {
			t.Errorf("the report holds %q", bad)
		}
	}
	// An inline <svg> element's namespace name is an identifier, never
	// fetched; any other http(s) address would be a reference.
	rest := strings.ReplaceAll(lower, `xmlns="http://www.w3.org/2000/svg"`, "")
	if m := regexp.MustCompile(`https?://[^"'\s<>]*`).FindString(rest); m != "" {
		t.Errorf("the report refers to %s", m)
	}
	for _, num := range callers {
		if strings.Contains(page, num) || strings.Contains(page, strings.TrimPrefix(num, "+")) {
			t.Fatal("the report holds a caller's number")
		}
	}
}

// TestModelCLI drives `ringfence model` in process on a prepared data
// directory: train (report printed and written as HTML), list, promote
// and eval, and the refusals.
func TestModelCLI(t *testing.T) {
	dir, callers, imported := modelDataDir(t)
	model := func(args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		err := run(t.Context(), append([]string{"model", args[0], "--data", dir}, args[1:]...), &out, io.Discard)
		return out.String(), err
	}
	mustModel := func(args ...string) string {
		t.Helper()
		out, err := model(args...)
		if err != nil {
			t.Fatalf("model %s: %v", strings.Join(args, " "), err)
		}
		return out
	}

	if out := mustModel("list", "--tenant", "bank"); out != "" {
		t.Fatalf("model list before training: %q", out)
	}

	report := filepath.Join(t.TempDir(), "report.html")
	out := mustModel("train", "--tenant", "bank", "--out", report)
	for _, want := range []string{
		"model version 1 stored (shadow)\n",
		"training: ", "test: ", "ROC AUC", "recall at 0.50% FPR", "largest weights",
		"report written to " + report + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("model train printed no %q:\n%s", want, out)
		}
	}
	// Every imported call falls in the default period (the year to now)
	// and is counted once, in training or in the test.
	var trained, tested int
	if _, err := fmt.Sscanf(out[strings.Index(out, "training: "):], "training: %d examples", &trained); err != nil {
		t.Fatalf("no training count in:\n%s", out)
	}
	if _, err := fmt.Sscanf(out[strings.Index(out, "\ntest: ")+1:], "test: %d examples", &tested); err != nil {
		t.Fatalf("no test count in:\n%s", out)
	}
	if trained+tested != imported || tested == 0 {
		t.Errorf("trained on %d and tested on %d calls; %d were imported", trained, tested, imported)
	}
	checkSelfContained(t, report, callers)

	listLine := regexp.MustCompile(`(?m)^\s+1\s+(\S+)\s+trained \S+ by operator$`)
	status := func() string {
		t.Helper()
		out := mustModel("list", "--tenant", "bank")
		m := listLine.FindStringSubmatch(out)
		if m == nil || strings.Count(out, "\n") != 1 {
			t.Fatalf("model list:\n%s", out)
		}
		return m[1]
	}
	if got := status(); got != "shadow" {
		t.Errorf("listed as %q after training; want shadow", got)
	}
	if out := mustModel("promote", "--tenant", "bank", "--version", "1"); out != "model version 1 of bank is now live\n" {
		t.Errorf("model promote printed %q", out)
	}
	if got := status(); got != "live" {
		t.Errorf("listed as %q after promote; want live", got)
	}

	evalReport := filepath.Join(t.TempDir(), "eval.html")
	out = mustModel("eval", "--tenant", "bank", "--version", "1", "--out", evalReport)
	var evaluated int
	if i := strings.Index(out, "test: "); i < 0 {
		t.Fatalf("model eval printed no test line:\n%s", out)
	} else if _, err := fmt.Sscanf(out[i:], "test: %d examples", &evaluated); err != nil || evaluated != imported {
		t.Errorf("model eval evaluated %d calls (%v); want all %d imported", evaluated, err, imported)
	}
	if strings.Contains(out, "training: ") || !strings.Contains(out, "ROC AUC") {
		t.Errorf("model eval printed:\n%s", out)
	}
	checkSelfContained(t, evalReport, callers)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train"}, "--tenant ID is required"},
		{[]string{"frobnicate", "--tenant", "bank"}, "usage:"},
		{[]string{"eval", "--tenant", "bank", "--version", "9"}, "not found"},
		{[]string{"promote", "--tenant", "bank", "--version", "9"}, "not found"},
		{[]string{"train", "--tenant", "nobody"}, "nobody"},
		{[]string{"eval", "--tenant", "bank", "--version", "1", "--from", "yesterday"}, "RFC 3339"},
	} {
		if _, err := model(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("model %s: %v; want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if got := status(); got != "live" {
		t.Errorf("listed as %q after the refused commands; want live", got)
	}
}
