package screen

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/call"
)

var update = flag.Bool("update", false, "rewrite docs/markers.md from Signals and Thresholds")

// markersDoc is the generated reference, relative to this package.
const markersDoc = "../docs/markers.md"

// thresholdDocs says what each Thresholds field counts and which marker it
// drives. TestMarkersDoc fails when a field has no entry here.
var thresholdDocs = map[string][2]string{
	"CallsPerMinute":  {"velocity.caller_minute", "calls from the caller in the last minute"},
	"CallsPerHour":    {"velocity.caller_hour", "calls from the caller in the last hour"},
	"CallsPerDay":     {"velocity.caller_day", "calls from the caller in the last 24 hours"},
	"DistinctDialled": {"velocity.distinct_dialled", "distinct numbers of the tenant the caller dialled in the last hour"},
	"DistinctUsers":   {"velocity.distinct_users", "distinct customer ids presented with the caller in the last 24 hours (only on a call that presents one)"},
	"Sweep":           {"velocity.sweep", "distinct numbers of one block of a hundred the caller dialled in the last hour"},
	"DialledBurst":    {"velocity.dialled_burst", "distinct callers to the dialled number in the last 10 minutes (not for numbers on the tenant's DNO list)"},
	"ShortCalls":      {"velocity.short_calls", "ended calls of the caller in the last 24 hours before the short share is judged"},
	"ShortShare":      {"velocity.short_calls", "share of those ended calls that were short (under velocity.Config.ShortCall, default 10 s)"},
}

// renderMarkersDoc renders docs/markers.md from the Signals table and the
// default Thresholds and policy.
func renderMarkersDoc() ([]byte, error) {
	var b bytes.Buffer
	p := call.DefaultPolicy()
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Marker codes\n\n")
	w("<!-- Generated from screen.Signals and screen.Thresholds by\n")
	w("     go test ./screen -run TestMarkersDoc -update\n")
	w("     Do not edit by hand: change the tables in screen/signals.go. -->\n\n")
	w("Every verdict lists the markers that fired for the call, each with a code, the\n")
	w("weight it contributed and a detail for people. This page lists every code the\n")
	w("engine can emit.\n\n")
	w("## How a verdict is reached\n\n")
	w("- **Score.** Each marker carries a weight in log-odds. The score is\n")
	w("  `logistic(prior + sum of weights) = 1 / (1 + exp(-(prior + sum)))`, in [0, 1].\n")
	w("  Positive weights raise the risk, negative ones lower it, and every verdict is\n")
	w("  explained by its markers. The default policy's prior is %s (a score of %.3f\n", num(p.Prior), logistic(p.Prior))
	w("  for a call with no markers).\n")
	w("- **Weights.** The weights below are the defaults; a tenant's policy can replace\n")
	w("  any of them (`weights`, each within [-20, 20]). The verdict records the weight\n")
	w("  actually used.\n")
	w("- **Thresholds.** The policy flags a call whose score is at or above `flag_at`\n")
	w("  and blocks one at or above `block_at` (defaults %s and %s).\n", num(p.FlagAt), num(p.BlockAt))
	w("- **Actions.** The policy can name, per marker code, the least action a call gets\n")
	w("  when the marker fires, whatever its score (`actions`). Actions only raise the\n")
	w("  action, never lower it. By default %s.\n", actionsText(p.Actions))
	w("- **Shadow.** A shadow policy, if set, is evaluated over the same markers and\n")
	w("  recorded beside the live verdict; it never changes what happens to the call.\n")
	w("- **Learned model.** When the tenant has a live model, the model scores the call\n")
	w("  instead of the weights: the markers below stay in the verdict as evidence (weight\n")
	w("  0, detail prefixed `evidence; `) and `model.*` markers carry the score (see the\n")
	w("  model family). Thresholds and actions apply as above. A shadow model is scored\n")
	w("  into the shadow verdict only.\n")
	w("- **Stability.** Codes are part of the API: a code is never renamed, reused or\n")
	w("  given another meaning; new signals get new codes. Weights and details may\n")
	w("  change. Details never contain a phone number.\n\n")

	var families []string
	byFamily := map[string][]Signal{}
	for _, s := range slices.Concat(Signals, PatternSignals) {
		if _, ok := byFamily[s.Family]; !ok {
			families = append(families, s.Family)
		}
		byFamily[s.Family] = append(byFamily[s.Family], s)
	}
	for _, fam := range families {
		w("## %s\n\n", fam)
		w("| code | default weight | meaning |\n| --- | ---: | --- |\n")
		for _, s := range byFamily[fam] {
			weight := signed(s.Weight)
			if strings.Contains(s.Code, "<") {
				weight = "learned" // a pattern: the weight is computed per call
			}
			w("| `%s` | %s | %s |\n", s.Code, weight, cell(s.Meaning))
		}
		w("\n")
	}

	w("## Velocity thresholds\n\n")
	w("A velocity marker fires when the count for the call reaches its threshold\n")
	w("(`screen.Config.Thresholds`; zero fields take these defaults). Counts cover what\n")
	w("was observed **before** the call, in windows ending at the call's start time\n")
	w("(event time). Call counts are kept in time buckets (10 s, 5 min and 1 h wide for\n")
	w("the minute, hour and day), so an event near the far edge of a window may drop out\n")
	w("one bucket early; distinct counts are exact but hold at most 32 values, so a\n")
	w("threshold above 32 never fires. See docs/velocity.md.\n\n")
	w("| threshold | default | marker | counts |\n| --- | ---: | --- | --- |\n")
	def := reflect.ValueOf(Thresholds{}.withDefaults())
	for i := range def.NumField() {
		name := def.Type().Field(i).Name
		d, ok := thresholdDocs[name]
		if !ok {
			return nil, fmt.Errorf("Thresholds.%s has no entry in thresholdDocs", name)
		}
		var v string
		switch f := def.Field(i); f.Kind() {
		case reflect.Int:
			v = strconv.FormatInt(f.Int(), 10)
		case reflect.Float64:
			v = num(f.Float())
		default:
			return nil, fmt.Errorf("Thresholds.%s: unexpected kind %s", name, f.Kind())
		}
		w("| `%s` | %s | `%s` | %s |\n", name, v, d[0], cell(d[1]))
	}
	w("\n## Customer links\n\n")
	w("`link.known_customer` and `link.unknown_number` read the tenant's table of\n")
	w("caller numbers linked to customer ids. A number keeps at most %d customer ids\n", maxUsersPerCaller)
	w("(a new one replaces the oldest). The table holds at most `screen.Config.MaxLinks`\n")
	w("numbers per tenant (default %d); when it is full, links for new numbers are\n", New(Config{}).cfg.MaxLinks)
	w("dropped and existing ones kept.\n")
	return b.Bytes(), nil
}

func logistic(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// signed formats a weight with its sign and at least one decimal.
func signed(f float64) string {
	s := num(f)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	if f > 0 {
		s = "+" + s
	}
	return s
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func actionsText(a map[string]call.Action) string {
	if len(a) == 0 {
		return "no marker has an action"
	}
	var parts []string
	for _, s := range Signals { // in table order, not map order
		if act, ok := a[s.Code]; ok {
			parts = append(parts, fmt.Sprintf("`%s` is a %s", s.Code, act))
		}
	}
	return strings.Join(parts, " and ")
}

// TestMarkersDoc checks docs/markers.md is what the tables generate; run
// with -update to rewrite it.
func TestMarkersDoc(t *testing.T) {
	want, err := renderMarkersDoc()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(markersDoc, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(markersDoc)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./screen -run TestMarkersDoc -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with screen.Signals or Thresholds; regenerate with: go test ./screen -run TestMarkersDoc -update\n%s",
			markersDoc, firstDiff(got, want))
	}
	for _, s := range slices.Concat(Signals, PatternSignals) {
		if !bytes.Contains(want, []byte("`"+s.Code+"`")) {
			t.Errorf("%s missing from the doc", s.Code)
		}
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n file: %q\n want: %q", i+1, gl, wl)
		}
	}
	return ""
}
