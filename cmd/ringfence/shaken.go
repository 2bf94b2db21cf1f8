package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ringfence/ringfence/numbering"
	"github.com/ringfence/ringfence/stir"
)

// shakenCmd checks Identity headers and certificates offline.
func shakenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "lint") {
		return errors.New("usage: ringfence shaken verify --roots FILE (--identity HEADER | --invite FILE) [--orig E164 --dest E164] | ringfence shaken lint CERT.pem...")
	}
	if args[0] == "lint" {
		return shakenLint(args[1:], stdout, stderr)
	}
	return shakenVerify(ctx, args[1:], stdout, stderr)
}

// shakenLint prints every SHAKEN-profile finding of each certificate, one
// line each: FILE[#N]: CODE SEVERITY TEXT, or FILE[#N]: ok. It fails when a
// file cannot be read as certificates.
func shakenLint(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shaken lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	at := fs.String("at", "", "check validity at this RFC 3339 time (default: now)")
	structure := fs.Bool("structure", false, "check structure only: judge each certificate at its own notBefore, so expiry is not reported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("shaken lint: name one or more certificate files (PEM or DER)")
	}
	when, err := timeFlag(*at)
	if err != nil {
		return err
	}
	var bad []string
	for _, file := range fs.Args() {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		certs, err := stir.ParseCertificates(b)
		if err != nil || len(certs) == 0 {
			fmt.Fprintf(stdout, "%s: unreadable: %v\n", file, err)
			bad = append(bad, file)
			continue
		}
		for i, c := range certs {
			name := file
			if len(certs) > 1 {
				name = fmt.Sprintf("%s#%d", file, i)
			}
			at := when
			if *structure {
				at = c.NotBefore.Add(time.Second)
			}
			reasons := stir.CheckCertificate(c, at)
			if len(reasons) == 0 {
				fmt.Fprintf(stdout, "%s: ok\n", name)
			}
			for _, r := range reasons {
				fmt.Fprintf(stdout, "%s: %s\n", name, r)
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("shaken lint: %d file(s) unreadable", len(bad))
	}
	return nil
}

// shakenVerify verifies an Identity header (or every Identity header of an
// INVITE file), fetching the certificate if needed, and prints the result.
func shakenVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shaken verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	roots := fs.String("roots", "", "PEM file of trusted STI-CA roots")
	identity := fs.String("identity", "", "an Identity header value")
	invite := fs.String("invite", "", "a SIP INVITE file: its Identity headers, caller (P-Asserted-Identity, else From) and dialled number (Request-URI) are used")
	orig := fs.String("orig", "", "calling number (E.164); from the INVITE if omitted")
	dest := fs.String("dest", "", "called number (E.164); from the INVITE if omitted")
	region := fs.String("region", "GB", "region for national-format numbers")
	at := fs.String("at", "", "the call's start, RFC 3339 (default: now)")
	allowHTTP := fs.Bool("allow-http", false, "fetch x5u over http too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	when, err := timeFlag(*at)
	if err != nil {
		return err
	}
	var headers []string
	switch {
	case *identity != "":
		headers = []string{*identity}
	case *invite != "":
		b, err := os.ReadFile(*invite)
		if err != nil {
			return err
		}
		var o, d string
		headers, o, d = readInvite(b)
		if *orig == "" {
			*orig = o
		}
		if *dest == "" {
			*dest = d
		}
	default:
		return errors.New("shaken verify: give --identity HEADER or --invite FILE")
	}
	if len(headers) == 0 {
		return errors.New("shaken verify: no Identity header found")
	}
	c := Config{}
	c.STIR.RootsFile, c.STIR.AllowHTTP = *roots, *allowHTTP
	v, err := newShaken(c, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if v == nil {
		v = stir.New(stir.Config{AllowHTTP: *allowHTTP}) // no roots: every certificate is untrusted
	}
	defer v.Close()
	num := func(raw string) string { return numbering.Parse(raw, *region).E164 }
	res := v.Verify(headers, num(*orig), num(*dest), when)
	if res.Status == stir.Unverified { // the certificate was being fetched: wait and look again
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v.Wait(wctx)
		cancel()
		res = v.Verify(headers, num(*orig), num(*dest), when)
	}
	fmt.Fprintf(stdout, "status: %s\n", res.Status)
	if res.Attest != "" {
		fmt.Fprintf(stdout, "attest: %s\norigid: %s\n", res.Attest, res.OrigID)
	}
	for _, p := range res.Passports {
		fmt.Fprintf(stdout, "passport: ppt=%s status=%s x5u=%s\n", p.PPT, p.Status, p.X5U)
	}
	for _, r := range res.Reasons {
		fmt.Fprintf(stdout, "reason: %s\n", r)
	}
	return nil
}

// readInvite returns the Identity headers ("Identity" or compact "y"), the
// caller (P-Asserted-Identity, else From) and the Request-URI user of a SIP
// message.
func readInvite(b []byte) (identity []string, caller, dialled string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var from, pai string
	first := true
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if first {
			if f := strings.Fields(line); len(f) == 3 {
				dialled = numbering.HeaderNumber(f[1])
			}
			first = false
			continue
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "identity", "y":
			identity = append(identity, value)
		case "p-asserted-identity":
			if pai == "" {
				pai = value
			}
		case "from", "f":
			from = value
		}
	}
	caller = numbering.HeaderNumber(from)
	if pai != "" {
		caller = numbering.HeaderNumber(pai)
	}
	return identity, caller, dialled
}

func timeFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("--at: must be an RFC 3339 time such as 2026-11-26T09:30:00Z")
	}
	return t, nil
}
