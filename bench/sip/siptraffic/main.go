// Command siptraffic prepares the SIP benchmark (bench/sip/run.sh): it sets a
// running ringfence's tenant up with the simulator's routes and published
// (DNO) numbers, and writes the simulator's calls as a sipp injection file
// (SEQUENTIAL, then caller;dialled;ingress_route rows), so the SIP benchmark
// screens the same realistic mix of genuine and fraudulent calls as the demo
// and the HTTP benchmark. It also writes the DNO numbers, one per line, for
// the Kamailio baseline's deny list.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ringfence/ringfence/sim"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "ringfence HTTP API")
	key := flag.String("key", os.Getenv("RINGFENCE_KEY"), "tenant API key")
	calls := flag.Int("calls", 100000, "distinct simulated calls (sipp cycles through them)")
	seed := flag.Int64("seed", 7, "simulator seed")
	out := flag.String("out", "calls.csv", "sipp injection file to write")
	dno := flag.String("dno", "", "also write the DNO numbers here, one per line")
	flag.Parse()
	if *key == "" {
		fmt.Fprintln(os.Stderr, "siptraffic: --key is required")
		os.Exit(2)
	}
	if err := run(*url, *key, *calls, *seed, *out, *dno); err != nil {
		fmt.Fprintln(os.Stderr, "siptraffic:", err)
		os.Exit(1)
	}
}

func run(url, key string, calls int, seed int64, out, dno string) error {
	traffic := sim.Generate(sim.Config{
		Seed: seed, Calls: calls, LabelShare: -1,
		Span: 24 * time.Hour, Start: time.Now().Add(-24 * time.Hour),
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := (&sim.Client{URL: url, Key: key}).Setup(ctx, traffic); err != nil {
		return err
	}
	if err := writeLines(out, func(w *bufio.Writer) {
		w.WriteString("SEQUENTIAL\n")
		for _, c := range traffic.Calls {
			r := c.Request
			caller := r.Caller
			if caller == "" {
				caller = "anonymous"
			}
			fmt.Fprintf(w, "%s;%s;%s\n", caller, r.Dialled, r.IngressRoute)
		}
	}); err != nil {
		return err
	}
	if dno == "" {
		return nil
	}
	return writeLines(dno, func(w *bufio.Writer) {
		for _, n := range traffic.DNO {
			fmt.Fprintln(w, n)
		}
	})
}

func writeLines(path string, write func(*bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	write(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
