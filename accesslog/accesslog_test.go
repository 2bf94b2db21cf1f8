package accesslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// clock is a fake clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var pseudonymRE = regexp.MustCompile(`^(.+/(24|48))#([0-9a-f]{16})$`)

func TestPseudonymise(t *testing.T) {
	tests := []struct {
		name   string
		ip     string
		prefix string
		same   string // another address that must hash alike ("" for none)
		differ string // an address in the same network that must hash differently
	}{
		{"IPv4", "192.0.2.77", "192.0.2.0/24", "", "192.0.2.78"},
		{"IPv4 network address", "198.51.100.0", "198.51.100.0/24", "", "198.51.100.1"},
		{"IPv6", "2001:db8:abcd:12:34::5", "2001:db8:abcd::/48", "", "2001:db8:abcd:12:34::6"},
		{"IPv6 loopback", "::1", "::/48", "", "::2"},
		{"IPv4-mapped IPv6 is IPv4", "::ffff:192.0.2.77", "192.0.2.0/24", "192.0.2.77", "192.0.2.78"},
		{"IPv6 zone dropped", "fe80::1%eth0", "fe80::/48", "fe80::1", "fe80::2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			got := Pseudonymise(ip, testKey)
			m := pseudonymRE.FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("Pseudonymise = %q, want prefix#16hex", got)
			}
			if m[1] != tt.prefix {
				t.Errorf("prefix = %s, want %s", m[1], tt.prefix)
			}
			if again := Pseudonymise(ip, testKey); again != got {
				t.Errorf("not deterministic: %s then %s", got, again)
			}
			if tt.same != "" {
				if o := Pseudonymise(netip.MustParseAddr(tt.same), testKey); o != got {
					t.Errorf("%s -> %s, want the same as %s", tt.same, o, got)
				}
			}
			if o := Pseudonymise(netip.MustParseAddr(tt.differ), testKey); o == got {
				t.Errorf("%s and %s share a pseudonym", tt.ip, tt.differ)
			}
			other := Pseudonymise(ip, []byte("another key of sixteen+ bytes"))
			if other == got {
				t.Errorf("the key does not change the hash")
			}
			unmapped := ip.Unmap().WithZone("").String()
			if strings.Contains(got, unmapped) && unmapped != m[1][:strings.Index(m[1], "/")] {
				t.Errorf("pseudonym %q contains the address", got)
			}
		})
	}
	if got := Pseudonymise(netip.Addr{}, testKey); got != "unknown" {
		t.Errorf("invalid address -> %q", got)
	}
}

func openWriter(t testing.TB, dir string, c *clock) *Writer {
	t.Helper()
	w, err := Open(Config{Dir: dir, Key: testKey, Now: c.Now, FlushEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func readLines(t *testing.T, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	s := bufio.NewScanner(f)
	for s.Scan() {
		var e Entry
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", s.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// TestNoRawAddressOnDisk logs through the middleware from several client
// addresses and scans every byte written for them and for query contents.
func TestNoRawAddressOnDisk(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	w := openWriter(t, dir, c)
	h := Middleware(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c.Advance(1500 * time.Microsecond)
		if r.URL.Path == "/v1/missing" {
			http.NotFound(rw, r)
			return
		}
		rw.Write([]byte("hello"))
	}), w, nil)
	clients := []struct {
		remote string
		raw    []string // forms of the address that must not appear
	}{
		{"203.0.113.195:40001", []string{"203.0.113.195"}},
		{"[2001:db8:85a3:8d3:1319:8a2e:370:7348]:5060", []string{"2001:db8:85a3:8d3:1319:8a2e:370:7348", "1319:8a2e"}},
		{"[::ffff:198.51.100.23]:443", []string{"198.51.100.23", "::ffff:"}},
	}
	for _, cl := range clients {
		for _, target := range []string{"/v1/screen?caller=%2B441632960471&x=1", "/v1/numbers/441632960471/links", "/v1/missing"} {
			r := httptest.NewRequest(http.MethodGet, target, nil)
			r.RemoteAddr = cl.remote
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "access-2026-11-27.log")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range clients {
		for _, raw := range cl.raw {
			if bytes.Contains(data, []byte(raw)) {
				t.Errorf("log contains raw address %q", raw)
			}
		}
	}
	for _, leak := range []string{"1632960471", "caller", "?", "x=1"} {
		if bytes.Contains(data, []byte(leak)) {
			t.Errorf("log contains %q", leak)
		}
	}
	lines := readLines(t, path)
	if len(lines) != 9 {
		t.Fatalf("%d lines, want 9", len(lines))
	}
	want := []struct {
		route  string
		status int
		bytes  int64
	}{{"/v1/screen", 200, 5}, {"/v1/numbers/{n}/links", 200, 5}, {"/v1/missing", 404, int64(len("404 page not found\n"))}}
	for i, e := range lines {
		wt := want[i%3]
		if e.Kind != HTTP || e.Method != "GET" || e.Route != wt.route || e.Status != wt.status || e.Bytes != wt.bytes || e.DurationUS != 1500 {
			t.Errorf("line %d = %+v, want route %s status %d bytes %d duration 1500", i, e, wt.route, wt.status, wt.bytes)
		}
		if !pseudonymRE.MatchString(e.Client) {
			t.Errorf("line %d client %q", i, e.Client)
		}
	}
	if lines[6].Client[:strings.Index(lines[6].Client, "#")] != "198.51.100.0/24" {
		t.Errorf("mapped client logged as %s", lines[6].Client)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %o, want 600", st.Mode().Perm())
	}
}

func TestDirMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	c := &clock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	openWriter(t, dir, c)
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %o, want 700", st.Mode().Perm())
	}
	if _, err := Open(Config{Dir: dir, Key: []byte("short")}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := Open(Config{Key: testKey}); err == nil {
		t.Error("empty dir accepted")
	}
}

func TestCleanRoute(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/v1/cases/{id}", "/v1/cases/{id}"},
		{"/v1/screen?caller=+441632960471", "/v1/screen"},
		{"sip:+441632960471@example.net;user=phone", "sip:+{n}@example.net"},
		{"/v1/calls/12345/end", "/v1/calls/12345/end"},
		{"/v1/calls/123456", "/v1/calls/{n}"},
		{"/a\nb", "/ab"},
		{"/frag#x", "/frag"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := cleanRoute(tt.in); got != tt.want {
				t.Errorf("cleanRoute(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestDailyFiles checks entries go to the file of their UTC date and the
// buffer is written on a date change.
func TestDailyFiles(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 11, 27, 23, 59, 59, 0, time.UTC)}
	w := openWriter(t, dir, c)
	client := netip.MustParseAddr("192.0.2.1")
	w.Log(client, Entry{Kind: SIP, Method: "INVITE", Route: "invite", Status: 302})
	c.Advance(2 * time.Second)
	w.Log(client, Entry{Kind: SIP, Method: "OPTIONS", Route: "options", Status: 200})
	// The first day's file was written when the date changed, before any Flush.
	if got := readLines(t, filepath.Join(dir, "access-2026-11-27.log")); len(got) != 1 || got[0].Method != "INVITE" {
		t.Fatalf("first day = %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "access-2026-11-28.log")); !os.IsNotExist(err) {
		t.Fatalf("second day written before a flush: %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, filepath.Join(dir, "access-2026-11-28.log"))
	if len(got) != 1 || got[0].Method != "OPTIONS" || got[0].Kind != SIP || got[0].Route != "options" {
		t.Fatalf("second day = %+v", got)
	}
	if !got[0].Time.Equal(time.Date(2026, 11, 28, 0, 0, 1, 0, time.UTC)) {
		t.Errorf("time = %s", got[0].Time)
	}
	// Reopening appends.
	w.Close()
	w2 := openWriter(t, dir, c)
	w2.Log(client, Entry{Kind: SIP, Method: "INVITE", Route: "invite", Status: 603})
	w2.Close()
	w2.Log(client, Entry{Kind: SIP, Method: "INVITE", Route: "invite", Status: 603}) // after Close: dropped
	if got := readLines(t, filepath.Join(dir, "access-2026-11-28.log")); len(got) != 2 {
		t.Errorf("after reopen %d lines, want 2", len(got))
	}
}

// TestBufferLimit checks a full buffer is written without waiting for Flush.
func TestBufferLimit(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	w, err := Open(Config{Dir: dir, Key: testKey, Now: c.Now, FlushEvery: -1, BufferSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for range 20 {
		w.Log(netip.MustParseAddr("192.0.2.1"), Entry{Kind: HTTP, Method: "POST", Route: "/v1/screen", Status: 200})
	}
	st, err := os.Stat(filepath.Join(dir, "access-2026-11-27.log"))
	if err != nil || st.Size() < 1024 {
		t.Fatalf("file after 20 entries: %v, %v", st, err)
	}
}

// TestBackgroundFlush checks the ticker writes buffered entries without a
// Flush call. It waits on the file's content (bounded), not on a duration.
func TestBackgroundFlush(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(Config{Dir: dir, Key: testKey, FlushEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	now := w.Now()
	w.Log(netip.MustParseAddr("192.0.2.1"), Entry{Time: now, Kind: HTTP, Method: "GET", Route: "/healthz", Status: 200})
	path := filepath.Join(dir, "access-"+now.UTC().Format(time.DateOnly)+".log")
	deadline := time.After(20 * time.Second) // a hang guard, not a timing assertion
	for {
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("/healthz")) {
			return
		}
		select {
		case <-deadline:
			t.Fatal("the background flush never wrote the entry")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	w, err := Open(Config{Dir: dir, Key: testKey, Now: c.Now, FlushEvery: time.Millisecond, BufferSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				w.Log(netip.AddrFrom4([4]byte{192, 0, 2, byte(g)}), Entry{Kind: HTTP, Method: "POST", Route: fmt.Sprintf("/v1/w%d/%d", g, i), Status: 200})
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, filepath.Join(dir, "access-2026-11-27.log"))
	if len(lines) != workers*each {
		t.Fatalf("%d lines, want %d", len(lines), workers*each)
	}
	seen := make(map[string]bool, len(lines))
	for _, e := range lines {
		seen[e.Route] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct entries, want %d", len(seen), workers*each)
	}
}

// TestPurge puts a file for each of 12 days on disk and checks Purge keeps
// exactly those whose entries are not all older than 7 days.
func TestPurge(t *testing.T) {
	dir := t.TempDir()
	first := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	for i := range 12 {
		d := first.AddDate(0, 0, i).Format(time.DateOnly)
		for _, name := range []string{"access-" + d + ".log", "error-" + d + ".log"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("{}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	others := []string{"notes.txt", "access-latest.log", "access-2026-11-01.log.gz", "audit-2026-11-01.log"}
	for _, name := range others {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Files run 16..27 November. At 27 November 12:00, now-7d is 20 November
	// 12:00: 16..19 November are wholly older (their last instant is before
	// it), 20 November holds entries younger than 7 days.
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	removed, err := Purge(dir, now, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if removed != 8 {
		t.Errorf("removed %d, want 8", removed)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	var want []string
	for i := 4; i < 12; i++ {
		d := first.AddDate(0, 0, i).Format(time.DateOnly)
		want = append(want, "access-"+d+".log", "error-"+d+".log")
	}
	want = append(want, others...)
	sort.Strings(want)
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("left\n %v\nwant\n %v", left, want)
	}
	// The day after, one more day goes; purging twice is harmless.
	for range 2 {
		removed, err = Purge(dir, now.Add(24*time.Hour), 7*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "access-2026-11-20.log")); !os.IsNotExist(err) {
		t.Errorf("20 November survived a day later: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "access-2026-11-21.log")); err != nil {
		t.Errorf("21 November purged too early: %v", err)
	}
	if _, err := Purge(filepath.Join(dir, "missing"), now, time.Hour); err == nil {
		t.Error("Purge of a missing directory returned nil")
	}
}

// BenchmarkMiddleware measures what the middleware adds to a trivial handler.
func BenchmarkMiddleware(b *testing.B) {
	ok := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { rw.Write([]byte("ok")) })
	route := func(*http.Request) string { return "/v1/screen" }
	run := func(b *testing.B, h http.Handler) {
		r := httptest.NewRequest(http.MethodPost, "/v1/screen", nil)
		r.RemoteAddr = "203.0.113.195:40001"
		rw := httptest.NewRecorder()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			rw.Body.Reset()
			h.ServeHTTP(rw, r)
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, ok) })
	b.Run("logged", func(b *testing.B) {
		w, err := Open(Config{Dir: b.TempDir(), Key: testKey})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		run(b, Middleware(ok, w, route))
	})
	b.Run("logged-parallel", func(b *testing.B) {
		w, err := Open(Config{Dir: b.TempDir(), Key: testKey})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		h := Middleware(ok, w, route)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := httptest.NewRequest(http.MethodPost, "/v1/screen", nil)
			r.RemoteAddr = "203.0.113.195:40001"
			rw := httptest.NewRecorder()
			for pb.Next() {
				rw.Body.Reset()
				h.ServeHTTP(rw, r)
			}
		})
	})
}

func TestAppendEntry(t *testing.T) {
	base := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	tests := []Entry{
		{Time: base, Kind: HTTP, Client: "192.0.2.0/24#0011223344556677", Method: "GET", Route: "/v1/cases/{id}", Status: 200, DurationUS: 1500, Bytes: 42},
		{Time: base.Truncate(time.Second), Kind: SIP, Client: "unknown", Method: "INVITE", Route: "invite", Status: 603},
		{Time: base, Kind: HTTP, Method: `we"ird\`, Route: "/caf\u00e9/<a>&b\x01", Status: -1, DurationUS: -5, Bytes: 1 << 40},
		{Time: base, Route: "bad utf8 \xff"},
		{},
	}
	for i, e := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			want, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			if got := appendEntry(nil, &e); !bytes.Equal(got, want) {
				t.Errorf("appendEntry\n got %s\nwant %s", got, want)
			}
		})
	}
}
