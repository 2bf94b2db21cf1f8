package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ringfence/ringfence/accesslog"
	"github.com/ringfence/ringfence/archive"
	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/console"
	"github.com/ringfence/ringfence/consortium"
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

	SIP        *sipfront.Server  // nil when no SIP listener is configured
	Shaken     *stir.Verifier    // nil when no STI-CA roots are configured
	Shared     *redisvel.Shared  // nil when no Redis is configured
	Access     *accesslog.Writer // HTTP access log under DATA/logs
	Audit      *audit.Log
	Consortium *consortium.Service // nil when consortium.id is "off"

	master seal.MasterKey
	stopHK func()        // stops housekeeping
	hkDone chan struct{} // closed when housekeeping has stopped

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
	m.master = key
	ks, err := seal.OpenKeystore(c.KeyDir, key)
	if err != nil {
		return err
	}
	ring := seal.NewKeyringWithKeystore(key, ks)
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
	m.Audit = audit.New(st, auditSigner(key), "master:"+key.ID(), nil)
	blobs, err := archive.OpenDirBlobs(filepath.Join(c.Data, "archive", "blobs"))
	if err != nil {
		st.Close()
		return fmt.Errorf("archive blobs: %w", err)
	}
	uploads, err := archive.OpenUploads(filepath.Join(c.Data, "archive", "uploads"), blobs, archive.UploadsConfig{})
	if err != nil {
		st.Close()
		return fmt.Errorf("archive uploads: %w", err)
	}
	var view *consortium.View
	if c.Consortium.ID != "off" {
		view = consortium.NewView(key.Derive("consortium pseudonym v1"))
		m.Consortium = &consortium.Service{ID: c.Consortium.ID, Store: st, View: view, Audit: m.auditConsortium}
	}
	m.Node, err = node.Open(ctx, node.Config{
		Audit:          m.Audit,
		Consortium:     m.Consortium,
		ArchiveBlobs:   blobs,
		ArchiveUploads: uploads,
		AuditKey:       m.auditKey(),
		StoreName:      storeName(c.Store),
		ApplianceID:    c.Appliance,
		Engine: screen.Config{
			Consortium:  consortiumView(view),
			Shaken:      shaken,
			Shared:      shared,
			NumberCache: c.Engine.NumberCache,
			MaxLinks:    c.Engine.MaxLinks,
			Velocity:    velocity.Config{MaxKeys: c.Engine.VelocityKeys},
		},
		Log:     m.Log.With("component", "node"),
		Metrics: reg,
	}, st, ring)
	if err != nil {
		st.Close()
		if m.Shared != nil {
			m.Shared.Close()
		}
		return err
	}
	return nil
}

// auditSigner is the key that signs audit checkpoints, derived from the
// master key (so every node of a cluster signs with the same one).
func auditSigner(master seal.MasterKey) ed25519.PrivateKey {
	return audit.KeyFromSecret(master.Derive("audit checkpoint v1"))
}

// auditConsortium is the consortium service's audit hook.
func (m *Main) auditConsortium(ctx context.Context, tenant, actor, action, object string, detail any) error {
	return m.Audit.Record(ctx, audit.Event{Tenant: tenant, Actor: actor, Action: action, Object: object, Detail: detail})
}

// consortiumView keeps a nil view a nil interface.
func consortiumView(v *consortium.View) screen.ConsortiumView {
	if v == nil {
		return nil
	}
	return v
}

// auditKey verifies audit checkpoints.
func (m *Main) auditKey() ed25519.PublicKey {
	return auditSigner(m.master).Public().(ed25519.PublicKey)
}

// listenHTTP binds the API's listener: HTTPS when a certificate is
// configured (TLS 1.2 or newer, AEAD suites with forward secrecy only),
// else plain HTTP.
func listenHTTP(c Config) (net.Listener, error) {
	var conf *tls.Config
	if c.HTTP.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.HTTP.CertFile, c.HTTP.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("http: certificate: %w", err)
		}
		conf = sipfront.ServerTLS(cert)
	}
	ln, err := net.Listen("tcp", c.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	return ln, nil
}

// storeName names the store kind of a DSN: "sqlite" or "postgres".
func storeName(dsn string) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return "sqlite"
	}
	return "postgres"
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
	err := m.openNode(ctx, reg)
	if err != nil {
		return err
	}
	m.Access, err = accesslog.Open(accesslog.Config{Dir: filepath.Join(m.Config.Data, "logs"), Key: m.master.Derive("access log v1")})
	if err != nil {
		m.Node.Close()
		m.Store.Close()
		return err
	}
	ln, err := listenHTTP(m.Config)
	if err != nil {
		m.Access.Close()
		m.Node.Close()
		m.Store.Close()
		return err
	}
	m.Addr = ln.Addr().String()
	if err := m.listenSIP(ctx, reg); err != nil {
		m.Access.Close()
		ln.Close()
		m.Node.Close()
		m.Store.Close()
		return err
	}
	api := httpapi.New(httpapi.Config{
		RatePerKey:  m.Config.HTTP.RatePerKey,
		MaxInFlight: m.Config.HTTP.MaxInFlight,
		Gatherer:    reg,
		Log:         m.Log.With("component", "http"),
	}, m.Node, m.ready.Load)
	con, err := console.New(console.Config{Log: m.Log.With("component", "console")}, m.Node, m.Store)
	if err != nil {
		m.Access.Close()
		ln.Close()
		m.Node.Close()
		m.Store.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, con)
	mux.Handle("/", api)
	// The route pattern, never the path: a path can hold a number.
	limited := httpapi.LimitPerSource(mux, m.Config.HTTP.RatePerSource, 0)
	handler := accesslog.Middleware(limited, m.Access, func(r *http.Request) string { return r.Pattern })
	m.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn),
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.http.Serve(ln) }()
	hk, stop := context.WithCancel(context.Background())
	m.stopHK, m.hkDone = stop, make(chan struct{})
	go func() { defer close(m.hkDone); m.housekeep(hk) }()
	m.ready.Store(true)
	m.Log.Info("serving", "http", m.Addr, "store", storeName(m.Config.Store))
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
	if m.stopHK != nil {
		m.stopHK()
		<-m.hkDone
	}
	if m.Node != nil {
		errs = append(errs, m.Node.Close())
	}
	if m.Audit != nil {
		m.checkpoint(context.Background())
	}
	if m.Access != nil {
		errs = append(errs, m.Access.Close())
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
