package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Outcomes of one call. The first ones are the engine's verdicts
// (scored); then the failure policy's answers; then everything else.
const (
	scored   = iota // SIP 302 allow/flag, HTTP 200 with a verdict
	blocked         // SIP 608 or 603 (HTTP: a block verdict is counted as scored)
	unscored        // SIP 302 unscored, HTTP 200 {"action":"unscored"}
	rejected        // 503 (with Retry-After)
	tooMany         // HTTP 429
	other           // any other answer
	lost            // no answer within -wait (SIP), timeout or transport error (HTTP)
	notSent         // HTTP: over -max-outstanding, never sent
	nOutcomes
)

// result is one step.
type result struct {
	proto   string
	offered int           // the rate asked for
	sent    int           // calls sent
	elapsed time.Duration // time the sending took
	n       [nOutcomes]int
	// wrong counts answers that contradict the ingress route's failure
	// policy: unscored on a fail-closed route, 503 on a fail-open one, a
	// 503 without Retry-After.
	wrong  int
	scored []time.Duration // latency of scored (and blocked) calls
	policy []time.Duration // latency of unscored and 503 answers
	rss    int64           // largest server RSS seen during the step, bytes; 0 unknown
	cpu    float64         // server CPU during the step, in cores (1.0 = one core busy); -1 unknown
	genCPU float64         // this generator's CPU during the step, in cores
	// serverP99 is the upper bound, in seconds, of the bucket of the
	// server's ringfence_sip_reply_seconds histogram (arrival to answer
	// ready, every INVITE answered) holding the step's 99th percentile;
	// NaN unknown.
	serverP99 float64
	drops     int64 // server socket drops during the step (SIP, from /proc/net/udp); -1 unknown
	died      bool
}

// sustained reports whether nearly every call sent was scored (at most
// 1% were not: a shared machine stalls now and then), the scored calls'
// p99 latency was at most p99, and the generator kept to its schedule.
func (r *result) sustained(p99 time.Duration) bool {
	ok := r.n[scored] + r.n[blocked]
	slices.Sort(r.scored)
	return r.sent > 0 && float64(r.sent-ok) <= 0.01*float64(r.sent) && r.rate(r.sent) >= 0.98*float64(r.offered) &&
		pct(r.scored, 0.99) <= p99
}

func (r *result) rate(n int) float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(n) / r.elapsed.Seconds()
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return -1
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

func ms(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

// serverMs shows a histogram bucket bound in ms: "<=2.5", ">100", "-".
func serverMs(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case math.IsInf(s, 1):
		return ">100"
	}
	return "<=" + strconv.FormatFloat(s*1000, 'g', -1, 64)
}

// table prints the steps as they finish.
type table struct {
	mode string
	o    options
	rows []*result
}

func newTable(mode string, o options) *table { return &table{mode: mode, o: o} }

func (t *table) columns() []string {
	if t.mode == "sip" {
		return []string{"offered/s", "sent/s", "302 scored/s", "608+603/s", "302 unscored/s", "503/s", "other/s", "no answer", "wrong", "p50 ms", "p99 ms", "max ms", "policy p99 ms", "server p99 ms", "RSS max MB", "CPU", "gen CPU", "kernel drops"}
	}
	return []string{"offered/s", "sent/s", "200 scored/s", "200 unscored/s", "503/s", "429/s", "other/s", "timeout+error", "not sent", "wrong", "p50 ms", "p99 ms", "max ms", "policy p99 ms", "RSS max MB", "CPU", "gen CPU"}
}

func (t *table) header() {
	c := t.columns()
	fmt.Printf("| %s |\n|%s\n", strings.Join(c, " | "), strings.Repeat(" ---: |", len(c)))
}

func (t *table) cells(r *result) []string {
	f := func(n int) string { return fmt.Sprintf("%.0f", r.rate(n)) }
	mb := "-"
	if r.rss > 0 {
		mb = fmt.Sprint(r.rss >> 20)
	}
	slices.Sort(r.scored)
	slices.Sort(r.policy)
	cpu := "-"
	if r.cpu >= 0 {
		cpu = fmt.Sprintf("%.2f", r.cpu)
	}
	lat := []string{ms(pct(r.scored, 0.5)), ms(pct(r.scored, 0.99)), ms(pct(r.scored, 1)), ms(pct(r.policy, 0.99)), mb, cpu, fmt.Sprintf("%.2f", r.genCPU)}
	if t.mode == "sip" {
		drops := "-"
		if r.drops >= 0 {
			drops = fmt.Sprint(r.drops)
		}
		lat = slices.Insert(lat, 4, serverMs(r.serverP99))
		return append(append([]string{fmt.Sprint(r.offered), f(r.sent), f(r.n[scored]), f(r.n[blocked]), f(r.n[unscored]), f(r.n[rejected]), f(r.n[other]), fmt.Sprint(r.n[lost]), fmt.Sprint(r.wrong)}, lat...), drops)
	}
	return append([]string{fmt.Sprint(r.offered), f(r.sent), f(r.n[scored]), f(r.n[unscored]), f(r.n[rejected]), f(r.n[tooMany]), f(r.n[other]), fmt.Sprint(r.n[lost]), fmt.Sprint(r.n[notSent]), fmt.Sprint(r.wrong)}, lat...)
}

func (t *table) row(r *result) {
	t.rows = append(t.rows, r)
	fmt.Printf("| %s |\n", strings.Join(t.cells(r), " | "))
	if t.o.csv != "" {
		if err := t.appendCSV(r); err != nil {
			fmt.Fprintln(os.Stderr, "overload: csv:", err)
		}
	}
}

// appendCSV adds r to the CSV file, with a header line if the file is new.
func (t *table) appendCSV(r *result) error {
	f, err := os.OpenFile(t.o.csv, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil && st.Size() == 0 {
		_, err = fmt.Fprintln(f, "label,proto,offered_per_s,seconds,sent,scored,blocked,unscored,rejected_503,too_many_429,other,lost,not_sent,wrong,p50_ms,p99_ms,max_ms,policy_p99_ms,server_p99_ms,rss_max_bytes,cpu_cores,gen_cpu_cores,kernel_drops,died")
	}
	if err == nil {
		_, err = fmt.Fprintf(f, "%s,%s,%d,%.3f,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%s,%s,%s,%s,%s,%d,%.2f,%.2f,%d,%t\n",
			t.o.label, r.proto, r.offered, r.elapsed.Seconds(), r.sent,
			r.n[scored], r.n[blocked], r.n[unscored], r.n[rejected], r.n[tooMany], r.n[other], r.n[lost], r.n[notSent], r.wrong,
			ms(pct(r.scored, 0.5)), ms(pct(r.scored, 0.99)), ms(pct(r.scored, 1)), ms(pct(r.policy, 0.99)), serverMs(r.serverP99), r.rss, r.cpu, r.genCPU, r.drops, r.died)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (t *table) footer() {
	if t.mode == "sip" {
		fmt.Printf("(rates are answers per second of sending; \"no answer\": calls with no answer within %v; \"wrong\": answers against\n"+
			" the route's failure policy; latencies from sending the INVITE to the kernel receiving its answer: p50/p99/max of the\n"+
			" scored calls (302 allow/flag, 608, 603), policy p99 of the 503 and unscored answers; server p99: the bucket of the\n"+
			" server's own reply-time histogram (arrival to answer ready, every INVITE) holding the 99th percentile; CPU, gen CPU:\n"+
			" the server's and the generator's, in cores; kernel drops: datagrams the server's socket dropped)\n", t.o.wait)
		return
	}
	fmt.Printf("(rates are answers per second of sending; \"timeout+error\": no answer within %v or a transport error; \"not sent\": over\n"+
		" %d requests outstanding; \"wrong\": answers against the route's failure policy; latencies of the scored calls, policy p99 of the\n"+
		" 503 and unscored answers; CPU, gen CPU: the server's and the generator's, in cores)\n", t.o.wait, t.o.maxOut)
}
