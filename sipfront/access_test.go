package sipfront

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/accesslog"
)

// TestAccessLog checks that every answered request is in the access log,
// with the client's address pseudonymised, on both paths (UDP fast path
// and TCP through sipgo), and an absorbed ACK is not.
func TestAccessLog(t *testing.T) {
	dir := t.TempDir()
	w, err := accesslog.Open(accesslog.Config{Dir: dir, Key: []byte("0123456789abcdef0123456789abcdef"), FlushEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := startSIP(t, Config{Access: w}, detScreener())
	for _, network := range []string{"udp", "tcp"} {
		addr := srv.UDPAddr()
		if network == "tcp" {
			addr = srv.TCPAddr()
		}
		c := dialSIP(t, network, addr)
		tp := strings.ToUpper(network)
		if res := c.roundTrip(invite{transport: tp, callID: "acc-" + network}.String()); res == nil || res.StatusCode != 302 {
			t.Fatalf("%s INVITE: %v", network, res)
		}
		c.send(invite{transport: tp, method: "ACK", callID: "acc-" + network}.String())
		if res := c.roundTrip(invite{transport: tp, method: "OPTIONS", callID: "opt-" + network}.String()); res == nil || res.StatusCode != 200 {
			t.Fatalf("%s OPTIONS: %v", network, res)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "access-*.log"))
	var log strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		log.Write(b)
	}
	got := log.String()
	if n := strings.Count(got, `"kind":"sip"`); n != 4 {
		t.Errorf("access log has %d SIP entries, want 4 (INVITE and OPTIONS on UDP and TCP):\n%s", n, got)
	}
	for _, want := range []string{`"method":"INVITE"`, `"method":"OPTIONS"`, `"status":302`, `"status":200`, `"client":"127.0.0.0/24#`} {
		if !strings.Contains(got, want) {
			t.Errorf("access log lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "127.0.0.1") || strings.Contains(got, `"method":"ACK"`) {
		t.Errorf("access log holds a raw address or the absorbed ACK:\n%s", got)
	}
}
