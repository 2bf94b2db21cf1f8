package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one ringfence server's HTTP API as one tenant. Safe for
// concurrent use.
type Client struct {
	URL  string       // base URL, e.g. "http://localhost:8080"
	Key  string       // the tenant's API key, sent as a bearer token
	HTTP *http.Client // nil: a client with timeouts and a keep-alive pool sized for the work
}

// Setup installs the traffic's routes and its do-not-originate list on the
// server. Re-running it is harmless: routes are replaced, and a number
// already on the list (409 Conflict) is not an error. It returns the first
// failure.
func (c *Client) Setup(ctx context.Context, t Traffic) error {
	hc := c.client(2)
	for _, r := range t.Routes {
		if err := c.do(ctx, hc, http.MethodPut, "/v1/routes/"+url.PathEscape(r.ID), r, nil); err != nil {
			return fmt.Errorf("sim: setup route %s: %w", r.ID, err)
		}
	}
	for _, n := range t.DNO {
		entry := listEntry{Number: n, Reason: "published contact-centre number: inbound only"}
		err := c.do(ctx, hc, http.MethodPost, "/v1/lists/dno", entry, nil)
		var apiErr *APIError
		if err != nil && !(errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict) {
			return fmt.Errorf("sim: setup dno list: %w", err)
		}
	}
	return nil
}

type listEntry struct {
	Number string `json:"number"`
	Reason string `json:"reason"`
}

// APIError is a non-2xx answer from the server.
type APIError struct {
	Status  int    // HTTP status
	Code    string // the error code from the body, if any
	Message string // the error message from the body, or the start of the body
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// client returns c.HTTP, or a new client keeping up to conns idle
// connections to the server.
func (c *Client) client(conns int) *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends body as JSON and decodes a 2xx answer into out (when not nil).
// A non-2xx answer is an *APIError.
func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Key)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &APIError{Status: resp.StatusCode}
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		} else {
			e.Message = string(data[:min(len(data), 200)])
		}
		return fmt.Errorf("%s %s: %w", method, path, e)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
		}
	}
	return nil
}
