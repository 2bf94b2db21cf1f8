package main

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readmeConfig returns the example config file of README.md's
// "Configuration" section, or "" if the README has none.
func readmeConfig() string {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		return ""
	}
	_, rest, ok := strings.Cut(string(b), "### Configuration")
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, "```json\n")
	if !ok {
		return ""
	}
	conf, _, _ := strings.Cut(rest, "```")
	return conf
}

// FuzzConfig feeds an arbitrary config file and command line to the
// config path every server-side verb takes (loadConfig, then flags, then
// defaults and validate), with serve's flags. Checks: it never panics;
// a file that loads writes back as JSON that loads to the same Config
// (every field is decoded, none is lost or invented); a config that
// validates still validates, unchanged, after defaults run again; the
// logger it configures can be built. Seeds: README.md's example file and
// testdata/fuzz/FuzzConfig.
func FuzzConfig(f *testing.F) {
	if conf := readmeConfig(); conf != "" {
		f.Add([]byte(conf), "")
		f.Add([]byte(conf), "--http\n:0\n--sip-udp=\n--data\n/tmp/x")
	}
	for _, s := range []struct{ file, args string }{
		{`{}`, ""},
		{``, ""},
		{`{"store":"postgres://ringfence@db.example:5432/ringfence?sslmode=verify-full","log":{"level":"debug","format":"json"}}`, "--store=sqlite:x.db"},
		{`{"sip":{"udp":"0.0.0.0:5060"}}`, "--sip-tenant\nbank"},
		{`{"sip":{"tls":":5061","budget":"-1s"},"stir":{"freshness":"0"}}`, ""},
		{`{"memory_limit":"64MiB","housekeeping":{"every":"59s","retrain":"off","checkpoint":"1s"}}`, ""},
		{`{"memory_limit":" 9223372036854775807 ","http":{"rate_per_key":-0,"max_in_flight":-1}}`, ""},
		{`{"data":"d"}{"data":"e"}`, "-h"},
		{`{"unknown":1}`, "--bogus"},
		{`{"sip":{"route_by_source":null},"consortium":{"id":"off"},"engine":{"number_cache":1e3}}`, "--master-key-env\nRF_KEY"},
	} {
		f.Add([]byte(s.file), s.args)
	}
	path := filepath.Join(f.TempDir(), "ringfence.json")
	f.Fuzz(func(t *testing.T, file []byte, args string) {
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		loaded, err := loadConfig(path)
		if err == nil {
			checkConfigRoundTrip(t, loaded, path+".again")
		}
		// The file stays the fuzzer's: an argument naming another config
		// could point anywhere (/dev/zero).
		argv := []string{"--config", path}
		for a := range strings.SplitSeq(args, "\n") {
			if a != "" && !strings.Contains(a, "config") {
				argv = append(argv, a)
			}
		}
		c, _, err := parseFlags("serve", argv, io.Discard, func(fs *flag.FlagSet, c *Config) {
			fs.StringVar(&c.HTTP.Addr, "http", c.HTTP.Addr, "")
			fs.StringVar(&c.HTTP.CertFile, "http-cert", c.HTTP.CertFile, "")
			fs.StringVar(&c.HTTP.KeyFile, "http-key", c.HTTP.KeyFile, "")
			fs.StringVar(&c.Appliance, "appliance", c.Appliance, "")
			sipFlags(fs, c)
		})
		if err != nil {
			return
		}
		again := c
		again.defaults()
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("defaults change a config they already ran on:\n%+v\n%+v", c, again)
		}
		if err := again.validate(); err != nil {
			t.Fatalf("a valid config no longer validates: %v", err)
		}
		if c.MemoryLimit != "" {
			if n, err := parseBytes(c.MemoryLimit); err != nil || n < 64<<20 {
				t.Fatalf("memory_limit %q validated but reads as %d, %v", c.MemoryLimit, n, err)
			}
		}
		newLogger(c, io.Discard).Info("fuzz")
	})
}

// checkConfigRoundTrip writes c as JSON to path and loads it back.
func checkConfigRoundTrip(t *testing.T, c Config, path string) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("a loaded config does not marshal: %v", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := loadConfig(path)
	if err != nil {
		t.Fatalf("a loaded config, written back, does not load: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("config round trip:\n%+v\n%+v", c, back)
	}
}
