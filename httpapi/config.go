package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
)

type listEntryJSON struct {
	Number    string     `json:"number"`
	Reason    string     `json:"reason,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

func entryJSON(e call.ListEntry) listEntryJSON {
	j := listEntryJSON{Number: e.Number.E164, Reason: e.Reason}
	if !e.ExpiresAt.IsZero() {
		t := e.ExpiresAt.UTC()
		j.ExpiresAt = &t
	}
	if !e.CreatedAt.IsZero() {
		t := e.CreatedAt.UTC()
		j.CreatedAt = &t
	}
	return j
}

func listOf(r *http.Request) (call.ListKind, error) { return call.ParseListKind(r.PathValue("list")) }

func (s *Server) listEntries(w http.ResponseWriter, r *http.Request) {
	list, err := listOf(r)
	limit := 0
	if v := r.URL.Query().Get("limit"); err == nil && v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			err = call.Errorf(call.Invalid, "limit: must be between 1 and 1000")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	entries, next, err := s.node.ListEntries(r.Context(), tenantOf(r), list, r.URL.Query().Get("after"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Entries []listEntryJSON `json:"entries"`
		Next    string          `json:"next,omitempty"`
	}{Entries: make([]listEntryJSON, len(entries)), Next: next}
	for i, e := range entries {
		out.Entries[i] = entryJSON(e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addListEntry(w http.ResponseWriter, r *http.Request) {
	list, err := listOf(r)
	var req listEntryJSON
	if err == nil {
		err = s.decode(w, r, &req)
	}
	if err == nil && req.CreatedAt != nil {
		err = call.Errorf(call.Invalid, "created_at: set by the server")
	}
	if err == nil && req.Number == "" {
		err = call.Errorf(call.Invalid, "number: required")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var exp time.Time
	if req.ExpiresAt != nil {
		exp = *req.ExpiresAt
	}
	e, err := s.node.AddListEntry(r.Context(), tenantOf(r), list, req.Number, req.Reason, exp)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, entryJSON(e))
}

func (s *Server) deleteListEntry(w http.ResponseWriter, r *http.Request) {
	list, err := listOf(r)
	if err == nil {
		err = s.node.DeleteListEntry(r.Context(), tenantOf(r), list, r.PathValue("number"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) importList(w http.ResponseWriter, r *http.Request) {
	list, err := listOf(r)
	if ct := r.Header.Get("Content-Type"); err == nil && !strings.HasPrefix(ct, "text/csv") && !strings.HasPrefix(ct, "text/plain") {
		err = call.Errorf(call.Invalid, "Content-Type: must be text/csv")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxImport)
	res, err := s.node.ImportList(r.Context(), tenantOf(r), list, body, r.URL.Query().Get("region"))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		err = call.Errorf(call.TooLarge, "body: larger than %d bytes; split the file (rows before the limit were %d added)", s.cfg.MaxImport, res.Added)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) listRoutes(w http.ResponseWriter, r *http.Request) {
	routes, err := s.node.Routes(r.Context(), tenantOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if routes == nil {
		routes = []call.Route{}
	}
	writeJSON(w, http.StatusOK, map[string][]call.Route{"routes": routes})
}

func (s *Server) getRoute(w http.ResponseWriter, r *http.Request) {
	route, err := s.node.Route(tenantOf(r), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, route)
}

func (s *Server) putRoute(w http.ResponseWriter, r *http.Request) {
	var route call.Route
	if err := s.decode(w, r, &route); err != nil {
		s.fail(w, r, err)
		return
	}
	if route.ID != "" && route.ID != r.PathValue("id") {
		s.fail(w, r, call.Errorf(call.Invalid, "id: must match the id in the path or be omitted"))
		return
	}
	route.ID = r.PathValue("id")
	if err := s.node.PutRoute(r.Context(), tenantOf(r), route); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, route)
}

func (s *Server) deleteRoute(w http.ResponseWriter, r *http.Request) {
	if err := s.node.DeleteRoute(r.Context(), tenantOf(r), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.node.Policy(tenantOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	var p call.Policy
	if err := s.decode(w, r, &p); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.node.PutPolicy(r.Context(), tenantOf(r), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
