package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// importCmd uploads a CSV of numbers to a running server's list import.
func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "server URL")
	key := fs.String("key", os.Getenv("RINGFENCE_KEY"), "tenant API key (default $RINGFENCE_KEY)")
	list := fs.String("list", "deny", "list to import into: allow, deny or dno")
	region := fs.String("region", "", "region for national-format numbers (default: the tenant's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *key == "" {
		return errors.New("usage: ringfence import --key KEY [--url URL] [--list deny] [--region US] FILE.csv")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	u := *base + "/v1/lists/" + url.PathEscape(*list) + "/import"
	if *region != "" {
		u += "?region=" + url.QueryEscape(*region)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, f)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+*key)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Added         int `json:"added"`
		RejectedCount int `json:"rejected_count"`
		Rejected      []struct {
			Line    int    `json:"line"`
			Message string `json:"message"`
		} `json:"rejected"`
		Error *struct{ Code, Message string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("import: %s: unreadable answer: %w", resp.Status, err)
	}
	if out.Error != nil {
		return fmt.Errorf("import: %s: %s", out.Error.Code, out.Error.Message)
	}
	for _, r := range out.Rejected {
		fmt.Fprintf(stdout, "line %d: %s\n", r.Line, r.Message)
	}
	fmt.Fprintf(stdout, "added %d numbers to the %s list; %d rows rejected (first %d listed)\n", out.Added, *list, out.RejectedCount, len(out.Rejected))
	return nil
}
