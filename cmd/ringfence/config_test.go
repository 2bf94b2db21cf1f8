package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every bad setting is refused with a message naming the key.
func TestConfigValidate(t *testing.T) {
	cases := []struct{ json, want string }{
		{`{"store":"mysql://x"}`, "store: must be"},
		{`{"log":{"level":"loud"}}`, "log.level"},
		{`{"sip":{"udp":"127.0.0.1:5060"}}`, "sip.tenant"},
		{`{"sip":{"tenant":"t","budget":"soon"}}`, "sip.budget"},
		{`{"housekeeping":{"every":"1s"}}`, "housekeeping.every"},
		{`{"http":{"cert_file":"c.pem"}}`, "http.key_file"},
		{`{"http":{"rate_per_source":-1}}`, "http.rate_per_source"},
		{`{"http":{"max_in_flight":-5}}`, "http.max_in_flight"},
		{`{"memory_limit":"lots"}`, "memory_limit: \"lots\" is not a size"},
		{`{"memory_limit":"1MiB"}`, "below the minimum"},
		{`{"memory_limit":"-2GiB"}`, "not a size"},
		{`{"memory_limit":"99999999999TiB"}`, "not a size"},
		{`{"unknown_key":1}`, "unknown field"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, "c.json")
		if err := os.WriteFile(path, []byte(c.json), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := parseFlags("serve", []string{"--config", path}, os.Stderr, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v; want an error containing %q", c.json, err, c.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"64MiB": 64 << 20, "2GiB": 2 << 30, "1TiB": 1 << 40, "104857600": 100 << 20, "65536KiB": 64 << 20} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
