package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store/sqlite"
)

// env is a real node on a real SQLite file behind the API.
type env struct {
	t    *testing.T
	srv  *httptest.Server
	api  *Server
	node *node.Node
	key  string // tenant "bank" API key
	key2 string // tenant "other" API key
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rf.db"))
	if err != nil {
		t.Fatal(err)
	}
	mk, _ := seal.NewMasterKey()
	n, err := node.Open(ctx, node.Config{}, st, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := n.CreateTenant(ctx, "bank", "Bank", "GB")
	if err != nil {
		t.Fatal(err)
	}
	_, key2, err := n.CreateTenant(ctx, "other", "Other", "GB")
	if err != nil {
		t.Fatal(err)
	}
	api := New(cfg, n, nil)
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		n.Close()
		st.Close()
	})
	return &env{t: t, srv: srv, api: api, node: n, key: key, key2: key2}
}

// do sends a request and decodes the JSON answer into out (if non-nil),
// returning the status.
func (e *env) do(key, method, path, body string, out any) (int, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" && !strings.HasSuffix(path, "/import") && !strings.Contains(path, "/import?") {
		req.Header.Set("Content-Type", "application/json")
	} else if body != "" {
		req.Header.Set("Content-Type", "text/csv")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

type apiError struct {
	Error struct{ Code, Message string } `json:"error"`
}

type verdict struct {
	RecordID      string  `json:"record_id"`
	Score         float64 `json:"score"`
	Action        string  `json:"action"`
	Policy        string  `json:"policy"`
	EvaluatedInUS int64   `json:"evaluated_in_us"`
	Markers       []struct {
		Code   string  `json:"code"`
		Weight float64 `json:"weight"`
		Detail string  `json:"detail"`
	} `json:"markers"`
}

func (v verdict) has(code string) bool {
	for _, m := range v.Markers {
		if m.Code == code {
			return true
		}
	}
	return false
}

func TestScreenAndCallLifecycle(t *testing.T) {
	e := newEnv(t, Config{})
	var v verdict
	st, _ := e.do(e.key, "POST", "/v1/screen", `{"call_ref":"c1","caller":"07400 123456","dialled":"+442071838750",
		"user_ref":"cust-1","ingress_route":"uk-1","signalling":{"pai":"<sip:+447400123456@carrier>","verstat":"TN-Validation-Passed-A"}}`, &v)
	if st != 200 || len(v.RecordID) != 26 || v.Action != "allow" || v.Policy != "v1" {
		t.Fatalf("screen: %d %+v", st, v)
	}
	if !v.has("verstat.passed_a") || !v.has("route.unknown") {
		t.Errorf("markers %+v: want verstat.passed_a and route.unknown", v.Markers)
	}

	var c callJSON
	if st, _ := e.do(e.key, "GET", "/v1/calls/"+v.RecordID, "", &c); st != 200 {
		t.Fatalf("get call: %d", st)
	}
	if c.Caller != "+447400123456" || c.CallerType != "mobile" || c.UserRef != "cust-1" || c.CallRef != "c1" || c.Review.Status != "unreviewed" {
		t.Errorf("call = %+v", c)
	}
	// Another tenant cannot see it.
	var ae apiError
	if st, _ := e.do(e.key2, "GET", "/v1/calls/"+v.RecordID, "", &ae); st != 404 || ae.Error.Code != "not_found" {
		t.Errorf("other tenant get: %d %+v", st, ae)
	}

	if st, _ := e.do(e.key, "PATCH", "/v1/calls/"+v.RecordID, `{"duration_s":93.5,"result":"answered","egress_route":"agents"}`, &c); st != 200 {
		t.Fatalf("patch: %d", st)
	}
	if c.End == nil || *c.End.DurationS != 93.5 || c.End.Result != "answered" || c.End.EgressRoute != "agents" {
		t.Errorf("end = %+v", c.End)
	}

	// A fraud label denies the caller from the next call on.
	if st, _ := e.do(e.key, "POST", "/v1/calls/"+v.RecordID+"/label", `{"label":"fraud","fraud_type":"account_takeover","note":"customer confirmed"}`, &c); st != 201 {
		t.Fatalf("label: %d", st)
	}
	if c.Review.Status != "fraud" || c.Review.FraudType != "account_takeover" {
		t.Errorf("review = %+v", c.Review)
	}
	var v2 verdict
	e.do(e.key, "POST", "/v1/screen", `{"caller":"+447400123456","dialled":"+442071838750"}`, &v2)
	if v2.Action != "block" || !v2.has("list.deny") {
		t.Errorf("after fraud label: %+v", v2)
	}
	// The other tenant is unaffected.
	var v3 verdict
	e.do(e.key2, "POST", "/v1/screen", `{"caller":"+447400123456","dialled":"+442071838750"}`, &v3)
	if v3.has("list.deny") {
		t.Errorf("fraud label leaked to another tenant: %+v", v3)
	}
	// A genuine label on the same record lifts the deny entry it made.
	e.do(e.key, "POST", "/v1/calls/"+v.RecordID+"/label", `{"label":"genuine"}`, &c)
	var v4 verdict
	e.do(e.key, "POST", "/v1/screen", `{"caller":"+447400123456","dialled":"+442071838750","user_ref":"cust-1"}`, &v4)
	if v4.has("list.deny") || !v4.has("link.known_customer") {
		t.Errorf("after genuine label: %+v", v4)
	}

	var page callsPage
	if st, _ := e.do(e.key, "GET", "/v1/calls?limit=2", "", &page); st != 200 || len(page.Calls) != 2 || page.Next == "" {
		t.Fatalf("list page 1: %d %d %q", st, len(page.Calls), page.Next)
	}
	var page2 callsPage
	e.do(e.key, "GET", "/v1/calls?limit=2&before="+page.Next, "", &page2)
	if len(page2.Calls) != 1 || page2.Calls[0].RecordID != v.RecordID {
		t.Errorf("list page 2: %+v", page2)
	}
	var fraud callsPage
	e.do(e.key, "GET", "/v1/calls?label=genuine", "", &fraud)
	if len(fraud.Calls) != 1 {
		t.Errorf("label filter: %d calls", len(fraud.Calls))
	}
}

func TestListsRoutesPolicy(t *testing.T) {
	e := newEnv(t, Config{})
	if st, _ := e.do(e.key, "PUT", "/v1/routes/intl-1", `{"kind":"international"}`, nil); st != 200 {
		t.Fatalf("put route: %d", st)
	}
	if st, _ := e.do(e.key, "POST", "/v1/lists/dno", `{"number":"0800 800 150","reason":"published helpline"}`, nil); st != 201 {
		t.Fatalf("add dno: %d", st)
	}
	var v verdict
	e.do(e.key, "POST", "/v1/screen", `{"caller":"+44 800 800 150","dialled":"+442071838750","ingress_route":"intl-1"}`, &v)
	if v.Action != "block" || !v.has("dno.listed") || !v.has("route.home_cli_international") {
		t.Errorf("dno spoof: %+v", v)
	}
	var list struct {
		Entries []listEntryJSON `json:"entries"`
	}
	e.do(e.key, "GET", "/v1/lists/dno", "", &list)
	if len(list.Entries) != 1 || list.Entries[0].Number != "+44800800150" || list.Entries[0].Reason != "published helpline" {
		t.Errorf("dno list = %+v", list)
	}
	if st, _ := e.do(e.key, "DELETE", "/v1/lists/dno/numbers/%2B44800800150", "", nil); st != 204 {
		t.Errorf("delete: %d", st)
	}
	if st, _ := e.do(e.key, "DELETE", "/v1/lists/dno/numbers/%2B44800800150", "", nil); st != 404 {
		t.Errorf("delete again: %d", st)
	}

	var res node.ImportResult
	csv := "pattern\n4692576503\n2566445079\n12\nnot a number\n8009423767,complaints,2099-01-01\n"
	if st, _ := e.do(e.key, "POST", "/v1/lists/deny/import?region=US", csv, &res); st != 200 || res.Added != 3 || res.RejectedCount != 2 {
		t.Fatalf("import: %d %+v", st, res)
	}
	if res.Rejected[0].Line != 4 || res.Rejected[1].Line != 5 {
		t.Errorf("rejected lines = %+v", res.Rejected)
	}
	e.do(e.key, "POST", "/v1/screen", `{"caller":"+14692576503","dialled":"+442071838750"}`, &v)
	if !v.has("list.deny") {
		t.Errorf("imported number not denied: %+v", v)
	}

	var p map[string]any
	e.do(e.key, "GET", "/v1/policy", "", &p)
	if p["version"] != 1.0 {
		t.Fatalf("policy = %v", p)
	}
	var ae apiError
	if st, _ := e.do(e.key, "PUT", "/v1/policy", `{"version":7,"flag_at":0.4,"block_at":0.8}`, &ae); st != 409 || ae.Error.Code != "conflict" {
		t.Errorf("stale policy: %d %+v", st, ae)
	}
	if st, _ := e.do(e.key, "PUT", "/v1/policy", `{"version":1,"flag_at":0.4,"block_at":0.8,"prior":-4,"shadow":{"flag_at":0.2,"block_at":0.3,"prior":-2}}`, &p); st != 200 || p["version"] != 2.0 {
		t.Fatalf("put policy: %d %v", st, p)
	}
	var sv struct {
		verdict
		Shadow *struct{ Action, Policy string } `json:"shadow"`
	}
	e.do(e.key, "POST", "/v1/screen", `{"caller":"anonymous","dialled":"+442071838750"}`, &sv)
	if sv.Policy != "v2" || sv.Shadow == nil || sv.Shadow.Policy != "v2-shadow" {
		t.Errorf("shadow verdict: %+v", sv)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t, Config{})
	big := `{"caller":"` + strings.Repeat("1", 70<<10) + `"}`
	cases := []struct {
		name, key, method, path, body string
		status                        int
		code, message                 string
	}{
		{"no key", "", "POST", "/v1/screen", `{}`, 401, "unauthorized", "missing API key"},
		{"bad key", "rf_nope", "GET", "/v1/policy", "", 401, "unauthorized", "unknown API key"},
		{"missing dialled", e.key, "POST", "/v1/screen", `{"caller":"+447400123456"}`, 400, "invalid", "dialled: required"},
		{"bad dialled", e.key2, "POST", "/v1/screen", `{"dialled":"hello"}`, 400, "invalid", "dialled: not a telephone number"},
		{"unknown field", e.key2, "POST", "/v1/screen", `{"dialled":"+442071838750","colour":"red"}`, 400, "invalid", "colour: unknown field"},
		{"wrong type", e.key2, "POST", "/v1/screen", `{"dialled":12}`, 400, "invalid", "dialled: must be a string"},
		{"bad json", e.key2, "POST", "/v1/screen", `{"dialled":`, 400, "invalid", "body: truncated JSON"},
		{"two objects", e.key2, "POST", "/v1/screen", `{} {}`, 400, "invalid", "exactly one JSON object"},
		{"bad time", e.key2, "POST", "/v1/screen", `{"dialled":"+442071838750","started_at":"yesterday"}`, 400, "invalid", "started_at"},
		{"too large", e.key2, "POST", "/v1/screen", big, 413, "too_large", "larger than"},
		{"no record", e.key2, "GET", "/v1/calls/01ARZ3NDEKTSV4RRFFQ69G5FAV", "", 404, "not_found", "not found"},
		{"bad record id", e.key2, "GET", "/v1/calls/xyz", "", 404, "not_found", "no call record"},
		{"no list", e.key2, "GET", "/v1/lists/grey", "", 404, "not_found", "lists are allow, deny and dno"},
		{"bad route", e.key2, "PUT", "/v1/routes/r1", `{"kind":"sideways"}`, 400, "invalid", "kind: must be"},
		{"bad policy", e.key2, "PUT", "/v1/policy", `{"flag_at":0.9,"block_at":0.5}`, 400, "invalid", "block_at: must not be below flag_at"},
		{"bad marker", e.key2, "PUT", "/v1/policy", `{"flag_at":0.5,"block_at":0.9,"weights":{"cli.nope":1}}`, 400, "invalid", "weights.cli.nope"},
		{"bad end", e.key2, "PATCH", "/v1/calls/01ARZ3NDEKTSV4RRFFQ69G5FAV", `{"duration_s":5,"result":"maybe"}`, 400, "invalid", "result: must be"},
		{"bad label", e.key2, "POST", "/v1/calls/01ARZ3NDEKTSV4RRFFQ69G5FAV/label", `{"label":"probably"}`, 400, "invalid", "label: must be fraud or genuine"},
		{"no route", e.key2, "GET", "/v1/nothing", "", 404, "not_found", "no route"},
		{"method", e.key2, "DELETE", "/v1/screen", "", 405, "method_not_allowed", "use POST"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ae apiError
			st, h := e.do(c.key, c.method, c.path, c.body, &ae)
			if st != c.status || ae.Error.Code != c.code || !strings.Contains(ae.Error.Message, c.message) {
				t.Errorf("got %d %+v; want %d %s %q", st, ae.Error, c.status, c.code, c.message)
			}
			if st == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("rate limit", func(t *testing.T) {
		e := newEnv(t, Config{RatePerKey: 1, Burst: 3})
		var st int
		var h http.Header
		for range 5 {
			st, h = e.do(e.key, "GET", "/v1/policy", "", nil)
		}
		if st != 429 || h.Get("Retry-After") == "" {
			t.Errorf("after 5 requests at 1/s with burst 3: %d, Retry-After %q", st, h.Get("Retry-After"))
		}
	})
	t.Run("unavailable", func(t *testing.T) {
		e.node.Close()
		var ae apiError
		st, h := e.do(e.key2, "POST", "/v1/screen", `{"dialled":"+442071838750"}`, &ae)
		if st != 503 || ae.Error.Code != "unavailable" || h.Get("Retry-After") == "" {
			t.Errorf("after close: %d %+v", st, ae)
		}
	})
}

func TestHealthAndOpenAPI(t *testing.T) {
	e := newEnv(t, Config{})
	for _, p := range []string{"/healthz", "/readyz", "/v1/openapi.json"} {
		if st, _ := e.do("", "GET", p, "", nil); st != 200 {
			t.Errorf("%s: %d", p, st)
		}
	}
	if st, _ := e.do("", "GET", "/metrics", "", nil); st != 404 {
		t.Errorf("/metrics without a gatherer: %d", st)
	}
}

// FuzzDecode feeds arbitrary bodies to the strict JSON decoder: it never
// panics and either decodes or returns an invalid-input error.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `{"dialled":"+442071838750","signalling":{"pai":["a","b"]}}`, `{"signalling":{"pai":7}}`, `[]`, `{"a":1}`, `{"started_at":"2026-01-01T00:00:00Z"}`, "\x00", `{"dialled":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req screenRequest
		err := decodeJSON(body, &req)
		if err != nil && !strings.HasPrefix(err.Error(), "invalid: ") {
			t.Fatalf("decode error %v is not an invalid-input error", err)
		}
		if err == nil && !json.Valid(bytes.TrimSpace(body)) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
	})
}
