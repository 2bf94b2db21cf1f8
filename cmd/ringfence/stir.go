package main

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ringfence/ringfence/stir"
)

// newShaken builds the STIR/SHAKEN verifier from the configured STI-CA
// roots, or returns nil when none are configured.
func newShaken(c Config, log *slog.Logger) (*stir.Verifier, error) {
	if c.STIR.RootsFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(c.STIR.RootsFile)
	if err != nil {
		return nil, fmt.Errorf("stir.roots_file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("stir.roots_file %s: no PEM certificate in it", c.STIR.RootsFile)
	}
	fresh, _ := time.ParseDuration(c.STIR.Freshness) // validated; 0 means the default
	return stir.New(stir.Config{
		Roots:     roots,
		AllowHTTP: c.STIR.AllowHTTP,
		Freshness: fresh,
		Log:       log.With("component", "stir"),
	}), nil
}
