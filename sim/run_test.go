package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is a func-field fake of the ringfence API. Each field answers one
// endpoint with a status (and, for Screen, an answer); a nil field answers
// 404. Bodies are decoded strictly and the bearer key is checked.
type fakeAPI struct {
	Route  func(id string, body Route) int
	List   func(list string, body listEntry) int
	Screen func(body ScreenRequest) (int, screenAnswer)
	End    func(id string, body callEnd) int
	Label  func(id string, body label) int
}

const testKey = "test-key"

// client starts the fake on an httptest server and returns a Client for it.
func (f *fakeAPI) client(t *testing.T) *Client {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/routes/{id}", func(w http.ResponseWriter, r *http.Request) {
		serve(t, w, r, f.Route != nil, func(v Route) (int, any) { return f.Route(r.PathValue("id"), v), nil })
	})
	mux.HandleFunc("POST /v1/lists/{list}", func(w http.ResponseWriter, r *http.Request) {
		serve(t, w, r, f.List != nil, func(v listEntry) (int, any) { return f.List(r.PathValue("list"), v), nil })
	})
	mux.HandleFunc("POST /v1/screen", func(w http.ResponseWriter, r *http.Request) {
		serve(t, w, r, f.Screen != nil, func(v ScreenRequest) (int, any) { return f.Screen(v) })
	})
	mux.HandleFunc("PATCH /v1/calls/{id}", func(w http.ResponseWriter, r *http.Request) {
		serve(t, w, r, f.End != nil, func(v callEnd) (int, any) { return f.End(r.PathValue("id"), v), nil })
	})
	mux.HandleFunc("POST /v1/calls/{id}/label", func(w http.ResponseWriter, r *http.Request) {
		serve(t, w, r, f.Label != nil, func(v label) (int, any) { return f.Label(r.PathValue("id"), v), nil })
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testKey || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: headers %v", r.Method, r.URL.Path, r.Header)
			reply(w, http.StatusUnauthorized, nil)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &Client{URL: srv.URL + "/", Key: testKey}
}

func serve[T any](t *testing.T, w http.ResponseWriter, r *http.Request, ok bool, handle func(T) (int, any)) {
	if !ok {
		reply(w, http.StatusNotFound, nil)
		return
	}
	var v T
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		t.Errorf("%s %s: body: %v", r.Method, r.URL.Path, err)
		reply(w, http.StatusBadRequest, nil)
		return
	}
	status, body := handle(v)
	reply(w, status, body)
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	if status >= 300 {
		body = map[string]any{"error": map[string]string{"code": "internal", "message": "fake failure"}}
	}
	w.WriteHeader(status)
	if body != nil {
		json.NewEncoder(w).Encode(body)
	}
}

// verdictFor is the fake server's deterministic policy: block the spoofs of
// the bank's own numbers, flag other fraud and every tenth genuine call.
func verdictFor(c Call, i int) (string, float64) {
	switch {
	case c.Scenario == "dno_spoof":
		return "block", 0.99
	case c.Fraud:
		return "flag", 0.7
	case i%10 == 0:
		return "flag", 0.6
	}
	return "allow", 0.1
}

func TestRun(t *testing.T) {
	cfg := Config{Seed: 9, Calls: 1000, Start: testStart, FraudShare: 0.1, LabelAfter: 50, Concurrency: 4}
	tr := Generate(cfg)
	index := map[string]int{}
	for i, c := range tr.Calls {
		index[c.Request.CallRef] = i
	}

	var mu sync.Mutex
	screens := 0
	record := map[string]int{} // record id -> call index
	ended := map[int]bool{}
	labelled := map[int]string{}
	f := &fakeAPI{
		Screen: func(q ScreenRequest) (int, screenAnswer) {
			mu.Lock()
			defer mu.Unlock()
			screens++
			i, ok := index[q.CallRef]
			if !ok || !reflect.DeepEqual(q, tr.Calls[i].Request) {
				t.Errorf("screen request %+v does not match the generated call", q)
				return http.StatusBadRequest, screenAnswer{}
			}
			id := fmt.Sprintf("%026d", i)
			record[id] = i
			action, score := verdictFor(tr.Calls[i], i)
			return http.StatusOK, screenAnswer{RecordID: id, Score: score, Action: action, EvaluatedInUs: int64(screens)}
		},
		End: func(id string, e callEnd) int {
			mu.Lock()
			defer mu.Unlock()
			i, ok := record[id]
			if !ok || ended[i] {
				t.Errorf("call end for %s: screened %v, ended before %v", id, ok, ended[i])
				return http.StatusNotFound
			}
			ended[i] = true
			c := tr.Calls[i]
			want := callEnd{DurationS: c.Duration.Seconds(), Result: c.Result, EgressRoute: c.Egress}
			if action, _ := verdictFor(c, i); action == "block" {
				want = callEnd{Result: "rejected"}
			}
			if e != want {
				t.Errorf("call %d end %+v, want %+v", i, e, want)
			}
			return http.StatusOK
		},
		Label: func(id string, l label) int {
			mu.Lock()
			defer mu.Unlock()
			i, ok := record[id]
			switch {
			case !ok || !ended[i]:
				t.Errorf("label for %s before its call ended", id)
			case screens < min(i+cfg.LabelAfter, cfg.Calls)-cfg.Concurrency:
				t.Errorf("label for call %d after only %d screens", i, screens)
			case labelled[i] != "":
				t.Errorf("call %d labelled twice", i)
			case l.Label == "fraud" && l.FraudType != tr.Calls[i].FraudType:
				t.Errorf("call %d: fraud type %q, want %q", i, l.FraudType, tr.Calls[i].FraudType)
			}
			labelled[i] = l.Label
			return http.StatusCreated
		},
	}
	s, err := Run(context.Background(), f.client(t), tr, cfg)
	if err != nil {
		t.Fatal(err)
	}

	var fraud, blocked, flaggedGenuine int
	for i, c := range tr.Calls {
		action, _ := verdictFor(c, i)
		want := ""
		switch {
		case c.Fraud && draw(cfg.Seed, i) < DefaultLabelShare:
			want = "fraud"
		case !c.Fraud && action == "flag" && draw(cfg.Seed, i) < GenuineLabelShare:
			want = "genuine"
		}
		if labelled[i] != want {
			t.Errorf("call %d (%s, %s): label %q, want %q", i, c.Scenario, action, labelled[i], want)
		}
		if !ended[i] {
			t.Errorf("call %d: no call end", i)
		}
		if c.Fraud {
			fraud++
		} else if action == "flag" {
			flaggedGenuine++
		}
		if action == "block" {
			blocked++
		}
	}

	if s.Calls != cfg.Calls || s.Errors != 0 || s.Requests != 2*cfg.Calls+len(labelled) || s.Labels != len(labelled) {
		t.Errorf("calls %d, errors %d, requests %d, labels %d; want %d, 0, %d, %d",
			s.Calls, s.Errors, s.Requests, s.Labels, cfg.Calls, 2*cfg.Calls+len(labelled), len(labelled))
	}
	if s.ByAction["block"] != blocked || s.ByAction["flag"] != fraud-blocked+flaggedGenuine {
		t.Errorf("by action %v", s.ByAction)
	}
	total := 0
	for name, st := range s.ByScenario {
		if st.Allow+st.Flag+st.Block != st.Calls {
			t.Errorf("%s: %+v does not add up", name, st)
		}
		total += st.Calls
	}
	if total != s.Calls {
		t.Errorf("scenarios hold %d calls, want %d", total, s.Calls)
	}
	figures := []struct {
		name      string
		got, want float64
	}{
		{"flag precision", s.FlagPrecision, float64(fraud) / float64(fraud+flaggedGenuine)},
		{"flag recall", s.FlagRecall, 1},
		{"block precision", s.BlockPrecision, 1},
		{"block recall", s.BlockRecall, float64(blocked) / float64(fraud)},
		{"AUC", s.AUC, 1},
	}
	for _, f := range figures {
		if math.Abs(f.got-f.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	us := time.Microsecond
	if want := (Percentiles{500 * us, 900 * us, 990 * us, 1000 * us}); s.ServerLatency != want {
		t.Errorf("server latency %+v, want %+v", s.ServerLatency, want)
	}
	for _, l := range []Percentiles{s.Latency, s.EndLatency} {
		if l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max || l.Max > s.Elapsed {
			t.Errorf("client latency %+v over %v", l, s.Elapsed)
		}
	}

	var b bytes.Buffer
	if err := s.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dno_spoof", "customer", "AUC 1.000", "block:         precision 1.000", "server p50 500µs"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRunErrors(t *testing.T) {
	cfg := Config{Seed: 10, Calls: 1000, Start: testStart, LabelAfter: 20}
	tr := Generate(cfg)
	for _, tc := range []struct {
		name                string
		failScreen, failEnd int // every n-th screen or call end answers 500; 0 never
		wantErr             bool
		wantErrors          int
	}{
		{"none", 0, 0, false, 0},
		{"few", 0, 500, false, 2},
		{"many", 20, 0, true, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var screens, ends int
			failed := map[string]bool{}
			f := &fakeAPI{
				Screen: func(q ScreenRequest) (int, screenAnswer) {
					mu.Lock()
					defer mu.Unlock()
					screens++
					if tc.failScreen > 0 && screens%tc.failScreen == 0 {
						failed[q.CallRef] = true
						return http.StatusInternalServerError, screenAnswer{}
					}
					return http.StatusOK, screenAnswer{RecordID: fmt.Sprintf("%026d", screens), Action: "allow"}
				},
				End: func(string, callEnd) int {
					mu.Lock()
					defer mu.Unlock()
					ends++
					if tc.failEnd > 0 && ends%tc.failEnd == 0 {
						return http.StatusServiceUnavailable
					}
					return http.StatusOK
				},
				Label: func(string, label) int { return http.StatusCreated },
			}
			s, err := Run(context.Background(), f.client(t), tr, cfg)
			if (err != nil) != tc.wantErr || s.Errors != tc.wantErrors {
				t.Fatalf("errors %d, err %v; want %d, error %v", s.Errors, err, tc.wantErrors, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "fake failure") {
				t.Errorf("error %q does not carry the server's message", err)
			}
			if want := cfg.Calls - len(failed); s.Calls != want || ends != want {
				t.Errorf("%d calls screened, %d ends; want %d", s.Calls, ends, want)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	cfg := Config{Seed: 11, Calls: 1000, Start: testStart}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	screens := 0
	f := &fakeAPI{
		Screen: func(ScreenRequest) (int, screenAnswer) {
			mu.Lock()
			defer mu.Unlock()
			if screens++; screens == 100 {
				cancel()
			}
			return http.StatusOK, screenAnswer{RecordID: fmt.Sprintf("%026d", screens), Action: "allow"}
		},
		End:   func(string, callEnd) int { return http.StatusOK },
		Label: func(string, label) int { return http.StatusCreated },
	}
	s, err := Run(ctx, f.client(t), Generate(cfg), cfg)
	if !errors.Is(err, context.Canceled) || s.Calls >= cfg.Calls {
		t.Fatalf("after cancel: %d calls, err %v", s.Calls, err)
	}
}

func TestRunRegion(t *testing.T) {
	_, err := Run(context.Background(), (&fakeAPI{}).client(t), Traffic{}, Config{Region: "FR"})
	if err == nil {
		t.Fatal("Run accepted region FR")
	}
}

func TestSetup(t *testing.T) {
	tr := Generate(Config{Seed: 12, Calls: 10, Start: testStart})
	var mu sync.Mutex
	routes := map[string]Route{}
	var dno []string
	f := &fakeAPI{
		Route: func(id string, r Route) int {
			mu.Lock()
			defer mu.Unlock()
			r.ID = id
			routes[id] = r
			return http.StatusOK
		},
		List: func(list string, e listEntry) int {
			mu.Lock()
			defer mu.Unlock()
			if list != "dno" || e.Reason == "" {
				t.Errorf("list %s entry %+v", list, e)
			}
			dno = append(dno, e.Number)
			if len(dno) == 1 {
				return http.StatusConflict // already listed: fine
			}
			return http.StatusCreated
		},
	}
	if err := f.client(t).Setup(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	if len(routes) != 5 || routes["intl-nl"] != (Route{ID: "intl-nl", Kind: "international", Country: "NL", FailOpen: true}) {
		t.Errorf("routes %+v", routes)
	}
	if !reflect.DeepEqual(dno, tr.DNO) {
		t.Errorf("dno %v, want %v", dno, tr.DNO)
	}

	f.Route = func(string, Route) int { return http.StatusForbidden }
	err := f.client(t).Setup(context.Background(), tr)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden || apiErr.Message != "fake failure" {
		t.Errorf("setup against a refusing server: %v", err)
	}
}
