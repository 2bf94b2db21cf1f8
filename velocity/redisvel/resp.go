package redisvel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// conn is a minimal RESP2 client connection: it writes a batch of commands
// and reads their replies in order (pipelining). It is used by one goroutine
// only. Any I/O or protocol error leaves it unusable; the caller closes it.
type conn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
	n  int // commands written and not yet read
}

func dial(addr string, timeout time.Duration) (*conn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("redis dial: %w", err)
	}
	return &conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), w: bufio.NewWriterSize(nc, 64<<10)}, nil
}

func (c *conn) Close() error { return c.nc.Close() }

// send queues one command.
func (c *conn) send(args ...string) {
	c.w.WriteByte('*')
	c.w.WriteString(strconv.Itoa(len(args)))
	c.w.WriteString("\r\n")
	for _, a := range args {
		c.w.WriteByte('$')
		c.w.WriteString(strconv.Itoa(len(a)))
		c.w.WriteString("\r\n")
		c.w.WriteString(a)
		c.w.WriteString("\r\n")
	}
	c.n++
}

// reply is one RESP value. Kind is the type byte: '+', ':', '$', '*', '-'.
// A nil bulk string or array has Nil set.
type reply struct {
	Kind byte
	Int  int64
	Str  string
	Arr  []reply
	Nil  bool
}

// errReply is an error reply from the server (e.g. WRONGTYPE). The
// connection stays usable after one.
type errReply string

func (e errReply) Error() string { return "redis: " + string(e) }

// exec writes the queued commands and reads all their replies, within
// timeout for the whole round trip. The error is an I/O or protocol error;
// error replies are returned as replies of Kind '-'.
func (c *conn) exec(timeout time.Duration) ([]reply, error) {
	if c.n == 0 {
		return nil, nil
	}
	if err := c.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("redis deadline: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return nil, fmt.Errorf("redis write: %w", err)
	}
	out := make([]reply, c.n)
	for i := range out {
		v, err := c.read()
		if err != nil {
			return nil, fmt.Errorf("redis read: %w", err)
		}
		out[i] = v
	}
	c.n = 0
	return out, nil
}

func (c *conn) line() (string, error) {
	b, err := c.r.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	if len(b) < 3 || b[len(b)-2] != '\r' {
		return "", errors.New("malformed reply line")
	}
	return string(b[:len(b)-2]), nil
}

func (c *conn) read() (reply, error) {
	l, err := c.line()
	if err != nil {
		return reply{}, err
	}
	v := reply{Kind: l[0]}
	body := l[1:]
	switch v.Kind {
	case '+', '-':
		v.Str = body
	case ':':
		v.Int, err = strconv.ParseInt(body, 10, 64)
	case '$':
		var n int
		if n, err = strconv.Atoi(body); err != nil || n < 0 {
			v.Nil = err == nil
			break
		}
		buf := make([]byte, n+2)
		if _, err = io.ReadFull(c.r, buf); err == nil {
			v.Str = string(buf[:n])
		}
	case '*':
		var n int
		if n, err = strconv.Atoi(body); err != nil || n < 0 {
			v.Nil = err == nil
			break
		}
		v.Arr = make([]reply, n)
		for i := range v.Arr {
			if v.Arr[i], err = c.read(); err != nil {
				break
			}
		}
	default:
		err = fmt.Errorf("unknown reply type %q", v.Kind)
	}
	return v, err
}
