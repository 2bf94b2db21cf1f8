// Package httpapi serves ringfence's JSON API under /v1, plus /healthz,
// /readyz, /metrics and the OpenAPI document. Every /v1 route takes a
// tenant's API key as a bearer token; every query is scoped to that tenant.
package httpapi

import (
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
)

//go:embed openapi.json
var openapi []byte

// Config tunes the API. Zero values are useful defaults.
type Config struct {
	MaxBody      int64         // JSON bodies; 0 => 64 KiB
	MaxImport    int64         // CSV imports; 0 => 256 MiB
	RatePerKey   float64       // requests per second per API key; 0 => unlimited
	Burst        int           // bucket size for RatePerKey; 0 => 2 s worth
	ScreenBudget time.Duration // deadline for one screen request; 0 => 250 ms
	// MaxInFlight bounds concurrent screen requests; over it a request is
	// answered by its ingress route's failure policy (see overloaded).
	// 0 => 1024.
	MaxInFlight int64
	Gatherer    prometheus.Gatherer
	Log         *slog.Logger
}

// Server is the HTTP handler. Its Ready flag gates /readyz.
type Server struct {
	cfg      Config
	node     *node.Node
	log      *slog.Logger
	mux      *http.ServeMux
	perKey   *limiter // nil: no limit
	inFlight atomic.Int64
	ready    func() bool
}

// Route is one route the API serves: "METHOD /path", the roles that may
// call it (none: no credentials needed) and its handler.
type Route struct {
	Pattern string
	Roles   []call.Role
	handler func(*Server, http.ResponseWriter, *http.Request)
}

// Role sets of the routes below.
var (
	screening    = []call.Role{call.Admin, call.Analyst, call.Integration}
	reviewing    = []call.Role{call.Admin, call.Analyst}
	configuring  = []call.Role{call.Admin}
	readingConf  = []call.Role{call.Admin, call.Analyst}
	privacyRoles = []call.Role{call.PrivacyOfficer}
	holdsRoles   = []call.Role{call.PrivacyOfficer, call.Admin}
	auditRoles   = []call.Role{call.Auditor}
	disputing    = []call.Role{call.Admin, call.Analyst, call.PrivacyOfficer}
	recording    = []call.Role{call.Recorder}
	compliance   = []call.Role{call.ComplianceOfficer}
)

// Routes lists every route the API serves. The OpenAPI document, the
// authorisation matrix test and docs/api.md are checked against it.
var Routes = []Route{
	{"POST /v1/screen", screening, (*Server).screen},
	{"GET /v1/calls", reviewing, (*Server).listCalls},
	{"GET /v1/calls/{id}", reviewing, (*Server).getCall},
	{"PATCH /v1/calls/{id}", screening, (*Server).endCall},
	{"POST /v1/calls/{id}/label", reviewing, (*Server).label},
	{"GET /v1/lists/{list}", readingConf, (*Server).listEntries},
	{"POST /v1/lists/{list}", configuring, (*Server).addListEntry},
	{"POST /v1/lists/{list}/import", configuring, (*Server).importList},
	{"DELETE /v1/lists/{list}/numbers/{number}", configuring, (*Server).deleteListEntry},
	{"GET /v1/routes", readingConf, (*Server).listRoutes},
	{"GET /v1/routes/{id}", readingConf, (*Server).getRoute},
	{"PUT /v1/routes/{id}", configuring, (*Server).putRoute},
	{"DELETE /v1/routes/{id}", configuring, (*Server).deleteRoute},
	{"GET /v1/policy", readingConf, (*Server).getPolicy},
	{"PUT /v1/policy", configuring, (*Server).putPolicy},
	{"POST /v1/keys", configuring, (*Server).newKey},
	{"POST /v1/privacy/cases", privacyRoles, (*Server).openCase},
	{"GET /v1/privacy/cases", privacyRoles, (*Server).listCases},
	{"GET /v1/privacy/cases/{id}", privacyRoles, (*Server).getCase},
	{"POST /v1/privacy/cases/{id}/steps", privacyRoles, (*Server).stepCase},
	{"POST /v1/privacy/cases/{id}/fulfil", privacyRoles, (*Server).fulfilCase},
	{"GET /v1/privacy/cases/{id}/package", privacyRoles, (*Server).casePackage},
	{"GET /v1/privacy/holds", holdsRoles, (*Server).listHolds},
	{"POST /v1/privacy/holds", holdsRoles, (*Server).placeHold},
	{"DELETE /v1/privacy/holds/{id}", holdsRoles, (*Server).liftHold},
	{"POST /v1/privacy/consents", privacyRoles, (*Server).recordConsent},
	{"GET /v1/privacy/retention", holdsRoles, (*Server).getRetention},
	{"PUT /v1/privacy/retention", privacyRoles, (*Server).putRetention},
	{"GET /v1/privacy/records", call.Roles, (*Server).records},
	{"GET /v1/audit", auditRoles, (*Server).auditEntries},
	{"POST /v1/audit/verify", auditRoles, (*Server).verifyAudit},
	{"POST /v1/reports", reviewing, (*Server).fileReport},
	{"GET /v1/reports", reviewing, (*Server).listReports},
	{"DELETE /v1/reports/{id}", reviewing, (*Server).withdrawReport},
	{"GET /v1/consortium", reviewing, (*Server).consortiumStatus},
	{"PUT /v1/consortium/membership", configuring, (*Server).joinConsortium},
	{"DELETE /v1/consortium/membership", configuring, (*Server).leaveConsortium},
	{"POST /v1/consortium/disputes", disputing, (*Server).openDispute},
	{"GET /v1/consortium/entries/{number}", reviewing, (*Server).consortiumEntry},
	{"POST /v1/calls/import", configuring, (*Server).importCalls},
	{"POST /v1/models", configuring, (*Server).trainModel},
	{"GET /v1/models", reviewing, (*Server).listModels},
	{"GET /v1/models/{version}", reviewing, (*Server).getModel},
	{"PUT /v1/models/{version}/status", configuring, (*Server).setModelStatus},
	{"PUT /v1/archive/users/{id}", recording, (*Server).putArchiveUser},
	{"PUT /v1/archive/users/{id}/contacts", recording, (*Server).putArchiveContacts},
	{"POST /v1/archive/users/{id}/offboard", recording, (*Server).offboardArchiveUser},
	{"POST /v1/archive/calls", recording, (*Server).ingestArchiveCall},
	{"POST /v1/archive/sms", recording, (*Server).ingestArchiveSMS},
	{"POST /v1/archive/recordings", recording, (*Server).beginRecording},
	{"GET /v1/archive/uploads/{id}", recording, (*Server).uploadStatus},
	{"PATCH /v1/archive/uploads/{id}", recording, (*Server).appendUpload},
	{"POST /v1/archive/uploads/{id}/complete", recording, (*Server).completeUpload},
	{"GET /v1/archive/users/{id}", compliance, (*Server).getArchiveUser},
	{"GET /v1/archive/items", compliance, (*Server).searchArchive},
	{"GET /v1/archive/items/{id}", compliance, (*Server).getArchiveItem},
	{"GET /v1/archive/items/{id}/media", compliance, (*Server).playRecording},
	{"POST /v1/archive/exports", compliance, (*Server).exportArchive},
	{"GET /v1/archive/exports/{id}", compliance, (*Server).downloadExport},
	{"GET /v1/archive/holds", compliance, (*Server).listArchiveHolds},
	{"POST /v1/archive/holds", compliance, (*Server).placeArchiveHold},
	{"DELETE /v1/archive/holds/{id}", compliance, (*Server).liftArchiveHold},
	{"GET /v1/archive/retention", compliance, (*Server).getArchiveRetention},
	{"PUT /v1/archive/retention", compliance, (*Server).putArchiveRetention},
	{"POST /v1/archive/days/{day}/seal", compliance, (*Server).sealArchiveDay},
	{"GET /v1/openapi.json", nil, (*Server).openAPI},
	{"GET /healthz", nil, (*Server).healthz},
	{"GET /readyz", nil, (*Server).readyz},
	{"GET /metrics", nil, (*Server).metrics},
}

// New returns the API handler over n. ready reports whether the node can
// take traffic (nil: always).
func New(cfg Config, n *node.Node, ready func() bool) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.MaxImport <= 0 {
		cfg.MaxImport = 256 << 20
	}
	if cfg.ScreenBudget <= 0 {
		cfg.ScreenBudget = 250 * time.Millisecond
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1024
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if ready == nil {
		ready = func() bool { return true }
	}
	s := &Server{cfg: cfg, node: n, log: cfg.Log, mux: http.NewServeMux(), ready: ready, perKey: newLimiter(cfg.RatePerKey, cfg.Burst)}
	allow := map[string][]string{}
	for _, route := range Routes {
		method, path, _ := cut(route.Pattern)
		h := func(w http.ResponseWriter, r *http.Request) { route.handler(s, w, r) }
		if route.Roles != nil {
			h = s.auth(route.Roles, h)
		}
		s.mux.HandleFunc(route.Pattern, h)
		allow[path] = append(allow[path], method)
	}
	// Every other method on a served path gets 405 with Allow. (Per
	// method: a method-less pattern would clash with a more general
	// path of another method, such as POST /v1/calls/import beside GET
	// /v1/calls/{id}.)
	for path, methods := range allow {
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if !slices.Contains(methods, m) {
				s.mux.HandleFunc(m+" "+path, methodNotAllowed(methods))
			}
		}
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, call.Errorf(call.NotFound, "no route %s %s; see /v1/openapi.json", r.Method, r.URL.Path))
	})
	return s
}

func cut(route string) (method, path string, ok bool) {
	for i := 0; i < len(route); i++ {
		if route[i] == ' ' {
			return route[:i], route[i+1:], true
		}
	}
	return "", route, false
}

func methodNotAllowed(methods []string) http.HandlerFunc {
	allow := ""
	for i, m := range methods {
		if i > 0 {
			allow += ", "
		}
		allow += m
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: "method_not_allowed", Message: r.Method + " is not allowed here; use " + allow}})
	}
}

// ServeHTTP logs each request by route pattern (never the raw path, which
// can hold a number) and serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic serving request", "route", r.Pattern, "panic", v)
			if !sw.wrote {
				writeError(sw, errors.New("panic"))
			}
		}
		if sw.status >= 500 || s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Info("request", "method", r.Method, "route", r.Pattern, "status", sw.status, "us", time.Since(start).Microseconds())
		}
	}()
	s.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// principal is who is calling (set by auth).
func principal(r *http.Request) call.Principal {
	p, _ := node.PrincipalOf(r.Context())
	return p
}

func tenantOf(r *http.Request) string { return principal(r).Tenant }

// auth checks the bearer key, that its role is one of roles, and the key's
// rate limit.
func (s *Server) auth(roles []call.Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ringfence"`)
			writeError(w, call.Errorf(call.Unauthorized, "missing API key: send \"Authorization: Bearer <key>\""))
			return
		}
		p, err := s.node.Authenticate(r.Context(), key)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ringfence", error="invalid_token"`)
			writeError(w, err)
			return
		}
		if !slices.Contains(roles, p.Role) {
			writeError(w, call.Errorf(call.Forbidden, "role %s may not %s; it needs one of %s", p.Role, r.Pattern, roleList(roles)))
			return
		}
		if wait := s.perKey.take(p.Tenant+"\x00"+p.Actor, time.Now()); wait > 0 {
			tooMany(w, wait, "the rate limit of "+strconv.FormatFloat(s.cfg.RatePerKey, 'g', -1, 64)+" requests/s per API key")
			return
		}
		h(w, r.WithContext(node.As(r.Context(), p)))
	}
}

func roleList(roles []call.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func bearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) <= len(p) || !(h[:len(p)] == p || h[:len(p)] == "bearer ") {
		return "", false
	}
	return h[len(p):], true
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready() {
		writeError(w, call.Errorf(call.Unavailable, "not ready"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Gatherer == nil {
		writeError(w, call.Errorf(call.NotFound, "metrics are not enabled"))
		return
	}
	promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapi)
}
