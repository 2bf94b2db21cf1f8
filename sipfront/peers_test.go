package sipfront_test

// Real peers: sipp drives the ringfence binary over SIP, and Kamailio, as the
// SBC of deploy/kamailio/ringfence.cfg, puts ringfence in front of a sipp
// contact centre. These tests use only the built `ringfence` binary and its
// HTTP API, never this package's Go API, so they test what operators run.
//
// They need sipp (Debian package sip-tester) and Kamailio (Debian package
// kamailio). Without them the tests are skipped, unless CI=true, where a
// missing peer is a failure: CI installs both. -short skips them too (again
// unless CI=true); they take about 10-20 s after the build.
//
// The sipp scenarios are the ones in bench/sip, so operators can run the same
// calls by hand (bench/sip/README.md).

import (
	"bufio"
	"bytes"
	"cmp"
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	tenantID = "bank"
	// The bank's published inbound numbers: on its DNO list (they never call
	// out, so a call presenting one is spoofed), and what customers dial.
	publishedA = "+442038705200"
	publishedB = "+443001234567"
	redressURI = "https://bank.example/redress"
)

// A screening case: one call and the verdict it must get.
type screenCase struct {
	caller  string // screened: P-Asserted-Identity in sipp's INVITE
	from    string // From user; "" means the same as caller
	dialled string
	route   string // X-Ingress-Route
	want    string // allow, flag or block
	marker  string // a marker code the verdict must carry ("" for none required)
}

// Callers are distinct and dial the published numbers (exempt from the
// dialled-burst velocity signal), so no velocity marker fires and every
// verdict is decided by the signal the case names.
var screenCases = []screenCase{
	{caller: "+447400123456", dialled: publishedA, route: "uk-1", want: "allow"},
	{caller: "+447911123456", dialled: publishedB, route: "uk-1", want: "allow"},
	{caller: "+33612345678", dialled: publishedA, route: "intl-1", want: "allow"},
	{caller: "+12125550123", dialled: publishedB, route: "intl-1", want: "allow"},
	// A UK fixed-line CLI arriving from abroad (Ofcom): weight 4.5 on prior
	// -4 gives 0.62, a flag under the test's policy (which, unlike the
	// default, does not force a block for this marker).
	{caller: "+442079460123", dialled: publishedA, route: "intl-1", want: "flag", marker: "route.home_cli_international"},
	{caller: "+441312345678", dialled: publishedB, route: "intl-1", want: "flag", marker: "route.home_cli_international"},
	// The bank's own numbers presented as the caller.
	{caller: publishedA, dialled: publishedB, route: "uk-1", want: "block", marker: "dno.listed"},
	// P-Asserted-Identity wins over From.
	{caller: publishedB, from: "+447400123499", dialled: publishedA, route: "uk-1", want: "block", marker: "dno.listed"},
}

// TestSippScenarios runs sipp's checking caller (bench/sip/uac_check.xml)
// against `ringfence serve --sip-udp`: every call must get the expected answer
// (302 for allow and flag, 608 with Call-Info for block, then 603 once the
// policy says block_with 603) with well-formed X-Ringfence-* headers, and the
// record the 302 names must exist with the same verdict.
func TestSippScenarios(t *testing.T) {
	sipp := needPeer(t, "sipp", "sip-tester")
	rf := startRingfence(t)

	var rows []string
	var redirects, blocks int
	for _, c := range screenCases {
		from := cmp.Or(c.from, c.caller)
		rows = append(rows, strings.Join([]string{c.caller, c.dialled, c.route, c.want, from}, ";"))
		if c.want == "block" {
			blocks++
		} else {
			redirects++
		}
	}
	res := runSipp(t, sipp, "uac-608", injection(rows), []string{
		rf.sip, "-sf", scenario("uac_check.xml"), "-m", strconv.Itoa(len(rows)), "-r", "50",
	})
	res.requireClean(t, len(rows))
	if got := res.count("302_Recv"); got != redirects {
		t.Errorf("sipp received %d 302s, want %d", got, redirects)
	}
	if got := res.count("608_Recv"); got != blocks {
		t.Errorf("sipp received %d 608s, want %d", got, blocks)
	}

	// Each log line: caller;expected;code;action;score;markers;record;contact.
	byCaller := map[string][]string{}
	for _, l := range res.log {
		f := strings.Split(l, ";")
		if len(f) != 8 {
			t.Fatalf("sipp log line %q: want 8 fields", l)
		}
		byCaller[f[0]] = f
	}
	for _, c := range screenCases {
		f, ok := byCaller[c.caller]
		if !ok {
			t.Errorf("%s: no call logged", c.caller)
			continue
		}
		code, action, score, markers, record, contact := f[2], f[3], f[4], f[5], f[6], f[7]
		switch c.want {
		case "block":
			if code != "608" {
				t.Errorf("%s: answered %s, want 608", c.caller, code)
			}
			if !strings.Contains(contact, redressURI) {
				t.Errorf("%s: Call-Info %q does not point to the redress URI %s", c.caller, contact, redressURI)
			}
		default:
			if want := "sip:" + c.dialled + "@" + rf.sip; contact != want {
				t.Errorf("%s: Contact %q, want the Request-URI %q", c.caller, contact, want)
			}
			if s, err := strconv.ParseFloat(score, 64); err != nil || s < 0 || s > 1 {
				t.Errorf("%s: X-Ringfence-Score %q is not a score in [0,1]", c.caller, score)
			}
		}
		if c.marker != "" && markers != "" && !slices.Contains(strings.Split(markers, ","), c.marker) {
			t.Errorf("%s: X-Ringfence-Markers %q lacks %s", c.caller, markers, c.marker)
		}
		if c.marker != "" && c.want != "block" && markers == "" {
			t.Errorf("%s: X-Ringfence-Markers empty, want %s", c.caller, c.marker)
		}
		if record == "" {
			if c.want != "block" {
				t.Errorf("%s: no X-Ringfence-Record on the 302", c.caller)
			}
			continue
		}
		// The record the SBC's CDR can be tied back to: same call, same verdict.
		rec := rf.record(t, record)
		if rec.Caller != c.caller || rec.Dialled != c.dialled || rec.IngressRoute != c.route {
			t.Errorf("record %s: caller %s dialled %s route %s, want %s %s %s",
				record, rec.Caller, rec.Dialled, rec.IngressRoute, c.caller, c.dialled, c.route)
		}
		if rec.Verdict.Action != action {
			t.Errorf("record %s: action %s, SIP said %s", record, rec.Verdict.Action, action)
		}
		if c.marker != "" && !rec.hasMarker(c.marker) {
			t.Errorf("record %s: markers %v lack %s", record, rec.Verdict.Markers, c.marker)
		}
	}

	t.Run("block_with 603", func(t *testing.T) {
		rf.setPolicy(t, func(p map[string]any) { p["block_with"] = 603 })
		var rows []string
		for _, c := range screenCases {
			if c.want == "block" {
				rows = append(rows, strings.Join([]string{c.caller, c.dialled, c.route, c.want, cmp.Or(c.from, c.caller)}, ";"))
			}
		}
		res := runSipp(t, sipp, "uac-603", injection(rows), []string{
			rf.sip, "-sf", scenario("uac_check.xml"), "-m", strconv.Itoa(len(rows)), "-r", "50",
		})
		res.requireClean(t, len(rows))
		if got := res.count("603_Recv"); got != len(rows) {
			t.Errorf("sipp received %d 603s, want %d", got, len(rows))
		}
	})
}

// A call through the SBC and where it must end up.
type chainCase struct {
	caller, dialled string
	want            string // the UAS logs this action, or "block": the caller gets 608
	route           string // the X-Ingress-Route Kamailio adds
}

// TestKamailioChain runs sipp caller -> Kamailio (deploy/kamailio/ringfence.cfg)
// -> ringfence -> Kamailio -> sipp contact centre. Allowed and flagged calls
// reach the contact centre carrying the verdict headers; blocked calls get 608
// at the caller and never reach it. Calls from 127.0.0.2 come in on the
// "international interconnect" (INTL_PEER). Finally, with ringfence stopped,
// the SBC fails open: the call reaches the contact centre marked unscored.
func TestKamailioChain(t *testing.T) {
	sipp := needPeer(t, "sipp", "sip-tester")
	kamailio := needPeer(t, "kamailio", "kamailio")
	rf := startRingfence(t)

	uasAddr := "127.0.0.1:" + freePort(t)
	sbc := startKamailio(t, kamailio, rf.sip, uasAddr)

	domestic := []chainCase{
		{caller: "+447400123456", dialled: publishedA, want: "allow", route: "uk-1"},
		{caller: "+447911123456", dialled: publishedB, want: "allow", route: "uk-1"},
		{caller: publishedA, dialled: publishedB, want: "block"},
		{caller: "+447400654321", dialled: publishedA, want: "allow", route: "uk-1"},
	}
	international := []chainCase{
		{caller: "+442079460123", dialled: publishedA, want: "flag", route: "intl-1"},
		{caller: "+33612345678", dialled: publishedB, want: "allow", route: "intl-1"},
		{caller: publishedB, dialled: publishedA, want: "block"},
	}
	reach := map[string]chainCase{}
	for _, c := range append(slices.Clone(domestic), international...) {
		if c.want != "block" {
			reach[c.caller] = c
		}
	}

	uas := startSipp(t, sipp, "contact-centre", "", []string{
		"-sf", scenario("uas.xml"), "-i", "127.0.0.1", "-p", port(uasAddr), "-m", strconv.Itoa(len(reach)),
	})
	for _, run := range []struct {
		name, ip string
		cases    []chainCase
	}{{"domestic", "127.0.0.1", domestic}, {"international", "127.0.0.2", international}} {
		var rows []string
		for _, c := range run.cases {
			rows = append(rows, strings.Join([]string{c.caller, c.dialled, answer(c.want)}, ";"))
		}
		res := runSipp(t, sipp, "caller-"+run.name, injection(rows), []string{
			sbc, "-sf", scenario("uac_call.xml"), "-i", run.ip, "-m", strconv.Itoa(len(rows)), "-r", "20",
		})
		res.requireClean(t, len(rows))
	}
	cc := uas.wait(t, 15*time.Second)
	cc.requireClean(t, len(reach))

	// Each contact-centre line: pai;from;action;score;markers;record;route.
	seen := map[string]bool{}
	for _, l := range cc.log {
		f := strings.Split(l, ";")
		if len(f) != 7 {
			t.Fatalf("contact centre log line %q: want 7 fields", l)
		}
		caller := cmp.Or(f[0], f[1])
		c, ok := reach[caller]
		if !ok {
			t.Errorf("call from %s reached the contact centre (action %s); it should have been blocked", caller, f[2])
			continue
		}
		seen[caller] = true
		if f[2] != c.want {
			t.Errorf("%s: contact centre saw X-Ringfence-Action %q, want %q", caller, f[2], c.want)
		}
		if f[6] != c.route {
			t.Errorf("%s: X-Ingress-Route %q, want %q", caller, f[6], c.route)
		}
		if f[5] == "" {
			t.Errorf("%s: no X-Ringfence-Record on the forwarded INVITE", caller)
		} else if rec := rf.record(t, f[5]); rec.Caller != caller || rec.Verdict.Action != c.want {
			t.Errorf("%s: record %s says caller %s action %s", caller, f[5], rec.Caller, rec.Verdict.Action)
		}
	}
	for caller := range reach {
		if !seen[caller] {
			t.Errorf("call from %s did not reach the contact centre", caller)
		}
	}

	t.Run("fail open", func(t *testing.T) {
		rf.stop(t)
		uas := startSipp(t, sipp, "contact-centre-unscored", "", []string{
			"-sf", scenario("uas.xml"), "-i", "127.0.0.1", "-p", port(uasAddr), "-m", "1",
		})
		res := runSipp(t, sipp, "caller-unscored", injection([]string{"+447400123456;" + publishedA + ";answered"}), []string{
			sbc, "-sf", scenario("uac_call.xml"), "-m", "1",
		})
		res.requireClean(t, 1)
		cc := uas.wait(t, 10*time.Second)
		cc.requireClean(t, 1)
		if len(cc.log) != 1 || strings.Split(cc.log[0], ";")[2] != "unscored" {
			t.Errorf("contact centre saw %q, want one call with X-Ringfence-Action unscored", cc.log)
		}
	})
}

func answer(want string) string {
	if want == "block" {
		return "blocked"
	}
	return "answered"
}

// needPeer returns the path of a peer program, or skips the test (fails it
// when CI=true) when the program is not installed.
func needPeer(t *testing.T, name, debianPackage string) string {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if testing.Short() && !ci {
		t.Skip("real-peer test: skipped with -short")
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (Debian package %s)", name, debianPackage)
	if ci {
		t.Fatal(msg + "; CI=true: CI must run the real-peer tests")
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// scenario is the path of a sipp scenario in bench/sip.
func scenario(name string) string {
	p, err := filepath.Abs(filepath.Join("..", "bench", "sip", name))
	if err != nil {
		panic(err)
	}
	return p
}

// freePort returns a port that was free on 127.0.0.1 for both UDP and TCP a
// moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		u.Close()
		if err != nil {
			continue
		}
		l.Close()
		return strconv.Itoa(p)
	}
	t.Fatal("no free port on 127.0.0.1")
	return ""
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// ringfence is a running `ringfence serve` with one tenant.
type ringfence struct {
	http, sip string // 127.0.0.1:port
	key       string // the tenant's API key
	cmd       *exec.Cmd
	done      chan struct{}
}

// startRingfence builds the binary, creates a data directory with a master
// key and the tenant, starts `ringfence serve` with HTTP and SIP on free
// ports, and configures the tenant through the API: routes uk-1 (domestic,
// GB) and intl-1 (international), the published numbers on the DNO list, and
// a policy with a redress URI that blocks only DNO and deny-listed callers
// outright. The server is stopped when the test ends.
func startRingfence(t *testing.T) *ringfence {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ringfence")
	// go test puts its toolchain's bin directory first on PATH.
	build := exec.Command("go", "build", "-o", bin, "github.com/ringfence/ringfence/cmd/ringfence")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ringfence: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	mustRun(t, bin, "keys", "generate", "--out", filepath.Join(data, "master.key"))
	out := strings.TrimSpace(mustRun(t, bin, "tenant", "create", "--data", data, "--region", "GB", tenantID))
	rf := &ringfence{
		http: "127.0.0.1:" + freePort(t),
		sip:  "127.0.0.1:" + freePort(t),
		key:  out[strings.LastIndexByte(out, '\n')+1:],
		done: make(chan struct{}),
	}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	rf.cmd = exec.Command(bin, "serve", "--data", data, "--http", rf.http,
		"--sip-udp", rf.sip, "--sip-tenant", tenantID, "--appliance", "peers-test")
	rf.cmd.Stdout, rf.cmd.Stderr = logf, logf
	if err := rf.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { rf.cmd.Wait(); logf.Close(); close(rf.done) }()
	t.Cleanup(func() {
		rf.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("ringfence serve log:\n%s", tail(b, 4000))
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-rf.done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("ringfence serve exited at start (%v):\n%s", rf.cmd.ProcessState, tail(b, 4000))
		default:
		}
		if resp, err := http.Get("http://" + rf.http + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("ringfence serve not ready after 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := waitSIP(rf.sip, 10*time.Second); err != nil {
		t.Fatalf("ringfence SIP listener: %v", err)
	}

	rf.api(t, "PUT", "/v1/routes/uk-1", `{"kind":"domestic","country":"GB"}`, nil)
	rf.api(t, "PUT", "/v1/routes/intl-1", `{"kind":"international"}`, nil)
	for _, n := range []string{publishedA, publishedB} {
		rf.api(t, "POST", "/v1/lists/dno", `{"number":"`+n+`","reason":"published inbound number"}`, nil)
	}
	// The test's own policy, whatever the default: UK CLIs from abroad are
	// flagged here (the default policy blocks them), so a single signal
	// gives each of allow, flag and block.
	rf.api(t, "PUT", "/v1/policy", `{"version":0,"flag_at":0.5,"block_at":0.9,"prior":-4,
		"actions":{"dno.listed":"block","list.deny":"block"},"block_with":608,"redress":"`+redressURI+`"}`, nil)
	return rf
}

// stop ends the server (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (rf *ringfence) stop(t *testing.T) {
	select {
	case <-rf.done:
		return
	default:
	}
	rf.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-rf.done:
	case <-time.After(5 * time.Second):
		t.Errorf("ringfence serve did not stop within 5 s of SIGTERM")
		rf.cmd.Process.Kill()
		<-rf.done
	}
}

// api sends a JSON request as the tenant and decodes a 2xx answer into out.
func (rf *ringfence) api(t *testing.T, method, path, body string, out any) {
	t.Helper()
	if err := rf.try(method, path, body, out); err != nil {
		t.Fatal(err)
	}
}

func (rf *ringfence) try(method, path, body string, out any) error {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+rf.http+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+rf.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return &apiError{status: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// setPolicy reads the tenant's policy, lets edit change it, and writes it back.
func (rf *ringfence) setPolicy(t *testing.T, edit func(map[string]any)) {
	t.Helper()
	var p map[string]any
	rf.api(t, "GET", "/v1/policy", "", &p)
	edit(p)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	rf.api(t, "PUT", "/v1/policy", string(b), nil)
}

// callRecord is the part of GET /v1/calls/{id} the tests look at.
type callRecord struct {
	Caller       string `json:"caller"`
	Dialled      string `json:"dialled"`
	IngressRoute string `json:"ingress_route"`
	Verdict      struct {
		Action  string `json:"action"`
		Markers []struct {
			Code string `json:"code"`
		} `json:"markers"`
	} `json:"verdict"`
}

func (r callRecord) hasMarker(code string) bool {
	for _, m := range r.Verdict.Markers {
		if m.Code == code {
			return true
		}
	}
	return false
}

// record fetches a call record, waiting up to 2 s for the recorder's group
// commit to make it durable.
func (rf *ringfence) record(t *testing.T, id string) callRecord {
	t.Helper()
	var rec callRecord
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := rf.try("GET", "/v1/calls/"+id, "", &rec)
		if err == nil {
			return rec
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("record %s: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startKamailio runs deploy/kamailio/ringfence.cfg on a free port, screening
// with ringfence at rfSIP and relaying to the contact centre at uas, with
// 127.0.0.2 as the international interconnect. It returns the SBC's address.
func startKamailio(t *testing.T, kamailio, rfSIP, uas string) string {
	t.Helper()
	dir := t.TempDir()
	addr := "127.0.0.1:" + freePort(t)
	cfg, err := filepath.Abs(filepath.Join("..", "deploy", "kamailio", "ringfence.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kamailio, "-f", cfg, "-DD", "-E", "-w", dir, "-Y", dir,
		"-A", "LISTEN=udp:"+addr,
		"-A", `RINGFENCE="sip:`+rfSIP+`"`,
		"-A", `CONTACT_CENTRE="sip:`+uas+`"`,
		"-A", `INTL_PEER="127.0.0.2"`,
		"-A", "CHILDREN=2")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: SIGTERM to the group reaches the workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		pg := -cmd.Process.Pid
		syscall.Kill(pg, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(pg, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("kamailio log:\n%s", tail(b, 4000))
		}
	})
	if err := waitSIP(addr, 10*time.Second); err != nil {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("kamailio exited at start:\n%s", tail(b, 4000))
		default:
		}
		t.Fatalf("kamailio: %v", err)
	}
	return addr
}

// waitSIP sends OPTIONS over UDP to addr until it answers 200.
func waitSIP(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for i := 0; time.Now().Before(deadline); i++ {
		if last = sipOptions(addr, i); last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no 200 to OPTIONS at %s within %v: %v", addr, within, last)
}

func sipOptions(addr string, n int) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	msg := fmt.Sprintf("OPTIONS sip:%[1]s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %[2]s;branch=z9hG4bK-probe-%[3]d\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:probe@%[2]s>;tag=probe%[3]d\r\n"+
		"To: <sip:%[1]s>\r\n"+
		"Call-ID: probe-%[3]d-%[4]d@127.0.0.1\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Content-Length: 0\r\n\r\n", addr, local, n, os.Getpid())
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 4096)
	for {
		k, err := c.Read(buf)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(buf[:k], []byte("SIP/2.0 1")) {
			continue
		}
		if bytes.HasPrefix(buf[:k], []byte("SIP/2.0 200")) {
			return nil
		}
		return fmt.Errorf("answer %q", firstLine(buf[:k]))
	}
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(line)
}

// injection writes a sipp injection file body: SEQUENTIAL, then the rows.
func injection(rows []string) string {
	if len(rows) == 0 {
		return ""
	}
	return "SEQUENTIAL\n" + strings.Join(rows, "\n") + "\n"
}

// sippProc is a sipp run in its own directory, with its statistics (-stf),
// message counts (-trace_counts), <log> lines and errors written there.
type sippProc struct {
	name, dir string
	cmd       *exec.Cmd
	done      chan struct{}
}

// startSipp starts sipp with args plus the tracing options, a free local
// port (unless args has -p) and a free media port; inj, if not empty, is
// given as the injection file. The process is killed when the test ends.
func startSipp(t *testing.T, sipp, name, inj string, args []string) *sippProc {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if inj != "" {
		f := filepath.Join(dir, "calls.csv")
		if err := os.WriteFile(f, []byte(inj), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-inf", f)
	}
	if !slices.Contains(args, "-i") {
		args = append(args, "-i", "127.0.0.1")
	}
	if !slices.Contains(args, "-p") {
		args = append(args, "-p", freePort(t))
	}
	args = append(args, "-mp", freePort(t),
		// -nd: a failed call is not hung up with a BYE or CANCEL.
		"-nd", "-nostdin", "-timeout", "30", "-timeout_error",
		"-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-fd", "1",
		"-trace_counts",
		"-trace_logs", "-log_file", filepath.Join(dir, "calls.log"),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	screen, err := os.Create(filepath.Join(dir, "screen.txt"))
	if err != nil {
		t.Fatal(err)
	}
	p := &sippProc{name: name, dir: dir, done: make(chan struct{})}
	p.cmd = exec.Command(sipp, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = screen, screen
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); screen.Close(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// runSipp runs sipp to the end (at most 40 s).
func runSipp(t *testing.T, sipp, name, inj string, args []string) sippResult {
	t.Helper()
	return startSipp(t, sipp, name, inj, args).wait(t, 40*time.Second)
}

// sippResult is what a finished sipp left behind.
type sippResult struct {
	name   string
	exit   int
	stats  map[string]string // last row of the -trace_stat file
	counts map[string]string // last row of the -trace_counts file
	log    []string          // lines written by <log> actions
	errors string
	screen string
}

// wait waits for sipp to exit (killing it after within) and reads its files.
func (p *sippProc) wait(t *testing.T, within time.Duration) sippResult {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("sipp %s still running after %v: killed", p.name, within)
	}
	r := sippResult{name: p.name, exit: p.cmd.ProcessState.ExitCode()}
	r.stats = lastCSVRow(filepath.Join(p.dir, "stat.csv"))
	if m, _ := filepath.Glob(filepath.Join(p.dir, "*_counts.csv")); len(m) > 0 {
		r.counts = lastCSVRow(m[0])
	}
	if b, err := os.ReadFile(filepath.Join(p.dir, "calls.log")); err == nil {
		for l := range strings.Lines(string(b)) {
			if l = strings.TrimRight(l, "\r\n"); l != "" {
				r.log = append(r.log, l)
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(p.dir, "errors.log"))
	r.errors = string(b)
	b, _ = os.ReadFile(filepath.Join(p.dir, "screen.txt"))
	r.screen = tail(b, 2500)
	return r
}

// requireClean fails the test unless sipp exited 0 with calls successful
// calls and no failed one.
func (r sippResult) requireClean(t *testing.T, calls int) {
	t.Helper()
	ok, failed := r.stat("SuccessfulCall(C)"), r.stat("FailedCall(C)")
	if r.exit == 0 && ok == calls && failed == 0 {
		return
	}
	t.Fatalf("sipp %s: exit %d, %d successful and %d failed calls, want exit 0 and %d successful\nlog:\n%s\nerrors:\n%s\nscreen:\n%s",
		r.name, r.exit, ok, failed, calls, strings.Join(r.log, "\n"), tail([]byte(r.errors), 3000), r.screen)
}

func (r sippResult) stat(name string) int {
	n, _ := strconv.Atoi(r.stats[name])
	return n
}

// count is a message count such as "302_Recv", whatever its step index.
func (r sippResult) count(suffix string) int {
	total := 0
	for k, v := range r.counts {
		if _, s, ok := strings.Cut(k, "_"); ok && s == suffix {
			n, _ := strconv.Atoi(v)
			total += n
		}
	}
	return total
}

// lastCSVRow reads a sipp statistics file (';'-separated, header first) and
// returns its last row by column name.
func lastCSVRow(path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var header, last []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		row := strings.Split(sc.Text(), ";")
		if header == nil {
			header = row
		} else {
			last = row
		}
	}
	m := map[string]string{}
	for i, h := range header {
		if i < len(last) {
			m[h] = last[i]
		}
	}
	return m
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
