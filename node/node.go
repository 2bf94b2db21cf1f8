// Package node is one ringfence node: the engine with its in-memory state,
// the recorder that writes screened calls to the store, and the tenant keys
// that seal personal data on the way in and open it on the way out. Every
// front end (HTTP, SIP, CLI) calls a Node; a Node calls nothing but the
// store.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/screen"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
)

// Config holds a node's settings. Zero values are useful defaults.
type Config struct {
	ApplianceID string // this node's name in call records; "" => "ringfence"
	Engine      screen.Config
	Recorder    RecorderConfig
	Follow      FollowConfig
	Now         func() time.Time      // nil => time.Now
	Log         *slog.Logger          // nil => discard
	Metrics     prometheus.Registerer // nil => not registered
}

// Node wires the engine, recorder, store and keys together. Safe for
// concurrent use. Open loads state and starts the recorder and the
// change-feed follower; Close stops the follower and flushes the recorder.
type Node struct {
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	store  store.Store
	ring   *seal.Keyring
	engine *screen.Engine
	rec    *recorder
	follow *follower // nil when off
	m      *metrics
	ids    call.IDs

	mu      sync.RWMutex
	keys    map[string]*seal.TenantKeys // tenant id -> opened keys
	apiKeys map[[32]byte]string         // key hash -> tenant id
}

// Open builds a node over st, loading every tenant's policy, routes, lists
// and customer links into the engine, and starts the recorder and the
// follower of the store's change feed (see follower), which keeps that state
// up to date with changes other nodes (or CLI commands) make to the store.
// The feed's position is read before loading, so a change committed during
// the load is applied again rather than missed.
func Open(ctx context.Context, cfg Config, st store.Store, ring *seal.Keyring) (*Node, error) {
	if cfg.ApplianceID == "" {
		cfg.ApplianceID = "ringfence"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Engine.Now == nil {
		cfg.Engine.Now = cfg.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg:     cfg,
		now:     cfg.Now,
		log:     cfg.Log,
		store:   st,
		ring:    ring,
		engine:  screen.New(cfg.Engine),
		m:       newMetrics(cfg.Metrics),
		keys:    map[string]*seal.TenantKeys{},
		apiKeys: map[[32]byte]string{},
	}
	start := time.Now()
	last, err := st.LastChange(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the change feed: %w", err)
	}
	tenants, err := st.Tenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("load tenants: %w", err)
	}
	for _, t := range tenants {
		if err := n.load(ctx, t); err != nil {
			return nil, fmt.Errorf("load tenant %s: %w", t.ID, err)
		}
	}
	n.rec = n.startRecorder()
	if cfg.Follow.Poll >= 0 {
		n.follow = n.startFollower(last)
	}
	n.log.Info("node ready", "tenants", len(tenants), "load_ms", time.Since(start).Milliseconds(), "change_seq", last)
	return n, nil
}

// Close stops the change-feed follower, then the recorder after writing
// every queued record.
func (n *Node) Close() error {
	if n.follow != nil {
		n.follow.close()
	}
	return n.rec.close()
}

// Sync waits until every call screened before it is durable.
func (n *Node) Sync(ctx context.Context) error { return n.rec.sync(ctx) }

// Engine returns the node's engine (for benchmarks and replay).
func (n *Node) Engine() *screen.Engine { return n.engine }

// loadPage is the page size of load's reads: the most a store page holds.
// (A larger request is capped, so a shorter page would not mean the end.)
const loadPage = 1000

// load brings one stored tenant into memory.
func (n *Node) load(ctx context.Context, t store.Tenant) error {
	keys, err := n.ring.Open(t.ID, t.Keys)
	if err != nil {
		return fmt.Errorf("open keys: %w", err)
	}
	p, err := n.store.Policy(ctx, t.ID)
	if call.ErrorCode(err) == call.NotFound {
		p, err = call.DefaultPolicy(), nil
	}
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.keys[t.ID] = keys
	n.mu.Unlock()
	n.engine.SetTenant(call.Tenant{ID: t.ID, Name: t.Name, Region: t.Region, CreatedAt: t.CreatedAt}, p)

	routes, err := n.store.Routes(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, r := range routes {
		n.engine.PutRoute(t.ID, r)
	}
	for _, list := range []call.ListKind{call.AllowList, call.DenyList, call.DNOList} {
		var after []byte
		for {
			rows, err := n.store.ListEntries(ctx, t.ID, list, after, loadPage)
			if err != nil {
				return err
			}
			entries := make([]call.ListEntry, 0, len(rows))
			for _, r := range rows {
				e, err := n.openListEntry(t.ID, keys, r)
				if err != nil {
					return err
				}
				entries = append(entries, e)
			}
			n.engine.PutListEntries(t.ID, entries...)
			if len(rows) < loadPage {
				break
			}
			after = rows[len(rows)-1].Pseudonym
		}
	}
	var afterC, afterU []byte
	for {
		links, err := n.store.Links(ctx, t.ID, afterC, afterU, loadPage)
		if err != nil {
			return err
		}
		for _, l := range links {
			caller, user, err := openLink(t.ID, keys, l)
			if err != nil {
				return err
			}
			n.engine.Link(t.ID, n.engine.Number(t.ID, caller), user)
		}
		if len(links) < loadPage {
			return nil
		}
		afterC, afterU = links[len(links)-1].CallerPseudonym, links[len(links)-1].UserPseudonym
	}
}

func (n *Node) tenantKeys(id string) (*seal.TenantKeys, error) {
	n.mu.RLock()
	k := n.keys[id]
	n.mu.RUnlock()
	if k == nil {
		return nil, call.Errorf(call.NotFound, "unknown tenant %q", id)
	}
	return k, nil
}

// CreateTenant creates a tenant with the default policy and returns it with
// its first API key (shown once; only its hash is stored).
func (n *Node) CreateTenant(ctx context.Context, id, name, region string) (call.Tenant, string, error) {
	if !call.ValidID(id) {
		return call.Tenant{}, "", call.Errorf(call.Invalid, "tenant id: must be 1-64 characters of letters, digits, '-', '_' or '.'")
	}
	if !call.ValidRegion(region) {
		return call.Tenant{}, "", call.Errorf(call.Invalid, "region: must be an ISO 3166 alpha-2 code such as \"GB\"")
	}
	if name == "" {
		name = id
	}
	wrapped, err := n.ring.NewTenantKeys(id)
	if err != nil {
		return call.Tenant{}, "", err
	}
	now := n.now().UTC()
	row := store.Tenant{ID: id, Name: name, Region: region, Keys: wrapped, CreatedAt: now}
	if err := n.store.CreateTenant(ctx, row); err != nil {
		return call.Tenant{}, "", err
	}
	p := call.DefaultPolicy()
	if err := n.store.PutPolicy(ctx, id, p); err != nil {
		return call.Tenant{}, "", err
	}
	if err := n.load(ctx, row); err != nil {
		return call.Tenant{}, "", err
	}
	key, err := n.NewAPIKey(ctx, id, "initial")
	if err != nil {
		return call.Tenant{}, "", err
	}
	return call.Tenant{ID: id, Name: name, Region: region, CreatedAt: now}, key, nil
}

// NewAPIKey issues another API key for the tenant.
func (n *Node) NewAPIKey(ctx context.Context, tenantID, name string) (string, error) {
	if _, err := n.tenantKeys(tenantID); err != nil {
		return "", err
	}
	key, hash, err := seal.NewAPIKey("rf")
	if err != nil {
		return "", err
	}
	if err := n.store.AddAPIKey(ctx, store.APIKey{Tenant: tenantID, Hash: hash, Name: name, CreatedAt: n.now().UTC()}); err != nil {
		return "", err
	}
	n.mu.Lock()
	n.apiKeys[hash] = tenantID
	n.mu.Unlock()
	return key, nil
}

// Authenticate returns the tenant owning the API key: Unauthorized if none.
// Known keys are answered from memory.
func (n *Node) Authenticate(ctx context.Context, key string) (string, error) {
	hash := seal.HashAPIKey(key)
	n.mu.RLock()
	id, ok := n.apiKeys[hash]
	n.mu.RUnlock()
	if ok {
		return id, nil
	}
	id, err := n.store.TenantByAPIKey(ctx, hash)
	switch call.ErrorCode(err) {
	case "":
	case call.NotFound:
		return "", call.Errorf(call.Unauthorized, "unknown API key")
	default:
		return "", err
	}
	if _, err := n.tenantKeys(id); err != nil {
		return "", call.Errorf(call.Unauthorized, "unknown API key")
	}
	n.mu.Lock()
	n.apiKeys[hash] = id
	n.mu.Unlock()
	return id, nil
}

// Tenant returns a tenant's details.
func (n *Node) Tenant(id string) (call.Tenant, error) {
	t, ok := n.engine.Tenant(id)
	if !ok {
		return call.Tenant{}, call.Errorf(call.NotFound, "unknown tenant %q", id)
	}
	return t, nil
}
