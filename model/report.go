package model

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"
)

// Text renders the report as plain text: training counts, then each
// scorer's metrics side by side.
func (r Report) Text() string {
	var b strings.Builder
	if t := r.Training; t != nil {
		fmt.Fprintf(&b, "training: %d examples, %d unlabelled and %d excluded (restricted/objected) skipped, %d subsampled out\n", t.Examples, t.Unlabelled, t.Excluded, t.Subsampled)
		fmt.Fprintf(&b, "  fit on %d calls (%d fraud) from %s; calibrated on %d calls (%d fraud) from %s to %s\n",
			t.Fit, t.FitFraud, stamp(t.From), t.Calibrate, t.CalibrateFraud, stamp(t.CalibrateFrom), stamp(t.To))
		fmt.Fprintf(&b, "  L2 %g, balanced classes %v; L-BFGS %d iterations, %d evaluations, loss %.5f (%s)\n", t.L2, t.Balanced, t.Iterations, t.Evaluations, t.Loss, t.Status)
	}
	s := r.Test
	fmt.Fprintf(&b, "test: %d examples, %d unlabelled and %d excluded skipped; %d used (%d fraud) from %s to %s\n",
		s.Examples, s.Unlabelled, s.Excluded, s.Used, s.Fraud, stamp(s.From), stamp(s.To))
	rows := r.rows()
	fmt.Fprintf(&b, "%-34s %12s %12s\n", "metric", "model", "live")
	for _, row := range rows {
		fmt.Fprintf(&b, "%-34s %12s %12s\n", row[0], row[1], row[2])
	}
	for _, sc := range r.scorers() {
		fmt.Fprintf(&b, "calibration (%s): score bin, calls, mean score, observed fraud\n", sc.name)
		for _, bin := range sc.m.Calibration {
			if bin.Calls > 0 {
				fmt.Fprintf(&b, "  [%.1f,%.1f) %7d %8.4f %8.4f\n", bin.Lo, bin.Hi, bin.Calls, bin.MeanScore, bin.ObservedFraud)
			}
		}
	}
	if len(r.Weights) > 0 {
		b.WriteString("largest weights (per standard deviation):\n")
		for _, w := range r.Weights {
			fmt.Fprintf(&b, "  %-32s %+.3f\n", w.Feature, w.Weight)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

type scorer struct {
	name, colour string
	m            *Metrics
}

func (r Report) scorers() []scorer {
	var s []scorer
	if r.Model != nil {
		s = append(s, scorer{"model", "#1f5fbf", r.Model})
	}
	if r.Baseline != nil {
		s = append(s, scorer{"live (hand-set weights)", "#c0392b", r.Baseline})
	}
	return s
}

// rows are the metric table: name, model, live.
func (r Report) rows() [][3]string {
	get := func(m *Metrics, f func(*Metrics) string) string {
		if m == nil {
			return "-"
		}
		return f(m)
	}
	row := func(name string, f func(*Metrics) string) [3]string {
		return [3]string{name, get(r.Model, f), get(r.Baseline, f)}
	}
	pct := func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }
	rows := [][3]string{
		row("ROC AUC", func(m *Metrics) string { return fmt.Sprintf("%.4f", m.AUC) }),
	}
	for k, f := range FPRTargets {
		rows = append(rows, row(fmt.Sprintf("recall at %s FPR", pct(f)), func(m *Metrics) string { return pct(m.RecallAtFPR[k].Recall) }))
	}
	rows = append(rows,
		row(fmt.Sprintf("precision at flag (>= %.2f)", r.Thresholds.Flag), func(m *Metrics) string { return pct(m.FlagAt.Precision) }),
		row(fmt.Sprintf("recall at flag (>= %.2f)", r.Thresholds.Flag), func(m *Metrics) string { return pct(m.FlagAt.Recall) }),
		row("false-positive rate at flag", func(m *Metrics) string { return pct(m.FlagAt.FPR) }),
		row(fmt.Sprintf("precision at block (>= %.2f)", r.Thresholds.Block), func(m *Metrics) string { return pct(m.BlockAt.Precision) }),
		row(fmt.Sprintf("recall at block (>= %.2f)", r.Thresholds.Block), func(m *Metrics) string { return pct(m.BlockAt.Recall) }),
		row("false-positive rate at block", func(m *Metrics) string { return pct(m.BlockAt.FPR) }),
		row("Brier score", func(m *Metrics) string { return fmt.Sprintf("%.4f", m.Brier) }),
	)
	return rows
}

// HTML renders the report as one self-contained HTML page: the tables, a
// ROC plot (full and the low false-positive range) and a calibration plot,
// drawn as inline SVG. No script, no external asset.
func (r Report) HTML() string {
	var b strings.Builder
	e := html.EscapeString
	b.WriteString(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ringfence model report</title>
<style>
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}svg{margin:.5em 1em .5em 0}
.key span{display:inline-block;width:1.2em;height:.3em;margin:0 .4em .2em 1em;vertical-align:middle}
</style></head><body>
<h1>ringfence learned risk model: evaluation</h1>
`)
	if t := r.Training; t != nil {
		fmt.Fprintf(&b, "<h2>Training</h2><p>%d examples given; skipped: %d unlabelled, %d excluded (restricted or objected subjects), %d subsampled out.<br>Fitted on %d calls (%d fraud) from %s; calibrated (Platt) on the latest %d calls (%d fraud) from %s to %s.<br>L2 %g, class-balanced %v; L-BFGS %d iterations, %d evaluations, final loss %.5f (%s). Feature schema %s, %d features.</p>\n",
			t.Examples, t.Unlabelled, t.Excluded, t.Subsampled, t.Fit, t.FitFraud, e(stamp(t.From)), t.Calibrate, t.CalibrateFraud,
			e(stamp(t.CalibrateFrom)), e(stamp(t.To)), t.L2, t.Balanced, t.Iterations, t.Evaluations, t.Loss, e(t.Status), e(SchemaVersion), Width)
	}
	s := r.Test
	fmt.Fprintf(&b, "<h2>Test</h2><p>%d examples given; skipped: %d unlabelled, %d excluded. %d calls used (%d fraud) from %s to %s.</p>\n",
		s.Examples, s.Unlabelled, s.Excluded, s.Used, s.Fraud, e(stamp(s.From)), e(stamp(s.To)))
	b.WriteString("<table><tr><th>metric</th><th>model</th><th>live (hand-set weights)</th></tr>\n")
	for _, row := range r.rows() {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td></tr>\n", e(row[0]), e(row[1]), e(row[2]))
	}
	b.WriteString("</table>\n<p class=\"key\">")
	for _, sc := range r.scorers() {
		fmt.Fprintf(&b, `<span style="background:%s"></span>%s`, sc.colour, e(sc.name))
	}
	b.WriteString("</p>\n<h2>ROC</h2>\n")
	b.WriteString(r.rocSVG("ROC, all false-positive rates", 1))
	b.WriteString(r.rocSVG("ROC, false-positive rate up to 5%", 0.05))
	b.WriteString("\n<h2>Calibration</h2>\n")
	b.WriteString(r.calibrationSVG())
	for _, sc := range r.scorers() {
		fmt.Fprintf(&b, "<h3>%s</h3><table><tr><th>score bin</th><th>calls</th><th>fraud</th><th>mean score</th><th>observed fraud</th></tr>\n", e(sc.name))
		for _, bin := range sc.m.Calibration {
			fmt.Fprintf(&b, "<tr><td>[%.1f, %.1f)</td><td>%d</td><td>%d</td><td>%.4f</td><td>%.4f</td></tr>\n", bin.Lo, bin.Hi, bin.Calls, bin.Fraud, bin.MeanScore, bin.ObservedFraud)
		}
		b.WriteString("</table>\n")
	}
	if len(r.Weights) > 0 {
		b.WriteString("<h2>Largest weights</h2><p>Per standard deviation of the feature, before calibration; positive raises the fraud log-odds.</p><table><tr><th>feature</th><th>weight</th></tr>\n")
		for _, w := range r.Weights {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%+.3f</td></tr>\n", e(w.Feature), w.Weight)
		}
		b.WriteString("</table>\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("<h2>Notes</h2><ul>\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "<li>%s</li>\n", e(n))
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// plot geometry: a square of side plotSize inside margins.
const (
	plotSize = 320
	margin   = 48
)

// frame opens an SVG with axes, ticks and labels for x in [0,xmax] and y in
// [0,1].
func frame(b *strings.Builder, title, xlabel, ylabel string, xmax float64) {
	w := plotSize + 2*margin
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s" font-size="11">`, w, w, w, w, html.EscapeString(title))
	fmt.Fprintf(b, `<text x="%d" y="18" text-anchor="middle" font-size="13">%s</text>`, w/2, html.EscapeString(title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`, margin, margin, plotSize, plotSize)
	for k := 0; k <= 5; k++ {
		f := float64(k) / 5
		x := margin + int(f*plotSize)
		y := margin + plotSize - int(f*plotSize)
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/>`, x, margin, x, margin+plotSize)
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/>`, margin, y, margin+plotSize, y)
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, x, margin+plotSize+14, tick(f*xmax))
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, margin-4, y+4, tick(f))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, margin+plotSize/2, margin+plotSize+32, html.EscapeString(xlabel))
	fmt.Fprintf(b, `<text x="14" y="%d" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>`, margin+plotSize/2, margin+plotSize/2, html.EscapeString(ylabel))
}

func tick(v float64) string {
	if v != 0 && v < 0.1 {
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	return fmt.Sprintf("%.1f", v)
}

// px maps (x in [0,xmax], y in [0,1]) to SVG coordinates.
func px(x, y, xmax float64) (float64, float64) {
	return margin + min(x/xmax, 1)*plotSize, margin + plotSize - y*plotSize
}

func (r Report) rocSVG(title string, xmax float64) string {
	var b strings.Builder
	frame(&b, title, "false-positive rate", "recall (true-positive rate)", xmax)
	if xmax == 1 {
		x0, y0 := px(0, 0, 1)
		x1, y1 := px(1, 1, 1)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#bbb" stroke-dasharray="4 3"/>`, x0, y0, x1, y1)
	} else {
		for _, f := range FPRTargets {
			x, _ := px(f, 0, xmax)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999" stroke-dasharray="2 3"/>`, x, margin, x, margin+plotSize)
		}
	}
	for _, sc := range r.scorers() {
		var pts strings.Builder
		// A polyline through the ROC points (tied scores enter together,
		// so a scorer with few distinct scores draws straight segments),
		// cut at xmax; thin drops points that round to the same place.
		for i, p := range sc.m.ROC {
			if p.FPR > xmax {
				// interpolate to the edge
				q := sc.m.ROC[i-1]
				t := (xmax - q.FPR) / (p.FPR - q.FPR)
				x, y := px(xmax, q.TPR+t*(p.TPR-q.TPR), xmax)
				fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
				break
			}
			x, y := px(p.FPR, p.TPR, xmax)
			fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, sc.colour, strings.TrimSpace(thin(pts.String())))
	}
	b.WriteString("</svg>")
	return b.String()
}

// thin drops points that repeat the previous one once rounded, so a curve
// of thousands of points becomes a few hundred.
func thin(points string) string {
	var out []string
	prev := ""
	for _, p := range strings.Fields(points) {
		if p != prev {
			out = append(out, p)
		}
		prev = p
	}
	// collapse runs on one vertical or horizontal line to their ends
	var keep []string
	for i, p := range out {
		if i > 0 && i < len(out)-1 {
			ax, ay, _ := strings.Cut(out[i-1], ",")
			bx, by, _ := strings.Cut(p, ",")
			cx, cy, _ := strings.Cut(out[i+1], ",")
			if (ax == bx && bx == cx) || (ay == by && by == cy) {
				continue
			}
		}
		keep = append(keep, p)
	}
	return strings.Join(keep, " ")
}

func (r Report) calibrationSVG() string {
	var b strings.Builder
	frame(&b, "Calibration (10 score bins)", "mean predicted probability", "observed fraud share", 1)
	x0, y0 := px(0, 0, 1)
	x1, y1 := px(1, 1, 1)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#bbb" stroke-dasharray="4 3"/>`, x0, y0, x1, y1)
	for _, sc := range r.scorers() {
		var pts []string
		for _, bin := range sc.m.Calibration {
			if bin.Calls == 0 {
				continue
			}
			x, y := px(bin.MeanScore, bin.ObservedFraud, 1)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			// circle area grows with the bin's calls (log scale)
			rad := 2 + 1.2*math.Log10(float64(bin.Calls))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s" fill-opacity="0.7"><title>%s [%.1f,%.1f): %d calls, mean %.3f, observed %.3f</title></circle>`,
				x, y, rad, sc.colour, html.EscapeString(sc.name), bin.Lo, bin.Hi, bin.Calls, bin.MeanScore, bin.ObservedFraud)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, sc.colour, strings.Join(pts, " "))
	}
	b.WriteString("</svg>")
	return b.String()
}
