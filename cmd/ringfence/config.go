package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
)

// Config is ringfence's configuration: a JSON file (unknown keys are an
// error) overridden by flags. Zero values are useful defaults.
type Config struct {
	Data          string `json:"data"`            // data directory (default ./ringfence-data)
	Store         string `json:"store"`           // DSN: "sqlite:PATH" (default sqlite:DATA/ringfence.db) or "postgres://user@host:5432/db"
	MasterKeyFile string `json:"master_key_file"` // default DATA/master.key
	MasterKeyEnv  string `json:"master_key_env"`  // name of an environment variable holding the base64 master key; wins over the file
	KeyDir        string `json:"key_dir"`         // tenants' key-encryption keys, outside the database (default DATA/keys; shared by a cluster's nodes)
	Appliance     string `json:"appliance_id"`    // this node's name in call records (default: host name)
	MemoryLimit   string `json:"memory_limit"`    // the Go runtime's soft memory limit, such as 2GiB (default: none; GOMEMLIMIT in the environment wins)

	HTTP struct {
		Addr          string  `json:"addr"`            // listen address (default 127.0.0.1:8080)
		RatePerKey    float64 `json:"rate_per_key"`    // requests/s per API key; 0 = unlimited
		RatePerSource float64 `json:"rate_per_source"` // requests/s per client IP address, API and console, signed in or not; 0 = unlimited
		MaxInFlight   int64   `json:"max_in_flight"`   // concurrent screen requests before the overload policy (default 1024)
		CertFile      string  `json:"cert_file"`       // PEM certificate chain: serve HTTPS (TLS 1.2 or newer) instead of HTTP
		KeyFile       string  `json:"key_file"`        // PEM private key of cert_file
	} `json:"http"`

	SIP struct {
		UDP           string            `json:"udp"`             // e.g. 0.0.0.0:5060; "" = off
		TCP           string            `json:"tcp"`             // e.g. 0.0.0.0:5060; "" = off
		TLS           string            `json:"tls"`             // e.g. 0.0.0.0:5061; "" = off (needs cert_file and key_file)
		CertFile      string            `json:"cert_file"`       // PEM certificate chain for TLS
		KeyFile       string            `json:"key_file"`        // PEM private key for TLS
		Tenant        string            `json:"tenant"`          // tenant of calls on these listeners
		TenantHeader  string            `json:"tenant_header"`   // header naming the tenant per call (trusted SBCs only)
		RouteHeader   string            `json:"route_header"`    // header carrying the ingress route id (default X-Ingress-Route)
		RouteBySource map[string]string `json:"route_by_source"` // CIDR -> ingress route id when the header is absent
		MaxInFlight   int               `json:"max_in_flight"`   // concurrent evaluations before the overload policy (default 4096)
		Budget        string            `json:"budget"`          // longest a call may wait to be screened before the route's fail-open/closed answer (default 200ms)
	} `json:"sip"`

	STIR struct {
		RootsFile string `json:"roots_file"` // PEM file of trusted STI-CA roots; "" = no STIR/SHAKEN verification
		AllowHTTP bool   `json:"allow_http"` // fetch x5u certificates over http too (https only by default)
		Freshness string `json:"freshness"`  // iat window, a Go duration (default 60s)
	} `json:"stir"`

	Engine struct {
		NumberCache  int    `json:"number_cache"`  // normalised numbers memoised (default 1048576)
		VelocityKeys int    `json:"velocity_keys"` // keys in the velocity windows (default 1048576)
		MaxLinks     int    `json:"max_links"`     // customer links per tenant (default 1048576)
		Redis        string `json:"redis"`         // optional Redis host:port: velocity windows shared across the nodes of a cluster
	} `json:"engine"`

	Consortium struct {
		ID string `json:"id"` // the fraud-sharing consortium this platform runs (default "ringfence"; "off": none)
	} `json:"consortium"`

	Housekeeping struct {
		Every      string `json:"every"`      // how often the retention purge runs (default 1h; "off" to run it only with `ringfence retention run`)
		Checkpoint string `json:"checkpoint"` // how often the audit log gets a signed checkpoint (default 10m)
		Retrain    string `json:"retrain"`    // how often every tenant's model is retrained and promoted if it beats the live scoring ("off", the default, or e.g. 24h)
	} `json:"housekeeping"`

	Log struct {
		Level  string `json:"level"`  // debug, info (default), warn, error
		Format string `json:"format"` // text (default) or json
	} `json:"log"`
}

// loadConfig reads a config file strictly.
func loadConfig(path string) (Config, error) {
	var c Config
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// defaults fills what is unset.
func (c *Config) defaults() {
	if c.Data == "" {
		c.Data = "ringfence-data"
	}
	if c.Store == "" {
		c.Store = "sqlite:" + filepath.Join(c.Data, "ringfence.db")
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.Data, "master.key")
	}
	if c.Consortium.ID == "" {
		c.Consortium.ID = "ringfence"
	}
	if c.KeyDir == "" {
		c.KeyDir = filepath.Join(c.Data, "keys")
	}
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = "127.0.0.1:8080"
	}
	if c.Appliance == "" {
		host, _ := os.Hostname()
		c.Appliance = sanitizeID(host)
	}
}

func (c *Config) validate() error {
	if !strings.HasPrefix(c.Store, "sqlite:") && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		return errors.New(`store: must be "sqlite:PATH" or a "postgres://" URL`)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: must be debug, info, warn or error")
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		return fmt.Errorf("log.format: must be text or json")
	}
	sipOn := c.SIP.UDP != "" || c.SIP.TCP != "" || c.SIP.TLS != ""
	if sipOn && c.SIP.Tenant == "" && c.SIP.TenantHeader == "" {
		return fmt.Errorf("sip: set sip.tenant (or sip.tenant_header) to say whose calls arrive over SIP")
	}
	if c.SIP.TLS != "" && (c.SIP.CertFile == "" || c.SIP.KeyFile == "") {
		return fmt.Errorf("sip.tls: needs sip.cert_file and sip.key_file")
	}
	if c.SIP.Budget != "" {
		if d, err := time.ParseDuration(c.SIP.Budget); err != nil || d <= 0 {
			return fmt.Errorf("sip.budget: must be a positive duration such as 200ms")
		}
	}
	if c.STIR.Freshness != "" {
		if d, err := time.ParseDuration(c.STIR.Freshness); err != nil || d <= 0 {
			return fmt.Errorf("stir.freshness: must be a positive duration such as 60s")
		}
	}
	if c.Consortium.ID != "" && c.Consortium.ID != "off" && !call.ValidID(c.Consortium.ID) {
		return fmt.Errorf("consortium.id: must be 1-64 characters of letters, digits, '-', '_' or '.', or \"off\"")
	}
	if c.Housekeeping.Every != "" && c.Housekeeping.Every != "off" {
		if d, err := time.ParseDuration(c.Housekeeping.Every); err != nil || d < time.Minute {
			return fmt.Errorf("housekeeping.every: must be \"off\" or a duration of at least 1m such as 1h")
		}
	}
	if c.Housekeeping.Retrain != "" && c.Housekeeping.Retrain != "off" {
		if d, err := time.ParseDuration(c.Housekeeping.Retrain); err != nil || d < time.Hour {
			return fmt.Errorf("housekeeping.retrain: must be \"off\" or a duration of at least 1h such as 24h")
		}
	}
	if c.Housekeeping.Checkpoint != "" {
		if d, err := time.ParseDuration(c.Housekeeping.Checkpoint); err != nil || d < time.Second {
			return fmt.Errorf("housekeeping.checkpoint: must be a duration of at least 1s such as 10m")
		}
	}
	if (c.HTTP.CertFile == "") != (c.HTTP.KeyFile == "") {
		return fmt.Errorf("http: set both http.cert_file and http.key_file to serve HTTPS, or neither")
	}
	if c.HTTP.RatePerKey < 0 || c.HTTP.RatePerSource < 0 {
		return fmt.Errorf("http.rate_per_key and http.rate_per_source: must not be negative")
	}
	if c.HTTP.MaxInFlight < 0 {
		return fmt.Errorf("http.max_in_flight: must not be negative")
	}
	if c.MemoryLimit != "" {
		if _, err := parseBytes(c.MemoryLimit); err != nil {
			return fmt.Errorf("memory_limit: %v", err)
		}
	}
	return nil
}

// commonFlags registers the flags every server-side verb shares, writing
// into c; call after loading the config file so flags win.
func commonFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Data, "data", c.Data, "data directory")
	fs.StringVar(&c.Store, "store", c.Store, `store DSN ("sqlite:PATH")`)
	fs.StringVar(&c.MasterKeyFile, "master-key-file", c.MasterKeyFile, "master key file (mode 0600)")
	fs.StringVar(&c.MasterKeyEnv, "master-key-env", c.MasterKeyEnv, "environment variable holding the master key")
	fs.StringVar(&c.KeyDir, "key-dir", c.KeyDir, "directory of the tenants' key-encryption keys (default DATA/keys)")
}

// parseFlags reads --config first, then the rest of the flags over it.
func parseFlags(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet, *Config)) (Config, []string, error) {
	path := ""
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			path = v
		} else if v, ok := strings.CutPrefix(a, "-config="); ok {
			path = v
		} else if (a == "--config" || a == "-config") && i+1 < len(args) {
			path = args[i+1]
		}
	}
	c, err := loadConfig(path)
	if err != nil {
		return c, nil, err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", path, "JSON config file (see README)")
	commonFlags(fs, &c)
	if extra != nil {
		extra(fs, &c)
	}
	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	c.defaults()
	return c, fs.Args(), c.validate()
}

func newLogger(c Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func sanitizeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
		if b.Len() == 64 {
			break
		}
	}
	if b.Len() == 0 {
		return "ringfence"
	}
	return b.String()
}

// parseBytes reads a size such as "512MiB", "2GiB" or "1073741824" (bytes):
// at least 64 MiB, since the limit covers the whole process.
func parseBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(v, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n <= 0 || n > math.MaxInt64/u.n {
			break
		}
		if n*u.n < 64<<20 {
			return 0, fmt.Errorf("%q is below the minimum of 64MiB", v)
		}
		return n * u.n, nil
	}
	return 0, fmt.Errorf("%q is not a size: write it like 512MiB or 2GiB", v)
}
