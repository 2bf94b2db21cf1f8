package httpapi

import (
	"net/http"

	"github.com/ringfence/ringfence/node"
)

func (s *Server) fileReport(w http.ResponseWriter, r *http.Request) {
	var req node.ReportRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.node.ReportFraud(r.Context(), tenantOf(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request) {
	rs, err := s.node.OwnReports(r.Context(), tenantOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": rs})
}

func (s *Server) withdrawReport(w http.ResponseWriter, r *http.Request) {
	if err := s.node.WithdrawReport(r.Context(), tenantOf(r), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) consortiumStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.node.ConsortiumStatus(r.Context(), tenantOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

type membershipRequest struct {
	Terms string `json:"terms"` // the version of the consortium terms accepted
}

func (s *Server) joinConsortium(w http.ResponseWriter, r *http.Request) {
	var req membershipRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.node.JoinConsortium(r.Context(), tenantOf(r), req.Terms); err != nil {
		s.fail(w, r, err)
		return
	}
	s.consortiumStatus(w, r)
}

func (s *Server) leaveConsortium(w http.ResponseWriter, r *http.Request) {
	if err := s.node.LeaveConsortium(r.Context(), tenantOf(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type disputeRequest struct {
	Number string `json:"number"`
	Reason string `json:"reason"` // not_fraud, wrong_number, rectification, erasure, other
	Detail string `json:"detail,omitempty"`
}

func (s *Server) openDispute(w http.ResponseWriter, r *http.Request) {
	var req disputeRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.node.DisputeEntry(r.Context(), tenantOf(r), req.Number, req.Reason, req.Detail)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

func (s *Server) consortiumEntry(w http.ResponseWriter, r *http.Request) {
	e, err := s.node.ConsortiumEntry(r.Context(), tenantOf(r), r.PathValue("number"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}
