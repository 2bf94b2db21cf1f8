package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/console"
	"github.com/ringfence/ringfence/store"
)

// userCmd manages console users: `ringfence user create --tenant T --role R
// NAME` stores a user with a generated password (printed once) or one read
// from standard input with --password-stdin.
func userCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: ringfence user create --tenant ID --role ROLE [--password-stdin] NAME"
	if len(args) == 0 || args[0] != "create" {
		return errors.New(usage)
	}
	var tenant, role string
	var fromStdin bool
	c, rest, err := parseFlags("user create", args[1:], stderr, func(fs *flag.FlagSet, c *Config) {
		fs.StringVar(&tenant, "tenant", "", "the user's tenant id")
		fs.StringVar(&role, "role", "analyst", "admin, analyst, auditor, privacy_officer or compliance_officer")
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input instead of generating one")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 || tenant == "" {
		return errors.New(usage + " (flags go before the name)")
	}
	r, err := call.ParseRole(role)
	if err != nil {
		return err
	}
	pw := ""
	if fromStdin {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the password: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.openNode(ctx, nil); err != nil {
		return err
	}
	defer m.Close()
	if _, err := m.Node.Tenant(tenant); err != nil {
		return err
	}
	pw, err = createUser(ctx, m.Store, tenant, rest[0], r, pw)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created console user %s (%s) of tenant %s\n", rest[0], r, tenant)
	if !fromStdin {
		fmt.Fprintf(stdout, "password, shown once: %s\n", pw)
	}
	return nil
}

// createUser stores a console user with the password hashed (argon2id); an
// empty password is replaced by a generated one, which it returns.
func createUser(ctx context.Context, st store.Store, tenant, id string, role call.Role, pw string) (string, error) {
	if pw == "" {
		pw = rand.Text() // 26 base32 characters, 130 bits
	}
	h, err := console.HashPassword(pw)
	if err != nil {
		return "", err
	}
	u := store.User{Tenant: tenant, ID: id, Role: role, PasswordHash: h, CreatedAt: time.Now().UTC()}
	if err := st.PutUser(ctx, u); err != nil {
		return "", err
	}
	return pw, nil
}
