package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ringfence/ringfence/archive"
)

const archiveUsage = "usage: ringfence archive verify-export [--manifest-sha256 HEX] FILE.zip"

// archiveCmd runs the compliance archive's operator verbs. verify-export
// checks a downloaded regulator export (docs/archive.md): the manifest
// matches its checksum file and every file its manifest entry (size and
// SHA-256), with nothing extra. It prints the manifest's SHA-256, to
// compare with the one recorded when the export was made (the export's
// receipt and its archive.export audit entry); with --manifest-sha256 it
// compares them itself. A refused export is an error naming the item.
func archiveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify-export" {
		return errors.New(archiveUsage)
	}
	fs := flag.NewFlagSet("archive verify-export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	want := fs.String("manifest-sha256", "", "the manifest SHA-256 recorded at export time (hex); refuse the export if it differs")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(archiveUsage)
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	m, sum, err := archive.VerifyExport(f, fi.Size())
	if err != nil {
		return fmt.Errorf("export refused: %w", err)
	}
	got := hex.EncodeToString(sum[:])
	if *want != "" && !strings.EqualFold(*want, got) {
		return fmt.Errorf("export refused: its manifest SHA-256 is %s, not the %s recorded at export time", got, *want)
	}
	fmt.Fprintf(stdout, "export verified: case %s, %d items, created %s\nmanifest sha256 %s\n",
		m.CaseID, len(m.Items), m.Created.Format("2006-01-02T15:04:05Z07:00"), got)
	for _, it := range m.Items {
		fmt.Fprintf(stdout, "  %s  %-9s %s  %d bytes  sha256 %s\n", it.ID, it.Kind, it.Time.Format("2006-01-02T15:04:05Z07:00"), it.Size, it.SHA256)
	}
	return nil
}
