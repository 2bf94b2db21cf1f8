package accesslog

import (
	"net/http"
	"net/netip"
)

// Middleware returns a handler that serves next and logs each request to w as
// an HTTP entry: the pseudonymised client (from r.RemoteAddr; a proxy's
// forwarding headers are not trusted here), method, route, status, duration
// by w's clock and response body bytes. route names the request's route
// template; when nil, the URL path is used (cut at the query and with long
// digit runs masked, see Entry). The ResponseWriter passed to next unwraps
// (http.ResponseController) to the original, so flushing and hijacking work.
func Middleware(next http.Handler, w *Writer, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := w.now()
		rec := &recorder{ResponseWriter: rw}
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			var name string
			if route != nil {
				name = route(r)
			} else {
				name = r.URL.Path
			}
			end := w.now()
			w.Log(clientAddr(r.RemoteAddr), Entry{
				Time:       start,
				Kind:       HTTP,
				Method:     r.Method,
				Route:      name,
				Status:     status,
				DurationUS: end.Sub(start).Microseconds(),
				Bytes:      rec.bytes,
			})
		}()
		next.ServeHTTP(rec, r)
	})
}

// clientAddr parses "host:port" or a bare address; the zero Addr when it
// cannot.
func clientAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr()
	}
	a, _ := netip.ParseAddr(remote)
	return a
}

// recorder captures the status and the body size.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush sends buffered data to the client when the underlying writer can.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}
