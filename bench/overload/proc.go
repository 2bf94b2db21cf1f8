package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pace calls send(from, to) with the calls due by now, in order, so that
// n calls go out at rate per second from the start, whatever happens to
// them: the open loop. It returns when all are sent and how long that
// took. A sender that falls behind catches up in larger batches; the
// elapsed time then shows it.
func pace(rate, n int, send func(from, to int)) time.Duration {
	start := time.Now()
	sent := 0
	for sent < n {
		due := min(n, int(time.Since(start).Seconds()*float64(rate))+1)
		if due > sent {
			send(sent, due)
			sent = due
			continue
		}
		time.Sleep(200 * time.Microsecond)
	}
	return time.Since(start)
}

// rss samples the server's resident set size.
type rss struct {
	o options
}

func rssReader(o options) *rss { return &rss{o: o} }

// watch samples every 100 ms until the returned function is called,
// which returns the largest value seen (0 if none could be read).
func (r *rss) watch() func() int64 {
	var mu sync.Mutex
	var top int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		if v := r.read(); v > 0 {
			mu.Lock()
			top = max(top, v)
			mu.Unlock()
		}
	}
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() int64 {
		close(done)
		wg.Wait()
		sample()
		mu.Lock()
		defer mu.Unlock()
		return top
	}
}

// read returns the server's RSS in bytes: VmRSS from /proc with -pid,
// else process_resident_memory_bytes from /metrics; 0 if unknown.
func (r *rss) read() int64 {
	if r.o.pid > 0 {
		return procRSS(r.o.pid)
	}
	c := http.Client{Timeout: time.Second}
	res, err := c.Get(r.o.url + "/metrics")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(res.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f)
		}
	}
	return 0
}

func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// histogram reads the cumulative buckets of a Prometheus histogram from
// the server's /metrics: upper bound (+Inf as math.Inf) to count. nil if
// it cannot be read.
func histogram(url, name string) map[float64]float64 {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(url + "/metrics")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	out := map[float64]float64{}
	sc := bufio.NewScanner(io.LimitReader(res.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := name + `_bucket{le="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		bound, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		n, err2 := strconv.ParseFloat(strings.TrimSpace(count), 64)
		if err1 == nil && err2 == nil {
			out[bound] = n
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// quantileBound returns the upper bound of the bucket holding quantile q
// of the observations between two readings of a histogram, or NaN.
func quantileBound(before, after map[float64]float64, q float64) float64 {
	if after == nil {
		return math.NaN()
	}
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	total := after[math.Inf(1)] - before[math.Inf(1)]
	if total <= 0 {
		return math.NaN()
	}
	for _, b := range bounds {
		if after[b]-before[b] >= q*total {
			return b
		}
	}
	return math.Inf(1)
}

// cpuTicks returns the process's user+system clock ticks.
func cpuTicks(pid int) (int64, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name is in parentheses and may hold spaces: count
	// fields after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k, true
}

// settle waits (at most 30 s) until the server uses under 10% of a core
// over half a second, so the recorder's backlog from the last step does
// not land on the next one.
func settle(pid int) {
	for range 60 {
		t0, ok := cpuTicks(pid)
		time.Sleep(500 * time.Millisecond)
		t1, ok1 := cpuTicks(pid)
		if !ok || !ok1 || t1-t0 <= 5 {
			return
		}
	}
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// udpDrops returns the drops counter of the UDP socket bound to port
// (/proc/net/udp and udp6), or -1.
func udpDrops(port int) int64 {
	total, found := int64(0), false
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 13 {
				continue
			}
			_, p, ok := strings.Cut(fs[1], ":")
			if !ok {
				continue
			}
			if v, err := strconv.ParseInt(p, 16, 32); err != nil || int(v) != port {
				continue
			}
			d, err := strconv.ParseInt(fs[len(fs)-1], 10, 64)
			if err == nil {
				total += d
				found = true
			}
		}
	}
	if !found {
		return -1
	}
	return total
}
