package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/node"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
	"github.com/ringfence/ringfence/store/postgres"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
	"github.com/ringfence/ringfence/store/sqlite"
)

// buildRingfence builds the ringfence binary into a temporary directory.
func buildRingfence(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ringfence")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a `ringfence serve` subprocess.
type proc struct {
	name string
	cmd  *exec.Cmd
	url  string // http://host:port
	done chan struct{}

	mu   sync.Mutex
	logs bytes.Buffer
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startNode runs `ringfence serve` on the store dsn with the shared master
// key and key directory (beside the key file), and returns once it serves HTTP. The process is stopped when t ends,
// and its log shown if t failed.
func startNode(t *testing.T, bin, name, dsn, key string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--data", filepath.Join(t.TempDir(), name), "--store", dsn,
		"--master-key-file", key, "--key-dir", filepath.Join(filepath.Dir(key), "keys"), "--http", "127.0.0.1:0", "--appliance", name)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if strings.Contains(line, "msg=serving") {
				for _, f := range strings.Fields(line) {
					if a, ok := strings.CutPrefix(f, "http="); ok {
						addr <- a
					}
				}
			}
		}
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("log of node %s:\n%s", name, p.log())
		}
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		t.Fatalf("node %s exited:\n%s", name, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not start:\n%s", name, p.log())
	}
	return p
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// request sends a request with the tenant key and decodes the JSON answer
// into out (if not nil); it returns the status.
func request(method, url, key, contentType string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w: %s", method, url, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	return resp.StatusCode, nil
}

type verdict struct {
	RecordID string        `json:"record_id"`
	Action   string        `json:"action"`
	Policy   string        `json:"policy"`
	Markers  []call.Marker `json:"markers"`
}

func (v verdict) has(code string) bool {
	return slices.ContainsFunc(v.Markers, func(m call.Marker) bool { return m.Code == code })
}

// screenOn screens a call from caller on the node.
func screenOn(p *proc, key, caller string) (verdict, error) {
	var v verdict
	body := fmt.Sprintf(`{"caller":%q,"dialled":"+442079460123"}`, caller)
	_, err := request("POST", p.url+"/v1/screen", key, "application/json", strings.NewReader(body), &v)
	return v, err
}

// until polls cond every millisecond until it holds or limit passes; it
// returns how long it took and whether it held.
func until(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(time.Millisecond)
	}
}

// withParam returns dsn with one more query parameter.
func withParam(t *testing.T, dsn, name, value string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestCluster runs two `ringfence serve` processes on one fresh PostgreSQL
// database and checks what the cluster promises: a change made on node A
// reaches node B's verdicts within a second; B survives losing its
// database connections and catches up on what changed meanwhile; and
// killing A with SIGKILL under load loses no acknowledged write.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ringfence and runs two servers; skipped with -short")
	}
	dsn := pgtest.NewDatabase(t)
	bin := buildRingfence(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	if _, err := seal.GenerateMasterKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	// application_name tells the nodes' backends apart in pg_stat_activity.
	a := startNode(t, bin, "node-a", withParam(t, dsn, "application_name", "ringfence-a"), keyFile)
	b := startNode(t, bin, "node-b", withParam(t, dsn, "application_name", "ringfence-b"), keyFile)

	// A tenant made with the CLI beside the running nodes reaches both.
	out, err := exec.Command(bin, "tenant", "create", "--store", dsn, "--master-key-file", keyFile,
		"--key-dir", filepath.Join(dir, "keys"), "--data", filepath.Join(dir, "cli"), "bank").CombinedOutput()
	if err != nil {
		t.Fatalf("tenant create: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	key := lines[len(lines)-1]
	for _, p := range []*proc{a, b} {
		if took, ok := until(5*time.Second, func() bool { _, err := screenOn(p, key, "+447400100000"); return err == nil }); !ok {
			t.Fatalf("node %s does not know the new tenant after %v", p.name, took)
		} else {
			t.Logf("tenant made by the CLI serving on %s after %v", p.name, took)
		}
	}

	t.Run("DenyListReachesB", func(t *testing.T) {
		var afterAck, total []time.Duration
		for i := range 20 {
			number := fmt.Sprintf("+4474005%05d", i)
			if v, err := screenOn(b, key, number); err != nil || v.has("list.deny") {
				t.Fatalf("before the entry: %+v, %v", v, err)
			}
			start := time.Now()
			body := fmt.Sprintf(`{"number":%q,"reason":"reported"}`, number)
			if _, err := request("POST", a.url+"/v1/lists/deny", key, "application/json", strings.NewReader(body), nil); err != nil {
				t.Fatal(err)
			}
			var last verdict
			took, ok := until(10*time.Second, func() bool {
				v, err := screenOn(b, key, number)
				last = v
				return err == nil && v.has("list.deny")
			})
			if !ok {
				t.Fatalf("entry %d added on A not on B's verdict within 10s (last verdict %+v)", i, last)
			}
			if last.Action != "block" {
				t.Errorf("B's verdict for a denied caller: %s", last.Action)
			}
			afterAck = append(afterAck, took)
			total = append(total, time.Since(start))
		}
		slices.Sort(afterAck)
		slices.Sort(total)
		t.Logf("deny entry on A -> B's verdict, from A's answer: median %v, p90 %v, max %v; from A's request: median %v, max %v",
			afterAck[len(afterAck)/2], afterAck[len(afterAck)*9/10], afterAck[len(afterAck)-1],
			total[len(total)/2], total[len(total)-1])
	})

	t.Run("PolicyReachesB", func(t *testing.T) {
		var p call.Policy
		if _, err := request("GET", a.url+"/v1/policy", key, "", nil, &p); err != nil {
			t.Fatal(err)
		}
		// Flag everything: B's verdicts show the new version and action.
		p.FlagAt, p.BlockAt = 0.0001, 0.9999
		body, _ := json.Marshal(p)
		var stored call.Policy
		if _, err := request("PUT", a.url+"/v1/policy", key, "application/json", bytes.NewReader(body), &stored); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("v%d", stored.Version)
		var last verdict
		took, ok := until(10*time.Second, func() bool {
			v, err := screenOn(b, key, "+447400200000")
			last = v
			return err == nil && v.Policy == want
		})
		if !ok {
			t.Fatalf("B's verdicts use policy %q, not A's %s, after 10s", last.Policy, want)
		}
		if last.Action != "flag" {
			t.Errorf("B's verdict under the new policy: %s; want flag", last.Action)
		}
		t.Logf("policy %s on A used by B after %v", want, took)
		// And B builds on it: its next change is version+1.
		stored.FlagAt = 0.5
		body, _ = json.Marshal(stored)
		if _, err := request("PUT", b.url+"/v1/policy", key, "application/json", bytes.NewReader(body), &stored); err != nil {
			t.Fatalf("policy change on B after A's: %v", err)
		}
	})

	t.Run("BSurvivesConnectionLoss", func(t *testing.T) {
		ctx := t.Context()
		u, _ := url.Parse(dsn)
		name := u.Path[1:]
		u.Path = "/postgres"
		admin, err := pgx.Connect(ctx, u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(context.Background())
		db := pgx.Identifier{name}.Sanitize()
		// Keep B out: no new connections to the database (A keeps the ones
		// it has), then end every backend of B.
		if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS false`); err != nil {
			t.Fatal(err)
		}
		defer admin.Exec(context.Background(), `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`)
		var killed int
		err = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = $1 AND application_name = 'ringfence-b'`, name).Scan(&killed)
		if err != nil || killed == 0 {
			t.Fatalf("terminated %d backends of B: %v", killed, err)
		}
		t.Logf("terminated %d backends of B", killed)

		// B still screens from memory; its record waits for the database.
		during, err := screenOn(b, key, "+447400300000")
		if err != nil {
			t.Fatalf("B while disconnected: %v", err)
		}
		// A change on A while B is away.
		const number = "+447400300001"
		body := fmt.Sprintf(`{"number":%q,"reason":"while B was away"}`, number)
		if _, err := request("POST", a.url+"/v1/lists/deny", key, "application/json", strings.NewReader(body), nil); err != nil {
			t.Fatal(err)
		}
		if v, err := screenOn(b, key, number); err != nil || v.has("list.deny") {
			t.Fatalf("B saw the change while disconnected (%+v, %v): it was not disconnected", v, err)
		}
		if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`); err != nil {
			t.Fatal(err)
		}
		took, ok := until(10*time.Second, func() bool { v, err := screenOn(b, key, number); return err == nil && v.has("list.deny") })
		if !ok {
			t.Fatal("B did not catch up within 10s of the database taking connections again")
		}
		t.Logf("B caught up %v after reconnection was allowed", took)
		// B's record screened during the outage reached the store.
		if _, ok := until(10*time.Second, func() bool {
			_, err := request("GET", a.url+"/v1/calls/"+during.RecordID, key, "", nil, nil)
			return err == nil
		}); !ok {
			t.Errorf("record %s screened on B while disconnected is not in the store", during.RecordID)
		}
	})

	t.Run("KillAUnderLoad", func(t *testing.T) {
		ctx := t.Context()
		var (
			mu       sync.Mutex
			returned []string // record ids A answered with, in order
			flushed  int      // returned[:flushed] are durable (a listing synced them)
			acked    []string // numbers of imports A acknowledged
			imports  int
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					v, err := screenOn(a, key, fmt.Sprintf("+4474%02d%06d", 10+w, i))
					if err != nil {
						continue // A is gone, or busy
					}
					mu.Lock()
					returned = append(returned, v.RecordID)
					mu.Unlock()
				}
			})
		}
		wg.Go(func() { // flusher: a listing syncs the recorder
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				n := len(returned)
				mu.Unlock()
				if _, err := request("GET", a.url+"/v1/calls?limit=1", key, "", nil, nil); err == nil {
					mu.Lock()
					flushed = max(flushed, n)
					mu.Unlock()
				}
			}
		})
		wg.Go(func() { // bulk imports
			for batch := 0; ; batch++ {
				select {
				case <-stop:
					return
				default:
				}
				var csv strings.Builder
				numbers := make([]string, 2000)
				for i := range numbers {
					numbers[i] = fmt.Sprintf("+447%03d%06d", 500+batch, i)
					fmt.Fprintf(&csv, "%s,bulk %d\n", numbers[i], batch)
				}
				var res node.ImportResult
				_, err := request("POST", a.url+"/v1/lists/dno/import", key, "text/csv", strings.NewReader(csv.String()), &res)
				if err != nil || res.Added != len(numbers) {
					continue
				}
				mu.Lock()
				acked = append(acked, numbers...)
				imports++
				mu.Unlock()
			}
		})
		// Kill A once it has acknowledged a good share of work.
		if _, ok := until(30*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return flushed >= 2000 && imports >= 3
		}); !ok {
			close(stop)
			wg.Wait()
			t.Fatalf("A acknowledged too little to test: %d flushed, %d imports", flushed, imports)
		}
		a.kill()
		close(stop)
		wg.Wait()
		mu.Lock()
		t.Logf("killed A after %d answers (%d of them flushed) and %d acknowledged imports", len(returned), flushed, imports)
		mustHave := slices.Clone(returned[:flushed])
		ackedNumbers := slices.Clone(acked)
		mu.Unlock()

		// Every flushed record is stored, once.
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var found int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM calls WHERE tenant = 'bank' AND id = ANY($1)`, mustHave).Scan(&found); err != nil {
			t.Fatal(err)
		}
		if found != len(mustHave) {
			t.Errorf("%d of %d flushed records are stored", found, len(mustHave))
		}
		var dups int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT id FROM calls GROUP BY tenant, id HAVING count(*) > 1) d`).Scan(&dups); err != nil {
			t.Fatal(err)
		}
		if dups != 0 {
			t.Errorf("%d record ids are stored more than once", dups)
		}
		// Every acknowledged import is stored (read through B, which
		// decrypts the list) and in B's memory.
		onList := map[string]bool{}
		for after := ""; ; {
			var page struct {
				Entries []struct {
					Number string `json:"number"`
				} `json:"entries"`
				Next string `json:"next"`
			}
			if _, err := request("GET", b.url+"/v1/lists/dno?limit=1000&after="+after, key, "", nil, &page); err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Entries {
				onList[e.Number] = true
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
		missing := 0
		for _, n := range ackedNumbers {
			if !onList[n] {
				missing++
			}
		}
		if missing > 0 || len(onList) < len(ackedNumbers) {
			t.Errorf("%d of %d acknowledged imported numbers are not stored (the list holds %d)", missing, len(ackedNumbers), len(onList))
		}
		for _, n := range []string{ackedNumbers[0], ackedNumbers[len(ackedNumbers)-1]} {
			if _, ok := until(15*time.Second, func() bool { v, err := screenOn(b, key, n); return err == nil && v.has("dno.listed") }); !ok {
				t.Errorf("B does not act on acknowledged imported number %s", n)
			}
		}

		// A restarts on the same database and serves what it acknowledged.
		a2 := startNode(t, bin, "node-a2", withParam(t, dsn, "application_name", "ringfence-a"), keyFile)
		if _, err := request("GET", a2.url+"/v1/calls/"+mustHave[len(mustHave)-1], key, "", nil, nil); err != nil {
			t.Errorf("restarted A: %v", err)
		}
	})
}

// TestMigrate moves a single node's SQLite store with a few hundred records
// to a fresh PostgreSQL database with `ringfence migrate`, then opens the
// copy with a node: counts match, records open (decrypt) with the same
// master key, lists and links still act, API keys still authenticate.
func TestMigrate(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	mk, err := seal.GenerateMasterKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ringfence.db")
	src, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, node.Config{Log: slog.New(slog.DiscardHandler)}, src, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	_, bankKey, err := n.CreateTenant(ctx, "bank", "Bank", "GB")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.CreateTenant(ctx, "shop", "Shop", "IE"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.NewAPIKey(ctx, "bank", "second", call.Analyst); err != nil {
		t.Fatal(err)
	}
	if err := n.PutRoute(ctx, "bank", call.Route{ID: "intl-in", Kind: call.International, Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	p, _ := n.Policy("bank")
	p.FlagAt = 0.45
	if _, err := n.PutPolicy(ctx, "bank", p); err != nil {
		t.Fatal(err)
	}
	const denied = "+447400999001"
	if _, err := n.AddListEntry(ctx, "bank", call.DenyList, denied, "reported", time.Time{}); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	for i := range 1500 { // more than a page
		fmt.Fprintf(&csv, "+4420794%05d\n", i)
	}
	if _, err := n.ImportList(ctx, "bank", call.DNOList, strings.NewReader(csv.String()), ""); err != nil {
		t.Fatal(err)
	}
	type record struct{ tenant, id, caller string }
	var records []record
	for i := range 400 {
		tenant := []string{"bank", "shop"}[i%2]
		c, err := n.Screen(ctx, node.Incoming{Tenant: tenant, Caller: fmt.Sprintf("+4474001%05d", i),
			Dialled: "+442079460123", UserRef: fmt.Sprintf("cust-%d", i%50), StartedAt: time.Now().AddDate(0, -i%14, 0)})
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, record{tenant, c.ID, c.Caller.E164})
		if i%3 == 0 {
			if _, err := n.UpdateCallEnd(ctx, tenant, c.ID, call.End{Duration: time.Duration(i) * time.Second, Result: call.Answered}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := n.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for i, r := range records[:40] {
		l := call.Label{Label: call.Genuine, By: "ana"}
		if i%4 == 0 {
			l = call.Label{Label: call.Fraud, FraudType: "spoofing", By: "ana", Note: "called back"}
		}
		if _, err := n.Label(ctx, r.tenant, r.id, l); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]*call.Call{}
	for _, r := range records {
		c, err := n.Call(ctx, r.tenant, r.id)
		if err != nil {
			t.Fatal(err)
		}
		want[r.id] = c
	}
	n.Close()
	srcCounts := map[string]store.Counts{}
	for _, id := range []string{"bank", "shop"} {
		srcCounts[id], _ = src.Counts(ctx, id)
	}
	src.Close()
	if srcCounts["bank"].Links == 0 || srcCounts["bank"].Labels == 0 || srcCounts["bank"].ListEntries < 1500 {
		t.Fatalf("source too thin to test: %+v", srcCounts["bank"])
	}

	dsn := pgtest.NewDatabase(t)
	var out, errs bytes.Buffer
	err = migrateCmd(ctx, []string{"--from", "sqlite:" + path, "--to", dsn, "--master-key-file", keyFile}, &out, &errs)
	t.Logf("migrate:\n%s%s", out.String(), errs.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"copied 2 tenants; every count matches", "opened every tenant's keys"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if !regexp.MustCompile(`bank\s+calls\s+200\s+200\n`).Match(out.Bytes()) {
		t.Error("output lacks the count of bank's records on both sides")
	}

	dst, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for id, c := range srcCounts {
		if got, err := dst.Counts(ctx, id); err != nil || got != c {
			t.Errorf("tenant %s: counts on PostgreSQL %+v, %v; on SQLite %+v", id, got, err, c)
		}
	}
	n2, err := node.Open(ctx, node.Config{Log: slog.New(slog.DiscardHandler)}, dst, seal.NewKeyring(mk))
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	for _, r := range records {
		got, err := n2.Call(ctx, r.tenant, r.id)
		if err != nil {
			t.Fatalf("record %s on the copy: %v", r.id, err)
		}
		w := want[r.id]
		if got.Caller.E164 != r.caller || got.UserRef != w.UserRef || got.Review != w.Review ||
			(got.End == nil) != (w.End == nil) || !got.StartedAt.Equal(w.StartedAt.Truncate(time.Microsecond)) {
			t.Fatalf("record %s on the copy:\n got %+v\nwant %+v", r.id, got, w)
		}
	}
	if p, err := n2.Authenticate(ctx, bankKey); err != nil || p.Tenant != "bank" {
		t.Errorf("API key on the copy: %+v, %v", p, err)
	}
	if c, err := n2.Screen(ctx, node.Incoming{Tenant: "bank", Caller: denied, Dialled: "+442079460123"}); err != nil || c.Verdict.Action != call.Block {
		t.Errorf("denied caller on the copy: %+v, %v", c, err)
	}
	if got := n2.Engine().ListLen("bank", call.DNOList); got != 1500 {
		t.Errorf("copy's DNO list holds %d in memory; want 1500", got)
	}
	if p, _ := n2.Policy("bank"); p.FlagAt != 0.45 || p.Version != 2 {
		t.Errorf("copy's policy = %+v", p)
	}

	// A second run refuses the non-empty destination; --to alone migrates
	// the schema only; a missing source is an error, not an empty copy.
	if err := migrateCmd(ctx, []string{"--from", "sqlite:" + path, "--to", dsn}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "empty store only") {
		t.Errorf("migrate into a non-empty store: %v", err)
	}
	out.Reset()
	if err := migrateCmd(ctx, []string{"--to", dsn}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "up to date") {
		t.Errorf("migrate --to alone: %v, %q", err, out.String())
	}
	if err := migrateCmd(ctx, []string{"--from", "sqlite:" + filepath.Join(dir, "nope.db"), "--to", pgtest.NewDatabase(t)}, io.Discard, io.Discard); err == nil {
		t.Error("migrate from a missing file: no error")
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.db")); err == nil {
		t.Error("migrate created the missing source file")
	}
	for _, args := range [][]string{{}, {"--from", "sqlite:" + path}, {"--to", "mysql://x"}, {"--to", dsn, "--from", dsn}} {
		if err := migrateCmd(ctx, args, io.Discard, io.Discard); err == nil {
			t.Errorf("migrate %v: no error", args)
		}
	}
}
