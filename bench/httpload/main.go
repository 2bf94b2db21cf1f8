// Command httpload drives POST /v1/screen of a running ringfence with
// simulated calls from a fixed number of keep-alive connections (closed
// loop) for a fixed time, then prints throughput and latency percentiles.
// It is the load generator of bench/http.sh.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfence/ringfence/sim"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "server URL")
	key := flag.String("key", os.Getenv("RINGFENCE_KEY"), "tenant API key")
	conns := flag.Int("conns", 32, "concurrent connections")
	dur := flag.Duration("duration", 20*time.Second, "how long to send")
	warm := flag.Duration("warmup", 3*time.Second, "send this long first, unmeasured")
	calls := flag.Int("calls", 50000, "distinct simulated calls to cycle through")
	dump := flag.String("dump", "", "only set the tenant up and write the request bodies, one per line, to this file (for wrk)")
	flag.Parse()
	if *key == "" {
		fmt.Fprintln(os.Stderr, "httpload: --key is required")
		os.Exit(2)
	}
	if err := run(*url, *key, *conns, *dur, *warm, *calls, *dump); err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", err)
		os.Exit(1)
	}
}

func run(url, key string, conns int, dur, warm time.Duration, n int, dump string) error {
	cfg := sim.Config{Seed: 7, Calls: n, Span: 7 * 24 * time.Hour, Start: time.Now().Add(-7 * 24 * time.Hour), LabelShare: -1}
	traffic := sim.Generate(cfg)
	if err := (&sim.Client{URL: url, Key: key}).Setup(context.Background(), traffic); err != nil {
		return err
	}
	bodies := make([][]byte, len(traffic.Calls))
	for i, c := range traffic.Calls {
		bodies[i], _ = json.Marshal(c.Request)
	}
	if dump != "" {
		return os.WriteFile(dump, append(bytes.Join(bodies, []byte("\n")), '\n'), 0o600)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}, Timeout: 10 * time.Second}

	var next, failed atomic.Int64
	var measuring atomic.Bool
	lat := make([][]time.Duration, conns)
	ctx, cancel := context.WithTimeout(context.Background(), warm+dur)
	defer cancel()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				b := bodies[int(next.Add(1))%len(bodies)]
				req, _ := http.NewRequest("POST", url+"/v1/screen", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if !measuring.Load() {
					continue
				}
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	time.Sleep(warm)
	measuring.Store(true)
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) == 0 {
		return fmt.Errorf("no successful request (%d failed)", failed.Load())
	}
	p := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	fmt.Printf("conns=%d  requests=%d  failed=%d  rate=%.0f/s  p50=%v  p90=%v  p99=%v  max=%v\n",
		conns, len(all), failed.Load(), float64(len(all))/elapsed.Seconds(),
		p(0.5).Round(time.Microsecond), p(0.9).Round(time.Microsecond), p(0.99).Round(time.Microsecond), all[len(all)-1].Round(time.Microsecond))
	return nil
}
