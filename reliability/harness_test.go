package reliability

// The harness every test of this package shares: the ringfence binary, an
// installation (data directory, master key, store), the CLI verbs on it,
// `ringfence serve` as a process that can be SIGKILLed and restarted on
// the same data, and an HTTP client holding a tenant's API key.
//
// A test typically reads:
//
//	e := newEnv(t, "sqlite")                  // or "postgres"
//	key := e.createTenant(t, "bank")
//	srv := e.startServer(t, serverOptions{})  // waits for /readyz
//	c := srv.client(key)
//	c.json(ctx, "POST", "/v1/screen", body, &verdict)
//	killedAt := srv.kill(t)                   // SIGKILL
//	srv.restart(t)                            // same data, same port
//	st := e.openStore(t)                      // read what survived
//	out, err := e.cli(t, "audit verify")
//
// Methods taking t call t.Fatal and must run on the test's goroutine; the
// client is safe for concurrent use.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/sqlite"
)

// buildDir holds the binary; TestMain makes it and removes it at the end.
var buildDir string

// builds holds, per package path, the function that builds it once.
var builds sync.Map // "./cmd/ringfence" -> func() (string, error)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ringfence-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the path of the ringfence binary built from this module's
// ./cmd/ringfence. The first call builds it (once per test binary), so a
// run whose tests all skip does not pay for the build.
func binary(t testing.TB) string { return build(t, "./cmd/ringfence") }

// build returns the path of the module's package pkg (such as
// "./bench/overload") built into buildDir, building it on the first call.
func build(t testing.TB, pkg string) string {
	t.Helper()
	f, _ := builds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		bin := filepath.Join(buildDir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s in %s: %w\n%s", pkg, root, err, out)
		}
		return bin, nil
	}))
	bin, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// moduleRoot finds the directory holding go.mod, from the package
// directory (go test's working directory) upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the package directory")
		}
		dir = parent
	}
}

// longRun reports whether RINGFENCE_LONG=1 asks for the long versions of
// the tests (the repository's convention for tests too slow for CI).
func longRun() bool { return os.Getenv("RINGFENCE_LONG") == "1" }

// skipIfShort skips t under -short, unless CI=true: CI runs every test.
func skipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("whole-process test: skipped with -short (CI=true runs it)")
	}
}

// storeKinds are the stores an env can be made on.
var storeKinds = []string{"sqlite", "postgres"}

// env is one installation of ringfence: a data directory holding the
// master key (and the SQLite file, on that store) and the store's DSN.
// Every CLI verb and server run through it share them.
type env struct {
	Kind  string // "sqlite" or "postgres"
	Dir   string // data directory (--data): master.key, keys/, the SQLite file
	Store string // --store DSN
	logs  string // server logs and config files, outside Dir
}

// newEnv makes a fresh installation on kind ("sqlite" or "postgres"): an
// empty data directory with a new master key and, for PostgreSQL, a new
// database dropped when t ends (t is skipped if no server answers, unless
// CI=true; see pgtest).
func newEnv(t testing.TB, kind string) *env {
	t.Helper()
	binary(t)
	e := &env{Kind: kind, Dir: filepath.Join(t.TempDir(), "data"), logs: t.TempDir()}
	switch kind {
	case "sqlite":
		e.Store = "sqlite:" + filepath.Join(e.Dir, "ringfence.db")
	case "postgres":
		e.Store = pgtest.NewDatabase(t)
	default:
		t.Fatalf("newEnv: unknown store kind %q; want sqlite or postgres", kind)
	}
	if err := os.MkdirAll(e.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ringfence(t, "keys", "generate", "--out", filepath.Join(e.Dir, "master.key")); err != nil {
		t.Fatal(err)
	}
	return e
}

// ringfence runs the binary with args and returns its stdout; the error
// (non-zero exit, or no exit within 5 minutes) carries its stderr.
func ringfence(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ringfence %s: %w\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// cli runs a verb on the installation: verb is the verb and its sub-verb
// ("audit verify", "tenant create"), followed by --data and --store, then
// args (its own flags first, then its operands). It returns stdout; a
// non-zero exit is an error carrying stderr.
func (e *env) cli(t testing.TB, verb string, args ...string) (string, error) {
	t.Helper()
	words := strings.Fields(verb)
	words = append(words, "--data", e.Dir, "--store", e.Store)
	return ringfence(t, append(words, args...)...)
}

// createTenant creates tenant id (flags such as "--region", "US" go in
// args) and returns its admin API key, the last line `tenant create`
// prints.
func (e *env) createTenant(t testing.TB, id string, args ...string) string {
	t.Helper()
	out, err := e.cli(t, "tenant create", append(args, id)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// openStore opens the installation's store in the test process, for
// reading what a server left behind; the caller closes it. It may run
// beside a live server: SQLite's WAL lets a reader in beside the writer,
// and the schema migrations it applies on open are no-ops then.
func (e *env) openStore(t testing.TB) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var st store.Store
	var err error
	if path, ok := strings.CutPrefix(e.Store, "sqlite:"); ok {
		st, err = sqlite.Open(ctx, path)
	} else {
		st, err = postgres.Open(ctx, e.Store)
	}
	if err != nil {
		t.Fatalf("open the %s store: %v", e.Kind, err)
	}
	return st
}

// serverOptions adds to the `ringfence serve` command line that startServer
// builds (--data, --store and --http from the env and a free port).
type serverOptions struct {
	Args []string // more serve flags, such as "--appliance", "n1"
	// Config, if not nil, is written as JSON to a file given with
	// --config. Unknown keys are an error (the server refuses to start);
	// the flags win over it, so leave data, store and http.addr out.
	Config map[string]any
	Env    []string      // more environment variables, "NAME=value"
	Ready  time.Duration // how long start-up may take; 0 => 2 minutes
}

// server is a `ringfence serve` process on an env. It keeps its address
// across restarts (unless another process took the port meanwhile), and
// logs each run's stdout and stderr to a file of its own; when the test
// fails, the tail of every run's log is printed. It is stopped when the
// test ends.
type server struct {
	env    *env
	opts   serverOptions
	config string // the config file, "" for none

	mu   sync.Mutex
	addr string        // host:port
	cmd  *exec.Cmd     // the current (or last) process
	done chan struct{} // closed once cmd has exited
	logs []string      // log file of each run, in order
}

// errPortBusy says the server could not bind its port.
var errPortBusy = errors.New("port in use")

// startServer starts `ringfence serve` on a free port of 127.0.0.1 and
// returns once GET /readyz answers 200. The process is stopped (SIGTERM,
// then SIGKILL) when t ends.
func (e *env) startServer(t testing.TB, opts serverOptions) *server {
	t.Helper()
	s := &server{env: e, opts: opts}
	if opts.Config != nil {
		b, err := json.MarshalIndent(opts.Config, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		s.config = filepath.Join(e.logs, "config.json")
		if err := os.WriteFile(s.config, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.cleanup(t) })
	s.start(t)
	return s
}

// start runs the server on its address (a free one at first, or when
// another process took the port) and waits until it is ready.
func (s *server) start(t testing.TB) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		if s.url() == "" || attempt > 0 {
			addr := freeAddr(t)
			s.mu.Lock()
			s.addr = addr
			s.mu.Unlock()
		}
		err := s.launch(t)
		if err == nil {
			return
		}
		if !errors.Is(err, errPortBusy) || attempt == 4 {
			t.Fatal(err)
		}
	}
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// launch starts one run of the process and waits for /readyz.
func (s *server) launch(t testing.TB) error {
	t.Helper()
	s.mu.Lock()
	run := len(s.logs) + 1
	logPath := filepath.Join(s.env.logs, fmt.Sprintf("serve-%d.log", run))
	addr := s.addr
	s.mu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	args := []string{"serve", "--data", s.env.Dir, "--store", s.env.Store, "--http", addr}
	if s.config != "" {
		args = append(args, "--config", s.config)
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(binary(t), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), s.opts.Env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start ringfence serve: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.logs = append(s.logs, logPath)
	s.mu.Unlock()

	limit := s.opts.Ready
	if limit == 0 {
		limit = 2 * time.Minute
	}
	probe := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(logPath)
			if bytes.Contains(log, []byte("address already in use")) {
				return errPortBusy
			}
			return fmt.Errorf("ringfence serve (run %d) exited during start-up: %v\n%s", run, cmd.ProcessState, log)
		default:
		}
		resp, err := probe.Get("http://" + addr + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("ringfence serve (run %d) not ready on %s after %v:\n%s", run, addr, limit, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// url is the server's base URL, such as http://127.0.0.1:41234.
func (s *server) url() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		return ""
	}
	return "http://" + s.addr
}

// current returns the current process and its done channel.
func (s *server) current() (*exec.Cmd, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd, s.done
}

// running reports whether the current process has not exited.
func (s *server) running() bool {
	_, done := s.current()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// pid is the current process's id.
func (s *server) pid() int {
	cmd, _ := s.current()
	return cmd.Process.Pid
}

// kill sends SIGKILL to the server and waits for it to exit. It returns the
// time taken just before the signal was sent: whatever was acknowledged
// earlier than that was acknowledged before the kill.
func (s *server) kill(t testing.TB) time.Time {
	t.Helper()
	cmd, done := s.current()
	if !s.running() {
		t.Fatal("kill: the server is not running")
	}
	at := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("kill: the server has not exited a minute after SIGKILL")
	}
	return at
}

// stop asks the server to shut down (SIGTERM) and waits for it, up to
// limit (then it is killed). It returns the exit error: nil for a clean
// shutdown.
func (s *server) stop(t testing.TB, limit time.Duration) error {
	t.Helper()
	if !s.running() {
		t.Fatal("stop: the server is not running")
	}
	return s.terminate(limit)
}

// terminate is stop without the check.
func (s *server) terminate(limit time.Duration) error {
	cmd, done := s.current()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running %v after SIGTERM; killed", limit)
	}
	if !cmd.ProcessState.Success() {
		return fmt.Errorf("ringfence serve exited with %v", cmd.ProcessState)
	}
	return nil
}

// restart starts the server again on the same data directory, store and
// options, on the same address if it is still free; it returns once the
// server is ready. The server must have been killed or stopped.
func (s *server) restart(t testing.TB) {
	t.Helper()
	if s.running() {
		t.Fatal("restart: the server is still running; kill or stop it first")
	}
	s.start(t)
}

// log returns the log (stdout and stderr) of the current run.
func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logs) == 0 {
		return ""
	}
	b, _ := os.ReadFile(s.logs[len(s.logs)-1])
	return string(b)
}

// cleanup stops the server if it runs and, if t failed, prints the tail of
// each run's log.
func (s *server) cleanup(t testing.TB) {
	if s.running() {
		if err := s.terminate(30 * time.Second); err != nil {
			t.Logf("stopping the server at the end of the test: %v", err)
		}
	}
	if !t.Failed() {
		return
	}
	s.mu.Lock()
	logs := s.logs
	s.mu.Unlock()
	const tail = 60
	for i, path := range logs {
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		skipped := ""
		if len(lines) > tail {
			skipped = fmt.Sprintf(" (last %d of %d lines)", tail, len(lines))
			lines = lines[len(lines)-tail:]
		}
		t.Logf("log of ringfence serve run %d%s:\n%s", i+1, skipped, strings.Join(lines, "\n"))
	}
}

// client calls the server's HTTP API with a tenant's API key, following
// the server across restarts. Safe for concurrent use.
type client struct {
	srv  *server
	key  string
	http *http.Client
}

// client returns an HTTP client sending key as its bearer token. Its
// timeout (a minute) is only a safety bound.
func (s *server) client(key string) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &client{srv: s, key: key, http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// do sends body (nil for none) of contentType to path and returns the
// status and the answer's body. An error is a failure to get an answer
// (such as a connection refused or reset by a killed server), not a
// non-2xx status.
func (c *client) do(ctx context.Context, method, path, contentType string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.srv.url()+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, b, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// json sends in as JSON (nil: no body) and decodes a 2xx answer into out
// (if not nil). It returns the status; a non-2xx status is also an error
// carrying the answer.
func (c *client) json(ctx context.Context, method, path string, in, out any) (int, error) {
	var body []byte
	ct := ""
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, err
		}
		ct = "application/json"
	}
	st, b, err := c.do(ctx, method, path, ct, body)
	if err != nil {
		return st, err
	}
	if st < 200 || st > 299 {
		return st, fmt.Errorf("%s %s: status %d: %s", method, path, st, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return st, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return st, nil
}

// metrics scrapes GET /metrics and returns each sample by its series as
// the text format writes it, such as `ringfence_recorder_queue_depth` or
// `ringfence_recorder_commit_seconds_bucket{le="0.128"}`.
func (c *client) metrics(ctx context.Context) (map[string]float64, error) {
	st, b, err := c.do(ctx, "GET", "/metrics", "", nil)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", st)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, nil
}

// closeIdle drops the client's idle connections, such as those to a
// server that was killed.
func (c *client) closeIdle() { c.http.CloseIdleConnections() }

// TestHarness checks the harness itself on SQLite: a server started with
// a config file and extra flags serves, stops cleanly on SIGTERM (its
// recorder flushed: the last screened call is kept), restarts on the same
// address and data, and shows its metrics.
func TestHarness(t *testing.T) {
	skipIfShort(t)
	ctx := context.Background()
	e := newEnv(t, "sqlite")
	key := e.createTenant(t, "bank")
	srv := e.startServer(t, serverOptions{
		Config: map[string]any{"log": map[string]any{"level": "warn", "format": "json"}},
		Args:   []string{"--appliance", "harness-1"},
	})
	c := srv.client(key)
	var v struct {
		RecordID string `json:"record_id"`
	}
	if _, err := c.json(ctx, "POST", "/v1/screen", map[string]string{"caller": "+447400123456", "dialled": "+442079460123"}, &v); err != nil {
		t.Fatal(err)
	}
	url := srv.url()
	if err := srv.stop(t, 30*time.Second); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, srv.log())
	}
	srv.restart(t)
	if srv.url() != url {
		t.Logf("restarted on %s, not %s (the port was taken meanwhile)", srv.url(), url)
	}
	var rec struct {
		ApplianceID string `json:"appliance_id"`
	}
	if _, err := c.json(ctx, "GET", "/v1/calls/"+v.RecordID, nil, &rec); err != nil {
		t.Fatalf("the call screened before a graceful stop: %v", err)
	}
	if rec.ApplianceID != "harness-1" {
		t.Errorf("appliance_id %q; want harness-1 from --appliance", rec.ApplianceID)
	}
	m, err := c.metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m["ringfence_recorder_queue_depth"]; !ok {
		t.Errorf("no ringfence_recorder_queue_depth in /metrics")
	}
	srv.kill(t)
	if srv.running() {
		t.Error("the server runs after kill")
	}
}
