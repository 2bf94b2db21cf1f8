package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
)

// Over max_in_flight, a screen request is answered by its ingress route's
// failure policy: unscored on a fail-open route, 503 otherwise.
func TestScreenOverloaded(t *testing.T) {
	e := newEnv(t, Config{MaxInFlight: 8})
	for path, body := range map[string]string{
		"/v1/routes/open-1":   `{"kind":"international","fail_open":true}`,
		"/v1/routes/closed-1": `{"kind":"international"}`,
	} {
		if st, _ := e.do(e.key, "PUT", path, body, nil); st != 200 {
			t.Fatalf("PUT %s: %d", path, st)
		}
	}
	screen := func(route string) (int, http.Header, screenResponse, apiError) {
		t.Helper()
		var out struct {
			screenResponse
			apiError
		}
		st, h := e.do(e.key, "POST", "/v1/screen", `{"caller":"+447700900123","dialled":"+442071838750","ingress_route":"`+route+`"}`, &out)
		return st, h, out.screenResponse, out.apiError
	}

	e.api.inFlight.Store(8) // as if eight requests were being served
	st, _, v, _ := screen("open-1")
	if st != 200 || v.Action != call.Unscored || v.RecordID != "" || v.Reason != "overloaded: too many calls in flight" {
		t.Errorf("fail-open route, overloaded: %d %+v", st, v)
	}
	for _, route := range []string{"closed-1", "", "no-such-route"} {
		st, h, _, ae := screen(route)
		if st != 503 || h.Get("Retry-After") == "" || ae.Error.Code != "unavailable" {
			t.Errorf("route %q, overloaded: %d %+v Retry-After %q; want 503 with Retry-After", route, st, ae.Error, h.Get("Retry-After"))
		}
	}
	if n := e.api.inFlight.Load(); n != 8 {
		t.Errorf("refused requests left in-flight at %d; want 8", n)
	}

	e.api.inFlight.Store(7) // room for one more
	st, _, v, _ = screen("closed-1")
	if st != 200 || v.Action == call.Unscored || v.RecordID == "" {
		t.Errorf("under the limit: %d %+v; want a scored verdict", st, v)
	}
	if n := e.api.inFlight.Load(); n != 7 {
		t.Errorf("in-flight after a screened call: %d; want 7", n)
	}
}

func TestLimitPerSource(t *testing.T) {
	served := 0
	h := LimitPerSource(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }), 1, 3)
	get := func(src string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/policy", nil)
		r.RemoteAddr = src
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 3 {
		if w := get("192.0.2.7:40000"); w.Code != 200 {
			t.Fatalf("request %d within the burst: %d", i+1, w.Code)
		}
	}
	w := get("192.0.2.7:40001") // same address, another port
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Errorf("4th request from one address at 1/s, burst 3: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := get("[2001:db8::1]:5000"); w.Code != 200 {
		t.Errorf("another address: %d", w.Code)
	}
	if served != 4 {
		t.Errorf("handler ran %d times; want 4", served)
	}
	mux := http.NewServeMux()
	if LimitPerSource(mux, 0, 0) != http.Handler(mux) {
		t.Error("rate 0 should leave the handler unwrapped")
	}
}

// Buckets that have refilled are swept, so many sources do not grow the
// limiter without bound.
func TestLimiterSweeps(t *testing.T) {
	l := newLimiter(10, 20) // refills completely in 2 s
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		l.take(string(rune('a'+i%26))+string(rune(i)), t0)
	}
	if len(l.buckets) != 1000 {
		t.Fatalf("%d buckets", len(l.buckets))
	}
	if wait := l.take("late", t0.Add(30*time.Second)); wait != 0 {
		t.Fatalf("fresh key limited: %v", wait)
	}
	if len(l.buckets) != 1001 { // swept at most once a minute
		t.Fatalf("%d buckets before a minute passed", len(l.buckets))
	}
	l.take("later", t0.Add(2*time.Minute))
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets after the sweep; want only the new one", len(l.buckets))
	}
}
