package reliability

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOverload runs `ringfence serve` (SQLite, every screened call
// recorded) configured to take almost nothing at once (max_in_flight 1 on
// SIP and HTTP, a 5 ms SIP budget), so that the modest open-loop load
// bench/overload sends from the same machine is real overload, first on
// SIP over UDP, then on POST /v1/screen. The simulator's routes are
// installed with three of the five failing closed (about half the calls).
// It checks, from the generator's side, that:
//
//   - the server survives and every call sent got an answer (within 5 s,
//     a safety bound): none was dropped unanswered;
//   - every answer is a verdict or what the call's ingress route's failure
//     policy prescribes: unscored (SIP 302, HTTP 200) on a fail-open route,
//     503 with Retry-After on a fail-closed one; nothing else (no 429, no
//     other status);
//   - the overload policy did answer, on both kinds of route, and some
//     calls were still screened;
//   - the server's RSS stayed under its memory_limit;
//   - once the load stops the server is ready and scores a normal call
//     again, over HTTP and over SIP.
//
// Latencies are logged, not asserted. CI sends 3,000 calls/s for 3 s on
// each; RINGFENCE_LONG=1 sends 10,000 SIP and 3,000 HTTP calls/s for 30 s
// each (the server needs about a core to answer all of them).
func TestOverload(t *testing.T) {
	skipIfShort(t)
	// limit is the server's memory_limit, the bound its RSS must stay
	// under.
	sipRate, httpRate, secs, limit := 3000, 3000, 3, 256<<20
	if longRun() {
		sipRate, httpRate, secs, limit = 10000, 3000, 30, 1<<30
	}
	tool := overloadTool(t)
	e := newEnv(t, "sqlite")
	key := e.createTenant(t, "bank")
	sipAddr := freeUDPAddr(t)
	srv := e.startServer(t, serverOptions{Config: map[string]any{
		"memory_limit": strconv.Itoa(limit),
		"sip":          map[string]any{"udp": sipAddr, "tenant": "bank", "max_in_flight": 1, "budget": "5ms"},
		"http":         map[string]any{"max_in_flight": 1},
	}})

	for i, step := range []struct {
		proto string
		rate  int
	}{{"sip", sipRate}, {"http", httpRate}} {
		t.Run(step.proto, func(t *testing.T) {
			row := runOverload(t, tool, srv, key, sipAddr, step.proto, step.rate, secs, i == 0)
			checkOverload(t, step.proto, row, limit)
		})
		if !srv.running() {
			t.Fatalf("the server died under %s overload", step.proto)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := srv.client(key)
	if st, _, err := c.do(ctx, "GET", "/readyz", "", nil); err != nil || st != 200 {
		t.Fatalf("after the load: readyz %d, %v", st, err)
	}
	// The recorder may still be writing the load's calls: a normal call
	// gets its verdict once it has room, well within the bound.
	var action string
	eventually(t, 30*time.Second, func() bool {
		var v struct {
			Action string `json:"action"`
		}
		_, err := c.json(ctx, "POST", "/v1/screen", map[string]any{
			"caller": "+447400123456", "dialled": "+442079460000", "ingress_route": "uk-domestic-1",
		}, &v)
		action = v.Action
		return err == nil && v.Action != "unscored"
	}, func() string { return "an HTTP screen after the load is still answered " + action })
	var answer string
	eventually(t, 30*time.Second, func() bool {
		answer = sipInvite(t, sipAddr)
		return strings.HasPrefix(answer, "SIP/2.0 302 ") && strings.Contains(answer, "X-Ringfence-Score:")
	}, func() string { return "a SIP INVITE after the load is still answered:\n" + answer })
}

// eventually calls ok until it returns true, failing t with msg() after
// limit.
func eventually(t *testing.T, limit time.Duration, ok func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkOverload checks one step's row of bench/overload's CSV.
func checkOverload(t *testing.T, proto string, row map[string]string, limit int) {
	t.Helper()
	n := func(col string) int {
		v, err := strconv.Atoi(row[col])
		if err != nil {
			t.Fatalf("column %s: %q: %v", col, row[col], err)
		}
		return v
	}
	sent, scored, blocked, unscored, rejected := n("sent"), n("scored"), n("blocked"), n("unscored"), n("rejected_503")
	t.Logf("%s: %d calls sent in %ss: %d scored, %d blocked, %d unscored, %d 503; scored latency p50 %s ms, p99 %s ms, max %s ms; policy answers p99 %s ms; server RSS max %d MiB, CPU %s cores",
		proto, sent, row["seconds"], scored, blocked, unscored, rejected, row["p50_ms"], row["p99_ms"], row["max_ms"], row["policy_p99_ms"], n("rss_max_bytes")>>20, row["cpu_cores"])
	if row["died"] != "false" {
		t.Fatal("the server died during the load")
	}
	if lost := n("lost"); lost > 0 {
		t.Errorf("%d of %d calls got no answer (dropped, or answered after the 5 s bound)", lost, sent)
	}
	if ns := n("not_sent"); ns > 0 {
		t.Errorf("%d calls not sent: the generator hit its bound of outstanding requests (answers too slow)", ns)
	}
	if w := n("wrong"); w > 0 {
		t.Errorf("%d answers against the route's failure policy (unscored on a fail-closed route, 503 on a fail-open one, or 503 without Retry-After)", w)
	}
	if o, tm := n("other"), n("too_many_429"); o+tm > 0 {
		t.Errorf("%d answers neither a verdict nor the failure policy's (%d of them 429)", o+tm, tm)
	}
	if got := scored + blocked + unscored + rejected + n("other") + n("too_many_429") + n("lost") + n("not_sent"); got != sent {
		t.Errorf("outcomes add up to %d, %d calls sent", got, sent)
	}
	if scored+blocked == 0 {
		t.Error("no call was screened")
	}
	if unscored == 0 || rejected == 0 {
		t.Errorf("the overload policy did not answer on both kinds of route (%d unscored, %d 503): not overloaded?", unscored, rejected)
	}
	if rss := n("rss_max_bytes"); rss <= 0 || rss >= limit {
		t.Errorf("server RSS %d bytes, want under the memory_limit of %d", rss, limit)
	}
}

// overloadTool builds bench/overload (once per test binary) beside the
// ringfence binary.
func overloadTool(t *testing.T) string { return build(t, "./bench/overload") }

// runOverload runs one step of bench/overload against srv and returns its
// CSV row by column. setup installs the simulator's routes and DNO list
// first.
func runOverload(t *testing.T, tool string, srv *server, key, sipAddr, proto string, rate, secs int, setup bool) map[string]string {
	t.Helper()
	csvPath := filepath.Join(t.TempDir(), "steps.csv")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool,
		"-url", srv.url(), "-key", key, "-sip", sipAddr, "-pid", strconv.Itoa(srv.pid()),
		"-rates", strconv.Itoa(rate), "-duration", fmt.Sprintf("%ds", secs), "-wait", "5s",
		"-calls", "5000", "-settle=false", "-setup="+strconv.FormatBool(setup), "-csv", csvPath, proto)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("bench/overload %s:\n%s%s", proto, stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("bench/overload %s: %v", proto, err)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("bench/overload's CSV: %d rows, %v", len(rows), err)
	}
	row := map[string]string{}
	for i, col := range rows[0] {
		row[col] = rows[1][i]
	}
	return row
}

// freeUDPAddr returns a 127.0.0.1 address with a UDP port nothing is bound
// to now.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// sipInvite sends one INVITE on the route uk-domestic-1 (fail open) and
// returns the answer's text, "" if none came within 5 s.
func sipInvite(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	msg := "INVITE sip:+442079460000@ringfence.example;user=phone SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + c.LocalAddr().String() + ";branch=z9hG4bK-" + id + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:+447400123456@carrier.example;user=phone>;tag=" + id + "\r\n" +
		"To: <sip:+442079460000@ringfence.example;user=phone>\r\n" +
		"Call-ID: health-" + id + "@reliability.invalid\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:sbc@" + c.LocalAddr().String() + ">\r\n" +
		"X-Ingress-Route: uk-domestic-1\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8192)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}
