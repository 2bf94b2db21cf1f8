package console

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
)

// nodeIncoming is a call to the tenant's number with From and PAI headers.
func nodeIncoming(caller, from, pai string) node.Incoming {
	return node.Incoming{Tenant: tenant, Caller: caller, Dialled: "+442079460123", Ingress: "uk-core",
		Signalling: call.Signalling{From: from, PAI: []string{pai}}}
}

// postForms are a valid-looking form for every POST route of the config
// pages.
func postForms(e *env) map[string]url.Values {
	live, err := e.node.Policy(tenant)
	if err != nil {
		e.t.Fatal(err)
	}
	pf := policyForm(live)
	pf.Set("do", "save")
	pf.Set("block_at", "0.95")
	return map[string]url.Values{
		"/console/lists/deny":         {"number": {"+447400555123"}, "reason": {"test"}},
		"/console/lists/deny/show":    {},
		"/console/lists/deny/delete":  {"ref": {"x"}},
		"/console/routes":             {"id": {"intl-1"}, "kind": {"international"}},
		"/console/routes/uk-1/delete": {},
		"/console/policy":             pf,
	}
}

// policyForm is the policy form as the page fills it.
func policyForm(p call.Policy) url.Values {
	v := url.Values{}
	for k, s := range policyValues(p) {
		v.Set(k, s)
	}
	return v
}

func TestConfigRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	pages := []string{"/console/lists/deny", "/console/lists/allow", "/console/lists/dno", "/console/routes", "/console/policy"}
	for _, tc := range []struct {
		role call.Role
		read bool
	}{
		{call.Admin, true}, {call.Analyst, true}, {call.Auditor, false}, {call.PrivacyOfficer, false}, {call.ComplianceOfficer, false},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			id := "cfg-" + strings.ReplaceAll(string(tc.role), "_", "-")
			e.addUser(id, tc.role)
			b := e.signIn(id)
			for _, page := range pages {
				res, body := b.get(page)
				want := http.StatusForbidden
				if tc.read {
					want = http.StatusOK
				}
				if res.StatusCode != want {
					t.Errorf("%s: status %d, want %d", page, res.StatusCode, want)
				}
				hasForm := strings.Contains(body, `<form method="post" action="/console/lists`) || strings.Contains(body, `action="/console/routes"`) || strings.Contains(body, `id="policy-form"`)
				if hasForm != (tc.role == call.Admin) {
					t.Errorf("%s: edit forms shown = %v for %s", page, hasForm, tc.role)
				}
			}
		})
	}
	// An analyst with a valid CSRF token still cannot change anything.
	e.addUser("alice", call.Analyst)
	alice := e.signIn("alice")
	token := alice.csrf("/console/calls")
	if err := e.node.PutRoute(t.Context(), tenant, call.Route{ID: "uk-1", Kind: call.Domestic}); err != nil {
		t.Fatal(err)
	}
	for path, form := range postForms(e) {
		t.Run("analyst POST "+path, func(t *testing.T) {
			form.Set("csrf", token)
			if res, _ := alice.post(path, form); res.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", res.StatusCode)
			}
		})
	}
	assertUnchanged(t, e)
}

// assertUnchanged fails if a refused POST changed a list, route or policy.
func assertUnchanged(t *testing.T, e *env) {
	t.Helper()
	if es, _, err := e.node.ListEntries(t.Context(), tenant, call.DenyList, "", 10); err != nil || len(es) != 0 {
		t.Errorf("deny list %d entries, %v", len(es), err)
	}
	if rs, err := e.node.Routes(t.Context(), tenant); err != nil || len(rs) != 1 || rs[0].ID != "uk-1" {
		t.Errorf("routes %+v, %v", rs, err)
	}
	if p, _ := e.node.Policy(tenant); p.Version != 1 {
		t.Errorf("policy version %d, want 1", p.Version)
	}
}

func TestConfigCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.addUser("root", call.Admin)
	e.addUser("other", call.Admin)
	b := e.signIn("root")
	otherToken := e.signIn("other").csrf("/console/routes")
	if err := e.node.PutRoute(t.Context(), tenant, call.Route{ID: "uk-1", Kind: call.Domestic}); err != nil {
		t.Fatal(err)
	}
	for path, form := range postForms(e) {
		for _, tok := range []string{"", "forged", otherToken} {
			t.Run(path+" token "+strconv.Itoa(len(tok)), func(t *testing.T) {
				f := url.Values{}
				for k, v := range form {
					f[k] = v
				}
				if tok != "" {
					f.Set("csrf", tok)
				}
				if res, _ := b.post(path, f); res.StatusCode != http.StatusForbidden {
					t.Fatalf("status %d, want 403", res.StatusCode)
				}
			})
		}
	}
	assertUnchanged(t, e)
	// With the right token the same forms work.
	token := b.csrf("/console/routes")
	f := postForms(e)["/console/routes"]
	f.Set("csrf", token)
	if res, _ := b.post("/console/routes", f); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("right token: status %d", res.StatusCode)
	}
}

// errorBeside checks the page shows msg in the error element of field and
// that the field points at it with aria-describedby.
func errorBeside(t *testing.T, body, field, msg string) {
	t.Helper()
	el := regexp.MustCompile(`<span id="` + regexp.QuoteMeta(field) + `-error" class="error">([^<]*)</span>`).FindStringSubmatch(body)
	if el == nil || !strings.Contains(el[1], msg) {
		t.Fatalf("no error %q beside %s (found %v)", msg, field, el)
	}
	in := regexp.MustCompile(`(?s)<(?:input|select)[^>]*id="` + regexp.QuoteMeta(field) + `"[^>]*>`).FindString(body)
	if !regexp.MustCompile(`aria-describedby="[^"]*\b`+regexp.QuoteMeta(field)+`-error\b`).MatchString(in) || !strings.Contains(in, `aria-invalid="true"`) {
		t.Fatalf("field %s does not point at its error: %s", field, in)
	}
}

func TestListsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.addUser("root", call.Admin)
	b := e.signIn("root")
	token := b.csrf("/console/lists/deny")
	const number = "+447400555123"

	for _, tc := range []struct {
		name, field, msg string
		form             url.Values
	}{
		{"no number", "number", "required", url.Values{}},
		{"not a number", "number", "not a telephone number", url.Values{"number": {"12"}}},
		{"long reason", "reason", "at most 256", url.Values{"number": {number}, "reason": {strings.Repeat("r", 257)}}},
		{"past expiry", "expires_at", "must be in the future", url.Values{"number": {number}, "expires_at": {"2001-01-01T00:00"}}},
		{"bad expiry", "expires_at", "a date and time", url.Values{"number": {number}, "expires_at": {"soon"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", token)
			res, body := b.post("/console/lists/deny", tc.form)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d", res.StatusCode)
			}
			errorBeside(t, body, tc.field, tc.msg)
			if v := tc.form.Get("number"); v != "" && !strings.Contains(html.UnescapeString(body), `value="`+v+`"`) {
				t.Fatal("the form lost the typed number")
			}
		})
	}
	if es, _, _ := e.node.ListEntries(t.Context(), tenant, call.DenyList, "", 10); len(es) != 0 {
		t.Fatalf("refused forms stored %d entries", len(es))
	}

	res, _ := b.post("/console/lists/deny", url.Values{"csrf": {token}, "number": {"07400 555123"}, "reason": {"test fraud"}, "expires_at": {time.Now().UTC().Add(48 * time.Hour).Format(localTime)}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: status %d", res.StatusCode)
	}
	_, body := b.get(res.Header.Get("Location"))
	body = html.UnescapeString(body)
	if strings.Contains(body, number) || strings.Contains(body, "555123") || !strings.Contains(body, mask(call.Number{E164: number})) {
		t.Fatal("the list page does not show the number masked")
	}
	if !strings.Contains(body, "test fraud") || !strings.Contains(body, "Added.") {
		t.Fatal("the list page does not show the entry's reason or the flash")
	}
	if c := e.screen(number); c.Verdict.Action != call.Block || !c.Verdict.Has("list.deny") {
		t.Fatalf("next call from the number: %s %v", c.Verdict.Action, c.Verdict.Markers)
	}

	t.Run("show numbers", func(t *testing.T) {
		reads := len(e.auditActions("list.read", "user:root"))
		res, body := b.post("/console/lists/deny/show", url.Values{"csrf": {token}})
		body = html.UnescapeString(body)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, number) {
			t.Fatalf("status %d; number shown %v", res.StatusCode, strings.Contains(body, number))
		}
		if got := len(e.auditActions("list.read", "user:root")); got != reads+1 {
			t.Fatalf("list.read by user:root %d, want %d", got, reads+1)
		}
	})

	t.Run("delete", func(t *testing.T) {
		_, body := b.get("/console/lists/deny")
		m := regexp.MustCompile(`name="ref" value="([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no delete form")
		}
		if strings.Contains(m[1], "555123") {
			t.Fatal("the delete form carries the number")
		}
		if res, _ := b.post("/console/lists/deny/delete", url.Values{"csrf": {token}, "ref": {m[1] + "x"}}); res.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown ref: status %d", res.StatusCode)
		}
		if res, _ := b.post("/console/lists/deny/delete", url.Values{"csrf": {token}, "ref": {m[1]}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("delete: status %d", res.StatusCode)
		}
		if es, _, _ := e.node.ListEntries(t.Context(), tenant, call.DenyList, "", 10); len(es) != 0 {
			t.Fatalf("%d entries after delete", len(es))
		}
		if c := e.screen(number); c.Verdict.Has("list.deny") {
			t.Fatal("a deleted entry still applies")
		}
	})

	t.Run("unknown list", func(t *testing.T) {
		if res, _ := b.get("/console/lists/grey"); res.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
}

func TestRoutesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.addUser("root", call.Admin)
	b := e.signIn("root")
	token := b.csrf("/console/routes")
	for _, tc := range []struct {
		name, field, msg string
		form             url.Values
	}{
		{"bad id", "id", "must be 1-64 characters", url.Values{"id": {"bad id!"}, "kind": {"domestic"}}},
		{"bad kind", "kind", "must be", url.Values{"id": {"r1"}, "kind": {"sideways"}}},
		{"bad country", "country", "ISO 3166", url.Values{"id": {"r1"}, "kind": {"domestic"}, "country": {"GBR"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", token)
			res, body := b.post("/console/routes", tc.form)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d", res.StatusCode)
			}
			errorBeside(t, body, tc.field, tc.msg)
		})
	}
	res, _ := b.post("/console/routes", url.Values{"csrf": {token}, "id": {"intl-1"}, "kind": {"international"}, "country": {"us"}, "fail_open": {"1"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("put: status %d", res.StatusCode)
	}
	rs, err := e.node.Routes(t.Context(), tenant)
	if err != nil || len(rs) != 1 || rs[0] != (call.Route{ID: "intl-1", Kind: call.International, Country: "US", FailOpen: true}) {
		t.Fatalf("routes %+v, %v", rs, err)
	}
	if _, body := b.get("/console/routes"); !strings.Contains(body, `id="route-intl-1"`) || !strings.Contains(body, "fail open") {
		t.Fatal("the routes page does not list the route")
	}
	if res, _ := b.post("/console/routes/intl-1/delete", url.Values{"csrf": {token}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: status %d", res.StatusCode)
	}
	if res, body := b.post("/console/routes/intl-1/delete", url.Values{"csrf": {token}}); res.StatusCode != http.StatusNotFound || !strings.Contains(body, `id="form-error"`) {
		t.Fatalf("delete again: status %d", res.StatusCode)
	}
	if rs, _ := e.node.Routes(t.Context(), tenant); len(rs) != 0 {
		t.Fatalf("routes after delete %+v", rs)
	}
}

var (
	countRow = regexp.MustCompile(`<tr data-action="(\w+)">.*?<td class="num" data-live>(\d+)</td><td class="num" data-candidate>(\d+)</td>`)
	summary  = regexp.MustCompile(`id="replay-summary" role="status">(\d+) of (\d+) calls`)
)

func TestPolicyPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.addUser("root", call.Admin)
	b := e.signIn("root")
	token := b.csrf("/console/policy")
	// Calls of known verdicts: clean, withheld, the tenant's own number
	// (flagged), and its own number with From and PAI apart (blocked by
	// score, which a block threshold of 0.95 turns into a flag).
	e.screen("+447400123456")
	e.screen("anonymous")
	e.screen("+442079460123")
	if _, err := e.node.Screen(t.Context(), nodeIncoming("+442079460123", "<sip:+442079460123@c.example>", "<sip:+447400999888@c.example>")); err != nil {
		t.Fatal(err)
	}
	live, err := e.node.Policy(tenant)
	if err != nil {
		t.Fatal(err)
	}
	form := func(edit map[string]string) url.Values {
		f := policyForm(live)
		f.Set("csrf", token)
		for k, v := range edit {
			f.Set(k, v)
		}
		return f
	}

	t.Run("invalid", func(t *testing.T) {
		for _, tc := range []struct {
			name, field, msg string
			edit             map[string]string
		}{
			{"not a number", "block_at", "must be a number", map[string]string{"block_at": "high"}},
			{"block below flag", "block_at", "must not be below flag_at", map[string]string{"block_at": "0.4"}},
			{"prior out of range", "prior", "within [-20,20]", map[string]string{"prior": "-30"}},
			{"weight out of range", "w-cli-withheld", "within [-20,20]", map[string]string{"weights.cli.withheld": "30"}},
			{"bad weight", "w-cli-withheld", "must be a number", map[string]string{"weights.cli.withheld": "NaN"}},
			{"bad action", "a-cli-withheld", "must be allow, flag or block", map[string]string{"actions.cli.withheld": "maybe"}},
		} {
			for _, do := range []string{"preview", "save"} {
				t.Run(tc.name+" "+do, func(t *testing.T) {
					f := form(tc.edit)
					f.Set("do", do)
					res, body := b.post("/console/policy", f)
					if res.StatusCode != http.StatusBadRequest {
						t.Fatalf("status %d", res.StatusCode)
					}
					errorBeside(t, body, tc.field, tc.msg)
				})
			}
		}
		if p, _ := e.node.Policy(tenant); p.Version != live.Version {
			t.Fatalf("an invalid form changed the policy to version %d", p.Version)
		}
	})

	t.Run("preview matches the node's replay", func(t *testing.T) {
		f := form(map[string]string{"block_at": "0.95", "weights.cli.withheld": "4.5"})
		f.Set("do", "preview")
		res, body := b.post("/console/policy", f)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		cand := live
		cand.BlockAt, cand.Weights = 0.95, map[string]float64{"cli.withheld": 4.5}
		want, err := e.node.ReplayPolicy(t.Context(), tenant, cand, time.Now().Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want.ChangedCount != 2 || want.Replayed != 4 {
			t.Fatalf("node replay: %d of %d changed, want 2 of 4", want.ChangedCount, want.Replayed)
		}
		rows := countRow.FindAllStringSubmatch(body, -1)
		if len(rows) != 3 {
			t.Fatalf("%d count rows on the page", len(rows))
		}
		for _, r := range rows {
			a := call.Action(r[1])
			if r[2] != strconv.Itoa(want.Live[a]) || r[3] != strconv.Itoa(want.Candidate[a]) {
				t.Errorf("%s: page live %s edited %s, node %d %d", a, r[2], r[3], want.Live[a], want.Candidate[a])
			}
		}
		m := summary.FindStringSubmatch(body)
		if m == nil || m[1] != strconv.Itoa(want.ChangedCount) || m[2] != strconv.Itoa(want.Replayed) {
			t.Fatalf("summary %v, node %d of %d", m, want.ChangedCount, want.Replayed)
		}
		if n := strings.Count(body, `href="/console/calls/`); n != len(want.Changed) {
			t.Fatalf("%d changed calls listed, want %d", n, len(want.Changed))
		}
		if shown := html.UnescapeString(body); strings.Contains(shown, "2079460123") || strings.Contains(shown, "7400123456") || !strings.Contains(shown, "+44•••••••123") {
			t.Fatal("the preview shows a number unmasked")
		}
		if !strings.Contains(body, `value="0.95"`) || !strings.Contains(body, `value="4.5"`) {
			t.Fatal("the preview lost the edits")
		}
		if p, _ := e.node.Policy(tenant); p.Version != live.Version {
			t.Fatal("a preview saved the policy")
		}
	})

	t.Run("save", func(t *testing.T) {
		f := form(map[string]string{"block_at": "0.95", "actions.cli.withheld": "flag"})
		f.Set("do", "save")
		res, _ := b.post("/console/policy", f)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d", res.StatusCode)
		}
		p, _ := e.node.Policy(tenant)
		if p.Version != live.Version+1 || p.BlockAt != 0.95 || p.Actions["cli.withheld"] != call.Flag || p.Actions["list.deny"] != call.Block {
			t.Fatalf("stored policy %+v", p)
		}
		if c := e.screen("anonymous"); c.Verdict.Action != call.Flag {
			t.Fatalf("withheld call after save: %s", c.Verdict.Action)
		}
		// The same form again carries the old version: a conflict.
		res, body := b.post("/console/policy", f)
		if res.StatusCode != http.StatusConflict || !strings.Contains(body, "changed by someone else") {
			t.Fatalf("stale save: status %d", res.StatusCode)
		}
		if p2, _ := e.node.Policy(tenant); p2.Version != p.Version {
			t.Fatal("a stale save changed the policy")
		}
	})
}

// TestConfigUnavailable checks the pages answer 503 over a node without
// the configuration methods.
func TestConfigUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.addUser("root", call.Admin)
	con, err := New(Config{}, struct{ Node }{e.node}, e.st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con)
	t.Cleanup(srv.Close)
	e.srv = srv
	b := e.signIn("root")
	for _, page := range []string{"/console/lists/deny", "/console/routes", "/console/policy"} {
		if res, _ := b.get(page); res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503", page, res.StatusCode)
		}
	}
}
