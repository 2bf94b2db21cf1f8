package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ringfence/ringfence/seal"
)

// keysCmd manages the master key.
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return errors.New("usage: ringfence keys generate --out FILE")
	}
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to create (mode 0600; refuses to overwrite)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("keys generate: --out FILE is required")
	}
	if _, err := seal.GenerateMasterKeyFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a new master key to %s; back it up: without it the data cannot be read\n", *out)
	return nil
}
