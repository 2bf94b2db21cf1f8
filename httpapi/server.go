// Package httpapi serves ringfence's JSON API under /v1, plus /healthz,
// /readyz, /metrics and the OpenAPI document. Every /v1 route takes a
// tenant's API key as a bearer token; every query is scoped to that tenant.
package httpapi

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
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
	RatePerKey   float64       // requests per second per tenant; 0 => unlimited
	Burst        int           // bucket size for RatePerKey; 0 => 2 s worth
	ScreenBudget time.Duration // deadline for one screen request; 0 => 250 ms
	Gatherer     prometheus.Gatherer
	Log          *slog.Logger
}

// Server is the HTTP handler. Its Ready flag gates /readyz.
type Server struct {
	cfg    Config
	node   *node.Node
	log    *slog.Logger
	mux    *http.ServeMux
	limits sync.Map // tenant id -> *bucket
	ready  func() bool
}

// Routes lists every route the API serves, as "METHOD /path". The OpenAPI
// document and the tests are checked against it.
var Routes = []string{
	"POST /v1/screen",
	"GET /v1/calls",
	"GET /v1/calls/{id}",
	"PATCH /v1/calls/{id}",
	"POST /v1/calls/{id}/label",
	"GET /v1/lists/{list}",
	"POST /v1/lists/{list}",
	"POST /v1/lists/{list}/import",
	"DELETE /v1/lists/{list}/numbers/{number}",
	"GET /v1/routes",
	"GET /v1/routes/{id}",
	"PUT /v1/routes/{id}",
	"DELETE /v1/routes/{id}",
	"GET /v1/policy",
	"PUT /v1/policy",
	"GET /v1/openapi.json",
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
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
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if ready == nil {
		ready = func() bool { return true }
	}
	s := &Server{cfg: cfg, node: n, log: cfg.Log, mux: http.NewServeMux(), ready: ready}
	handlers := map[string]http.HandlerFunc{
		"POST /v1/screen":                          s.auth(s.screen),
		"GET /v1/calls":                            s.auth(s.listCalls),
		"GET /v1/calls/{id}":                       s.auth(s.getCall),
		"PATCH /v1/calls/{id}":                     s.auth(s.endCall),
		"POST /v1/calls/{id}/label":                s.auth(s.label),
		"GET /v1/lists/{list}":                     s.auth(s.listEntries),
		"POST /v1/lists/{list}":                    s.auth(s.addListEntry),
		"POST /v1/lists/{list}/import":             s.auth(s.importList),
		"DELETE /v1/lists/{list}/numbers/{number}": s.auth(s.deleteListEntry),
		"GET /v1/routes":                           s.auth(s.listRoutes),
		"GET /v1/routes/{id}":                      s.auth(s.getRoute),
		"PUT /v1/routes/{id}":                      s.auth(s.putRoute),
		"DELETE /v1/routes/{id}":                   s.auth(s.deleteRoute),
		"GET /v1/policy":                           s.auth(s.getPolicy),
		"PUT /v1/policy":                           s.auth(s.putPolicy),
		"GET /v1/openapi.json":                     s.openAPI,
		"GET /healthz":                             s.healthz,
		"GET /readyz":                              s.readyz,
		"GET /metrics":                             s.metrics,
	}
	allow := map[string][]string{}
	for _, route := range Routes {
		method, path, _ := cut(route)
		s.mux.HandleFunc(route, handlers[route])
		allow[path] = append(allow[path], method)
	}
	for path, methods := range allow {
		s.mux.HandleFunc(path, methodNotAllowed(methods))
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

type ctxKey int

const tenantKey ctxKey = 0

func tenantOf(r *http.Request) string { return r.Context().Value(tenantKey).(string) }

// auth checks the bearer key and the tenant's rate limit.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ringfence"`)
			writeError(w, call.Errorf(call.Unauthorized, "missing API key: send \"Authorization: Bearer <key>\""))
			return
		}
		tenant, err := s.node.Authenticate(r.Context(), key)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ringfence", error="invalid_token"`)
			writeError(w, err)
			return
		}
		if wait := s.limit(tenant); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
			writeError(w, call.Errorf(call.Overloaded, "rate limit of %g requests/s exceeded; retry later", s.cfg.RatePerKey))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), tenantKey, tenant)))
	}
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
