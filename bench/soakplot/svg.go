package main

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// panel is one small multiple: its series share the y axis, which starts at
// zero so that a flat series looks flat and a small drift is not magnified;
// latency panels use a log axis instead, where p50 and a p99 a hundred
// times higher are both readable.
type panel struct {
	title  string
	series []series
	log    bool
}

var panels = []panel{
	{"Memory (MB)", []series{{"rss_mb", "RSS"}, {"heap_mb", "Go heap in use"}}, false},
	{"Goroutines", []series{{"goroutines", "goroutines"}}, false},
	{"Open file descriptors and OS threads", []series{{"fds", "open fds"}, {"threads", "threads"}}, false},
	{"Latency seen by sipp, INVITE to final answer (ms, log; upper edge of sipp's bucket, >=500 drawn as 1000)",
		[]series{{"sipp_p50_ms", "p50"}, {"sipp_p99_ms", "p99"}}, true},
	{"SIP reply time inside ringfence, arrival to answer ready (ms, log)",
		[]series{{"reply_p50_ms", "p50"}, {"reply_p99_ms", "p99"}}, true},
	{"Screening time inside ringfence (ms, log)", []series{{"screen_p50_ms", "p50"}, {"screen_p99_ms", "p99"}}, true},
	{"Rate (calls/s)", []series{{"achieved_per_s", "answered (sipp)"}, {"committed_per_s", "records committed"}}, false},
	{"sipp: failed calls and retransmitted INVITEs, per sample", []series{{"failed", "failed"}, {"retrans", "retransmitted"}}, false},
	{"UDP datagrams dropped by the kernel (receive buffer full), per sample",
		[]series{{"rf_udp_drops", "ringfence's socket"}, {"sipp_udp_drops", "sipp's socket"}}, false},
	{"Unscored, overload and error answers; lost records; per sample",
		[]series{{"degraded", "degraded answers"}, {"records_lost", "records lost"}}, false},
	{"Recorder queue depth (records)", []series{{"queue_depth", "queue depth"}}, false},
	{"Server CPU (% of one core)", []series{{"cpu_pct", "CPU"}}, false},
	{"Data directory (MB): SQLite with every call recorded", []series{{"data_mb", "size"}}, false},
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}

const (
	width   = 960
	left    = 70  // room for the y tick labels
	right   = 20  //
	top     = 44  // room for the title
	plotH   = 120 // height of one panel's plot area
	panelH  = 180 // plot area plus its title and x tick labels
	xLabelH = 30
)

func writeSVG(out io.Writer, d *data, title string) error {
	var shown []panel
	for _, p := range panels {
		if hasData(d, p) {
			shown = append(shown, p)
		}
	}
	height := top + len(shown)*panelH + xLabelH
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(title))

	tmax := d.t[len(d.t)-1]
	unit, div := "s", 1.0
	if tmax >= 300 {
		unit, div = "min", 60
	}
	xt := ticks(0, tmax/div)
	xmax := math.Max(xt[len(xt)-1], tmax/div)
	x := func(t float64) float64 { return left + (t/div)/xmax*(width-left-right) }

	for i, p := range shown {
		y0 := float64(top + i*panelH + 24) // top of this plot area
		fmt.Fprintf(w, `<text x="%d" y="%.0f" font-size="12" font-weight="bold">%s</text>`+"\n", left, y0-8, esc(p.title))
		ymin, ymax := math.Inf(1), 0.0
		for _, s := range p.series {
			for _, v := range d.cols[s.col] {
				if !math.IsNaN(v) {
					ymax = math.Max(ymax, v)
					if v > 0 {
						ymin = math.Min(ymin, v)
					}
				}
			}
		}
		var yt []float64
		var y func(float64) float64
		if p.log {
			yt = decades(ymin, ymax)
			lo, hi := math.Log10(yt[0]), math.Log10(yt[len(yt)-1])
			y = func(v float64) float64 {
				return y0 + plotH - (math.Log10(math.Max(v, yt[0]))-lo)/(hi-lo)*plotH
			}
		} else {
			if ymax == 0 {
				ymax = 1 // all zero: an axis to 1, not to nothing
			}
			yt = ticks(0, ymax)
			ytop := yt[len(yt)-1]
			y = func(v float64) float64 { return y0 + plotH - v/ytop*plotH }
		}
		// grid, axes and tick labels
		for _, v := range yt {
			fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, left, width-right, y(v), y(v))
			fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, tick(v))
		}
		for _, v := range xt {
			xv := x(v * div)
			fmt.Fprintf(w, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/>`, xv, xv, y0, y0+plotH)
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", xv, y0+plotH+14, tick(v))
		}
		fmt.Fprintf(w, `<path d="M%d %.1fV%.1fH%d" fill="none" stroke="#333"/>`+"\n", left, y0, y0+plotH, width-right)
		// series and legend
		lx := float64(width - right)
		for j := len(p.series) - 1; j >= 0; j-- {
			s := p.series[j]
			v, ok := d.cols[s.col]
			if !ok {
				continue // a CSV from an older soak.sh
			}
			color := palette[j%len(palette)]
			fmt.Fprintf(w, `<path d="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", path(d.t, v, x, y), color)
			lx -= float64(7*len(s.label) + 24)
			fmt.Fprintf(w, `<rect x="%.0f" y="%.0f" width="12" height="3" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
				lx, y0-12, color, lx+16, y0-8, esc(s.label))
		}
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">time since the start of the traffic (%s)</text>`+"\n",
		left+(width-left-right)/2, height-8, unit)
	fmt.Fprintln(w, "</svg>")
	return w.Flush()
}

func hasData(d *data, p panel) bool {
	for _, s := range p.series {
		for _, v := range d.cols[s.col] {
			if !math.IsNaN(v) {
				return true
			}
		}
	}
	return false
}

// path draws v over t, lifting the pen over missing samples.
func path(t, v []float64, x, y func(float64) float64) string {
	var b strings.Builder
	pen := false
	for i := range t {
		if math.IsNaN(v[i]) {
			pen = false
			continue
		}
		cmd := "L"
		if !pen {
			cmd = "M"
		}
		fmt.Fprintf(&b, "%s%.1f %.1f", cmd, x(t[i]), y(v[i]))
		pen = true
	}
	return b.String()
}

// ticks returns round tick values from lo up to at least hi, about five.
func ticks(lo, hi float64) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for i := 0; ; i++ {
		// rounded to 12 digits: 3 x 0.2 is 0.6, not 0.6000000000000001
		v, _ := strconv.ParseFloat(strconv.FormatFloat(lo+float64(i)*step, 'g', 12, 64), 64)
		out = append(out, v)
		if v >= hi {
			return out
		}
	}
}

// decades returns the powers of ten from the one at or below lo to the one
// at or above hi, at least two; values at or below zero are drawn at the
// lowest.
func decades(lo, hi float64) []float64 {
	if math.IsInf(lo, 1) || hi <= 0 {
		lo, hi = 1, 10
	}
	a, b := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if b <= a {
		b = a + 1
	}
	var out []float64
	for e := a; e <= b; e++ {
		out = append(out, math.Pow(10, e))
	}
	return out
}

func tick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
