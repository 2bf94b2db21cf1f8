package console

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/sqlite"
)

// clock is a settable clock for the console (the node keeps real time).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// env is a console over a real node and a real SQLite store (users and
// sessions included), served by httptest.
type env struct {
	t     testing.TB
	st    *sqlite.DB
	node  *node.Node
	con   *Server
	srv   *httptest.Server
	clock *clock
}

const tenant = "bank"

// password is every test user's password.
const password = "correct horse battery"

func newEnv(tb testing.TB, cfg Config) *env {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "rf.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	mk, err := seal.NewMasterKey()
	if err != nil {
		tb.Fatal(err)
	}
	signer := audit.KeyFromSecret(mk.Derive("audit checkpoint v1"))
	n, err := node.Open(ctx, node.Config{
		Audit:    audit.New(st, signer, "test", nil),
		AuditKey: signer.Public().(ed25519.PublicKey),
	}, st, seal.NewKeyring(mk))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close() })
	if _, _, err := n.CreateTenant(ctx, tenant, "Bank", "GB"); err != nil {
		tb.Fatal(err)
	}
	e := &env{t: tb, st: st, node: n, clock: &clock{}}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	e.con, err = New(cfg, n, st)
	if err != nil {
		tb.Fatal(err)
	}
	e.srv = httptest.NewServer(e.con)
	tb.Cleanup(e.srv.Close)
	return e
}

// addUser stores a user with the test password.
func (e *env) addUser(id string, role call.Role) {
	e.t.Helper()
	h, err := HashPassword(password)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.PutUser(context.Background(), store.User{Tenant: tenant, ID: id, Role: role, PasswordHash: h, CreatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
}

// screen screens one call from caller.
func (e *env) screen(caller string) *call.Call {
	e.t.Helper()
	c, err := e.node.Screen(context.Background(), node.Incoming{Tenant: tenant, Caller: caller, Dialled: "+442079460123", Ingress: "uk-core"})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.node.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn signs in as user and fails the test unless it worked.
func (e *env) signIn(user string) *browser {
	e.t.Helper()
	b := e.browser()
	res, _ := b.post("/console/signin", url.Values{"tenant": {tenant}, "user": {user}, "password": {password}})
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign in as %s: status %d", user, res.StatusCode)
	}
	return b
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.e.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the forms on a page.
func (b *browser) csrf(page string) string {
	b.e.t.Helper()
	_, body := b.get(page)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		b.e.t.Fatalf("no csrf field on %s", page)
	}
	return m[1]
}

// auditActions returns the tenant's audit entries of an action by actor.
func (e *env) auditActions(action, actor string) []store.AuditEntry {
	e.t.Helper()
	es, err := e.st.AuditEntries(context.Background(), store.AuditFilter{Tenant: tenant, ActionPrefix: action, Actor: actor, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

func storeUser(id string, role call.Role, hash []byte) store.User {
	return store.User{Tenant: tenant, ID: id, Role: role, PasswordHash: hash, CreatedAt: time.Now()}
}
