package sim

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/numbering"
)

var testStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func TestGenerateDeterministic(t *testing.T) {
	cfg := Config{Seed: 1, Calls: 3000, Start: testStart}
	a, b := Generate(cfg), Generate(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different traffic")
	}
	cfg.Seed = 2
	if c := Generate(cfg); reflect.DeepEqual(a.Calls, c.Calls) {
		t.Fatal("different seeds gave the same calls")
	}
}

func TestGenerateShape(t *testing.T) {
	cfg := Config{Seed: 3, Calls: 20000, Start: testStart, Span: 48 * time.Hour, FraudShare: 0.1}
	tr := Generate(cfg)
	if len(tr.Calls) != cfg.Calls {
		t.Fatalf("%d calls, want %d", len(tr.Calls), cfg.Calls)
	}
	routes := map[string]bool{}
	for _, r := range tr.Routes {
		routes[r.ID] = true
	}
	count := map[string]int{}
	refs := map[string]bool{}
	fraud := 0
	for i, c := range tr.Calls {
		r := c.Request
		switch {
		case i > 0 && r.StartedAt.Before(tr.Calls[i-1].Request.StartedAt):
			t.Fatalf("call %d out of event-time order", i)
		case r.StartedAt.Before(cfg.Start) || !r.StartedAt.Before(cfg.Start.Add(cfg.Span)):
			t.Fatalf("call %d at %v, outside the span", i, r.StartedAt)
		case !routes[r.IngressRoute]:
			t.Fatalf("call %d on unknown route %q", i, r.IngressRoute)
		case refs[r.CallRef] || r.CallRef == "":
			t.Fatalf("call %d: call_ref %q empty or repeated", i, r.CallRef)
		case r.ApplianceID == "" || r.Signalling.From == "":
			t.Fatalf("call %d: incomplete request %+v", i, r)
		case c.Fraud != (c.FraudType != ""):
			t.Fatalf("call %d: fraud %v with fraud type %q", i, c.Fraud, c.FraudType)
		}
		refs[r.CallRef] = true
		count[c.Scenario]++
		if c.Fraud {
			fraud++
		}
	}
	if want := 2000; fraud != want {
		t.Errorf("%d fraud calls, want %d", fraud, want)
	}
	for _, s := range fraudMix {
		if got, want := count[s.scenario], s.share*float64(fraud); math.Abs(float64(got)-want) > 1 {
			t.Errorf("%s: %d calls, want %.0f", s.scenario, got, want)
		}
	}
	genuine := float64(cfg.Calls - fraud)
	for _, tc := range []struct {
		scenario string
		lo, hi   float64 // share of genuine calls
	}{
		{"customer", 0.75, 0.9},
		{"business", 0.03, 0.15},
		{"withheld", 0.04, 0.06},
		{"roaming", 0.02, 0.04},
		{"foreign", 0.01, 0.03},
	} {
		if share := float64(count[tc.scenario]) / genuine; share < tc.lo || share > tc.hi {
			t.Errorf("%s: %.3f of genuine calls, want %.2f-%.2f", tc.scenario, share, tc.lo, tc.hi)
		}
	}
}

// TestGeneratedNumbers checks numbers against libphonenumber: genuine
// callers are valid numbers of the country the scenario says, and the fraud
// CLIs are what their scenario claims.
func TestGeneratedNumbers(t *testing.T) {
	tr := Generate(Config{Seed: 4, Calls: 6000, Start: testStart, FraudShare: 0.2})
	norm := numbering.New(0) // dialled numbers repeat
	dno := map[string]bool{}
	for _, n := range tr.DNO {
		if p := numbering.Parse(n, "GB"); !p.Valid || p.Region != "GB" {
			t.Errorf("published number %s: %+v", n, p)
		}
		dno[n] = true
	}
	for i, c := range tr.Calls {
		r := c.Request
		if d := norm.Number(r.Dialled, "GB"); !d.Valid || d.Region != "GB" {
			t.Fatalf("call %d (%s): dialled %s: %+v", i, c.Scenario, r.Dialled, d)
		}
		n := norm.Number(r.Caller, "GB")
		ok := n.Valid && !n.Type.Special() && n.E164 == r.Caller
		switch c.Scenario {
		case "withheld":
			ok = r.Caller == "anonymous" && n.Withheld && len(r.Signalling.PAI) == 1
		case "customer", "business", "social_engineering", "number_rotation", "many_accounts", "enumeration", "uk_cli_abroad":
			ok = ok && n.Region == "GB"
		case "roaming":
			ok = ok && n.Region == "GB" && n.Type == "mobile" && strings.HasPrefix(r.IngressRoute, "intl")
		case "foreign":
			ok = ok && n.Region != "GB" && strings.HasPrefix(r.IngressRoute, "intl")
		case "dno_spoof":
			ok = dno[r.Caller]
		case "invalid_cli":
			ok = !n.Valid || n.Type.Special()
		}
		if c.Scenario == "uk_cli_abroad" {
			ok = ok && n.Type == "fixed_line" && strings.HasPrefix(r.IngressRoute, "intl")
		}
		if !ok {
			t.Fatalf("call %d (%s): caller %s on %s: %+v", i, c.Scenario, r.Caller, r.IngressRoute, n)
		}
	}
}

// TestGeneratedVelocity checks the campaigns cross the engine's velocity
// thresholds and genuine callers do not.
func TestGeneratedVelocity(t *testing.T) {
	tr := Generate(Config{Seed: 5, Calls: 20000, Start: testStart})
	type stats struct {
		calls, perHour int
		users          map[string]bool
		last           []time.Time
	}
	byCaller := map[string]*stats{}
	maxGenuineDay, maxGenuineHour := 0, 0
	maxUsers, maxRun := 0, 0
	lastDialled := map[string]string{}
	run := map[string]int{}
	for _, c := range tr.Calls {
		r := c.Request
		s := byCaller[r.Caller]
		if s == nil {
			s = &stats{users: map[string]bool{}}
			byCaller[r.Caller] = s
		}
		s.calls++
		s.last = append(s.last, r.StartedAt)
		hour := 0
		for _, at := range s.last {
			if r.StartedAt.Sub(at) < time.Hour {
				hour++
			}
		}
		if r.UserRef != "" {
			s.users[r.UserRef] = true
		}
		switch c.Scenario {
		case "customer", "business", "roaming", "foreign":
			maxGenuineDay, maxGenuineHour = max(maxGenuineDay, s.calls), max(maxGenuineHour, hour)
		case "many_accounts":
			maxUsers = max(maxUsers, len(s.users))
		case "enumeration":
			if prev := lastDialled[r.Caller]; prev != "" && prev[:len(prev)-2] == r.Dialled[:len(r.Dialled)-2] && prev < r.Dialled {
				run[r.Caller]++
				maxRun = max(maxRun, run[r.Caller])
			}
			lastDialled[r.Caller] = r.Dialled
		}
	}
	if maxGenuineDay >= 30 || maxGenuineHour >= 10 {
		t.Errorf("a genuine caller made %d calls in the span, %d in an hour", maxGenuineDay, maxGenuineHour)
	}
	if maxUsers < 10 {
		t.Errorf("many_accounts: at most %d customer ids per caller", maxUsers)
	}
	if maxRun < 8 {
		t.Errorf("enumeration: longest ascending run in one block %d", maxRun)
	}
	burst := 0
	for i, c := range tr.Calls {
		if c.Scenario != "number_rotation" {
			continue
		}
		callers := map[string]bool{}
		for _, d := range tr.Calls[i:] {
			if d.Request.StartedAt.Sub(c.Request.StartedAt) >= 10*time.Minute {
				break
			}
			if d.Request.Dialled == c.Request.Dialled {
				callers[d.Request.Caller] = true
			}
		}
		burst = max(burst, len(callers))
	}
	if burst < 25 {
		t.Errorf("number_rotation: at most %d distinct callers to one number in 10 minutes", burst)
	}
}

func TestGenerateSmall(t *testing.T) {
	for _, n := range []int{1, 2, 13, 100} {
		tr := Generate(Config{Seed: 6, Calls: n, Start: testStart, Span: time.Minute})
		if len(tr.Calls) != n {
			t.Errorf("Calls %d: got %d", n, len(tr.Calls))
		}
		for _, c := range tr.Calls {
			if at := c.Request.StartedAt; at.Before(testStart) || !at.Before(testStart.Add(time.Minute)) {
				t.Fatalf("Calls %d: call at %v outside the span", n, at)
			}
		}
	}
}

// TestNumberRanges checks every range the generator draws home and foreign
// numbers from, so a range libphonenumber does not know is caught whatever
// the seed.
func TestNumberRanges(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(1, 2))}
	check := func(what, num, region, typ string) {
		t.Helper()
		n := numbering.Parse(num, "GB")
		if !n.Valid || n.Region != region || !strings.HasPrefix(string(n.Type), typ) {
			t.Errorf("%s %s: %+v", what, num, n)
		}
	}
	for range 60 {
		for _, p := range gbMobilePrefixes {
			check("mobile range "+p, "+44"+p+g.digits(10-len(p)), "GB", "mobile")
		}
		for _, p := range gbLandlinePrefixes {
			check("landline range "+p, "+44"+p+string(byte('2'+g.r.IntN(8)))+g.digits(9-len(p)), "GB", "fixed_line")
		}
		for _, c := range []string{"NL", "US", "DE", "IE"} {
			check("foreign "+c, g.foreignNumber(c), c, "")
		}
		check("direct dial", ddi(g.r.IntN(ddis)), "GB", "fixed_line")
	}
}
