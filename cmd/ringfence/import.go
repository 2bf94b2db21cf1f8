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
	u := *base + "/v1/lists/" + url.PathEscape(*list) + "/import"
	if *region != "" {
		u += "?region=" + url.QueryEscape(*region)
	}
	out, err := postImport(ctx, u, *key, "text/csv", fs.Arg(0))
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	out.printRejected(stdout)
	if out.Error != nil {
		return fmt.Errorf("import: %s: %s", out.Error.Code, out.Error.Message)
	}
	fmt.Fprintf(stdout, "added %d numbers to the %s list; %d rows rejected (first %d listed)\n", out.Added, *list, out.RejectedCount, len(out.Rejected))
	return nil
}

// importAnswer is the answer of the API's import routes (lists and calls).
type importAnswer struct {
	Added           int `json:"added"`
	Imported        int `json:"imported"`
	AlreadyImported int `json:"already_imported"`
	RejectedCount   int `json:"rejected_count"`
	Rejected        []struct {
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"rejected"`
	Error *struct{ Code, Message string } `json:"error"`
}

func (a importAnswer) printRejected(w io.Writer) {
	for _, r := range a.Rejected {
		fmt.Fprintf(w, "line %d: %s\n", r.Line, r.Message)
	}
}

// postImport streams the file at path to an import route of a running
// server and decodes its answer.
func postImport(ctx context.Context, u, key, contentType, path string) (importAnswer, error) {
	var out importAnswer
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, f)
	if err != nil {
		return out, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", contentType)
	resp, err := (&http.Client{Timeout: 30 * time.Minute}).Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("%s: unreadable answer: %w", resp.Status, err)
	}
	return out, nil
}
