package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
)

// importCallsServer serves POST /v1/calls/import for admins, over e's
// node, as the Routes entry {"POST /v1/calls/import", configuring,
// (*Server).importCalls} does.
func importCallsServer(t *testing.T, e *env, cfg Config) *httptest.Server {
	t.Helper()
	s := New(cfg, e.node, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/calls/import", s.auth(configuring, s.importCalls))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type importAnswer struct {
	Imported        *int `json:"imported"`
	AlreadyImported int  `json:"already_imported"`
	RejectedCount   int  `json:"rejected_count"`
	Rejected        []struct {
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"rejected"`
	Error *struct{ Code, Message string } `json:"error"`
}

func postImport(t *testing.T, url, key, contentType, body string) (int, importAnswer) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/calls/import", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a importAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	return resp.StatusCode, a
}

func TestImportCallsAPI(t *testing.T) {
	e := newEnv(t, Config{})
	srv := importCallsServer(t, e, Config{})
	start := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	ts := func(d time.Duration) string { return start.Add(d).Format(time.RFC3339) }
	csvFile := "call_ref,started_at,caller,dialled,duration_s,result,label,fraud_type\n" +
		"c1," + ts(0) + ",+447400100001,+442079460001,40,answered,genuine,\n" +
		"c2," + ts(time.Minute) + ",+447400100002,+442079460001,2,answered,fraud,impersonation\n" +
		"c3," + ts(0) + ",+447400100003,+442079460001,,,,\n" // out of order
	ndjson := `{"call_ref":"j1","started_at":"` + ts(2*time.Minute) + `","caller":"+447400100004","dialled":"+442079460001","signalling":{"verstat":"TN-Validation-Passed-A"}}` + "\n" +
		`{"call_ref":"j2","started_at":"` + ts(3*time.Minute) + `","caller":"+447400100004","dialled":"+442079460001","label":"nope"}` + "\n"

	for _, tc := range []struct {
		name, contentType, body             string
		status, imported, already, rejected int
	}{
		{"csv", "text/csv; charset=utf-8", csvFile, 200, 2, 0, 1},
		{"csv again", "text/csv", csvFile, 200, 0, 2, 1},
		{"ndjson", "application/x-ndjson", ndjson, 200, 1, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, a := postImport(t, srv.URL, e.key, tc.contentType, tc.body)
			if st != tc.status || a.Imported == nil || *a.Imported != tc.imported || a.AlreadyImported != tc.already ||
				a.RejectedCount != tc.rejected || len(a.Rejected) != tc.rejected {
				t.Fatalf("%d %+v; want %d with %d imported, %d already, %d rejected", st, a, tc.status, tc.imported, tc.already, tc.rejected)
			}
		})
	}
	t.Run("labels visible", func(t *testing.T) {
		var page struct {
			Calls []struct {
				CallRef string `json:"call_ref"`
				Review  struct {
					Status    string `json:"status"`
					FraudType string `json:"fraud_type"`
				} `json:"review"`
			} `json:"calls"`
		}
		if st, _ := e.do(e.key, "GET", "/v1/calls?label=fraud", "", &page); st != 200 || len(page.Calls) != 1 ||
			page.Calls[0].CallRef != "c2" || page.Calls[0].Review.FraudType != "impersonation" {
			t.Errorf("fraud calls: %d %+v", st, page)
		}
	})
	for _, tc := range []struct {
		name, key, contentType, body, code string
		status                             int
	}{
		{"wrong content type", e.key, "application/json", "{}", call.Invalid, 400},
		{"no content type", e.key, "", csvFile, call.Invalid, 400},
		{"bad header", e.key, "text/csv", "number\n+447400100001\n", call.Invalid, 400},
		{"no key", "", "text/csv", csvFile, call.Unauthorized, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, a := postImport(t, srv.URL, tc.key, tc.contentType, tc.body)
			if st != tc.status || a.Error == nil || a.Error.Code != tc.code {
				t.Errorf("%d %+v; want %d %s", st, a, tc.status, tc.code)
			}
		})
	}
	t.Run("admins only", func(t *testing.T) {
		analyst, err := e.node.NewAPIKey(t.Context(), "bank", "analyst-1", call.Analyst)
		if err != nil {
			t.Fatal(err)
		}
		if st, a := postImport(t, srv.URL, analyst, "text/csv", csvFile); st != 403 || a.Error == nil || a.Error.Code != call.Forbidden {
			t.Errorf("analyst: %d %+v; want 403", st, a)
		}
	})
}

func TestImportCallsAPITooLarge(t *testing.T) {
	e := newEnv(t, Config{})
	srv := importCallsServer(t, e, Config{MaxImport: 4096})
	start := time.Now().UTC().Add(-48 * time.Hour)
	var b strings.Builder
	b.WriteString("call_ref,started_at,caller,dialled\n")
	for i := 0; b.Len() < 8192; i++ {
		fmt.Fprintf(&b, "r%d,%s,+447400100001,+442079460001\n", i, start.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
	}
	st, a := postImport(t, srv.URL, e.key, "text/csv", b.String())
	if st != http.StatusRequestEntityTooLarge || a.Error == nil || a.Error.Code != call.TooLarge || !strings.Contains(a.Error.Message, "4096") {
		t.Errorf("%d %+v; want 413 naming the limit", st, a)
	}
}
