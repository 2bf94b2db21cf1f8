package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// importCallsUsage is the usage line of the import-calls verb.
const importCallsUsage = "usage: ringfence import-calls --key KEY [--url URL] FILE.csv|FILE.ndjson"

// importCallsCmd uploads a tenant's call history with labels (CSV or
// NDJSON, told apart by the file's extension) to a running server's
// POST /v1/calls/import and prints the rejected rows and the counts.
func importCallsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import-calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "server URL")
	key := fs.String("key", os.Getenv("RINGFENCE_KEY"), "tenant admin API key (default $RINGFENCE_KEY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *key == "" {
		return errors.New(importCallsUsage)
	}
	name := fs.Arg(0)
	var contentType string
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		contentType = "text/csv"
	case ".ndjson", ".jsonl":
		contentType = "application/x-ndjson"
	default:
		return fmt.Errorf("import-calls: %s: the file must end in .csv or .ndjson (or .jsonl)", name)
	}
	out, err := postImport(ctx, strings.TrimSuffix(*base, "/")+"/v1/calls/import", *key, contentType, name)
	if err != nil {
		return fmt.Errorf("import-calls: %w", err)
	}
	out.printRejected(stdout)
	summary := fmt.Sprintf("imported %d calls (%d already imported); %d rows rejected (first %d listed)",
		out.Imported, out.AlreadyImported, out.RejectedCount, len(out.Rejected))
	if out.Error != nil {
		// A failed import may have committed some rows: say how many.
		if out.Imported > 0 || out.AlreadyImported > 0 || out.RejectedCount > 0 {
			fmt.Fprintln(stdout, summary+" before the error")
		}
		return fmt.Errorf("import-calls: %s: %s", out.Error.Code, out.Error.Message)
	}
	fmt.Fprintln(stdout, summary)
	return nil
}
