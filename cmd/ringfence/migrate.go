package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres"
)

const migrateUsage = "usage: ringfence migrate --to DSN [--from DSN] [--master-key-file FILE | --master-key-env VAR] [--key-dir DIR]"

// migrateCmd moves an installation from one store to another, typically a
// single node's SQLite file to the PostgreSQL database of a cluster:
//
//	ringfence migrate --from sqlite:ringfence-data/ringfence.db \
//	    --to postgres://ringfence@db:5432/ringfence --master-key-file master.key
//
// Stop the server on the source first. The destination must hold no tenant;
// its schema is created (migrated) on opening. Everything is copied as
// stored: tenants with their wrapped keys (so the same master key serves the
// new store), API key hashes, policies, routes, list entries, customer
// links, call records (1000 per transaction) and their labels. Nothing is
// decrypted on the way. Then the rows of each table of each tenant are
// counted on both sides and printed; any difference is an error. With the
// master key, a node is also opened on the destination (which unwraps every
// tenant's keys and opens every list entry and link) and the newest record
// of each tenant is opened.
//
// The copy is not one transaction: if it fails, empty the destination (drop
// and recreate the database) and run it again. The destination's change
// feed records the copy; nodes opened afterwards start after it.
//
// With --to alone it only brings the destination's schema up to date (the
// nodes do that on start too).
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", `source store DSN ("sqlite:PATH" or a "postgres://" URL)`)
	to := fs.String("to", "", "destination store DSN; must hold no tenant")
	keyFile := fs.String("master-key-file", "", "master key file: check that the copy opens with it")
	keyEnv := fs.String("master-key-env", "", "environment variable holding the master key (instead of the file)")
	keyDir := fs.String("key-dir", "", "directory of the tenants' key-encryption keys (with the master key)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" || fs.NArg() != 0 {
		return errors.New(migrateUsage)
	}
	for _, dsn := range []string{*from, *to} {
		c := Config{Store: dsn}
		if dsn != "" {
			if err := c.validate(); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
		}
	}
	if *from == *to {
		return errors.New("migrate: --from and --to name the same store")
	}
	var ring *seal.Keyring
	if *keyFile != "" || *keyEnv != "" {
		k, err := masterKey(Config{MasterKeyFile: *keyFile, MasterKeyEnv: *keyEnv})
		if err != nil {
			return err
		}
		ring = seal.NewKeyring(k)
		if *keyDir != "" {
			ks, err := seal.OpenKeystore(*keyDir, k)
			if err != nil {
				return err
			}
			ring = seal.NewKeyringWithKeystore(k, ks)
		}
	}

	dst, err := openStore(ctx, *to)
	if err != nil {
		return fmt.Errorf("migrate: destination: %w", err)
	}
	defer dst.Close()
	if *from == "" {
		fmt.Fprintln(stdout, "the destination's schema is up to date")
		return nil
	}
	if path, ok := strings.CutPrefix(*from, "sqlite:"); ok {
		if _, err := os.Stat(path); err != nil { // opening would create it
			return fmt.Errorf("migrate: source: %w", err)
		}
	}
	src, err := openStore(ctx, *from)
	if err != nil {
		return fmt.Errorf("migrate: source: %w", err)
	}
	defer src.Close()

	m := &migration{src: src, dst: dst, progress: stderr}
	counts, err := m.run(ctx)
	if len(counts) > 0 {
		if perr := printCounts(stdout, counts); err == nil {
			err = perr
		}
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintf(stdout, "copied %d tenants; every count matches\n", len(counts))
	if ring == nil {
		fmt.Fprintln(stdout, "not checked with the master key (give --master-key-file to open the copy)")
		return nil
	}
	opened, err := openCopy(ctx, dst, ring, counts)
	if err != nil {
		return fmt.Errorf("migrate: the copy does not open with this master key: %w", err)
	}
	fmt.Fprintf(stdout, "opened every tenant's keys, lists and links and the newest record of %d tenants with the master key\n", opened)
	return nil
}

// migration copies every tenant of src into the empty dst.
type migration struct {
	src, dst store.Store
	progress io.Writer
}

// tenantCounts are one tenant's row counts on both sides.
type tenantCounts struct {
	tenant   string
	src, dst store.Counts
}

// copyPage is the size of every read and write of the copy: the most a
// store page holds.
const copyPage = 1000

// run copies everything and counts it on both sides; a difference is an
// error (returned with the counts).
func (m *migration) run(ctx context.Context) ([]tenantCounts, error) {
	existing, err := m.dst.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("the destination holds %d tenants already; migrate copies into an empty store only", len(existing))
	}
	tenants, err := m.src.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	var out []tenantCounts
	for _, t := range tenants {
		start := time.Now()
		if err := m.copyTenant(ctx, t); err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		tc := tenantCounts{tenant: t.ID}
		if tc.src, err = m.src.Counts(ctx, t.ID); err != nil {
			return nil, err
		}
		if tc.dst, err = m.dst.Counts(ctx, t.ID); err != nil {
			return nil, err
		}
		out = append(out, tc)
		fmt.Fprintf(m.progress, "copied tenant %s: %d records in %v\n", t.ID, tc.dst.Calls, time.Since(start).Round(time.Millisecond))
	}
	for _, tc := range out {
		if tc.src != tc.dst {
			return out, fmt.Errorf("tenant %s: counts differ: source %+v, destination %+v", tc.tenant, tc.src, tc.dst)
		}
	}
	return out, nil
}

// copyTenant copies one tenant and everything it owns.
func (m *migration) copyTenant(ctx context.Context, t store.Tenant) error {
	src, dst, id := m.src, m.dst, t.ID
	if err := dst.CreateTenant(ctx, t); err != nil {
		return fmt.Errorf("tenant: %w", err)
	}
	keys, err := src.APIKeys(ctx, id)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := dst.AddAPIKey(ctx, k); err != nil {
			return fmt.Errorf("api key: %w", err)
		}
	}
	p, err := src.Policy(ctx, id)
	switch {
	case call.ErrorCode(err) == call.NotFound:
	case err != nil:
		return err
	default:
		if err := dst.PutPolicy(ctx, id, p); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
	}
	routes, err := src.Routes(ctx, id)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if err := dst.PutRoute(ctx, id, r); err != nil {
			return fmt.Errorf("route: %w", err)
		}
	}
	for _, list := range []call.ListKind{call.AllowList, call.DenyList, call.DNOList} {
		var after []byte
		for {
			es, err := src.ListEntries(ctx, id, list, after, copyPage)
			if err != nil {
				return err
			}
			if err := dst.PutListEntries(ctx, id, es); err != nil {
				return fmt.Errorf("%s list: %w", list, err)
			}
			if len(es) < copyPage {
				break
			}
			after = es[len(es)-1].Pseudonym
		}
	}
	var afterC, afterU []byte
	for {
		ls, err := src.Links(ctx, id, afterC, afterU, copyPage)
		if err != nil {
			return err
		}
		if err := dst.PutLinks(ctx, id, ls); err != nil {
			return fmt.Errorf("links: %w", err)
		}
		if len(ls) < copyPage {
			break
		}
		afterC, afterU = ls[len(ls)-1].CallerPseudonym, ls[len(ls)-1].UserPseudonym
	}
	return m.copyCalls(ctx, id)
}

// copyCalls copies the tenant's records, newest first, a page per
// transaction, then the labels of each reviewed record of the page, oldest
// first, as they were added (a record's review status is its last label's,
// which adding them again reproduces).
func (m *migration) copyCalls(ctx context.Context, tenant string) error {
	pg, _ := m.dst.(*postgres.DB)
	f := store.CallFilter{Limit: copyPage}
	for {
		cs, err := m.src.Calls(ctx, tenant, f)
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			return nil
		}
		if pg != nil {
			// Partitions for the page's months, so old records do not land
			// in calls_default, which retention cannot drop whole.
			var lo, hi time.Time
			for _, c := range cs {
				if c.StartedAt.IsZero() {
					continue
				}
				if lo.IsZero() || c.StartedAt.Before(lo) {
					lo = c.StartedAt
				}
				if c.StartedAt.After(hi) {
					hi = c.StartedAt
				}
			}
			if !lo.IsZero() {
				if err := pg.EnsurePartitions(ctx, lo, hi); err != nil {
					return err
				}
			}
		}
		if err := m.dst.InsertCalls(ctx, cs); err != nil {
			return fmt.Errorf("records: %w", err)
		}
		for _, c := range cs {
			if c.Review == "" || c.Review == call.Unreviewed {
				continue
			}
			ls, err := m.src.Labels(ctx, tenant, c.ID)
			if err != nil {
				return err
			}
			for _, l := range ls {
				if err := m.dst.AddLabel(ctx, l); err != nil {
					return fmt.Errorf("label of record %s: %w", c.ID, err)
				}
			}
		}
		f.Before = cs[len(cs)-1].ID
	}
}

// printCounts writes the per-tenant, per-table counts of both sides.
func printCounts(w io.Writer, counts []tenantCounts) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tenant\ttable\tsource\tdestination\t")
	for _, tc := range counts {
		for _, row := range []struct {
			table    string
			src, dst int64
		}{
			{"api_keys", tc.src.APIKeys, tc.dst.APIKeys},
			{"policies", tc.src.Policies, tc.dst.Policies},
			{"routes", tc.src.Routes, tc.dst.Routes},
			{"list_entries", tc.src.ListEntries, tc.dst.ListEntries},
			{"links", tc.src.Links, tc.dst.Links},
			{"calls", tc.src.Calls, tc.dst.Calls},
			{"labels", tc.src.Labels, tc.dst.Labels},
		} {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t\n", tc.tenant, row.table, row.src, row.dst)
		}
	}
	return tw.Flush()
}

// openCopy opens a node on the copy with ring (which unwraps every tenant's
// keys and opens every list entry and link) and opens each tenant's newest
// record; it returns how many tenants had one.
func openCopy(ctx context.Context, st store.Store, ring *seal.Keyring, counts []tenantCounts) (int, error) {
	n, err := node.Open(ctx, node.Config{Follow: node.FollowConfig{Poll: -1}, Log: slog.New(slog.DiscardHandler)}, st, ring)
	if err != nil {
		return 0, err
	}
	defer n.Close()
	opened := 0
	for _, tc := range counts {
		cs, _, err := n.Calls(ctx, tc.tenant, store.CallFilter{Limit: 1})
		if err != nil {
			return opened, fmt.Errorf("tenant %s: %w", tc.tenant, err)
		}
		if len(cs) > 0 {
			opened++
		}
	}
	return opened, nil
}
