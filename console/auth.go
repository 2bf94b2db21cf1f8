package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/store"
)

// Users is what the console needs of the user store (store.Users).
type Users interface {
	User(ctx context.Context, tenant, id string) (store.User, error)
	UpdateUser(ctx context.Context, u store.User) error
	PutSession(ctx context.Context, s store.Session) error
	Session(ctx context.Context, idHash [32]byte) (store.Session, error)
	TouchSession(ctx context.Context, idHash [32]byte, lastSeen time.Time) (store.Session, error)
	DeleteSession(ctx context.Context, idHash [32]byte) error
}

// cookieName is the console's one cookie: the session token.
const cookieName = "ringfence_session"

// principal is the signed-in user of a request.
type principal struct {
	call.Principal
	User    string   // login id
	Tenant  string   // tenant id (as Principal.Tenant)
	idHash  [32]byte // the session's token hash
	CSRF    string   // the token forms carry
	Expires time.Time
}

// ctx returns the request's context naming the user, for node calls.
func (p *principal) ctx(r *http.Request) context.Context {
	return node.As(r.Context(), p.Principal)
}

// CanUnmask reports whether the user may see callers' numbers (on request,
// audited).
func (p *principal) CanUnmask() bool { return slices.Contains(reviewRoles, p.Role) }

// CanReview reports whether the user may label calls.
func (p *principal) CanReview() bool { return slices.Contains(reviewRoles, p.Role) }

// CanAudit reports whether the user may open the audit log.
func (p *principal) CanAudit() bool { return slices.Contains(auditRoles, p.Role) }

// CanFeed reports whether the user may open the live feed and overview.
func (p *principal) CanFeed() bool { return slices.Contains(feedRoles, p.Role) }

// CanDetail reports whether the user may open a call's detail page.
func (p *principal) CanDetail() bool { return slices.Contains(detailRoles, p.Role) }

// CanCases, CanHolds, CanConsortium and CanArchive say which of the
// rights pages the user may open (the navigation shows only those).
func (p *principal) CanCases() bool      { return slices.Contains(privacyRoles, p.Role) }
func (p *principal) CanHolds() bool      { return slices.Contains(holdRoles, p.Role) }
func (p *principal) CanConsortium() bool { return slices.Contains(consortiumRoles, p.Role) }
func (p *principal) CanArchive() bool    { return slices.Contains(archiveRoles, p.Role) }

// RoleName is the user's role in words.
func (p *principal) RoleName() string { return roleName(p.Role) }

func roleName(r call.Role) string {
	switch r {
	case call.PrivacyOfficer:
		return "privacy officer"
	case call.ComplianceOfficer:
		return "compliance officer"
	}
	return string(r)
}

// tokenHash is the stored form of a session token.
func tokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// csrfToken derives the CSRF token of a session's forms from its secret.
func csrfToken(secret [32]byte) string {
	m := hmac.New(sha256.New, secret[:])
	m.Write([]byte("ringfence console csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session returns the request's signed-in user: the session must exist,
// be within its absolute lifetime and idle timeout, and its user must be
// enabled with a role that may sign in. It records the request as the
// session's last activity. Unauthorized otherwise (the stale cookie is
// cleared).
func (s *Server) session(w http.ResponseWriter, r *http.Request) (*principal, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, call.Errorf(call.Unauthorized, "please sign in")
	}
	h := tokenHash(c.Value)
	ctx := r.Context()
	now := s.now().UTC()
	sess, err := s.users.Session(ctx, h)
	if err != nil {
		if call.ErrorCode(err) == call.NotFound {
			s.clearCookie(w, r)
			return nil, call.Errorf(call.Unauthorized, "please sign in")
		}
		return nil, err
	}
	if !now.Before(sess.ExpiresAt) || !now.Before(sess.LastSeen.Add(s.cfg.IdleTimeout)) {
		if err := s.users.DeleteSession(ctx, h); err != nil && call.ErrorCode(err) != call.NotFound {
			return nil, err
		}
		s.clearCookie(w, r)
		return nil, call.Errorf(call.Unauthorized, "your session has ended; please sign in again")
	}
	// Only page loads and actions count as activity: a live feed left open
	// does not keep a session alive.
	if r.Header.Get("Accept") != "text/event-stream" {
		if sess, err = s.users.TouchSession(ctx, h, now); err != nil {
			if call.ErrorCode(err) == call.NotFound {
				s.clearCookie(w, r)
				return nil, call.Errorf(call.Unauthorized, "please sign in")
			}
			return nil, err
		}
	}
	u, err := s.users.User(ctx, sess.Tenant, sess.UserID)
	if err != nil {
		if call.ErrorCode(err) == call.NotFound {
			return nil, call.Errorf(call.Unauthorized, "please sign in")
		}
		return nil, err
	}
	if !u.DisabledAt.IsZero() || !slices.Contains(signInRoles, u.Role) {
		return nil, call.Errorf(call.Unauthorized, "this account is disabled")
	}
	return &principal{
		Principal: call.Principal{Tenant: u.Tenant, Role: u.Role, Actor: "user:" + u.ID},
		User:      u.ID,
		Tenant:    u.Tenant,
		idHash:    h,
		CSRF:      csrfToken(sess.CSRFSecret),
		Expires:   sess.ExpiresAt,
	}, nil
}

// checkCSRF compares the form's csrf field (or the X-CSRF-Token header of
// a script's request) with the session's token. Forbidden if they differ.
func (s *Server) checkCSRF(r *http.Request, p *principal) error {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
		got = r.PostFormValue("csrf")
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) != 1 {
		return call.Errorf(call.Forbidden, "the form has expired or did not come from this console; reload the page and try again")
	}
	return nil
}

// setCookie sends the session cookie: HttpOnly, SameSite=Strict, Path
// /console/, Secure over TLS (or when configured), and no Max-Age (a
// browser session cookie; the server enforces the lifetime).
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: token, Path: Prefix,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || s.cfg.SecureCookie,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || s.cfg.SecureCookie,
	})
}

// signInPage shows the sign-in form.
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request, _ *principal) {
	s.render(w, r, http.StatusOK, "signin", nil, map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

// dummyHash is verified when the user does not exist, so that a wrong user
// name costs as much time as a wrong password.
var dummyHash = sync.OnceValue(func() []byte { return hashPassword("ringfence dummy password") })

// signIn checks tenant, user and password and starts a session. Every
// failure shows the same message; a user with MaxFailures consecutive
// failures is locked for LockFor.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, _ *principal) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	tenant, id, pw := r.PostFormValue("tenant"), r.PostFormValue("user"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	ctx := r.Context()
	now := s.now().UTC()
	refuse := func(msg string) {
		s.render(w, r, http.StatusUnauthorized, "signin", nil, map[string]any{"Next": next, "Error": msg, "TenantID": tenant, "UserID": id})
	}
	const wrong = "The tenant, user name or password is not right."
	u, err := s.users.User(ctx, tenant, id)
	if err != nil && call.ErrorCode(err) != call.NotFound && call.ErrorCode(err) != call.Invalid {
		s.fail(w, r, nil, err)
		return
	}
	if err != nil {
		_, _ = VerifyPassword(dummyHash(), pw)
		refuse(wrong)
		return
	}
	if now.Before(u.LockedUntil) {
		refuse("Too many failed attempts: this account is locked for a while. Try again later or ask an administrator.")
		return
	}
	ok, err := VerifyPassword(u.PasswordHash, pw)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	if !ok || !u.DisabledAt.IsZero() || !slices.Contains(signInRoles, u.Role) {
		if ok { // right password, but may not sign in: no lockout count
			refuse(wrong)
			return
		}
		u.FailedLogins++
		if u.FailedLogins >= s.cfg.MaxFailures {
			u.FailedLogins, u.LockedUntil = 0, now.Add(s.cfg.LockFor)
		}
		if err := s.users.UpdateUser(ctx, u); err != nil {
			s.fail(w, r, nil, err)
			return
		}
		s.log.Info("console sign-in failed", "tenant", tenant, "user", id)
		refuse(wrong)
		return
	}
	if u.FailedLogins != 0 || !u.LockedUntil.IsZero() {
		u.FailedLogins, u.LockedUntil = 0, time.Time{}
		if err := s.users.UpdateUser(ctx, u); err != nil {
			s.fail(w, r, nil, err)
			return
		}
	}
	// A new token every time, never one the browser brought (session
	// fixation); a session the browser was still holding ends here.
	if c, err := r.Cookie(cookieName); err == nil {
		if err := s.users.DeleteSession(ctx, tokenHash(c.Value)); err != nil && call.ErrorCode(err) != call.NotFound {
			s.fail(w, r, nil, err)
			return
		}
	}
	var raw [32]byte
	rand.Read(raw[:])
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	sess := store.Session{IDHash: tokenHash(token), Tenant: u.Tenant, UserID: u.ID, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(s.cfg.MaxSession)}
	rand.Read(sess.CSRFSecret[:])
	if err := s.users.PutSession(ctx, sess); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	s.log.Info("console sign-in", "tenant", u.Tenant, "user", u.ID)
	s.setCookie(w, r, token)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut ends the session.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := s.users.DeleteSession(r.Context(), p.idHash); err != nil && call.ErrorCode(err) != call.NotFound {
		s.fail(w, r, p, err)
		return
	}
	s.clearCookie(w, r)
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}
