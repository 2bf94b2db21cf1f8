// Package accesslog writes access logs for the HTTP and SIP front ends that
// never hold a raw client address, a query string or a phone number, and
// purges access and error logs after their retention (7 days).
package accesslog

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Pseudonymise returns a client address fit for a log: the network of an
// IPv4 address truncated to /24, or of an IPv6 address to /48, then '#' and
// the first 8 bytes, in hex, of HMAC-SHA-256 under key of the full address
// (16 bytes for IPv6, 4 for IPv4), so that entries from one client can be
// correlated without the address. An IPv4-mapped IPv6 address is treated as
// the IPv4 address and an IPv6 zone is dropped. An invalid address gives
// "unknown". Example: "192.0.2.0/24#a1b2c3d4e5f6a7b8".
//
// The truncated prefix alone is not personal data in most cases; the hash
// is, while the key exists: rotate or destroy the key to sever it.
func Pseudonymise(ip netip.Addr, key []byte) string {
	return pseudonymise(ip, hmac.New(sha256.New, key))
}

// pseudonymise is Pseudonymise with m, a reset HMAC-SHA-256 under the key.
func pseudonymise(ip netip.Addr, m hash.Hash) string {
	if !ip.IsValid() {
		return "unknown"
	}
	ip = ip.Unmap().WithZone("")
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	prefix, _ := ip.Prefix(bits) // cannot fail: bits is within the family's length
	b := ip.As16()
	if ip.Is4() {
		m.Write(b[12:])
	} else {
		m.Write(b[:])
	}
	var sum [sha256.Size]byte
	return prefix.String() + "#" + hex.EncodeToString(m.Sum(sum[:0])[:8])
}

// appendEntry appends e as one JSON line, the same bytes json.Marshal and a
// newline would give (TestAppendEntry checks), without reflection.
func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":`...)
	b = appendString(b, string(e.Kind))
	b = append(b, `,"client":`...)
	b = appendString(b, e.Client)
	b = append(b, `,"method":`...)
	b = appendString(b, e.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, e.Route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, e.DurationUS, 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string. Plain ASCII without characters
// json.Marshal escapes is copied; anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // cannot fail for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Kind says which front end an entry comes from.
type Kind string

const (
	HTTP Kind = "http"
	SIP  Kind = "sip"
)

// Entry is one access-log line. Route is a route template ("/v1/cases/{id}")
// or, for SIP, a fixed name for the handler ("invite"); never a raw path, a
// request URI or a header value, which can carry phone numbers. As a last
// defence the Writer cuts Route at '?' or ';' and masks runs of 6 or more
// digits.
type Entry struct {
	Time       time.Time `json:"time"`
	Kind       Kind      `json:"kind"`
	Client     string    `json:"client"` // set by the Writer from the address given to Log
	Method     string    `json:"method"`
	Route      string    `json:"path"`
	Status     int       `json:"status"`
	DurationUS int64     `json:"duration_us"`
	Bytes      int64     `json:"bytes"`
}

// Config is a Writer's settings. Zero values are useful defaults except Dir
// and Key.
type Config struct {
	Dir string // where the daily files go; created mode 0700 if missing
	// Key keys the client-address hash (see Pseudonymise); at least 16 bytes.
	Key []byte
	// Now is the clock; time.Now when nil. An entry's file is chosen by
	// its UTC date.
	Now func() time.Time
	// FlushEvery is the longest an entry waits in the buffer; 1 s when zero.
	// Negative disables the background flush (tests flush by hand).
	FlushEvery time.Duration
	// BufferSize flushes early when the buffer grows past it; 64 KiB when zero.
	BufferSize int
}

// Writer appends JSON lines to daily files <Dir>/access-YYYY-MM-DD.log
// (mode 0600). Entries are buffered and written at least every FlushEvery,
// when the buffer fills, when the UTC date changes, and on Flush and Close.
// Safe for concurrent use. Open starts one goroutine that Close stops.
type Writer struct {
	dir  string
	macs sync.Pool // of hash.Hash: HMAC-SHA-256 under the key, reset
	// clients memoises pseudonyms: a server's clients (an SBC, an IVR
	// platform) are few and call many times. Emptied when it reaches
	// maxClients.
	clients sync.Map // netip.Addr -> string
	nclient atomic.Int32
	now     func() time.Time
	limit   int

	mu   sync.Mutex
	buf  bytes.Buffer
	day  string // date of the entries in buf and of f
	f    *os.File
	err  error // first write error since the last Flush
	done bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open creates cfg.Dir if needed and returns a Writer. It returns an error
// when Dir is empty, the key is shorter than 16 bytes or the directory cannot
// be made.
func Open(cfg Config) (*Writer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("accesslog: no directory")
	}
	if len(cfg.Key) < 16 {
		return nil, errors.New("accesslog: key shorter than 16 bytes")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("accesslog: %w", err)
	}
	w := &Writer{
		dir:   cfg.Dir,
		now:   cfg.Now,
		limit: cfg.BufferSize,
		stop:  make(chan struct{}),
	}
	key := append([]byte(nil), cfg.Key...)
	w.macs.New = func() any { return hmac.New(sha256.New, key) }
	if w.now == nil {
		w.now = time.Now
	}
	if w.limit <= 0 {
		w.limit = 64 << 10
	}
	every := cfg.FlushEvery
	if every == 0 {
		every = time.Second
	}
	if every > 0 {
		w.wg.Add(1)
		go w.flushLoop(every)
	}
	return w, nil
}

func (w *Writer) flushLoop(every time.Duration) {
	defer w.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.Flush() // a failure is kept and reported by the next Flush or Close
		}
	}
}

// Now returns the Writer's clock reading.
func (w *Writer) Now() time.Time { return w.now() }

// Log appends e, with e.Client set to the pseudonym of client and e.Time to
// the clock's reading when zero. After Close it does nothing. Write errors
// are kept and returned by the next Flush or Close.
func (w *Writer) Log(client netip.Addr, e Entry) {
	e.Client = w.pseudonym(client)
	if e.Time.IsZero() {
		e.Time = w.now()
	}
	e.Time = e.Time.UTC()
	e.Route = cleanRoute(e.Route)
	e.Method = cleanRoute(e.Method)
	var scratch [256]byte
	line := appendEntry(scratch[:0], &e)
	day := e.Time.Format(time.DateOnly)

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	if day != w.day {
		w.flushLocked()
		if w.f != nil {
			w.keep(w.f.Close())
			w.f = nil
		}
		w.day = day
	}
	w.buf.Write(line)
	if w.buf.Len() >= w.limit {
		w.flushLocked()
	}
}

// maxClients bounds the memoised pseudonyms.
const maxClients = 4096

// pseudonym is Pseudonymise under the Writer's key, memoised.
func (w *Writer) pseudonym(client netip.Addr) string {
	if p, ok := w.clients.Load(client); ok {
		return p.(string)
	}
	m := w.macs.Get().(hash.Hash)
	p := pseudonymise(client, m)
	m.Reset()
	w.macs.Put(m)
	if w.nclient.Add(1) > maxClients {
		w.clients.Clear()
		w.nclient.Store(1)
	}
	w.clients.Store(client, p)
	return p
}

// Flush writes buffered entries to their file and returns the first error
// since the last Flush, if any.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	err := w.err
	w.err = nil
	return err
}

// Close stops the background flush, writes what is buffered, closes the file
// and returns the first error not yet reported. Log after Close does nothing;
// Close twice returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return nil
	}
	w.done = true
	w.mu.Unlock()
	close(w.stop)
	w.wg.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	if w.f != nil {
		w.keep(w.f.Close())
		w.f = nil
	}
	return w.err
}

func (w *Writer) keep(err error) {
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("accesslog: %w", err)
	}
}

// flushLocked writes buf to the file for w.day, opening it if needed. On a
// write error the buffered entries are dropped (a log must not grow memory
// without bound) and the error kept.
func (w *Writer) flushLocked() {
	if w.buf.Len() == 0 {
		return
	}
	defer w.buf.Reset()
	if w.f == nil {
		f, err := os.OpenFile(filepath.Join(w.dir, "access-"+w.day+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			w.keep(err)
			return
		}
		w.f = f
	}
	_, err := w.f.Write(w.buf.Bytes())
	w.keep(err)
}

// cleanRoute cuts s at '?' or ';' (query strings and URI parameters can carry
// numbers), masks every run of 6 or more digits as "{n}", and drops control
// characters.
func cleanRoute(s string) string {
	if i := strings.IndexAny(s, "?;#"); i >= 0 {
		s = s[:i]
	}
	clean := true
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			run++
			if run >= 6 {
				clean = false
				break
			}
			continue
		}
		run = 0
		if c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c >= '0' && c <= '9' {
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j-i >= 6 {
				b.WriteString("{n}")
			} else {
				b.WriteString(s[i:j])
			}
			i = j
			continue
		}
		if c >= 0x20 && c != 0x7f {
			b.WriteByte(c)
		}
		i++
	}
	return b.String()
}

// Purge deletes the access and error log files in dir (access-YYYY-MM-DD.log,
// error-YYYY-MM-DD.log) all of whose entries are older than keep at now: a
// file for UTC date D goes once D+1 00:00 UTC is at or before now-keep. So an
// entry lives at most keep plus one day plus the purge interval. The date is
// read from the name, not the file's times. Other files are left alone. It
// returns how many files it removed and every error met (errors.Join), going
// on past each.
func Purge(dir string, now time.Time, keep time.Duration) (removed int, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("accesslog: purge: %w", err)
	}
	cutoff := now.Add(-keep)
	var errs []error
	for _, e := range entries {
		day, ok := logDate(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		if day.AddDate(0, 0, 1).After(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("accesslog: purge: %w", err))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// logDate parses the UTC date from "access-YYYY-MM-DD.log" or
// "error-YYYY-MM-DD.log".
func logDate(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, "access-")
	if !ok {
		if rest, ok = strings.CutPrefix(name, "error-"); !ok {
			return time.Time{}, false
		}
	}
	date, ok := strings.CutSuffix(rest, ".log")
	if !ok || len(date) != len(time.DateOnly) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.DateOnly, date)
	return t, err == nil
}
