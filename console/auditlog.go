package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/ringfence/ringfence/audit"
	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// auditPageSize is how many audit entries one page shows.
const auditPageSize = 100

// auditPage shows a page of the tenant's audit log, oldest first,
// filterable by action prefix and actor (reading it is itself audited).
func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, p *principal) {
	s.showAudit(w, r, p, nil)
}

func (s *Server) showAudit(w http.ResponseWriter, r *http.Request, p *principal, rep *audit.Report) {
	q := r.URL.Query()
	f := store.AuditFilter{ActionPrefix: q.Get("action"), Actor: q.Get("actor"), Limit: auditPageSize}
	if len(f.ActionPrefix) > 64 || len(f.Actor) > 200 {
		s.fail(w, r, p, call.Errorf(call.Invalid, "filter: too long"))
		return
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, p, call.Errorf(call.Invalid, "after: not a sequence number"))
			return
		}
		f.After = n
	}
	es, err := s.node.AuditEntries(p.ctx(r), p.Tenant, f)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	next := ""
	if len(es) == auditPageSize {
		nq := url.Values{}
		for k, v := range map[string]string{"action": f.ActionPrefix, "actor": f.Actor, "after": strconv.FormatInt(es[len(es)-1].Seq, 10)} {
			if v != "" {
				nq.Set(k, v)
			}
		}
		next = Prefix + "audit?" + nq.Encode()
	}
	s.render(w, r, http.StatusOK, "audit", p, map[string]any{
		"Title": "Audit log", "Entries": es, "Next": next,
		"Action": f.ActionPrefix, "Actor": f.Actor, "Report": rep,
	})
}

// verifyAudit walks the whole chain and its signed checkpoints and shows
// the result above the log.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request, p *principal) {
	rep, err := s.node.VerifyAudit(p.ctx(r), p.Tenant)
	if err != nil { // a broken chain is a Report, not an error
		s.fail(w, r, p, err)
		return
	}
	s.showAudit(w, r, p, &rep)
}
