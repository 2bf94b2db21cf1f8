package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
)

func TestPassword(t *testing.T) {
	t.Parallel()
	h, err := HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(h), "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q: not argon2id with the documented parameters", h)
	}
	h2, _ := HashPassword(password)
	if string(h) == string(h2) {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{password, true}, {password + " ", false}, {"", false}, {strings.ToUpper(password), false}} {
		t.Run(tc.pw, func(t *testing.T) {
			ok, err := VerifyPassword(h, tc.pw)
			if err != nil || ok != tc.want {
				t.Fatalf("VerifyPassword = %v, %v; want %v", ok, err, tc.want)
			}
		})
	}
	if _, err := HashPassword("short"); call.ErrorCode(err) != call.Invalid {
		t.Fatalf("short password: %v", err)
	}
	if _, err := VerifyPassword([]byte("$2a$10$bcrypt"), password); err == nil {
		t.Fatal("a non-argon2id hash verified without error")
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    call.Number
		want string
	}{
		{call.Number{E164: "+447400123456"}, "+44•••••••456"},
		{call.Number{Withheld: true}, "withheld"},
		{call.Number{}, "withheld"},
		{call.Number{Raw: "12ab"}, "not a number"},
		{call.Number{E164: "+441"}, "•••"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := mask(tc.n); got != tc.want {
				t.Fatalf("mask = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{MaxFailures: 3})
	e.addUser("alice", call.Analyst)
	b := e.browser()
	t.Run("not signed in", func(t *testing.T) {
		res, _ := b.get("/console/calls")
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/signin") {
			t.Fatalf("status %d, location %q", res.StatusCode, res.Header.Get("Location"))
		}
	})
	for _, tc := range []struct{ name, tenant, user, pw string }{
		{"wrong password", tenant, "alice", "not the password"},
		{"unknown user", tenant, "mallory", password},
		{"unknown tenant", "other", "alice", password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := b.post("/console/signin", url.Values{"tenant": {tc.tenant}, "user": {tc.user}, "password": {tc.pw}})
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "is not right") {
				t.Fatalf("status %d", res.StatusCode)
			}
			if len(res.Cookies()) != 0 {
				t.Fatalf("a refused sign-in set cookies %v", res.Cookies())
			}
		})
	}
	t.Run("cookie", func(t *testing.T) {
		res, _ := b.post("/console/signin", url.Values{"tenant": {tenant}, "user": {"alice"}, "password": {password}, "next": {"https://evil.example/"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/" {
			t.Fatalf("status %d, location %q (an outside next must not be followed)", res.StatusCode, res.Header.Get("Location"))
		}
		cs := res.Cookies()
		if len(cs) != 1 {
			t.Fatalf("cookies %v, want exactly one", cs)
		}
		c := cs[0]
		if c.Name != cookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != Prefix || c.MaxAge != 0 {
			t.Fatalf("cookie %+v", c)
		}
	})
	t.Run("lockout", func(t *testing.T) {
		e.addUser("bob", call.Analyst)
		b := e.browser()
		for range 3 {
			b.post("/console/signin", url.Values{"tenant": {tenant}, "user": {"bob"}, "password": {"wrong password!"}})
		}
		res, body := b.post("/console/signin", url.Values{"tenant": {tenant}, "user": {"bob"}, "password": {password}})
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "locked") {
			t.Fatalf("right password after 3 failures: status %d, want a lock", res.StatusCode)
		}
		e.clock.Add(16 * time.Minute)
		if res, _ := b.post("/console/signin", url.Values{"tenant": {tenant}, "user": {"bob"}, "password": {password}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("after the lock: status %d", res.StatusCode)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{IdleTimeout: 10 * time.Minute, MaxSession: time.Hour})
	e.addUser("alice", call.Analyst)
	e.clock.Set(time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC))
	ok := func(b *browser) bool {
		t.Helper()
		res, _ := b.get("/console/calls")
		switch res.StatusCode {
		case http.StatusOK:
			return true
		case http.StatusSeeOther:
			return false
		}
		t.Fatalf("status %d", res.StatusCode)
		return false
	}
	t.Run("idle", func(t *testing.T) {
		b := e.signIn("alice")
		e.clock.Add(9 * time.Minute)
		if !ok(b) {
			t.Fatal("session ended before the idle timeout")
		}
		e.clock.Add(9 * time.Minute) // 18 minutes after sign-in, 9 after the last request
		if !ok(b) {
			t.Fatal("activity did not extend the session")
		}
		e.clock.Add(10 * time.Minute)
		if ok(b) {
			t.Fatal("session still open after 10 idle minutes")
		}
	})
	t.Run("absolute", func(t *testing.T) {
		b := e.signIn("alice")
		for range 6 {
			e.clock.Add(9 * time.Minute)
			if !ok(b) {
				t.Fatal("active session ended early")
			}
		}
		e.clock.Add(7 * time.Minute) // 61 minutes after sign-in
		if ok(b) {
			t.Fatal("session outlived MaxSession")
		}
	})
	t.Run("sign out", func(t *testing.T) {
		b := e.signIn("alice")
		token := b.csrf("/console/calls")
		if res, _ := b.post("/console/signout", url.Values{"csrf": {token}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign out: %d", res.StatusCode)
		}
		if ok(b) {
			t.Fatal("signed out, still in")
		}
	})
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.addUser("alice", call.Analyst)
	e.addUser("bob", call.Analyst)
	c := e.screen("+447400123456")
	alice, bob := e.signIn("alice"), e.signIn("bob")
	token := alice.csrf("/console/calls/" + c.ID)
	bobToken := bob.csrf("/console/calls/" + c.ID)
	path := "/console/calls/" + c.ID + "/label"
	form := func(tok string) url.Values {
		v := url.Values{"label": {"fraud"}, "fraud_type": {"impersonation"}}
		if tok != "" {
			v.Set("csrf", tok)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		tok  string
		hdr  map[string]string
	}{
		{"missing", "", nil},
		{"wrong", "AAAA" + token[4:], nil},
		{"another session's", bobToken, nil},
		{"cross-site with the right token", token, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"other origin with the right token", token, map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form(tc.tok).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			res, _ := alice.do(req)
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", res.StatusCode)
			}
		})
	}
	got, err := e.node.Call(t.Context(), tenant, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Review.Status != call.Unreviewed {
		t.Fatalf("a refused form labelled the call %s", got.Review.Status)
	}
	res, _ := alice.post(path, form(token))
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("right token: status %d", res.StatusCode)
	}
	if got, _ := e.node.Call(t.Context(), tenant, c.ID); got.Review.Status != call.Fraud || got.Review.FraudType != "impersonation" {
		t.Fatalf("review %+v", got.Review)
	}
	if next := e.screen("+447400123456"); next.Verdict.Action != call.Block || !next.Verdict.Has("list.deny") {
		t.Fatalf("next call from the number: %s %v", next.Verdict.Action, next.Verdict.Markers)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	c := e.screen("+447400123456")
	pages := []string{"/console/calls", "/console/calls/" + c.ID, "/console/overview", "/console/audit"}
	for _, tc := range []struct {
		role call.Role
		ok   []bool // per page
	}{
		{call.Admin, []bool{true, true, true, false}},
		{call.Analyst, []bool{true, true, true, false}},
		{call.Auditor, []bool{true, false, true, true}},
		{call.PrivacyOfficer, []bool{true, true, true, false}},
		{call.ComplianceOfficer, []bool{false, false, false, false}},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			id := strings.ReplaceAll(string(tc.role), "_", "-")
			e.addUser(id, tc.role)
			b := e.signIn(id)
			for i, page := range pages {
				res, _ := b.get(page)
				want := http.StatusForbidden
				if tc.ok[i] {
					want = http.StatusOK
				}
				if res.StatusCode != want {
					t.Errorf("%s: status %d, want %d", page, res.StatusCode, want)
				}
			}
			token := b.csrf("/console/overview")
			if tc.role == call.ComplianceOfficer {
				return
			}
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/calls/"+c.ID+"/unmask", nil)
			req.Header.Set("X-CSRF-Token", token)
			req.Header.Set("Accept", "application/json")
			res, body := b.do(req)
			canUnmask := tc.role == call.Admin || tc.role == call.Analyst
			if (res.StatusCode == http.StatusOK) != canUnmask {
				t.Fatalf("unmask: status %d", res.StatusCode)
			}
			if strings.Contains(body, "+447400123456") != canUnmask {
				t.Fatalf("unmask: body %q", body)
			}
		})
	}
	t.Run("integration cannot sign in", func(t *testing.T) {
		// The store refuses console users with the integration role, so
		// the console's own check is the second line; here the first.
		h, _ := HashPassword(password)
		if err := e.st.PutUser(t.Context(), storeUser("robot", call.Integration, h)); call.ErrorCode(err) != call.Invalid {
			t.Fatalf("PutUser(integration) = %v", err)
		}
	})
}

// TestMasking checks no page shows a caller's number unless the user
// unmasked it, and that each unmasking is audited under the user's name.
func TestMasking(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.addUser("alice", call.Analyst)
	e.addUser("audrey", call.Auditor)
	const num = "+447400123456"
	c := e.screen(num)
	digits := num[1:]
	for _, user := range []string{"alice", "audrey"} {
		b := e.signIn(user)
		for _, page := range []string{"/console/calls", "/console/calls/" + c.ID, "/console/overview"} {
			res, body := b.get(page)
			if res.StatusCode == http.StatusOK && (strings.Contains(body, digits) || strings.Contains(body, "7400123")) {
				t.Errorf("%s on %s: the number appears unmasked", user, page)
			}
		}
	}
	alice := e.signIn("alice")
	token := alice.csrf("/console/calls")
	before := len(e.auditActions("call.read", "user:alice"))
	res, body := alice.post("/console/calls/"+c.ID+"/unmask", url.Values{"csrf": {token}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, digits) {
		t.Fatalf("unmask: status %d, number shown %v", res.StatusCode, strings.Contains(body, digits))
	}
	after := e.auditActions("call.read", "user:alice")
	if len(after) != before+1 || after[len(after)-1].Object != c.ID {
		t.Fatalf("call.read entries by user:alice: %d before, %d after", before, len(after))
	}
	if strings.Contains(after[len(after)-1].Detail, digits) {
		t.Fatal("the audit entry holds the number")
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.addUser("alice", call.Analyst)
	b := e.signIn("alice")
	for _, page := range []string{"/console/signin", "/console/calls", "/console/nope", "/console/static/console.js"} {
		t.Run(page, func(t *testing.T) {
			res, _ := b.get(page)
			h := res.Header
			csp := h.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP %q", csp)
			}
			if h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", h)
			}
			if personal := !strings.Contains(page, "/static/"); personal && h.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
			}
		})
	}
	_, body := b.get("/console/calls")
	if strings.Contains(body, "<script>") || strings.Contains(body, " on") && strings.Contains(body, "onclick=") || strings.Contains(body, "style=") {
		t.Error("inline script or style in a page")
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		q    string
		code string
	}{
		{"action=block&marker=list.deny&route=uk-core&from=2025-01-31T14:05", ""},
		{"action=maybe", call.Invalid},
		{"marker=nope", call.Invalid},
		{"route=a%20b", call.Invalid},
		{"from=yesterday", call.Invalid},
	} {
		t.Run(tc.q, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.q)
			f, err := parseFilter(q)
			if call.ErrorCode(err) != tc.code {
				t.Fatalf("err %v, want code %q", err, tc.code)
			}
			if err == nil && f.query().Encode() != q.Encode() {
				t.Fatalf("round trip %q -> %q", q.Encode(), f.query().Encode())
			}
		})
	}
	c := &call.Call{Ingress: "uk-core", Verdict: call.Verdict{Markers: []call.Marker{{Code: "list.deny"}}}}
	for _, tc := range []struct {
		f    filter
		want bool
	}{
		{filter{}, true},
		{filter{Route: "uk-core", Marker: "list.deny"}, true},
		{filter{Route: "intl"}, false},
		{filter{Marker: "cli.withheld"}, false},
	} {
		if got := tc.f.match(c); got != tc.want {
			t.Errorf("%+v.match = %v", tc.f, got)
		}
	}
}

func TestTally(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 30, 0, 0, time.UTC)
	mk := func(at time.Time, a call.Action, codes ...string) *call.Call {
		c := &call.Call{StartedAt: at, Verdict: call.Verdict{Action: a}}
		for _, code := range codes {
			c.Verdict.Markers = append(c.Verdict.Markers, call.Marker{Code: code})
		}
		return c
	}
	st := tally(now, []*call.Call{
		mk(now, call.Block, "list.deny"),
		mk(now.Add(-10*time.Minute), call.Allow),
		mk(now.Add(-2*time.Hour), call.Flag, "cli.withheld", "list.deny"),
		mk(now.Add(-25*time.Hour), call.Block, "list.deny"), // outside
	})
	if st.Total != 3 || st.Calls[23] != 2 || st.Blocked[23] != 1 || st.Calls[21] != 1 || st.Actions[call.Block] != 1 {
		t.Fatalf("stats %+v", st)
	}
	top := topMarkers(st, 1)
	if len(top) != 1 || top[0].Label != "list.deny" || top[0].N != 2 {
		t.Fatalf("top markers %+v", top)
	}
	svg := string(hourlyChart(st))
	if !strings.Contains(svg, "<svg") || !strings.Contains(svg, "12:00: 2 calls, 1 blocked") {
		t.Fatalf("hourly chart without the counts: %s", svg)
	}
	// Routes by risk: "intl" has 1 of 1 risky, "" (none) 1 of 2; the
	// targeted dialled numbers are counted masked.
	st = tally(now, []*call.Call{
		{StartedAt: now, Ingress: "intl", Dialled: call.Number{E164: "+442079460000"}, Verdict: call.Verdict{Action: call.Block}},
		{StartedAt: now, Dialled: call.Number{E164: "+442079460000"}, Verdict: call.Verdict{Action: call.Flag}},
		{StartedAt: now, Dialled: call.Number{E164: "+442079460001"}, Verdict: call.Verdict{Action: call.Allow}},
	})
	routes := routesByRisk(st, 5)
	if len(routes) != 2 || routes[0].Label != "intl (1 calls)" || routes[0].N != 100 || routes[1].N != 50 {
		t.Fatalf("routes by risk %+v", routes)
	}
	dialled := topDialled(st, 5)
	if len(dialled) != 1 || dialled[0].N != 2 || strings.Contains(dialled[0].Label, "2079460000") {
		t.Fatalf("targeted dialled numbers %+v (must be masked)", dialled)
	}
}
