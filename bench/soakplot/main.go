// Command soakplot turns the CSV of bench/soak.sh into a self-contained SVG
// (small multiples over time: memory, goroutines, file descriptors, latency,
// rate, ...) and prints a text summary that puts a number on "flat": for
// each series the median of the first and of the last window (10 minutes,
// or a third of a shorter run), their ratio, and the least-squares slope
// per hour, over the whole run and after the first window (start-up, caches
// and velocity windows filling, is not drift).
//
// Usage: soakplot -in soak.csv -svg soak.svg [-title TEXT] [-window 10m] >summary.txt
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

func main() {
	in := flag.String("in", "docs/soak/soak.csv", "CSV written by bench/soak.sh")
	svg := flag.String("svg", "", "SVG to write (empty: none)")
	title := flag.String("title", "ringfence soak", "title of the plot")
	window := flag.Duration("window", 10*time.Minute, "length of the first and last windows compared")
	flag.Parse()
	if err := run(*in, *svg, *title, *window, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soakplot:", err)
		os.Exit(1)
	}
}

func run(in, svgPath, title string, window time.Duration, w io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	d, err := readCSV(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if svgPath != "" {
		out, err := os.Create(svgPath)
		if err != nil {
			return err
		}
		if err := writeSVG(out, d, title); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
	return writeSummary(w, d, window.Seconds())
}

// data is the CSV by column: t holds the sample times (s since the start),
// cols the other columns, NaN where a sample has no value.
type data struct {
	t    []float64
	cols map[string][]float64
}

func readCSV(r io.Reader) (*data, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 {
		return nil, errors.New("no samples yet (a header and at least one row are needed)")
	}
	head := rows[0]
	if head[0] != "t_s" {
		return nil, fmt.Errorf("first column is %q, want t_s", head[0])
	}
	d := &data{cols: make(map[string][]float64)}
	for n, row := range rows[1:] {
		t, err := strconv.ParseFloat(row[0], 64)
		if err != nil {
			return nil, fmt.Errorf("row %d: t_s %q: %w", n+2, row[0], err)
		}
		d.t = append(d.t, t)
		for i, name := range head[1:] {
			v := math.NaN()
			if s := row[i+1]; s != "" {
				if v, err = strconv.ParseFloat(s, 64); err != nil {
					return nil, fmt.Errorf("row %d: %s %q: %w", n+2, name, s, err)
				}
			}
			d.cols[name] = append(d.cols[name], v)
		}
	}
	return d, nil
}

// series is one column as the summary and the plot name it.
type series struct {
	col, label string
}

// summarised are the series the summary reports, in order.
var summarised = []series{
	{"rss_mb", "RSS (MB)"},
	{"heap_mb", "Go heap in use (MB)"},
	{"goroutines", "goroutines"},
	{"fds", "open file descriptors"},
	{"threads", "OS threads"},
	{"cpu_pct", "server CPU (% of a core)"},
	{"queue_depth", "recorder queue depth"},
	{"achieved_per_s", "answered calls/s (sipp)"},
	{"committed_per_s", "records committed/s"},
	{"sipp_p50_ms", "sipp p50 (ms, bucket edge)"},
	{"sipp_p99_ms", "sipp p99 (ms, bucket edge)"},
	{"reply_p50_ms", "SIP reply p50 (ms, server)"},
	{"reply_p99_ms", "SIP reply p99 (ms, server)"},
	{"screen_p50_ms", "screening p50 (ms, server)"},
	{"screen_p99_ms", "screening p99 (ms, server)"},
	{"data_mb", "data directory (MB)"},
}

func writeSummary(w io.Writer, d *data, window float64) error {
	span := d.t[len(d.t)-1] - d.t[0]
	if span < 3*window {
		window = span / 3
	}
	fmt.Fprintf(w, "%d samples over %.0f s; first window: the first %.0f s, last window: the last %.0f s\n",
		len(d.t), span, window, window)
	fmt.Fprintf(w, "(medians of the samples in each window; slope by least squares, per hour; ratio last/first: 1.00 is flat)\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "series\tfirst\tlast\tratio\tslope/h\tslope/h after first window\t")
	start, end := d.t[0]+window, d.t[len(d.t)-1]-window
	for _, s := range summarised {
		v, ok := d.cols[s.col]
		if !ok {
			continue
		}
		first := median(pick(d.t, v, func(t float64) bool { return t <= start }))
		last := median(pick(d.t, v, func(t float64) bool { return t >= end }))
		all := slope(d.t, v, func(float64) bool { return true })
		steady := slope(d.t, v, func(t float64) bool { return t > start })
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", s.label, num(first), num(last), ratio(last, first), signed(all), signed(steady))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntotals over the samples: %s failed calls, %s retransmitted INVITEs (sipp); UDP datagrams dropped by the kernel: %s on ringfence's socket, %s on sipp's;\n",
		total(d, "failed"), total(d, "retrans"), total(d, "rf_udp_drops"), total(d, "sipp_udp_drops"))
	fmt.Fprintf(w, "INVITEs answered without a normal verdict: %s; call records lost: %s (- where this build has no such metric)\n",
		total(d, "degraded"), total(d, "records_lost"))
	return nil
}

// pick returns the values whose time passes keep, NaNs left out.
func pick(t, v []float64, keep func(float64) bool) []float64 {
	var out []float64
	for i := range t {
		if keep(t[i]) && !math.IsNaN(v[i]) {
			out = append(out, v[i])
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// slope is the least-squares slope of v over t (in seconds), per hour, over
// the samples whose time passes keep; NaN with fewer than two.
func slope(t, v []float64, keep func(float64) bool) float64 {
	var n, st, sv, stt, stv float64
	for i := range t {
		if !keep(t[i]) || math.IsNaN(v[i]) {
			continue
		}
		n++
		st += t[i]
		sv += v[i]
		stt += t[i] * t[i]
		stv += t[i] * v[i]
	}
	den := n*stt - st*st
	if n < 2 || den == 0 {
		return math.NaN()
	}
	return (n*stv - st*sv) / den * 3600
}

// total is the sum of a column, "-" when the CSV has no such column or it
// is empty throughout.
func total(d *data, col string) string {
	v, ok := d.cols[col]
	if !ok || len(pick(d.t, v, func(float64) bool { return true })) == 0 {
		return "-"
	}
	return num(sum(v))
}

func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		if !math.IsNaN(x) {
			s += x
		}
	}
	return s
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func signed(v float64) string {
	if !math.IsNaN(v) && v >= 0 {
		return "+" + num(v)
	}
	return num(v)
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "-"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}
