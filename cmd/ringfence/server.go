package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ringfence/ringfence/httpapi"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/screen"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/sipfront"
	"github.com/ringfence/ringfence/stir"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres"
	"github.com/ringfence/ringfence/store/sqlite"
	"github.com/ringfence/ringfence/velocity"
	"github.com/ringfence/ringfence/velocity/redisvel"
)

// Main is one running ringfence: store, node and listeners. Run binds the
// listeners synchronously (a busy port fails at start) and serves in the
// background until Close.
type Main struct {
	Config Config
	Log    *slog.Logger

	Store store.Store
	Node  *node.Node
	Addr  string // the HTTP listener's address once Run returns

	SIP    *sipfront.Server // nil when no SIP listener is configured
	Shaken *stir.Verifier   // nil when no STI-CA roots are configured
	Shared *redisvel.Shared // nil when no Redis is configured

	http  *http.Server
	ready atomic.Bool
	done  chan error
}

// masterKey loads the master key from the environment variable or the file.
func masterKey(c Config) (seal.MasterKey, error) {
	if c.MasterKeyEnv != "" {
		v, ok := os.LookupEnv(c.MasterKeyEnv)
		if !ok {
			return seal.MasterKey{}, fmt.Errorf("master key: environment variable %s is not set", c.MasterKeyEnv)
		}
		return seal.ParseMasterKey(v)
	}
	k, err := seal.LoadMasterKeyFile(c.MasterKeyFile)
	if errors.Is(err, os.ErrNotExist) {
		return k, fmt.Errorf("master key: no file %s; create one with `ringfence keys generate --out %s` or name an environment variable with --master-key-env", c.MasterKeyFile, c.MasterKeyFile)
	}
	return k, err
}

// openNode opens the store and the node (no listeners).
func (m *Main) openNode(ctx context.Context, reg prometheus.Registerer) error {
	c := m.Config
	key, err := masterKey(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st, err := openStore(ctx, c.Store)
	if err != nil {
		return err
	}
	m.Store = st
	var shared screen.SharedVelocity
	if c.Engine.Redis != "" {
		m.Shared, err = redisvel.Open(redisvel.Config{Addr: c.Engine.Redis, Secret: key.Derive("redisvel v1"), Logger: m.Log.With("component", "redisvel")})
		if err != nil {
			st.Close()
			return err
		}
		shared = m.Shared
	}
	var shaken screen.ShakenVerifier
	if m.Shaken, err = newShaken(c, m.Log); err != nil {
		st.Close()
		return err
	}
	if m.Shaken != nil {
		shaken = m.Shaken
	}
	m.Node, err = node.Open(ctx, node.Config{
		ApplianceID: c.Appliance,
		Engine: screen.Config{
			Shaken:      shaken,
			Shared:      shared,
			NumberCache: c.Engine.NumberCache,
			MaxLinks:    c.Engine.MaxLinks,
			Velocity:    velocity.Config{MaxKeys: c.Engine.VelocityKeys},
		},
		Log:     m.Log.With("component", "node"),
		Metrics: reg,
	}, st, seal.NewKeyring(key))
	if err != nil {
		st.Close()
		if m.Shared != nil {
			m.Shared.Close()
		}
		return err
	}
	return nil
}

// openStore opens the store the DSN names: "sqlite:PATH" or a
// "postgres://" URL. For PostgreSQL it creates the call-record partitions
// from last month to three months ahead.
func openStore(ctx context.Context, dsn string) (store.Store, error) {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		return sqlite.Open(ctx, path)
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if err := db.EnsurePartitions(ctx, now.AddDate(0, -1, 0), now.AddDate(0, 3, 0)); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Run opens everything, binds the HTTP listener and starts serving.
func (m *Main) Run(ctx context.Context) error {
	if m.Log == nil {
		m.Log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := m.openNode(ctx, reg); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.Config.HTTP.Addr)
	if err != nil {
		m.Node.Close()
		m.Store.Close()
		return fmt.Errorf("http listener: %w", err)
	}
	m.Addr = ln.Addr().String()
	if err := m.listenSIP(ctx, reg); err != nil {
		ln.Close()
		m.Node.Close()
		m.Store.Close()
		return err
	}
	api := httpapi.New(httpapi.Config{
		RatePerKey: m.Config.HTTP.RatePerKey,
		Gatherer:   reg,
		Log:        m.Log.With("component", "http"),
	}, m.Node, m.ready.Load)
	m.http = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn),
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.http.Serve(ln) }()
	m.ready.Store(true)
	m.Log.Info("serving", "http", m.Addr, "store", strings.SplitN(m.Config.Store, ":", 2)[0])
	return nil
}

// Wait blocks until ctx ends or the HTTP server fails.
func (m *Main) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-m.done:
		return err
	}
}

// Close stops taking requests, lets those in flight finish, flushes the
// recorder and closes the store.
func (m *Main) Close() error {
	m.ready.Store(false)
	var errs []error
	if m.SIP != nil {
		errs = append(errs, m.SIP.Close())
	}
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, m.http.Shutdown(ctx))
		cancel()
	}
	if m.Node != nil {
		errs = append(errs, m.Node.Close())
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	if m.Shaken != nil {
		errs = append(errs, m.Shaken.Close())
	}
	if m.Shared != nil {
		errs = append(errs, m.Shared.Close())
	}
	return errors.Join(errs...)
}
