package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/accesslog"
)

// TestAccessLogPrivacy runs the real server, sends it HTTP traffic (some
// with numbers in the body, the path and the query) and checks the access
// log under DATA/logs: it exists, names clients only by pseudonym
// ("127.0.0.0/24#..."), never by raw address or number, and the purge
// removes it once it is past its retention (7 days), not before.
func TestAccessLogPrivacy(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, io.Discard)
	_, key, err := m.Node.CreateTenant(t.Context(), "bank", "Bank", "GB")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.Addr
	const number = "+447400123456"
	requests := 0
	for range 3 {
		post(t, base+"/v1/screen", key, `{"caller":"`+number+`","dialled":"+442079460123"}`)
		requests++
	}
	for _, path := range []string{"/v1/lists/deny/" + number, "/v1/calls?caller=" + strings.TrimPrefix(number, "+"), "/metrics"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		requests++
	}
	if err := m.Close(); err != nil { // flushes the access log
		t.Fatal(err)
	}

	logs := filepath.Join(dir, "logs")
	files, err := filepath.Glob(filepath.Join(logs, "access-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no access log in %s", logs)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v); want 0600", f, fi.Mode().Perm(), err)
		}
		all = append(all, b...)
	}
	lines := bytes.Count(all, []byte("\n"))
	if lines < requests {
		t.Errorf("the access log has %d lines for %d requests", lines, requests)
	}
	if got := bytes.Count(all, []byte(`"client":"127.0.0.0/24#`)); got != lines {
		t.Errorf("%d of %d lines name the client by its pseudonym", got, lines)
	}
	for _, banned := range []string{"127.0.0.1", number, strings.TrimPrefix(number, "+"), "07400123456", key} {
		if bytes.Contains(all, []byte(banned)) {
			t.Errorf("the access log holds %q", banned)
		}
	}

	if n, err := accesslog.Purge(logs, time.Now(), logsLife); err != nil || n != 0 {
		t.Fatalf("a purge within the retention removed %d files (%v)", n, err)
	}
	n, err := accesslog.Purge(logs, time.Now().Add(8*24*time.Hour), logsLife)
	if err != nil {
		t.Fatal(err)
	}
	if n < len(files) {
		t.Errorf("the purge 8 days later removed %d files of %d", n, len(files))
	}
	if left, _ := filepath.Glob(filepath.Join(logs, "access-*.log")); len(left) != 0 {
		t.Errorf("after the purge 8 days later %v are left", left)
	}
}
