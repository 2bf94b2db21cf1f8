package httpapi

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/call"
)

// authzCase is how the authorisation matrix calls one route.
type authzCase struct {
	own     string // path naming the caller's own object (or no object)
	other   string // path naming another tenant's object; "" if the route names none
	missing string // path naming an object nobody has, shaped like other's
	body    string
	// upsert: a request naming another tenant's object creates the
	// caller's own; check holds that the other tenant's is unchanged.
	upsert bool
	check  func(t *testing.T)
	// after, if set, runs after each request the route's subtest sends
	// (to undo what the request did to the tenant, such as leaving the
	// consortium).
	after func(t *testing.T)
}

// authzTenant is one tenant's keys (one per role) and objects.
type authzTenant struct {
	keys                   map[call.Role]string
	callID, caseID, holdID string
	reportID               string // a consortium report
	route, number          string // the route id and the deny-listed number, E.164
}

func newAuthzTenant(t *testing.T, e *env, tenant, admin, route, number string) *authzTenant {
	t.Helper()
	ctx := context.Background()
	at := &authzTenant{keys: map[call.Role]string{}, route: route, number: number}
	for _, r := range call.Roles {
		key, err := e.node.NewAPIKey(ctx, tenant, "authz-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		at.keys[r] = key
	}
	var v verdict
	if st, _ := e.do(admin, "POST", "/v1/screen", `{"caller":"`+number+`","dialled":"+442071838750"}`, &v); st != 200 {
		t.Fatalf("%s: screen: %d", tenant, st)
	}
	at.callID = v.RecordID
	if st, _ := e.do(admin, "PUT", "/v1/routes/"+route, `{"kind":"international"}`, nil); st != 200 {
		t.Fatalf("%s: put route: %d", tenant, st)
	}
	if st, _ := e.do(admin, "POST", "/v1/lists/deny", `{"number":"`+number+`"}`, nil); st != 201 {
		t.Fatalf("%s: deny: %d", tenant, st)
	}
	po := at.keys[call.PrivacyOfficer]
	var c struct{ ID string }
	if st, _ := e.do(po, "POST", "/v1/privacy/cases", `{"type":"access","number":"`+number+`"}`, &c); st != 201 {
		t.Fatalf("%s: open case: %d", tenant, st)
	}
	at.caseID = c.ID
	var h struct{ ID string }
	if st, _ := e.do(po, "POST", "/v1/privacy/holds", `{"scope":"case","case_id":"`+c.ID+`","reason":"authz matrix"}`, &h); st != 201 {
		t.Fatalf("%s: place hold: %d", tenant, st)
	}
	at.holdID = h.ID
	if st, _ := e.do(admin, "PUT", "/v1/consortium/membership", `{"terms":"`+consortiumTerms+`"}`, nil); st != 200 {
		t.Fatalf("%s: join consortium: %d", tenant, st)
	}
	var r struct{ ID string }
	if st, _ := e.do(admin, "POST", "/v1/reports", `{"number":"`+number+`","fraud_type":"impersonation","evidence":"authz-1"}`, &r); st != 201 || r.ID == "" {
		t.Fatalf("%s: report: %d", tenant, st)
	}
	at.reportID = r.ID
	return at
}

// TestAuthorisationMatrix calls every route in Routes with every role, with
// no credentials, with an unknown key and, where the route names an object,
// naming another tenant's object. A route with path parameters needs an
// entry in cases below: the test fails for a route without one.
func TestAuthorisationMatrix(t *testing.T) {
	e := newFullEnv(t, Config{Gatherer: prometheus.NewRegistry(), MaxBody: 8 << 10, MaxImport: 64 << 10}, true)
	bank := newAuthzTenant(t, e, "bank", e.key, "r-bank", "+447400111111")
	other := newAuthzTenant(t, e, "other", e.key2, "r-other", "+447400222222")
	const noCall = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	noCase := "case-" + noCall
	noHold := "hold-" + noCall
	esc := url.PathEscape
	// PUT makes the caller's own route under any id, so it gets an id of
	// its own: the other routes' cross-tenant checks must not find it.
	if st, _ := e.do(e.key2, "PUT", "/v1/routes/r-other-put", `{"kind":"international"}`, nil); st != 200 {
		t.Fatalf("put route: %d", st)
	}

	// Archive objects of each tenant, ingested by its recorder key. (This
	// env has no blob store: uploads and exports cannot exist, so their
	// own-tenant paths name ids nobody has; archive_test.go covers them
	// with real media.)
	bankItem, bankUser, bankHold := archiveFixture(t, e, bank, "u-bank")
	otherItem, otherUser, otherHold := archiveFixture(t, e, other, "u-other")
	if st, _ := e.do(other.keys[call.Recorder], "PUT", "/v1/archive/users/u-other-put", `{"name":"Other"}`, nil); st != 204 {
		t.Fatalf("put archive user: %d", st)
	}
	const why = "?reason=authz+matrix"
	noItem := "01ARZ3NDEKTSV4RRFFQ69G5FAX"

	cases := map[string]authzCase{
		"PUT /v1/archive/users/{id}": {own: "/v1/archive/users/" + bankUser, other: "/v1/archive/users/u-other-put", body: `{"name":"Bank"}`, upsert: true,
			check: func(t *testing.T) {
				var v struct{ User struct{ Name string } }
				if st, _ := e.do(other.keys[call.ComplianceOfficer], "GET", "/v1/archive/users/u-other-put"+why, "", &v); st != 200 || v.User.Name != "Other" {
					t.Errorf("other tenant's archive user after a PUT by bank: %d %+v", st, v)
				}
			}},
		"GET /v1/archive/users/{id}":             {own: "/v1/archive/users/" + bankUser + why, other: "/v1/archive/users/" + otherUser + why, missing: "/v1/archive/users/u-none" + why},
		"PUT /v1/archive/users/{id}/contacts":    {own: "/v1/archive/users/" + bankUser + "/contacts", other: "/v1/archive/users/" + otherUser + "/contacts", missing: "/v1/archive/users/u-none/contacts", body: `{"contacts":[]}`},
		"POST /v1/archive/users/{id}/offboard":   {own: "/v1/archive/users/" + bankUser + "/offboard", other: "/v1/archive/users/" + otherUser + "/offboard", missing: "/v1/archive/users/u-none/offboard"},
		"GET /v1/archive/uploads/{id}":           {own: "/v1/archive/uploads/" + noItem, other: "/v1/archive/uploads/" + otherItem, missing: "/v1/archive/uploads/" + noItem},
		"PATCH /v1/archive/uploads/{id}":         {own: "/v1/archive/uploads/" + noItem, other: "/v1/archive/uploads/" + otherItem, missing: "/v1/archive/uploads/" + noItem, body: "abc"},
		"POST /v1/archive/uploads/{id}/complete": {own: "/v1/archive/uploads/" + noItem + "/complete", other: "/v1/archive/uploads/" + otherItem + "/complete", missing: "/v1/archive/uploads/" + noItem + "/complete", body: `{"sha256":""}`},
		"GET /v1/archive/items":                  {own: "/v1/archive/items" + why},
		"GET /v1/archive/items/{id}":             {own: "/v1/archive/items/" + bankItem + why, other: "/v1/archive/items/" + otherItem + why, missing: "/v1/archive/items/" + noItem + why},
		"GET /v1/archive/items/{id}/media":       {own: "/v1/archive/items/" + bankItem + "/media" + why, other: "/v1/archive/items/" + otherItem + "/media" + why, missing: "/v1/archive/items/" + noItem + "/media" + why},
		"POST /v1/archive/exports":               {own: "/v1/archive/exports" + why, body: `{"case_id":"c1","items":["` + otherItem + `"]}`},
		"GET /v1/archive/exports/{id}":           {own: "/v1/archive/exports/" + noItem + why, other: "/v1/archive/exports/" + otherItem + why, missing: "/v1/archive/exports/" + noItem + why},
		"DELETE /v1/archive/holds/{id}":          {own: "/v1/archive/holds/" + bankHold, other: "/v1/archive/holds/" + otherHold, missing: "/v1/archive/holds/ahold-" + noItem},
		"POST /v1/archive/days/{day}/seal":       {own: "/v1/archive/days/2026-01-01/seal"},

		"GET /v1/calls/{id}":                       {own: "/v1/calls/" + bank.callID, other: "/v1/calls/" + other.callID, missing: "/v1/calls/" + noCall},
		"PATCH /v1/calls/{id}":                     {own: "/v1/calls/" + bank.callID, other: "/v1/calls/" + other.callID, missing: "/v1/calls/" + noCall, body: `{"duration_s":3,"result":"answered"}`},
		"POST /v1/calls/{id}/label":                {own: "/v1/calls/" + bank.callID + "/label", other: "/v1/calls/" + other.callID + "/label", missing: "/v1/calls/" + noCall + "/label", body: `{"label":"genuine"}`},
		"GET /v1/lists/{list}":                     {own: "/v1/lists/deny"},
		"POST /v1/lists/{list}":                    {own: "/v1/lists/allow", body: `{}`},
		"POST /v1/lists/{list}/import":             {own: "/v1/lists/allow/import", body: "pattern\n"},
		"DELETE /v1/lists/{list}/numbers/{number}": {own: "/v1/lists/deny/numbers/" + esc(bank.number), other: "/v1/lists/deny/numbers/" + esc(other.number), missing: "/v1/lists/deny/numbers/" + esc("+447400333333")},
		"GET /v1/routes/{id}":                      {own: "/v1/routes/" + bank.route, other: "/v1/routes/" + other.route, missing: "/v1/routes/r-none"},
		"PUT /v1/routes/{id}": {own: "/v1/routes/" + bank.route, other: "/v1/routes/r-other-put", body: `{"kind":"domestic"}`, upsert: true,
			check: func(t *testing.T) {
				var r struct{ Kind string }
				if st, _ := e.do(e.key2, "GET", "/v1/routes/r-other-put", "", &r); st != 200 || r.Kind != "international" {
					t.Errorf("other tenant's route after a PUT by bank: %d %+v, want 200 international", st, r)
				}
			}},
		"DELETE /v1/routes/{id}":              {own: "/v1/routes/" + bank.route, other: "/v1/routes/" + other.route, missing: "/v1/routes/r-none"},
		"GET /v1/privacy/cases/{id}":          {own: "/v1/privacy/cases/" + bank.caseID, other: "/v1/privacy/cases/" + other.caseID, missing: "/v1/privacy/cases/" + noCase},
		"POST /v1/privacy/cases/{id}/steps":   {own: "/v1/privacy/cases/" + bank.caseID + "/steps", other: "/v1/privacy/cases/" + other.caseID + "/steps", missing: "/v1/privacy/cases/" + noCase + "/steps", body: `{"step":"request_identity"}`},
		"POST /v1/privacy/cases/{id}/fulfil":  {own: "/v1/privacy/cases/" + bank.caseID + "/fulfil", other: "/v1/privacy/cases/" + other.caseID + "/fulfil", missing: "/v1/privacy/cases/" + noCase + "/fulfil", body: `{}`},
		"GET /v1/privacy/cases/{id}/package":  {own: "/v1/privacy/cases/" + bank.caseID + "/package", other: "/v1/privacy/cases/" + other.caseID + "/package", missing: "/v1/privacy/cases/" + noCase + "/package"},
		"DELETE /v1/reports/{id}":             {own: "/v1/reports/" + bank.reportID, other: "/v1/reports/" + other.reportID, missing: "/v1/reports/" + noCall},
		"GET /v1/consortium/entries/{number}": {own: "/v1/consortium/entries/" + esc(other.number)}, // shared by design: no tenant's object
		"DELETE /v1/consortium/membership": {own: "/v1/consortium/membership", after: func(t *testing.T) {
			// 409: still a member (the request was refused).
			if st, _ := e.do(e.key, "PUT", "/v1/consortium/membership", `{"terms":"`+consortiumTerms+`"}`, nil); st != 200 && st != 409 {
				t.Fatalf("rejoin: %d", st)
			}
		}},
		"POST /v1/calls/import": {own: "/v1/calls/import", body: "started_at,caller,dialled\n"},
		// Model versions are numbered per tenant: no other tenant's object to name.
		"GET /v1/models/{version}":        {own: "/v1/models/1"},
		"PUT /v1/models/{version}/status": {own: "/v1/models/1/status", body: `{"status":"live"}`},
		"DELETE /v1/privacy/holds/{id}":   {own: "/v1/privacy/holds/" + bank.holdID, other: "/v1/privacy/holds/" + other.holdID, missing: "/v1/privacy/holds/" + noHold},
	}

	inRoutes := map[string]bool{}
	for _, route := range Routes {
		inRoutes[route.Pattern] = true
		method, path, _ := cut(route.Pattern)
		c, ok := cases[route.Pattern]
		if !ok {
			if strings.Contains(path, "{") {
				t.Errorf("%s: not in the authorisation matrix: add it to cases in TestAuthorisationMatrix", route.Pattern)
				continue
			}
			c = authzCase{own: path}
			if method != "GET" && method != "DELETE" {
				c.body = `{}`
			}
		}
		t.Run(route.Pattern, func(t *testing.T) {
			for _, cred := range []struct{ name, key string }{{"no credentials", ""}, {"bad key", "rf_not-a-key"}} {
				for _, p := range []string{c.own, c.other} {
					if p == "" {
						continue
					}
					var ae apiError
					st, h := e.do(cred.key, method, p, c.body, &ae)
					switch {
					case route.Roles == nil && (st == 401 || st == 403):
						t.Errorf("%s %s: %d %+v; this route needs no credentials", cred.name, p, st, ae.Error)
					case route.Roles != nil && (st != 401 || ae.Error.Code != "unauthorized" || h.Get("WWW-Authenticate") == ""):
						t.Errorf("%s %s: %d %+v (WWW-Authenticate %q), want 401 unauthorized", cred.name, p, st, ae.Error, h.Get("WWW-Authenticate"))
					}
				}
			}
			for _, role := range call.Roles {
				key := bank.keys[role]
				allowed := route.Roles == nil || slices.Contains(route.Roles, role)

				var own apiError
				st, _ := e.do(key, method, c.own, c.body, &own)
				if c.after != nil {
					c.after(t)
				}
				switch {
				case allowed && (st == 401 || st == 403):
					t.Errorf("%s, own tenant: %d %+v; the route allows this role", role, st, own.Error)
				case !allowed && (st != 403 || own.Error.Code != "forbidden"):
					t.Errorf("%s, own tenant: %d %+v, want 403 forbidden", role, st, own.Error)
				}

				if allowed && route.Roles != nil && role == route.Roles[0] {
					checkBodyLimit(t, e, key, method, route.Pattern, c.own)
				}
				if c.other == "" {
					continue
				}
				var oe apiError
				st, _ = e.do(key, method, c.other, c.body, &oe)
				switch {
				case !allowed:
					// Refused before the object is looked at: the same
					// answer as for the caller's own object.
					if st != 403 || oe.Error != own.Error {
						t.Errorf("%s, other tenant's object: %d %+v, want 403 %+v as for its own", role, st, oe.Error, own.Error)
					}
				case c.upsert:
					if st == 401 || st == 403 || st == 404 {
						t.Errorf("%s, other tenant's id: %d %+v; an upsert makes the caller's own object", role, st, oe.Error)
					}
					c.check(t)
				default:
					if st != 404 || oe.Error.Code != "not_found" {
						t.Errorf("%s, other tenant's object: %d %+v, want 404 not_found", role, st, oe.Error)
						continue
					}
					// Indistinguishable from an object nobody has.
					var me apiError
					mst, _ := e.do(key, method, c.missing, c.body, &me)
					if mst != st || redactPath(oe.Error.Message, c.other) != redactPath(me.Error.Message, c.missing) {
						t.Errorf("%s: other tenant's object answers %d %q, a missing one %d %q", role, st, oe.Error.Message, mst, me.Error.Message)
					}
				}
			}
		})
	}
	for pattern := range cases {
		if !inRoutes[pattern] {
			t.Errorf("cases has %s, which is not in Routes", pattern)
		}
	}
}

// noBody are the routes with a body method that take no body: whatever is
// sent is not read. (The upload route's body is bounded by the length the
// upload declared: archive_test.go.)
var noBody = map[string]bool{
	"POST /v1/archive/users/{id}/offboard": true,
	"POST /v1/archive/days/{day}/seal":     true,
	"POST /v1/audit/verify":                true,
	"PATCH /v1/archive/uploads/{id}":       true,
}

// checkBodyLimit sends one byte more than the route's body limit (the
// matrix env's MaxBody, MaxImport for imports): 413, whatever the route.
func checkBodyLimit(t *testing.T, e *env, key, method, pattern, path string) {
	t.Helper()
	if method != "POST" && method != "PUT" && method != "PATCH" || noBody[pattern] {
		return
	}
	limit := 8 << 10
	if strings.HasSuffix(pattern, "/import") {
		limit = 64 << 10
	}
	var ae apiError
	if st, _ := e.do(key, method, path, strings.Repeat(" ", limit+1), &ae); st != 413 || ae.Error.Code != "too_large" {
		t.Errorf("a body of %d bytes: %d %+v, want 413 too_large", limit+1, st, ae.Error)
	}
}

// redactPath replaces each path segment of path (and its unescaped form)
// found in msg with "*", so that messages about different ids compare.
func redactPath(msg, path string) string {
	for _, seg := range strings.Split(path, "/") {
		if len(seg) < 6 {
			continue
		}
		msg = strings.ReplaceAll(msg, seg, "*")
		if u, err := url.PathUnescape(seg); err == nil {
			msg = strings.ReplaceAll(msg, u, "*")
		}
	}
	return msg
}

// archiveFixture ingests, through tenant's recorder key, a directory user
// and an SMS of it, and places an archive hold with its compliance
// officer key; it returns the item id, user id and hold id.
func archiveFixture(t *testing.T, e *env, at *authzTenant, user string) (item, userID, hold string) {
	t.Helper()
	rec := at.keys[call.Recorder]
	if st, _ := e.do(rec, "PUT", "/v1/archive/users/"+user, `{"name":"Trader","business_numbers":["+447700900123"]}`, nil); st != 204 {
		t.Fatalf("put archive user: %d", st)
	}
	var rc struct{ ID string }
	if st, _ := e.do(rec, "POST", "/v1/archive/sms", `{"client_id":"m1","user_id":"`+user+`","direction":"inbound","parties":["`+at.number+`"],"started_at":"2026-01-02T10:00:00Z","text":"archived text"}`, &rc); st != 201 || rc.ID == "" {
		t.Fatalf("ingest sms: %d", st)
	}
	var h struct{ ID string }
	if st, _ := e.do(at.keys[call.ComplianceOfficer], "POST", "/v1/archive/holds", `{"scope":"user","user_id":"`+user+`","reason":"matrix"}`, &h); st != 201 || h.ID == "" {
		t.Fatalf("archive hold: %d", st)
	}
	return rc.ID, user, h.ID
}
