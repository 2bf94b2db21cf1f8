package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/sipfront"
)

// sipFlags registers the SIP front end's flags.
func sipFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.SIP.UDP, "sip-udp", c.SIP.UDP, "SIP UDP listen address (e.g. 0.0.0.0:5060); empty: off")
	fs.StringVar(&c.SIP.TCP, "sip-tcp", c.SIP.TCP, "SIP TCP listen address; empty: off")
	fs.StringVar(&c.SIP.TLS, "sip-tls", c.SIP.TLS, "SIP TLS listen address (e.g. 0.0.0.0:5061); empty: off")
	fs.StringVar(&c.SIP.CertFile, "sip-cert", c.SIP.CertFile, "PEM certificate for SIP TLS")
	fs.StringVar(&c.SIP.KeyFile, "sip-key", c.SIP.KeyFile, "PEM key for SIP TLS")
	fs.StringVar(&c.SIP.Tenant, "sip-tenant", c.SIP.Tenant, "tenant of the calls arriving over SIP")
}

// listenSIP starts the SIP front end when a SIP listener is configured.
func (m *Main) listenSIP(ctx context.Context, reg prometheus.Registerer) error {
	c := m.Config.SIP
	if c.UDP == "" && c.TCP == "" && c.TLS == "" {
		return nil
	}
	if c.Tenant != "" {
		if _, err := m.Node.Tenant(c.Tenant); err != nil {
			return fmt.Errorf("sip.tenant: %w", err)
		}
	}
	budget := 200 * time.Millisecond // a shared, noisy host stalls for tens of ms; the SBC waits longer
	if c.Budget != "" {
		budget, _ = time.ParseDuration(c.Budget) // validated
	}
	s, err := sipfront.New(sipfront.Config{
		Budget: budget,
		UDP:    c.UDP, TCP: c.TCP, TLS: c.TLS, CertFile: c.CertFile, KeyFile: c.KeyFile,
		Tenant: c.Tenant, TenantHeader: c.TenantHeader, RouteHeader: c.RouteHeader,
		RouteBySource: c.RouteBySource, MaxInFlight: c.MaxInFlight,
		Appliance: m.Config.Appliance,
		Access:    m.Access,
		Log:       m.Log.With("component", "sip"),
		Metrics:   reg,
	}, m.Node)
	if err != nil {
		return err
	}
	if err := s.Listen(ctx); err != nil {
		return err
	}
	m.SIP = s
	m.Log.Info("sip listening", "udp", c.UDP, "tcp", c.TCP, "tls", c.TLS)
	return nil
}
