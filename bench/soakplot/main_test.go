package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// soakCSV is an hour at one sample a minute: RSS flat at 100 MB, goroutines
// growing by one a minute (a leak), fds missing in the first sample, the
// latency columns empty when no call was answered.
func soakCSV() string {
	var b strings.Builder
	b.WriteString("t_s,rss_mb,goroutines,fds,sipp_p99_ms,reply_p99_ms\n")
	for m := 1; m <= 60; m++ {
		fds := "17"
		if m == 1 {
			fds = ""
		}
		fmt.Fprintf(&b, "%d,100,%d,%s,%d,0.5\n", m*60, 20+m, fds, 1+m%2)
	}
	return b.String()
}

func TestSummary(t *testing.T) {
	d, err := readCSV(strings.NewReader(soakCSV()))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := writeSummary(&out, d, 600); err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 {
			rows[f[0]] = f[len(f)-5:]
		}
	}
	// series label's first word -> first, last, ratio, slope/h, slope/h after first window
	want := map[string][]string{
		"RSS":        {"100", "100", "1.00", "+0", "+0"},
		"goroutines": {"26", "75", "2.88", "+60", "+60"},
		"open":       {"17", "17", "1.00", "+0", "+0"},
	}
	for k, w := range want {
		if got := rows[k]; strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("%s: got %q, want %q\n%s", k, got, w, out.String())
		}
	}
	if !strings.Contains(out.String(), "first window: the first 600 s") {
		t.Errorf("summary does not state its window:\n%s", out.String())
	}
}

func TestShortRunWindow(t *testing.T) {
	d, err := readCSV(strings.NewReader("t_s,rss_mb\n10,1\n20,2\n30,3\n40,4\n"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := writeSummary(&out, d, 600); err != nil {
		t.Fatal(err)
	}
	// 30 s of samples: windows of 10 s, not 10 minutes that would overlap.
	if !strings.Contains(out.String(), "the first 10 s") {
		t.Errorf("window not shortened for a short run:\n%s", out.String())
	}
}

func TestMedianSlope(t *testing.T) {
	if m := median([]float64{5, 1, 3, 2}); m != 2.5 {
		t.Errorf("median = %v, want 2.5", m)
	}
	if m := median(nil); !math.IsNaN(m) {
		t.Errorf("median of nothing = %v, want NaN", m)
	}
	all := func(float64) bool { return true }
	// 2 per second is 7200 per hour, whatever the intercept.
	if s := slope([]float64{0, 1, 2, 3}, []float64{7, 9, 11, 13}, all); s != 7200 {
		t.Errorf("slope = %v, want 7200", s)
	}
	if s := slope([]float64{1}, []float64{1}, all); !math.IsNaN(s) {
		t.Errorf("slope of one point = %v, want NaN", s)
	}
}

func TestReadCSVErrors(t *testing.T) {
	for _, in := range []string{
		"",                       // nothing
		"t_s,rss_mb\n",           // header only: a run killed before its first sample
		"rss_mb,t_s\n1,2\n",      // not our CSV
		"t_s,rss_mb\n10,lots\n",  // not a number
		"t_s,rss_mb\n10,1,2,3\n", // ragged
	} {
		if _, err := readCSV(strings.NewReader(in)); err == nil {
			t.Errorf("readCSV(%q) succeeded", in)
		}
	}
}

// TestSVG checks the plot is well-formed XML, self-contained (no script, no
// external reference) and has a panel per series group with data.
func TestSVG(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "soak.csv")
	if err := os.WriteFile(in, []byte(soakCSV()), 0o644); err != nil {
		t.Fatal(err)
	}
	svg := filepath.Join(dir, "soak.svg")
	var summary bytes.Buffer
	if err := run(in, svg, "soak <test> & more", 10*time.Minute, &summary); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	var texts []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "script" || tok.Name.Local == "image" || tok.Name.Local == "foreignObject" {
				t.Errorf("SVG has a <%s> element", tok.Name.Local)
			}
			for _, a := range tok.Attr {
				if a.Name.Local == "href" || strings.Contains(a.Value, "url(") || strings.HasPrefix(a.Name.Local, "on") {
					t.Errorf("SVG element <%s> has %s=%q", tok.Name.Local, a.Name.Local, a.Value)
				}
			}
		case xml.CharData:
			texts = append(texts, string(tok))
		}
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"soak <test> & more", "Memory (MB)", "Goroutines", "Open file descriptors", "Latency seen by sipp", "time since the start of the traffic (min)"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG lacks the text %q", want)
		}
	}
	if strings.Contains(all, "Recorder queue depth") {
		t.Error("SVG has a panel for a column the CSV does not have")
	}
}

func TestTicks(t *testing.T) {
	for _, c := range []struct {
		hi   float64
		want string
	}{
		{60, "[0 20 40 60]"},
		{3600, "[0 1000 2000 3000 4000]"},
		{198.4, "[0 50 100 150 200]"},
		{0.9, "[0 0.2 0.4 0.6 0.8 1]"},
	} {
		if got := fmt.Sprint(ticks(0, c.hi)); got != c.want {
			t.Errorf("ticks(0, %v) = %s, want %s", c.hi, got, c.want)
		}
	}
	if got := fmt.Sprint(decades(0.6, 45)); got != "[0.1 1 10 100]" {
		t.Errorf("decades(0.6, 45) = %s", got)
	}
}
