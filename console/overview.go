package console

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// maxOverview bounds the calls the overview reads (10 store pages).
const maxOverview = 10_000

// stats are the overview's counts over a window of calls.
type stats struct {
	Start   time.Time // the first hour's start
	Calls   [24]int   // calls per hour, oldest first
	Blocked [24]int   // blocked calls per hour
	Actions map[call.Action]int
	Markers map[string]int
	Dialled map[string]int // fraud-flagged or blocked calls per dialled number (masked)
	Routes  map[string]*routeRisk
	Total   int
}

// routeRisk is one ingress route's share of risky calls.
type routeRisk struct {
	Calls, Risky int // all calls; flagged or blocked
}

// tally counts calls started in the 24 hours ending at the end of now's
// hour.
func tally(now time.Time, cs []*call.Call) stats {
	st := stats{Start: now.UTC().Truncate(time.Hour).Add(-23 * time.Hour), Actions: map[call.Action]int{}, Markers: map[string]int{},
		Dialled: map[string]int{}, Routes: map[string]*routeRisk{}}
	for _, c := range cs {
		h := int(c.StartedAt.Sub(st.Start) / time.Hour)
		if c.StartedAt.Before(st.Start) || h >= 24 {
			continue
		}
		st.Total++
		st.Calls[h]++
		if c.Verdict.Action == call.Block {
			st.Blocked[h]++
		}
		st.Actions[c.Verdict.Action]++
		for _, m := range c.Verdict.Markers {
			st.Markers[m.Code]++
		}
		risky := c.Verdict.Action == call.Flag || c.Verdict.Action == call.Block
		if risky {
			st.Dialled[mask(c.Dialled)]++
		}
		route := cmp.Or(c.Ingress, "(none)")
		rr := st.Routes[route]
		if rr == nil {
			rr = &routeRisk{}
			st.Routes[route] = rr
		}
		rr.Calls++
		if risky {
			rr.Risky++
		}
	}
	return st
}

// topDialled are the dialled numbers most targeted by flagged or blocked
// calls (masked: the charts never show a number in full).
func topDialled(st stats, k int) []bar {
	return topBars(st.Dialled, k)
}

// routesByRisk ranks ingress routes by their share of flagged or blocked
// calls, in percent.
func routesByRisk(st stats, k int) []bar {
	out := make([]bar, 0, len(st.Routes))
	for id, rr := range st.Routes {
		out = append(out, bar{Label: fmt.Sprintf("%s (%d calls)", id, rr.Calls), N: 100 * rr.Risky / rr.Calls, Class: "bar action-flag"})
	}
	slices.SortFunc(out, func(a, b bar) int { return cmp.Or(cmp.Compare(b.N, a.N), strings.Compare(a.Label, b.Label)) })
	return out[:min(k, len(out))]
}

// overviewPage shows the last 24 hours as server-side SVG charts. It reads
// calls through the node (audited as call.list) but shows no number.
func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request, p *principal) {
	now := s.now().UTC()
	f := store.CallFilter{From: now.Truncate(time.Hour).Add(-23 * time.Hour), To: now.Truncate(time.Hour).Add(time.Hour), Limit: 1000}
	var cs []*call.Call
	truncated := false
	for {
		page, next, err := s.node.Calls(p.ctx(r), p.Tenant, f)
		if err != nil {
			s.fail(w, r, p, err)
			return
		}
		cs = append(cs, page...)
		if next == "" {
			break
		}
		if len(cs) >= maxOverview {
			truncated = true
			break
		}
		f.Before = next
	}
	// Subjects who restricted or objected to processing are left out of
	// analytics (their records are kept, not analysed).
	if ex, ok := s.node.(interface {
		Excluded(tenant string, c *call.Call) bool
	}); ok {
		cs = slices.DeleteFunc(cs, func(c *call.Call) bool { return ex.Excluded(p.Tenant, c) })
	}
	st := tally(now, cs)
	s.render(w, r, http.StatusOK, "overview", p, map[string]any{
		"Title":     "Overview",
		"Total":     st.Total,
		"Truncated": truncated,
		"Hourly":    hourlyChart(st),
		"Mix":       barChart("Verdict mix", actionBars(st)),
		"Markers":   barChart("Top markers", topMarkers(st, 10)),
		"Dialled":   barChart("Most targeted dialled numbers", topDialled(st, 10)),
		"Routes":    barChart("Routes by risk, percent of calls flagged or blocked", routesByRisk(st, 10)),
	})
}

// bar is one labelled count of a horizontal bar chart.
type bar struct {
	Label string
	N     int
	Class string
}

func actionBars(st stats) []bar {
	var out []bar
	for _, a := range []call.Action{call.Allow, call.Flag, call.Block, call.Unscored} {
		if n := st.Actions[a]; n > 0 || a != call.Unscored {
			out = append(out, bar{Label: string(a), N: n, Class: "bar action-" + string(a)})
		}
	}
	return out
}

func topMarkers(st stats, k int) []bar { return topBars(st.Markers, k) }

// topBars are the k largest counts, largest first (ties by label).
func topBars(counts map[string]int, k int) []bar {
	out := make([]bar, 0, len(counts))
	for label, n := range counts {
		out = append(out, bar{Label: label, N: n, Class: "bar"})
	}
	slices.SortFunc(out, func(a, b bar) int {
		return cmp.Or(cmp.Compare(b.N, a.N), strings.Compare(a.Label, b.Label))
	})
	return out[:min(k, len(out))]
}

// hourlyChart draws calls (and blocked calls in front) per hour as an
// SVG column chart with a title and a description for screen readers.
func hourlyChart(st stats) template.HTML {
	const w, h, left, bottom, top = 720, 220, 40, 30, 10
	peak := 1
	for _, n := range st.Calls {
		peak = max(peak, n)
	}
	var b strings.Builder
	var desc []string
	for i := range 24 {
		if st.Calls[i] > 0 {
			desc = append(desc, fmt.Sprintf("%s: %d calls, %d blocked", st.Start.Add(time.Duration(i)*time.Hour).Format("15:00"), st.Calls[i], st.Blocked[i]))
		}
	}
	if len(desc) == 0 {
		desc = []string{"no calls"}
	}
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="hourly-t hourly-d" xmlns="http://www.w3.org/2000/svg">`, w, h)
	fmt.Fprintf(&b, `<title id="hourly-t">Calls and blocked calls per hour, UTC</title><desc id="hourly-d">%s</desc>`, template.HTMLEscapeString(strings.Join(desc, "; ")))
	plotH := float64(h - bottom - top)
	colW := float64(w-left-10) / 24
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, left, h-bottom, w-10, h-bottom)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%d</text><text x="%d" y="%d" text-anchor="end">0</text>`, left-4, top+10, peak, left-4, h-bottom)
	for i := range 24 {
		x := float64(left) + float64(i)*colW
		ch := plotH * float64(st.Calls[i]) / float64(peak)
		bh := plotH * float64(st.Blocked[i]) / float64(peak)
		fmt.Fprintf(&b, `<rect class="calls" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x+1, float64(h-bottom)-ch, colW-2, ch)
		fmt.Fprintf(&b, `<rect class="blocked" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x+1, float64(h-bottom)-bh, colW-2, bh)
		if i%3 == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`, x+1, h-bottom+16, st.Start.Add(time.Duration(i)*time.Hour).Format("15:00"))
		}
	}
	fmt.Fprintf(&b, `<rect class="calls" x="%d" y="%d" width="10" height="10"/><text x="%d" y="%d">calls</text>`, w-160, top, w-146, top+9)
	fmt.Fprintf(&b, `<rect class="blocked" x="%d" y="%d" width="10" height="10"/><text x="%d" y="%d">blocked</text>`, w-100, top, w-86, top+9)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// barChart draws labelled horizontal bars as SVG.
func barChart(title string, bars []bar) template.HTML {
	const w, rowH, labelW = 720, 22, 230
	if len(bars) == 0 {
		return template.HTML(`<p class="note">No calls in the window.</p>`)
	}
	peak := 1
	for _, x := range bars {
		peak = max(peak, x.N)
	}
	id := strings.ReplaceAll(strings.ToLower(title), " ", "-")
	var desc []string
	for _, x := range bars {
		desc = append(desc, fmt.Sprintf("%s: %d", x.Label, x.N))
	}
	h := rowH*len(bars) + 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t %s-d" xmlns="http://www.w3.org/2000/svg">`, w, h, id, id)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, template.HTMLEscapeString(title), id, template.HTMLEscapeString(strings.Join(desc, "; ")))
	for i, x := range bars {
		y := i*rowH + 2
		bw := float64(w-labelW-70) * float64(x.N) / float64(peak)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y+15, template.HTMLEscapeString(x.Label))
		fmt.Fprintf(&b, `<rect class="%s" x="%d" y="%d" width="%.1f" height="%d"/>`, template.HTMLEscapeString(x.Class), labelW, y+3, bw, rowH-6)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%d</text>`, float64(labelW)+bw+4, y+15, x.N)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
