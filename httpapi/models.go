package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
)

type trainRequest struct {
	From      *time.Time `json:"from,omitempty"`
	To        *time.Time `json:"to,omitempty"`
	TestShare float64    `json:"test_share,omitempty"`
	Seed      uint64     `json:"seed,omitempty"`
	Promote   bool       `json:"promote,omitempty"`
}

func (s *Server) trainModel(w http.ResponseWriter, r *http.Request) {
	var req trainRequest
	if r.ContentLength != 0 {
		if err := s.decode(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	opts := node.TrainOptions{TestShare: req.TestShare, Seed: req.Seed, Promote: req.Promote}
	if req.From != nil {
		opts.From = *req.From
	}
	if req.To != nil {
		opts.To = *req.To
	}
	v, err := s.node.TrainModel(r.Context(), tenantOf(r), opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	ms, err := s.node.Models(r.Context(), tenantOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": ms})
}

func modelVersion(r *http.Request) (int, error) {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		return 0, call.Errorf(call.NotFound, "no model version %q", r.PathValue("version"))
	}
	return v, nil
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	v, err := modelVersion(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.node.ModelReport(r.Context(), tenantOf(r), v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.URL.Query().Get("format") == "html" && m.Report != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Write([]byte(m.Report.HTML()))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

type modelStatusRequest struct {
	Status string `json:"status"` // live, shadow or retired
}

func (s *Server) setModelStatus(w http.ResponseWriter, r *http.Request) {
	v, err := modelVersion(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req modelStatusRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.node.SetModelStatus(r.Context(), tenantOf(r), v, req.Status); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.node.ModelReport(r.Context(), tenantOf(r), v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m.Report = nil
	writeJSON(w, http.StatusOK, m)
}
