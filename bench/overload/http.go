package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfence/ringfence/sim"
)

// httpGen posts the simulated calls to /v1/screen, each request on its
// own goroutine at its scheduled time, over keep-alive HTTP/1.1
// connections: an idle one if there is one, else a new one (as many
// independent IVR clients would), up to -max-outstanding. It writes
// prepared request bytes and reads the answer with http.ReadResponse:
// net/http's client costs about as much CPU per request as the server
// does, and the generator shares the machine with it.
type httpGen struct {
	o        options
	addr     string   // host:port
	reqs     [][]byte // each call's request, ready to write
	routes   []string
	failOpen map[string]bool
	idle     chan *httpConn
}

type httpConn struct {
	c net.Conn
	r *bufio.Reader
}

func newHTTPGen(o options, calls []sim.Call, failOpen map[string]bool) (*httpGen, error) {
	u, err := url.Parse(o.url)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http://host:port (the generator speaks plain HTTP/1.1)", o.url)
	}
	g := &httpGen{o: o, addr: u.Host, failOpen: failOpen, idle: make(chan *httpConn, o.maxOut)}
	for _, c := range calls {
		body, err := json.Marshal(c.Request)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST /v1/screen HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			u.Host, o.key, len(body))
		b.Write(body)
		g.reqs = append(g.reqs, b.Bytes())
		g.routes = append(g.routes, c.Request.IngressRoute)
	}
	return g, nil
}

func (g *httpGen) close() {
	for {
		select {
		case c := <-g.idle:
			c.c.Close()
		default:
			return
		}
	}
}

func (g *httpGen) step(rate int, d time.Duration) (*result, error) {
	n := int(float64(rate) * d.Seconds())
	r := &result{proto: "http", offered: rate, drops: -1, serverP99: math.NaN()}
	var mu sync.Mutex // guards r's counts and latencies
	var outstanding atomic.Int64
	var wg sync.WaitGroup
	r.elapsed = pace(rate, n, func(from, to int) {
		for i := from; i < to; i++ {
			r.sent++
			if outstanding.Load() >= int64(g.o.maxOut) {
				mu.Lock()
				r.n[notSent]++
				mu.Unlock()
				continue
			}
			outstanding.Add(1)
			wg.Go(func() {
				defer outstanding.Add(-1)
				o, lat, wrong := g.post(i)
				mu.Lock()
				defer mu.Unlock()
				r.n[o]++
				if wrong {
					r.wrong++
				}
				switch o {
				case scored:
					r.scored = append(r.scored, lat)
				case unscored, rejected:
					r.policy = append(r.policy, lat)
				}
			})
		}
	})
	wg.Wait()
	return r, nil
}

// conn returns an idle connection, or a new one.
func (g *httpGen) conn(deadline time.Time) (*httpConn, error) {
	select {
	case c := <-g.idle:
		return c, nil
	default:
	}
	c, err := net.DialTimeout("tcp", g.addr, time.Until(deadline))
	if err != nil {
		return nil, err
	}
	return &httpConn{c: c, r: bufio.NewReaderSize(c, 4096)}, nil
}

// post sends call i and classifies the answer; wrong says the answer
// contradicts the route's failure policy. A connection that failed or
// timed out is closed; a good one goes back to the idle pool.
func (g *httpGen) post(i int) (int, time.Duration, bool) {
	k := i % len(g.reqs)
	t0 := time.Now()
	deadline := t0.Add(g.o.wait)
	c, err := g.conn(deadline)
	if err != nil {
		return lost, 0, false
	}
	c.c.SetDeadline(deadline)
	res, body, err := roundTrip(c, g.reqs[k])
	lat := time.Since(t0)
	keep := err == nil && !res.Close
	if keep {
		select {
		case g.idle <- c:
		default:
			keep = false
		}
	}
	if !keep {
		c.c.Close()
	}
	if err != nil {
		return lost, 0, false
	}
	open := g.failOpen[g.routes[k]]
	switch res.StatusCode {
	case http.StatusOK:
		var v struct {
			Action string `json:"action"`
		}
		if json.Unmarshal(body, &v) != nil || v.Action == "" {
			return other, lat, false
		}
		if v.Action == "unscored" {
			return unscored, lat, !open
		}
		return scored, lat, false
	case http.StatusServiceUnavailable:
		return rejected, lat, open || res.Header.Get("Retry-After") == ""
	case http.StatusTooManyRequests:
		return tooMany, lat, false
	}
	return other, lat, false
}

func roundTrip(c *httpConn, req []byte) (*http.Response, []byte, error) {
	if _, err := c.c.Write(req); err != nil {
		return nil, nil, err
	}
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	return res, body, nil
}
