package console

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/ringfence/ringfence/call"
)

// TestSessionFixation: a token planted in the browser before sign-in is
// never the session's, and signing in again replaces (and ends) the
// session the browser held.
func TestSessionFixation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.addUser("alice", call.Analyst)
	u, _ := url.Parse(e.srv.URL + Prefix)
	cookie := func(b *browser) string {
		for _, c := range b.c.Jar.Cookies(u) {
			if c.Name == cookieName {
				return c.Value
			}
		}
		return ""
	}
	signedIn := func(token string) bool {
		b := e.browser()
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: token, Path: Prefix}})
		res, _ := b.get("/console/calls")
		return res.StatusCode == http.StatusOK
	}

	const planted = "attacker-chosen-token-0123456789abcdefghijklmno"
	b := e.browser()
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: planted, Path: Prefix}})
	if res, _ := b.post("/console/signin", url.Values{"tenant": {tenant}, "user": {"alice"}, "password": {password}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.StatusCode)
	}
	first := cookie(b)
	if first == planted || first == "" {
		t.Fatalf("session token after sign-in %q; want a new one", first)
	}
	if signedIn(planted) {
		t.Fatal("the planted token is signed in")
	}
	if !signedIn(first) {
		t.Fatal("the issued token is not signed in")
	}

	if res, _ := b.post("/console/signin", url.Values{"tenant": {tenant}, "user": {"alice"}, "password": {password}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("second sign in: %d", res.StatusCode)
	}
	second := cookie(b)
	if second == first || !signedIn(second) {
		t.Fatalf("second sign-in: token changed %v, signed in %v", second != first, signedIn(second))
	}
	if signedIn(first) {
		t.Error("the session replaced by signing in again still works")
	}
}
