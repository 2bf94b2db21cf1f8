// Package console serves ringfence's web console for a tenant's staff
// (analysts, administrators, auditors, privacy officers) under /console/:
// server-rendered HTML from templates and assets embedded in the binary, one
// strictly necessary session cookie, a CSRF token on every form, a live feed
// of screened calls over server-sent events, call detail with the analyst's
// confirmation, an overview with server-side SVG charts and the audit log.
//
// Everything the console shows or changes goes through the node in a
// context naming the signed-in user (node.As), so the audit log names the
// person. Caller numbers are masked on every page; admins and analysts
// may unmask one call's number, which reads the record through the node
// (audited as call.read).
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Node is what the console needs of a ringfence node (*node.Node). Every
// method audits reads of personal data under the principal in ctx.
type Node interface {
	Calls(ctx context.Context, tenant string, f store.CallFilter) ([]*call.Call, string, error)
	Call(ctx context.Context, tenant, id string) (*call.Call, error)
	Label(ctx context.Context, tenant, id string, l call.Label) (*call.Call, error)
	AuditEntries(ctx context.Context, tenant string, f store.AuditFilter) ([]store.AuditEntry, error)
	VerifyAudit(ctx context.Context, tenant string) (audit.Report, error)
	Tenant(id string) (call.Tenant, error)
}

// Config tunes the console. Zero values are useful defaults.
type Config struct {
	IdleTimeout time.Duration // a session unused this long ends; 0 => 30 minutes
	MaxSession  time.Duration // a session ends this long after sign-in; 0 => 12 hours
	Poll        time.Duration // how often a live feed asks the node for new calls; 0 => 500 ms
	// SecureCookie marks the session cookie Secure even on plain HTTP
	// requests (TLS terminated by a proxy in front). A request that came
	// over TLS always gets a Secure cookie.
	SecureCookie bool
	MaxFailures  int           // failed sign-ins before a lock; 0 => 5
	LockFor      time.Duration // how long a lock lasts; 0 => 15 minutes
	Now          func() time.Time
	Log          *slog.Logger
}

// Server is the console's http.Handler. Safe for concurrent use.
type Server struct {
	cfg   Config
	node  Node
	users Users
	now   func() time.Time
	log   *slog.Logger
	pages map[string]*template.Template
	rows  *template.Template // the live feed's row, for server-sent events
	mux   *http.ServeMux
}

// route is one console route: its pattern (under Prefix), the roles that
// may use it (nil: no session needed) and its handler.
type route struct {
	pattern string
	roles   []call.Role
	handler func(*Server, http.ResponseWriter, *http.Request, *principal)
}

// Role sets of the routes below.
var (
	// feedRoles see the live feed and the overview, with numbers masked.
	feedRoles = []call.Role{call.Admin, call.Analyst, call.Auditor, call.PrivacyOfficer}
	// detailRoles open a call's detail page.
	detailRoles = []call.Role{call.Admin, call.Analyst, call.PrivacyOfficer}
	// reviewRoles label calls and unmask numbers.
	reviewRoles = []call.Role{call.Admin, call.Analyst}
	auditRoles  = []call.Role{call.Auditor}
	// signInRoles may sign in at all: people, not integrations.
	signInRoles = []call.Role{call.Admin, call.Analyst, call.Auditor, call.PrivacyOfficer, call.ComplianceOfficer}
)

// routes lists every route; the role test walks it.
var routes = []route{
	{"GET /console/{$}", nil, (*Server).home},
	{"GET /console/signin", nil, (*Server).signInPage},
	{"POST /console/signin", nil, (*Server).signIn},
	{"POST /console/signout", signInRoles, (*Server).signOut},
	{"GET /console/calls", feedRoles, (*Server).callsPage},
	{"GET /console/calls/events", feedRoles, (*Server).callEvents},
	{"GET /console/calls/{id}", detailRoles, (*Server).callPage},
	{"POST /console/calls/{id}/unmask", reviewRoles, (*Server).unmask},
	{"POST /console/calls/{id}/label", reviewRoles, (*Server).label},
	{"GET /console/overview", feedRoles, (*Server).overviewPage},
	{"GET /console/audit", auditRoles, (*Server).auditPage},
	{"POST /console/audit/verify", auditRoles, (*Server).verifyAudit},
}

// New parses the embedded templates (a broken template fails here, not on
// a request) and returns the console over the node and the user store.
func New(cfg Config, n Node, users Users) (*Server, error) {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxSession <= 0 {
		cfg.MaxSession = 12 * time.Hour
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 5
	}
	if cfg.LockFor <= 0 {
		cfg.LockFor = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, node: n, users: users, now: cfg.Now, log: cfg.Log, mux: http.NewServeMux()}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(static))
	s.mux.Handle("GET /console/static/", files)
	for _, rt := range slices.Concat(routes, configRoutes, rightsRoutes) {
		s.mux.HandleFunc(rt.pattern, s.wrap(rt))
	}
	s.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, nil, call.Errorf(call.NotFound, "no such page"))
	})
	return s, nil
}

// ServeHTTP serves the console: every response carries the security
// headers; a cross-origin unsafe request (by Sec-Fetch-Site or Origin) is
// refused before any handler runs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		h.Set("Cache-Control", "no-store")
	}
	if err := crossOrigin.Check(r); err != nil {
		s.fail(w, r, nil, call.Errorf(call.Forbidden, "cross-origin request refused"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

var crossOrigin = http.NewCrossOriginProtection()

// wrap checks the session and role a route needs and the CSRF token of an
// unsafe method, then calls the handler with the principal (nil for a
// route that needs no session).
func (s *Server) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if rt.roles == nil {
			rt.handler(s, w, r, nil)
			return
		}
		p, err := s.session(w, r)
		if err != nil {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, Prefix+"signin?next="+safeNext(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.fail(w, r, nil, err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := s.checkCSRF(r, p); err != nil {
				s.fail(w, r, p, err)
				return
			}
		}
		if !slices.Contains(rt.roles, p.Role) {
			s.fail(w, r, p, call.Errorf(call.Forbidden, "your role (%s) may not open this page", roleName(p.Role)))
			return
		}
		rt.handler(s, w, r, p)
	}
}

// status maps error codes to HTTP statuses.
var status = map[string]int{
	call.Invalid:      http.StatusBadRequest,
	call.Unauthorized: http.StatusUnauthorized,
	call.Forbidden:    http.StatusForbidden,
	call.NotFound:     http.StatusNotFound,
	call.Conflict:     http.StatusConflict,
	call.TooLarge:     http.StatusRequestEntityTooLarge,
	call.Overloaded:   http.StatusTooManyRequests,
	call.Unavailable:  http.StatusServiceUnavailable,
	call.Internal:     http.StatusInternalServerError,
}

// fail renders the error page. Internal errors are logged with detail and
// shown as "internal error".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, p *principal, err error) {
	code := call.ErrorCode(err)
	if code == call.Internal || code == "" {
		s.log.Error("console", "path", r.Pattern, "err", err)
	}
	st, ok := status[code]
	if !ok {
		st = http.StatusInternalServerError
	}
	s.render(w, r, st, "error", p, map[string]any{"Title": http.StatusText(st), "Message": call.ErrorMessage(err)})
}

// home sends a signed-in user to the first page their role may open.
func (s *Server) home(w http.ResponseWriter, r *http.Request, _ *principal) {
	p, err := s.session(w, r)
	switch {
	case err != nil:
		http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
	case p.Role == call.Auditor:
		http.Redirect(w, r, Prefix+"audit", http.StatusSeeOther)
	case p.Role == call.ComplianceOfficer:
		http.Redirect(w, r, Prefix+"archive", http.StatusSeeOther)
	case slices.Contains(feedRoles, p.Role):
		http.Redirect(w, r, Prefix+"calls", http.StatusSeeOther)
	default:
		s.render(w, r, http.StatusOK, "home", p, nil)
	}
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}
