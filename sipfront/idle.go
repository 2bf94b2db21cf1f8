package sipfront

import (
	"net"
	"time"
)

// idleListener gives every accepted connection a read deadline of idle
// from each read (Config.Idle), so an idle or half-open peer, or one that
// never finishes its TLS handshake, does not hold a connection and its
// goroutine for ever.
type idleListener struct {
	net.Listener
	idle time.Duration
}

func (l idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return idleConn{Conn: c, idle: l.idle}, nil
}

type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c idleConn) Read(b []byte) (int, error) {
	if err := c.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}
