package sipfront

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestIdleConnections: a TCP connection that stays silent, and a TLS one
// that never starts its handshake, are closed after Config.Idle; one that
// keeps talking stays open.
func TestIdleConnections(t *testing.T) {
	cert, key := selfSigned(t)
	const idle = 300 * time.Millisecond
	srv := startSIP(t, Config{TCP: "127.0.0.1:0", TLS: "127.0.0.1:0", CertFile: cert, KeyFile: key, Idle: idle}, &fakeScreener{})
	closedWithin := func(name string, addr net.Addr) {
		t.Helper()
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a safety bound only
		_, err = c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: a silent connection still open after 20 s", name)
		}
		if err == nil {
			t.Fatalf("%s: the server sent data to a silent connection", name)
		}
	}
	closedWithin("tcp", srv.TCPAddr())
	closedWithin("tls before the handshake", srv.TLSAddr())

	// Talking more often than the idle time keeps a connection.
	c := dialSIP(t, "tcp", srv.TCPAddr())
	for range 4 {
		time.Sleep(idle / 2)
		if res := c.roundTrip(invite{transport: "TCP", method: "OPTIONS"}.String()); res.StatusCode != 200 {
			t.Fatalf("OPTIONS on a live connection: %d", res.StatusCode)
		}
	}
}
