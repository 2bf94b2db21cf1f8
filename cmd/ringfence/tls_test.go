package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringfence/ringfence/seal"
)

// TestSelfSigned checks the demo's generated pair: a private key only its
// owner can read, a certificate clients can verify for the loopback names,
// and the same pair reused on the next start.
func TestSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	certFile, keyFile, pool, err := selfSigned(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v, %v", fi.Mode(), err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	again, _, _, err := selfSigned(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(again); !bytes.Equal(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Leaf.Raw})) {
		t.Error("a valid pair was replaced")
	}
}

// TestHTTPS serves the API over TLS: TLS 1.0 and 1.1 handshakes are
// refused, TLS 1.2 and 1.3 answer, and a TLS 1.2 client offering only a
// CBC suite is refused.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	c := Config{Data: dir}
	c.HTTP.Addr = "127.0.0.1:0"
	var roots *x509.CertPool
	var err error
	if c.HTTP.CertFile, c.HTTP.KeyFile, roots, err = selfSigned(dir); err != nil {
		t.Fatal(err)
	}
	c.defaults()
	if _, err := seal.GenerateMasterKeyFile(c.MasterKeyFile); err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: c, Log: slog.New(slog.DiscardHandler)}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, tc := range []struct {
		name   string
		conf   *tls.Config
		refuse bool
	}{
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, true},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, true},
		{"TLS 1.2 CBC only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, true},
		{"TLS 1.2", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}, false},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := tc.conf
			conf.RootCAs = roots
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second}
			resp, err := hc.Get("https://" + m.Addr + "/healthz")
			if tc.refuse {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("%s handshake accepted", tc.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: /healthz %d", tc.name, resp.StatusCode)
			}
		})
	}
}
