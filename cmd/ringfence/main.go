// Command ringfence screens telephone calls for fraud. Run `ringfence help`
// for the verbs.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ringfence:", err)
		os.Exit(1)
	}
}

// verbs maps each CLI verb to its implementation (one file per verb).
var verbs = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"serve":        serveCmd,
	"demo":         demoCmd,
	"simulate":     simulateCmd,
	"tenant":       tenantCmd,
	"keys":         keysCmd,
	"shaken":       shakenCmd,
	"import":       importCmd,
	"migrate":      migrateCmd,
	"retention":    retentionCmd,
	"audit":        auditCmd,
	"consortium":   consortiumCmd,
	"model":        modelCmd,
	"import-calls": importCallsCmd,
	"dsar":         dsarCmd,
	"archive":      archiveCmd,
	"user":         userCmd,
}

const usage = `ringfence screens telephone calls for fraud before they are answered.

Usage: ringfence <verb> [flags]

Verbs:
  demo       start a server on SQLite in ./ringfence-demo, create demo tenants,
             simulate labelled traffic against it, print the quality summary
             and keep serving until interrupted
  serve      run the server (HTTP API) from a config file and flags
  tenant     tenant create [--region GB] ID: create a tenant, print its admin API key
             tenant key [--role ROLE] [--key-name NAME] ID: issue another API key
             (roles: admin, analyst, auditor, privacy_officer, compliance_officer, integration, recorder)
             tenant offboard --yes ID: delete every record of a tenant, destroy its keys
  user       user create --tenant ID --role ROLE [--password-stdin] NAME: a console user
             (password printed once; roles admin, analyst, auditor, privacy_officer)
  simulate   drive a running server with simulated traffic and print a summary
  import     import a CSV of numbers into a tenant's allow, deny or dno list
  migrate    migrate --from sqlite:PATH --to postgres://URL [--master-key-file FILE]:
             copy a stopped single node's store (records and keys included) into an
             empty database and verify counts per table per tenant; --to alone only
             applies the schema migrations
  keys       keys generate --out FILE: write a new master key (mode 0600)
             keys rotate|rewrap|retire --tenant ID: rotate a tenant's data key, reseal
             stored values under the newest version, destroy older versions
             keys rotate-master --new FILE: reseal the key-encryption keys under a new master key
  retention  retention run [--dry-run]: purge what has outlived its retention (records,
             change log, access logs, audit entries past a checkpoint) and print a report
  consortium consortium create|add|remove|stats|resolve: run the fraud-sharing consortium
             (see "ringfence consortium" for the flags)
  import-calls import-calls --key KEY [--url URL] FILE.csv|FILE.ndjson: import a tenant's
             call history with labels, screened at their historical times (for training)
  model      model train|eval|list|promote|shadow|retire --tenant ID: the learned risk model
             (trained on labelled calls; runs in shadow until promoted; see docs/model.md)
  dsar       dsar list --tenant ID [--status S]: rights cases with their deadlines (overdue first to see)
  archive    archive verify-export [--manifest-sha256 HEX] FILE.zip: verify a regulator export
             of the compliance archive and print its manifest SHA-256
  audit      audit verify: check the audit log's hash chain and signed checkpoints
             audit checkpoint: sign the newest entry now
  shaken     shaken verify --roots FILE (--identity HEADER | --invite FILE): verify
             STIR/SHAKEN PASSporTs and print the outcome
             shaken lint CERT.pem...: print every SHAKEN-profile defect, one line each
  help       this text

Run "ringfence <verb> -h" for a verb's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	verb, ok := verbs[args[0]]
	if !ok {
		return fmt.Errorf("unknown verb %q; run \"ringfence help\"", args[0])
	}
	return verb(ctx, args[1:], stdout, stderr)
}
