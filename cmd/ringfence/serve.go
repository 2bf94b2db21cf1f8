package main

import (
	"context"
	"flag"
	"io"
	"os"
	"runtime/debug"
)

// serveCmd runs the server until interrupted.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, _, err := parseFlags("serve", args, stderr, func(fs *flag.FlagSet, c *Config) {
		httpFlags(fs, c)
		fs.StringVar(&c.Appliance, "appliance", c.Appliance, "this node's appliance id in call records")
		sipFlags(fs, c)
	})
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// The live heap is small (tens of MB) and allocation per request is
		// steady: collecting less often trims the latency tail
		// (docs/PERFORMANCE.md). GOGC in the environment wins.
		debug.SetGCPercent(400)
	}
	if c.MemoryLimit != "" && os.Getenv("GOMEMLIMIT") == "" {
		n, _ := parseBytes(c.MemoryLimit) // validated
		debug.SetMemoryLimit(n)
	}
	m := &Main{Config: c, Log: newLogger(c, stderr)}
	if err := m.Run(ctx); err != nil {
		return err
	}
	err = m.Wait(ctx)
	m.Log.Info("shutting down")
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return err
}

// httpFlags registers the HTTP listener's flags of serve and demo.
func httpFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.HTTP.Addr, "http", c.HTTP.Addr, "HTTP listen address")
	fs.StringVar(&c.HTTP.CertFile, "http-cert", c.HTTP.CertFile, "PEM certificate chain: serve HTTPS (TLS 1.2 or newer)")
	fs.StringVar(&c.HTTP.KeyFile, "http-key", c.HTTP.KeyFile, "PEM private key of --http-cert")
}
