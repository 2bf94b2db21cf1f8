// Package node is one ringfence node: the engine with its in-memory state,
// the recorder that writes screened calls to the store, and the tenant keys
// that seal personal data on the way in and open it on the way out. Every
// front end (HTTP, SIP, CLI) calls a Node; a Node calls nothing but the
// store.
package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/archive"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/consortium"
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
	Audit       Auditor               // nil => nothing audited (tests)
	AuditKey    ed25519.PublicKey     // verifies the audit log's checkpoints; nil => VerifyAudit unavailable
	StoreName   string                // the store's name in privacy receipts ("sqlite", "postgres"); "" => "store"
	Consortium  *consortium.Service   // the fraud-sharing consortium; nil => none (its View must be Engine.Consortium's)
	Now         func() time.Time      // nil => time.Now
	Log         *slog.Logger          // nil => discard
	Metrics     prometheus.Registerer // nil => not registered

	// The compliance archive's media (see archive.go): sealed blobs and
	// the staging area of resumable uploads (whose Blobs must be
	// ArchiveBlobs). Nil => the archive's media routes answer Unavailable.
	ArchiveBlobs   archive.Blobs
	ArchiveUploads *archive.Uploads
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
	apiKeys map[[32]byte]call.Principal // key hash -> who holds it
	// rewrapped is the key version each tenant was last fully rewrapped
	// under by this node (RewrapPending).
	rewrapped map[string]uint32

	fmu   sync.RWMutex
	flags map[string]map[[32]byte]store.SubjectFlags // tenant -> pseudonym -> processing limits (only subjects with some)
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
		cfg:       cfg,
		now:       cfg.Now,
		log:       cfg.Log,
		store:     st,
		ring:      ring,
		engine:    screen.New(cfg.Engine),
		m:         newMetrics(cfg.Metrics),
		keys:      map[string]*seal.TenantKeys{},
		apiKeys:   map[[32]byte]call.Principal{},
		rewrapped: map[string]uint32{},
		flags:     map[string]map[[32]byte]store.SubjectFlags{},
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
		if !t.DeletedAt.IsZero() {
			continue // offboarded: its keys are destroyed
		}
		if err := n.load(ctx, t); err != nil {
			return nil, fmt.Errorf("load tenant %s: %w", t.ID, err)
		}
	}
	if svc := cfg.Consortium; svc != nil {
		if err := svc.Load(ctx); err != nil && call.ErrorCode(err) != call.NotFound {
			return nil, fmt.Errorf("load the consortium: %w", err)
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
	wrapped, err := n.upgradeKeys(ctx, t)
	if err != nil {
		return fmt.Errorf("upgrade keys: %w", err)
	}
	t.Keys = wrapped
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

	if err := n.loadFlags(ctx, t.ID); err != nil {
		return err
	}
	if err := n.loadModels(ctx, t.ID); err != nil {
		return err
	}
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
	if err := n.audit(ctx, id, "tenant.create", id, map[string]string{"region": region}); err != nil {
		return call.Tenant{}, "", err
	}
	key, err := n.NewAPIKey(ctx, id, "initial", call.Admin)
	if err != nil {
		return call.Tenant{}, "", err
	}
	return call.Tenant{ID: id, Name: name, Region: region, CreatedAt: now}, key, nil
}

// NewAPIKey issues another API key for the tenant, with the given role.
// The key is returned once; only its hash is stored.
func (n *Node) NewAPIKey(ctx context.Context, tenantID, name string, role call.Role) (string, error) {
	if _, err := call.ParseRole(string(role)); err != nil {
		return "", err
	}
	if name == "" || len(name) > 64 {
		return "", call.Errorf(call.Invalid, "name: 1-64 characters")
	}
	if _, err := n.tenantKeys(tenantID); err != nil {
		return "", err
	}
	key, hash, err := seal.NewAPIKey("rf")
	if err != nil {
		return "", err
	}
	if err := n.store.AddAPIKey(ctx, store.APIKey{Tenant: tenantID, Hash: hash, Name: name, Role: string(role), CreatedAt: n.now().UTC()}); err != nil {
		return "", err
	}
	if err := n.audit(ctx, tenantID, "apikey.create", name, map[string]string{"role": string(role)}); err != nil {
		return "", err
	}
	return key, nil
}

// Authenticate returns who holds the API key: Unauthorized if nobody.
// Known keys are answered from memory.
func (n *Node) Authenticate(ctx context.Context, key string) (call.Principal, error) {
	hash := seal.HashAPIKey(key)
	n.mu.RLock()
	p, ok := n.apiKeys[hash]
	n.mu.RUnlock()
	if ok {
		return p, nil
	}
	unknown := call.Errorf(call.Unauthorized, "unknown API key")
	id, err := n.store.TenantByAPIKey(ctx, hash)
	switch call.ErrorCode(err) {
	case "":
	case call.NotFound:
		return call.Principal{}, unknown
	default:
		return call.Principal{}, err
	}
	if _, err := n.tenantKeys(id); err != nil {
		return call.Principal{}, unknown
	}
	keys, err := n.store.APIKeys(ctx, id)
	if err != nil {
		return call.Principal{}, err
	}
	for _, k := range keys {
		if k.Hash == hash {
			p = call.Principal{Tenant: id, Role: call.Role(k.Role), Actor: "key:" + k.Name}
			n.mu.Lock()
			n.apiKeys[hash] = p
			n.mu.Unlock()
			return p, nil
		}
	}
	return call.Principal{}, unknown
}

// Tenant returns a tenant's details.
func (n *Node) Tenant(id string) (call.Tenant, error) {
	t, ok := n.engine.Tenant(id)
	if !ok {
		return call.Tenant{}, call.Errorf(call.NotFound, "unknown tenant %q", id)
	}
	return t, nil
}
