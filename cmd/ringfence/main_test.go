package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store/postgres/pgtest"
)

// startMain runs a real server on a temporary data directory, logging at
// debug level into logs.
func startMain(t *testing.T, dir string, logs io.Writer) *Main {
	t.Helper()
	return startMainOn(t, dir, "", logs)
}

// startMainOn is startMain on the store named by dsn ("" for SQLite in dir).
func startMainOn(t *testing.T, dir, dsn string, logs io.Writer) *Main {
	t.Helper()
	c := Config{Data: dir, Store: dsn}
	c.HTTP.Addr = "127.0.0.1:0"
	c.Log.Level = "debug"
	c.defaults()
	if _, err := os.Stat(c.MasterKeyFile); err != nil {
		if _, err := seal.GenerateMasterKeyFile(c.MasterKeyFile); err != nil {
			t.Fatal(err)
		}
	}
	m := &Main{Config: c, Log: newLogger(c, logs)}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

func post(t *testing.T, url, key, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, out)
	}
	return out
}

// TestNoPlaintextNumbers writes known numbers through the API, then scans
// the database, its WAL, every other file in the data directory and the
// logs for each number in E.164, national and digits-only form and for its
// unkeyed SHA-256, and for the secrets (the API key, the master key outside
// its own file): there must be no hit.
func TestNoPlaintextNumbers(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		var logs bytes.Buffer
		m := startMain(t, dir, &logs)
		key := writeKnownNumbers(t, m)
		// Scan while running (the WAL holds the recent writes) and after a
		// clean shutdown (the WAL checkpointed into the database).
		files := readAll(dir)
		if _, ok := files["ringfence.db-wal"]; !ok {
			t.Fatalf("no WAL among %d files while running", len(files))
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		for name, b := range readAll(dir) {
			files[name+" (after close)"] = b
		}
		files["log"] = logs.Bytes()
		if !bytes.Contains(logs.Bytes(), []byte("request")) {
			t.Fatal("the debug log recorded no requests; the scan would prove nothing")
		}
		scanForNumbers(t, files)
		master, err := os.ReadFile(m.Config.MasterKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		delete(files, filepath.Base(m.Config.MasterKeyFile))
		delete(files, filepath.Base(m.Config.MasterKeyFile)+" (after close)")
		scanForSecrets(t, files, key, string(bytes.TrimSpace(master)))
	})
	t.Run("postgres dump", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		var logs bytes.Buffer
		m := startMainOn(t, t.TempDir(), dsn, &logs)
		defer m.Close()
		key := writeKnownNumbers(t, m)
		dump, err := exec.Command("pg_dump", "--data-only", dsn).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		if !bytes.Contains(dump, []byte("COPY public.calls")) && !bytes.Contains(dump, []byte("calls_")) {
			t.Fatal("the dump holds no call records; the scan would prove nothing")
		}
		blobs := map[string][]byte{"pg_dump": dump, "log": logs.Bytes()}
		scanForNumbers(t, blobs)
		master, err := os.ReadFile(m.Config.MasterKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		scanForSecrets(t, blobs, key, string(bytes.TrimSpace(master)))
	})
}

// knownNumbers are written through the API and must never be found.
var knownNumbers = []struct{ e164, national string }{
	{"+447400123456", "07400123456"},
	{"+442079460123", "02079460123"},
	{"+441134960000", "01134960000"},
	{"+447700900777", "07700900777"},
}

// writeKnownNumbers screens, labels and lists the known numbers through
// the API and waits until everything is written. It returns the tenant's
// API key.
func writeKnownNumbers(t *testing.T, m *Main) string {
	t.Helper()
	ctx := t.Context()
	_, key, err := m.Node.CreateTenant(ctx, "bank", "Bank", "GB")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.Addr
	for i, n := range knownNumbers {
		dialled := knownNumbers[(i+1)%len(knownNumbers)]
		r := post(t, base+"/v1/screen", key, `{"caller":"`+n.national+`","dialled":"`+dialled.e164+`","user_ref":"cust-`+strconv.Itoa(i)+`",
			"signalling":{"from":"<sip:`+n.e164+`@carrier.example>","pai":"<tel:`+n.e164+`>","verstat":"TN-Validation-Passed-A"}}`)
		post(t, base+"/v1/calls/"+r["record_id"].(string)+"/label", key, `{"label":"fraud","fraud_type":"spoofing","note":"called back `+n.national+`"}`)
		post(t, base+"/v1/lists/dno", key, `{"number":"`+n.e164+`","reason":"test"}`)
	}
	if err := m.Node.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return key
}

// scanForSecrets fails for an API key or a master key (base64, or its raw
// bytes) found in any blob.
func scanForSecrets(t *testing.T, blobs map[string][]byte, apiKey, masterB64 string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(masterB64)
	if err != nil || len(raw) != 32 {
		t.Fatalf("master key file: %d bytes, %v", len(raw), err)
	}
	for what, f := range map[string][]byte{"the API key": []byte(apiKey), "the master key": []byte(masterB64), "the raw master key": raw} {
		for name, b := range blobs {
			if bytes.Contains(b, f) {
				t.Errorf("%s holds %s", name, what)
			}
		}
	}
}

// scanForNumbers fails for every known number found in any blob, in E.164,
// national or digits-only form or as its unkeyed SHA-256 (hex or raw).
func scanForNumbers(t *testing.T, blobs map[string][]byte) {
	t.Helper()
	for _, n := range knownNumbers {
		sum := sha256.Sum256([]byte(n.e164))
		for _, f := range []string{n.e164, n.national, n.e164[1:], hex.EncodeToString(sum[:]), string(sum[:])} {
			for name, b := range blobs {
				if bytes.Contains(b, []byte(f)) {
					t.Errorf("%s holds %q", name, f)
				}
			}
		}
	}
}

// readAll returns every file under dir by its relative path.
func readAll(dir string) map[string][]byte {
	files := map[string][]byte{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			rel, _ := filepath.Rel(dir, path)
			files[rel] = b
		}
		return nil
	})
	return files
}

// TestRestartKeepsState checks, on each store, that records, lists and
// labels survive a restart and still act on the next call.
func TestRestartKeepsState(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testRestart(t, "") })
	t.Run("postgres", func(t *testing.T) { testRestart(t, pgtest.NewDatabase(t)) })
}

func testRestart(t *testing.T, dsn string) {
	dir := t.TempDir()
	m := startMainOn(t, dir, dsn, io.Discard)
	_, key, err := m.Node.CreateTenant(t.Context(), "bank", "Bank", "GB")
	if err != nil {
		t.Fatal(err)
	}
	r := post(t, "http://"+m.Addr+"/v1/screen", key, `{"caller":"+447400123456","dialled":"+442079460123"}`)
	id := r["record_id"].(string)
	post(t, "http://"+m.Addr+"/v1/calls/"+id+"/label", key, `{"label":"fraud"}`)
	post(t, "http://"+m.Addr+"/v1/lists/dno", key, `{"number":"+442079460000"}`)
	m.Close()

	m = startMainOn(t, dir, dsn, io.Discard)
	defer m.Close()
	c, err := m.Node.Call(t.Context(), "bank", id)
	if err != nil || c.Caller.E164 != "+447400123456" || c.Review.Status != "fraud" {
		t.Fatalf("after restart: %+v, %v", c, err)
	}
	v := post(t, "http://"+m.Addr+"/v1/screen", key, `{"caller":"+447400123456","dialled":"+442079460123"}`)
	if v["action"] != "block" {
		t.Errorf("denied caller after restart: %v", v)
	}
	v = post(t, "http://"+m.Addr+"/v1/screen", key, `{"caller":"+442079460000","dialled":"+442079460123"}`)
	if v["action"] != "block" {
		t.Errorf("DNO caller after restart: %v", v)
	}
	resp, err := http.Get("http://" + m.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ringfence_screens_total{action="block"} 2`, "ringfence_screen_seconds_bucket", "ringfence_recorder_queue_depth"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestDemo runs the demo end to end (the README's first command) and checks
// the quality it reports on its own simulated traffic.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo screens 40,000 calls; skipped with -short")
	}
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"demo", "--exit", "--data", t.TempDir(), "--http", "127.0.0.1:0"}, &out, &errs)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errs.String())
	}
	t.Log(out.String())
	aucs := 0
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "AUC "); ok {
			auc, _ := strconv.ParseFloat(v, 64)
			if auc < 0.95 {
				t.Errorf("demo AUC %v < 0.95", auc)
			}
			aucs++
		}
		if strings.Contains(line, "requests failed") && !strings.Contains(line, " 0 of ") {
			t.Errorf("failed requests: %s", line)
		}
	}
	if aucs != len(demoTenants) {
		t.Errorf("found %d AUC lines; want %d", aucs, len(demoTenants))
	}
	if !strings.Contains(errs.String(), "DEMO: generated a new master key") {
		t.Error("the demo did not warn about the generated master key")
	}
}

func TestCLIErrors(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"serve", "--store", "mysql:x"},
		{"serve", "--config", "/nonexistent.json"},
		{"tenant"},
		{"keys", "generate"},
		{"simulate"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	cfg := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(cfg, []byte(`{"http":{"adr":":1"}}`), 0o600)
	err := run(context.Background(), []string{"serve", "--config", cfg}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown field "adr"`) {
		t.Errorf("unknown config key: %v", err)
	}
	err = run(context.Background(), []string{"serve", "--data", t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ringfence keys generate") {
		t.Errorf("missing master key: %v", err)
	}
}

func TestTenantCreatePrintsKeyLast(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "master.key")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keys", "generate", "--out", key}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"tenant", "create", "--data", dir, "--region", "IE", "acme"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	apiKey := lines[len(lines)-1]
	if !strings.HasPrefix(apiKey, "rf_") {
		t.Fatalf("last line %q is not an API key", apiKey)
	}
	c := Config{Data: dir}
	c.HTTP.Addr = "127.0.0.1:0"
	c.defaults()
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v := post(t, "http://"+m.Addr+"/v1/screen", apiKey, `{"caller":"087 123 4567","dialled":"01 234 5678"}`)
	if v["action"] == nil {
		t.Fatalf("screen with the printed key: %v", v)
	}
}

// TestShakenThroughAPI screens a call carrying libstirshaken's reference
// PASSporT with STIR/SHAKEN verification configured: the engine reports its
// stale iat and non-standard orig/dest without waiting on the network.
func TestShakenThroughAPI(t *testing.T) {
	ref := "../../../shared/testdata/stir-shaken/libstirshaken-ref/"
	txt, err := os.ReadFile(ref + "sp/passport.txt")
	if err != nil {
		t.Skipf("shared test material not found: %v", err)
	}
	var header string
	for _, line := range strings.Split(string(txt), "\n") {
		if strings.HasPrefix(line, "eyJ") && strings.Contains(line, ";info=") {
			header = strings.TrimSpace(line)
		}
	}
	dir := t.TempDir()
	c := Config{Data: dir}
	c.HTTP.Addr = "127.0.0.1:0"
	c.STIR.RootsFile = ref + "ca/ca.pem"
	c.defaults()
	if _, err := seal.GenerateMasterKeyFile(c.MasterKeyFile); err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, key, err := m.Node.CreateTenant(t.Context(), "bank", "", "GB")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"caller": "01256789999", "dialled": "01256500600", "signalling": map[string]any{"identity": header}})
	v := post(t, "http://"+m.Addr+"/v1/screen", key, string(body))
	var codes []string
	for _, mk := range v["markers"].([]any) {
		codes = append(codes, mk.(map[string]any)["code"].(string))
	}
	for _, want := range []string{"shaken.stale", "shaken.malformed"} {
		if !slices.Contains(codes, want) {
			t.Errorf("markers %v lack %s", codes, want)
		}
	}
	// The outcome is kept in the call record.
	rec, err := m.Node.Call(t.Context(), "bank", v["record_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if sh := rec.Verdict.Shaken; sh == nil || sh.Status != "failed" || sh.Cause() == 0 {
		t.Errorf("stored STIR outcome = %+v", sh)
	}

	// The CLI verb gives the same outcome offline.
	var out bytes.Buffer
	err = run(t.Context(), []string{"shaken", "verify", "--roots", ref + "ca/ca.pem", "--identity", header,
		"--orig", "01256789999", "--dest", "01256500600"}, &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "status: failed") || !strings.Contains(out.String(), "stale_iat") {
		t.Errorf("shaken verify: %v\n%s", err, out.String())
	}
}

// TestShakenLint runs the lint verb over zlint's SHAKEN test certificates:
// the baselines pass and each defect named by a file name is reported with
// its stable code.
func TestShakenLint(t *testing.T) {
	dir := "../../../shared/testdata/stir-shaken/zlint-shaken-testdata/"
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared test material not found: %v", err)
	}
	cases := map[string]string{
		"shakenCert.pem": "ok", "shakenCa.pem": "ok", "shakenRoot.pem": "ok",
		"shakenKeyAlgRSA.pem":           "cert_key",
		"shakenKeyAlgP384.pem":          "cert_key",
		"shakenTNAuthWithoutSPC.pem":    "cert_tnauthlist",
		"shakenTNAuthEmpty.pem":         "cert_tnauthlist",
		"shakenCertPolicyNo.pem":        "cert_policies",
		"shakenBasicConstNo.pem":        "cert_basic_constraints",
		"shakenSigAlgSHA1.pem":          "cert_sig_alg",
		"shakenCertV2.pem":              "cert_version",
		"shakenKeyUsageOdd.pem":         "cert_key_usage",
		"shakenKeyUsageNotCritical.pem": "cert_key_usage",
		"shakenExtOdd.pem":              "cert_extension",
		// Names, serial numbers, key identifiers, CRL points.
		"shakenCaIssuerWithoutC.pem":             "cert_issuer",
		"shakenCaIssuerWithoutCN.pem":            "cert_issuer",
		"shakenCaIssuerWithoutO.pem":             "cert_issuer",
		"shakenIssuerWithoutC.pem":               "cert_issuer",
		"shakenIssuerWithoutCN.pem":              "cert_issuer",
		"shakenIssuerWithoutO.pem":               "cert_issuer",
		"shakenSubject.pem":                      "cert_issuer",
		"shakenCaSubject.pem":                    "cert_issuer",
		"shakenCaSubjectCN.pem":                  "cert_subject",
		"shakenCaSubjectWEmail.pem":              "cert_subject",
		"shakenCaSubjectWithoutC.pem":            "cert_subject",
		"shakenCaSubjectWithoutCN.pem":           "cert_subject",
		"shakenCaSubjectWithoutO.pem":            "cert_subject",
		"shakenSubjectAmbiguous.pem":             "cert_subject",
		"shakenSubjectCN.pem":                    "cert_subject",
		"shakenSubjectWEmail.pem":                "cert_subject",
		"shakenSubjectWSerialNumberMultiple.pem": "cert_subject",
		"shakenSubjectWithoutC.pem":              "cert_subject",
		"shakenSubjectWithoutCN.pem":             "cert_subject",
		"shakenSubjectWithoutO.pem":              "cert_subject",
		"shakenSubjectWithoutSerialNumber.pem":   "cert_subject",
		"subjectEmpty.pem":                       "cert_subject",
		"subjectEmptyNoSAN.pem":                  "cert_subject",
		"shakenCaSerialLess64bit.pem":            "cert_serial",
		"shakenSerialNumberLess64bit.pem":        "cert_serial",
		"shakenSerialNumberPadded.pem":           "cert_serial",
		"shakenRootAKIWrong.pem":                 "cert_aki",
		"shakenRootNoAKI.pem":                    "cert_aki",
		"shakenCRLPointFile.pem":                 "cert_crl",
		"shakenCRLPointGet.pem":                  "cert_crl",
		"shakenCRLPointMultiple.pem":             "cert_crl",
		"shakenCRLPointUnreachable.pem":          "cert_crl",
		"shakenRootCertPolicy.pem":               "cert_policies",
		"shakenCaExtOdd.pem":                     "cert_extension",
	}
	for file, want := range cases {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"shaken", "lint", "--structure", dir + file}, &out, io.Discard); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		got := out.String()
		if want == "ok" && got != dir+file+": ok\n" {
			t.Errorf("%s: baseline reported %q", file, got)
		}
		if want != "ok" && !strings.Contains(got, ": "+want+" (") {
			t.Errorf("%s: output %q lacks %s", file, got, want)
		}
	}
	// Negative serial numbers: Go refuses them, the verb says unreadable.
	for _, file := range []string{"shakenCaSerialNegative.pem", "shakeCaSerialNegative.pem", "shakenSerialNumberNegative.pem"} {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"shaken", "lint", dir + file}, &out, io.Discard); err == nil || !strings.Contains(out.String(), ": unreadable: ") {
			t.Errorf("%s: unreadable certificate not reported (%v, %q)", file, err, out.String())
		}
	}
}

// TestSharedVelocity runs two nodes (separate SQLite stores, the same master
// key) sharing velocity windows through Redis: a caller's calls on node A
// raise the velocity markers of its next call on node B.
func TestSharedVelocity(t *testing.T) {
	const redis = "127.0.0.1:6379"
	if c, err := net.DialTimeout("tcp", redis, time.Second); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis unreachable at %s: %v", redis, err)
		}
		t.Skipf("Redis unreachable at %s: %v", redis, err)
	} else {
		c.Close()
	}
	mk := filepath.Join(t.TempDir(), "master.key")
	if _, err := seal.GenerateMasterKeyFile(mk); err != nil {
		t.Fatal(err)
	}
	node := func() (*Main, string) {
		c := Config{Data: t.TempDir(), MasterKeyFile: mk}
		c.HTTP.Addr = "127.0.0.1:0"
		c.Engine.Redis = redis
		c.defaults()
		m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
		if err := m.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		_, key, err := m.Node.CreateTenant(t.Context(), "bank", "", "GB")
		if err != nil {
			t.Fatal(err)
		}
		return m, key
	}
	a, keyA := node()
	b, keyB := node()
	caller := fmt.Sprintf("+4474009%05d", time.Now().UnixNano()%100000) // fresh per run
	now := time.Now().UTC()
	for i := range 4 {
		post(t, "http://"+a.Addr+"/v1/screen", keyA, fmt.Sprintf(`{"caller":%q,"dialled":"+442079460123","started_at":%q}`,
			caller, now.Add(time.Duration(i-5)*time.Second).Format(time.RFC3339Nano)))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := post(t, "http://"+b.Addr+"/v1/screen", keyB, fmt.Sprintf(`{"caller":%q,"dialled":"+442079460123","started_at":%q}`,
			caller, now.Format(time.RFC3339Nano)))
		for _, mk := range v["markers"].([]any) {
			if mk.(map[string]any)["code"] == "velocity.caller_minute" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B never saw node A's calls: %v", v["markers"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
