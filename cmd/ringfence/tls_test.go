package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringfence/ringfence/seal"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ringfence test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestHTTPS serves the API over TLS: TLS 1.0 and 1.1 handshakes are
// refused, TLS 1.2 and 1.3 answer, and a TLS 1.2 client offering only a
// CBC suite is refused.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	c := Config{Data: dir}
	c.HTTP.Addr = "127.0.0.1:0"
	c.HTTP.CertFile, c.HTTP.KeyFile = selfSigned(t, dir)
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
			conf.InsecureSkipVerify = true // a self-signed test certificate
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
