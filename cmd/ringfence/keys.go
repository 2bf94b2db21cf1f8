package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ringfence/ringfence/seal"
)

const keysUsage = `usage:
  ringfence keys generate --out FILE          write a new master key (mode 0600)
  ringfence keys rotate --tenant ID           add the tenant's next data key version, then rewrap
  ringfence keys rewrap --tenant ID           reseal every stored value of the tenant under its newest key
  ringfence keys retire --tenant ID           refuse and destroy every older key version (after a rewrap)
  ringfence keys rotate-master --new FILE     reseal every tenant's key-encryption key under a new master key`

// keysCmd manages the master key and the tenants' keys.
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	switch args[0] {
	case "generate":
		return keysGenerate(args[1:], stdout, stderr)
	case "rotate", "rewrap", "retire", "rotate-master":
	default:
		return errors.New(keysUsage)
	}
	sub := args[0]
	var tenant, newKey string
	c, rest, err := parseFlags("keys "+sub, args[1:], stderr, func(fs *flag.FlagSet, c *Config) {
		if sub == "rotate-master" {
			fs.StringVar(&newKey, "new", "", "the new master key file (make one with keys generate)")
		} else {
			fs.StringVar(&tenant, "tenant", "", "the tenant id")
		}
	})
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("keys %s: unexpected argument %q (flags only)", sub, rest[0])
	}
	if sub == "rotate-master" {
		return rotateMaster(c, newKey, stdout)
	}
	if tenant == "" {
		return fmt.Errorf("keys %s: --tenant ID is required", sub)
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		return err
	}
	defer m.Close()
	enc := json.NewEncoder(stdout)
	switch sub {
	case "rotate":
		v, err := m.Node.RotateKey(ctx, tenant)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s now seals with key version %d; rewrapping stored values\n", tenant, v)
		fallthrough
	case "rewrap":
		rep, err := m.Node.Rewrap(ctx, tenant)
		if err != nil {
			return err
		}
		return enc.Encode(rep)
	default: // retire
		v, err := m.Node.RetireKeys(ctx, tenant)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s: key versions below %d destroyed\n", tenant, v)
		return nil
	}
}

func keysGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to create (mode 0600; refuses to overwrite)")
	if err := fs.Parse(args); err != nil {
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

// rotateMaster reseals the key-encryption keys under a new master key. It
// can be run again after an interruption; the old key stays needed until
// it reports every file done.
func rotateMaster(c Config, newFile string, stdout io.Writer) error {
	if newFile == "" {
		return errors.New("keys rotate-master: --new FILE is required")
	}
	old, err := masterKey(c)
	if err != nil {
		return err
	}
	next, err := seal.LoadMasterKeyFile(newFile)
	if err != nil {
		return err
	}
	ks, err := seal.OpenKeystore(c.KeyDir, next, old)
	if err != nil {
		return err
	}
	if err := ks.RotateMaster(next); err != nil {
		return err
	}
	ids, err := ks.MasterKeyIDs()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "every key-encryption key in %s is sealed under the new master key (%v); point master_key_file at %s\n", c.KeyDir, ids, newFile)
	return nil
}
