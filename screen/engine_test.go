package screen_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/screen"
)

// t0 is the event time the scenarios are arranged around.
var t0 = time.Date(2025, 12, 11, 14, 0, 0, 0, time.UTC)

const tid = "t1"

// Numbers used by the scenarios. All are valid per libphonenumber unless
// named otherwise (Ofcom's drama ranges 01632 960xxx and 07700 900xxx are
// unassigned, so libphonenumber calls them invalid).
const (
	homeFixed   = "+441212345678" // Birmingham
	homeFixed2  = "+441134960000" // Leeds
	homeMobile  = "+447400123456"
	homeMobile2 = "+447400123457"
	premium     = "+449012345678"
	pager       = "+447640123456"
	tollFree    = "+448001234567"
	personal    = "+447012345678"
	frFixed     = "+33123456789"
	deFixed     = "+493012345678"
	usNumber    = "+12015550123"
	guernseyMob = "+447781123456"
	dramaFixed  = "+441632960001" // unassigned
	dialled     = "+442079460100" // the tenant's number; its block is +4420794601xx
)

// clock is a settable clock safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }

// fixture is an engine with one GB tenant and its routes.
type fixture struct {
	tb    testing.TB
	e     *screen.Engine
	clock *clock
}

var testRoutes = []call.Route{
	{ID: "dom", Kind: call.Domestic, Country: "GB"},
	{ID: "intl-fr", Kind: call.International, Country: "FR"},
	{ID: "intl", Kind: call.International}, // far end unknown
}

// testThresholds are the velocity thresholds the scenarios are written
// for, set explicitly so they do not move with the defaults (which
// TestMarkersDoc documents).
var testThresholds = screen.Thresholds{
	CallsPerMinute:  3,
	CallsPerHour:    10,
	CallsPerDay:     30,
	DistinctDialled: 4,
	DistinctUsers:   3,
	Sweep:           4,
	DialledBurst:    25,
	ShortCalls:      5,
	ShortShare:      0.6,
}

func newFixture(tb testing.TB, p call.Policy) *fixture {
	tb.Helper()
	clk := newClock(t0)
	e := screen.New(screen.Config{Now: clk.Now, Thresholds: testThresholds, Shaken: fakeShaken{}})
	e.SetTenant(call.Tenant{ID: tid, Name: "Bank", Region: "GB"}, p)
	for _, r := range testRoutes {
		if err := e.PutRoute(tid, r); err != nil {
			tb.Fatal(err)
		}
	}
	return &fixture{tb: tb, e: e, clock: clk}
}

// opt sets a field of a call under construction.
type opt func(*call.Call)

func ingress(id string) opt   { return func(c *call.Call) { c.Ingress = id } }
func from(h string) opt       { return func(c *call.Call) { c.Signalling.From = h } }
func pai(h ...string) opt     { return func(c *call.Call) { c.Signalling.PAI = h } }
func verstat(v string) opt    { return func(c *call.Call) { c.Signalling.Verstat = v } }
func privacy(v string) opt    { return func(c *call.Call) { c.Signalling.Privacy = v } }
func user(ref string) opt     { return func(c *call.Call) { c.UserRef = ref } }
func at(t time.Time) opt      { return func(c *call.Call) { c.StartedAt = t } }
func ago(d time.Duration) opt { return at(t0.Add(-d)) }
func ended(d time.Duration) opt {
	return func(c *call.Call) { c.End = &call.End{Duration: d, Result: call.Answered} }
}

// call builds a call from raw strings as a front end would: numbers
// normalised by the engine, domestic ingress, starting at t0.
func (f *fixture) call(caller, dialledNum string, opts ...opt) *call.Call {
	c := &call.Call{
		Tenant:    tid,
		Caller:    f.e.Number(tid, caller),
		Dialled:   f.e.Number(tid, dialledNum),
		StartedAt: t0,
		Ingress:   "dom",
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func (f *fixture) evaluate(c *call.Call) call.Verdict {
	f.tb.Helper()
	v, _, err := f.e.Evaluate(context.Background(), c)
	if err != nil {
		f.tb.Fatalf("Evaluate: %v", err)
	}
	return v
}

// observe evaluates c, records the verdict on it and counts it, as the
// node does for every call; with an End set it also reports the call end.
func (f *fixture) observe(c *call.Call) call.Verdict {
	f.tb.Helper()
	v, s, err := f.e.Evaluate(context.Background(), c)
	if err != nil {
		f.tb.Fatalf("Evaluate: %v", err)
	}
	c.Verdict, c.Shadow = v, s
	f.e.Observe(c)
	if c.End != nil {
		f.e.ObserveEnd(c)
	}
	return v
}

func (f *fixture) list(kind call.ListKind, number, reason string, expires time.Time) {
	f.tb.Helper()
	err := f.e.PutListEntries(tid, call.ListEntry{List: kind, Number: f.e.Number(tid, number), Reason: reason, ExpiresAt: expires})
	if err != nil {
		f.tb.Fatal(err)
	}
}

// twice observes two calls from caller for the customer, apart, ending
// a day before t0, and reports whether the second established a link.
func (f *fixture) twice(caller, userRef string, apart time.Duration, opts ...opt) bool {
	f.tb.Helper()
	first := f.call(caller, dialled, append([]opt{user(userRef), ago(24*time.Hour + apart)}, opts...)...)
	f.observe(first)
	second := f.call(caller, dialled, append([]opt{user(userRef), ago(24 * time.Hour)}, opts...)...)
	v, s, err := f.e.Evaluate(context.Background(), second)
	if err != nil {
		f.tb.Fatal(err)
	}
	second.Verdict, second.Shadow = v, s
	return f.e.Observe(second)
}

// history observes n calls; each gets the options returned by each(i).
func (f *fixture) history(n int, caller, dialledNum string, each func(i int) []opt) {
	for i := range n {
		f.observe(f.call(caller, dialledNum, each(i)...))
	}
}

// dialledIn returns number i of the tenant's +4420794601xx block.
func dialledIn(i int) string { return fmt.Sprintf("+4420794601%02d", i) }

// otherBlock returns a tenant number in block i (different hundreds).
func otherBlock(i int) string { return fmt.Sprintf("+44207946%02d00", 20+i) }

func codes(v call.Verdict) []string {
	out := make([]string, len(v.Markers))
	for i, m := range v.Markers {
		out[i] = m.Code
	}
	return out
}

func marker(v call.Verdict, code string) (call.Marker, bool) {
	for _, m := range v.Markers {
		if m.Code == code {
			return m, true
		}
	}
	return call.Marker{}, false
}

var defaultWeight = func() map[string]float64 {
	m := map[string]float64{}
	for _, s := range screen.Signals {
		m[s.Code] = s.Weight
	}
	return m
}()

func logistic(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// markerCase is a small scenario for one marker code: arrange state in the
// fixture and return the call to evaluate. fire says whether the code must
// be among the markers (and detail, if set, must be in its detail).
type markerCase struct {
	code   string
	name   string
	fire   bool
	detail string
	run    func(f *fixture) *call.Call
}

// markerCases has at least one firing case for every code in
// screen.Signals (TestEveryMarkerCovered checks), and near misses.
var markerCases = []markerCase{
	// numbering
	{"cli.withheld", "anonymous", true, "withheld", func(f *fixture) *call.Call { return f.call("anonymous", dialled) }},
	{"cli.withheld", "absent", true, "", func(f *fixture) *call.Call { return f.call("", dialled) }},
	{"cli.withheld", "Restricted", true, "", func(f *fixture) *call.Call { return f.call("Restricted", dialled) }},
	{"cli.withheld", "number presented", false, "", func(f *fixture) *call.Call { return f.call(homeFixed, dialled) }},
	{"cli.invalid", "letters", true, "not a telephone number", func(f *fixture) *call.Call { return f.call("ABCDEF", dialled) }},
	{"cli.invalid", "unassigned range", true, "outside every assigned range", func(f *fixture) *call.Call { return f.call(dramaFixed, dialled) }},
	{"cli.invalid", "more digits than E.164", true, "", func(f *fixture) *call.Call { return f.call("+99812345678901234567", dialled) }},
	{"cli.invalid", "valid fixed", false, "", func(f *fixture) *call.Call { return f.call("0121 234 5678", dialled) }},
	{"cli.invalid", "withheld is not invalid", false, "", func(f *fixture) *call.Call { return f.call("anonymous", dialled) }},
	{"cli.invalid", "premium is special not invalid", false, "", func(f *fixture) *call.Call { return f.call(premium, dialled) }},
	{"cli.impossible_length", "too long for GB", true, "", func(f *fixture) *call.Call { return f.call("+4412123456789", dialled) }},
	{"cli.impossible_length", "too short for GB", true, "", func(f *fixture) *call.Call { return f.call("+44121", dialled) }},
	{"cli.impossible_length", "invalid but possible length", false, "", func(f *fixture) *call.Call { return f.call(dramaFixed, dialled) }},
	{"cli.impossible_length", "valid", false, "", func(f *fixture) *call.Call { return f.call(homeFixed, dialled) }},
	{"cli.special_range", "premium rate", true, "premium_rate", func(f *fixture) *call.Call { return f.call("09012345678", dialled) }},
	{"cli.special_range", "pager", true, "pager", func(f *fixture) *call.Call { return f.call(pager, dialled) }},
	{"cli.special_range", "toll free may present", false, "", func(f *fixture) *call.Call { return f.call(tollFree, dialled) }},
	{"cli.special_range", "personal number may present", false, "", func(f *fixture) *call.Call { return f.call(personal, dialled) }},

	// do-not-originate
	{"cli.same_as_dialled", "national form of the dialled number", true, "", func(f *fixture) *call.Call {
		return f.call("020 7946 0100", dialled)
	}},
	{"cli.same_as_dialled", "neighbouring number", false, "", func(f *fixture) *call.Call { return f.call(dialledIn(1), dialled) }},
	{"cli.same_as_dialled", "withheld caller", false, "", func(f *fixture) *call.Call { return f.call("anonymous", dialled) }},
	{"dno.listed", "listed", true, "inbound-only number presented as caller: IVR", func(f *fixture) *call.Call {
		f.list(call.DNOList, tollFree, "IVR", time.Time{})
		return f.call("0800 123 4567", dialled)
	}},
	{"dno.listed", "entry expires later", true, "", func(f *fixture) *call.Call {
		f.list(call.DNOList, tollFree, "", t0.Add(time.Second))
		return f.call(tollFree, dialled)
	}},
	{"dno.listed", "entry expired at the call's start", false, "", func(f *fixture) *call.Call {
		f.list(call.DNOList, tollFree, "", t0)
		return f.call(tollFree, dialled)
	}},
	{"dno.listed", "entry expired before", false, "", func(f *fixture) *call.Call {
		f.list(call.DNOList, tollFree, "", t0.Add(-time.Hour))
		return f.call(tollFree, dialled)
	}},
	{"dno.listed", "another tenant's entry", false, "", func(f *fixture) *call.Call {
		f.e.SetTenant(call.Tenant{ID: "t2", Region: "GB"}, call.DefaultPolicy())
		f.e.PutListEntries("t2", call.ListEntry{List: call.DNOList, Number: f.e.Number("t2", tollFree)})
		return f.call(tollFree, dialled)
	}},
	{"dno.listed", "deleted entry", false, "", func(f *fixture) *call.Call {
		f.list(call.DNOList, tollFree, "", time.Time{})
		f.e.DeleteListEntry(tid, call.DNOList, f.e.Number(tid, tollFree))
		return f.call(tollFree, dialled)
	}},

	// route
	{"route.home_cli_international", "GB fixed on international route", true, "intl-fr", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, ingress("intl-fr"))
	}},
	{"route.home_cli_international", "GB toll free on route of unknown country", true, "", func(f *fixture) *call.Call {
		return f.call(tollFree, dialled, ingress("intl"))
	}},
	{"route.home_cli_international", "Jersey fixed (+44, region JE) on international route", true, "", func(f *fixture) *call.Call {
		return f.call("+441534456789", dialled, ingress("intl-fr"))
	}},
	{"route.home_cli_international", "GB mobile is roaming instead", false, "", func(f *fixture) *call.Call {
		return f.call(homeMobile, dialled, ingress("intl-fr"))
	}},
	{"route.home_cli_international", "GB fixed on domestic route", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, ingress("dom"))
	}},
	{"route.home_cli_international", "foreign CLI on international route", false, "", func(f *fixture) *call.Call {
		return f.call(frFixed, dialled, ingress("intl-fr"))
	}},
	{"route.home_mobile_roaming", "GB mobile on international route", true, "intl-fr", func(f *fixture) *call.Call {
		return f.call("07400 123456", dialled, ingress("intl-fr"))
	}},
	{"route.home_mobile_roaming", "Jersey mobile (+44, region JE) on international route", true, "", func(f *fixture) *call.Call {
		return f.call("+447797123456", dialled, ingress("intl-fr"))
	}},
	{"route.home_mobile_roaming", "GB mobile on domestic route", false, "", func(f *fixture) *call.Call {
		return f.call(homeMobile, dialled, ingress("dom"))
	}},
	{"route.home_mobile_roaming", "GB fixed on international route", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, ingress("intl-fr"))
	}},
	{"route.country_mismatch", "DE CLI on route from FR", true, "CLI country DE on route from FR", func(f *fixture) *call.Call {
		return f.call(deFixed, dialled, ingress("intl-fr"))
	}},
	{"route.country_mismatch", "US CLI on route from FR", true, "", func(f *fixture) *call.Call {
		return f.call(usNumber, dialled, ingress("intl-fr"))
	}},
	{"route.country_mismatch", "FR CLI on route from FR", false, "", func(f *fixture) *call.Call {
		return f.call(frFixed, dialled, ingress("intl-fr"))
	}},
	{"route.country_mismatch", "DE CLI on route of unknown country", false, "", func(f *fixture) *call.Call {
		return f.call(deFixed, dialled, ingress("intl"))
	}},
	{"route.country_mismatch", "DE CLI on domestic route", false, "", func(f *fixture) *call.Call {
		return f.call(deFixed, dialled, ingress("dom"))
	}},
	{"route.unknown", "route not in table", true, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, ingress("pstn-9"))
	}},
	{"route.unknown", "deleted route", true, "", func(f *fixture) *call.Call {
		f.e.DeleteRoute(tid, "intl")
		return f.call(homeFixed, dialled, ingress("intl"))
	}},
	{"route.unknown", "no ingress given", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, ingress(""))
	}},
	{"route.unknown", "known route", false, "", func(f *fixture) *call.Call { return f.call(homeFixed, dialled) }},

	// identity
	{"identity.from_pai_mismatch", "different numbers", true, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, from("<sip:"+homeFixed2+"@carrier.example>;tag=1"), pai("<sip:"+homeFixed+"@carrier.example;user=phone>"))
	}},
	{"identity.from_pai_mismatch", "From without a number (PBX user) is no claim", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, from("<sip:alice@pbx.example>;tag=1"), pai("<sip:"+homeFixed+"@carrier.example>"))
	}},
	{"identity.from_pai_mismatch", "same number sip E.164 and tel national", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, from(`"Bob" <sip:+441212345678@carrier.example;user=phone>;tag=1`), pai("<tel:01212345678>"))
	}},
	{"identity.from_pai_mismatch", "same number national sip and 00 tel", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, from("sip:0121-234-5678@10.0.0.1;tag=9"), pai("tel:0044 121 234 5678"))
	}},
	{"identity.from_pai_mismatch", "same number with escaped plus", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, from("<sip:%2B441212345678@carrier.example>"), pai("<sip:+441212345678@carrier.example>"))
	}},
	{"identity.from_pai_mismatch", "display name holding another number", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, from(`"<sip:+441134960000@x>" <sip:+441212345678@carrier.example>`), pai("<sip:+441212345678@carrier.example>"))
	}},
	{"identity.from_pai_mismatch", "anonymous From with PAI", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, from(`"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1`), pai("<sip:"+homeFixed+"@carrier.example>"), privacy("id"))
	}},
	{"identity.from_pai_mismatch", "no PAI", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, from("<sip:"+homeFixed2+"@carrier.example>"))
	}},
	{"identity.multiple_pai", "two different numbers", true, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, pai("<sip:"+homeFixed+"@carrier.example>", "<tel:"+homeFixed2+">"))
	}},
	{"identity.multiple_pai", "sip and tel of the same number", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, from("<sip:"+homeFixed+"@carrier.example>"), pai("<sip:+441212345678@carrier.example;user=phone>", "<tel:0121 234 5678>"))
	}},
	{"identity.multiple_pai", "one PAI", false, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, pai("<sip:"+homeFixed+"@carrier.example>"))
	}},
	{"identity.privacy", "id", true, "Privacy: id", func(f *fixture) *call.Call { return f.call(homeFixed, dialled, privacy("id")) }},
	{"identity.privacy", "header;user", true, "", func(f *fixture) *call.Call { return f.call(homeFixed, dialled, privacy("header;user")) }},
	{"identity.privacy", "upper case, comma list", true, "", func(f *fixture) *call.Call {
		return f.call(homeFixed, dialled, privacy("none, ID"))
	}},
	{"identity.privacy", "none", false, "", func(f *fixture) *call.Call { return f.call(homeFixed, dialled, privacy("none")) }},
	{"identity.privacy", "critical alone", false, "", func(f *fixture) *call.Call { return f.call(homeFixed, dialled, privacy("critical")) }},
	{"identity.privacy", "absent", false, "", func(f *fixture) *call.Call { return f.call(homeFixed, dialled) }},

	// verstat
	{"verstat.passed_a", "canonical", true, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("TN-Validation-Passed-A")) }},
	{"verstat.passed_a", "snake case", true, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("tn_validation_passed_a")) }},
	{"verstat.passed_a", "B attestation", false, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("TN-Validation-Passed-B")) }},
	{"verstat.passed", "no attestation", true, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("TN-Validation-Passed")) }},
	{"verstat.passed", "B attestation", true, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("TN-Validation-Passed-B")) }},
	{"verstat.passed", "A attestation", false, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("TN-Validation-Passed-A")) }},
	{"verstat.passed_c", "C attestation", true, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("TN-Validation-Passed-C")) }},
	{"verstat.failed", "parameter form with attestation", true, "", func(f *fixture) *call.Call {
		return f.call(usNumber, dialled, verstat("verstat=TN-Validation-Failed-B"))
	}},
	{"verstat.failed", "inside a PAI value", true, "", func(f *fixture) *call.Call {
		return f.call(usNumber, dialled, verstat("<sip:+12015550123@carrier.example;verstat=TN-Validation-Failed;user=phone>"))
	}},
	{"verstat.failed", "passed", false, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("TN-Validation-Passed")) }},
	{"verstat.none", "No-TN-Validation", true, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("No-TN-Validation")) }},
	{"verstat.none", "absent", false, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled) }},
	{"verstat.none", "unknown spelling", false, "", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("Validated")) }},

	// lists
	{"list.allow", "listed", true, "on allow list: staff", func(f *fixture) *call.Call {
		f.list(call.AllowList, homeMobile, "staff", time.Time{})
		return f.call("07400 123456", dialled)
	}},
	{"list.allow", "not applied when a spoofing sign fired", false, "", func(f *fixture) *call.Call {
		f.list(call.AllowList, homeFixed, "staff", time.Time{})
		return f.call(homeFixed, dialled, ingress("intl-fr"))
	}},
	{"list.allow", "expired", false, "", func(f *fixture) *call.Call {
		f.list(call.AllowList, homeMobile, "staff", t0.Add(-time.Minute))
		return f.call(homeMobile, dialled)
	}},
	{"list.allow", "on deny list only", false, "", func(f *fixture) *call.Call {
		f.list(call.DenyList, homeMobile, "", time.Time{})
		return f.call(homeMobile, dialled)
	}},
	{"list.deny", "listed", true, "on deny list: confirmed fraud", func(f *fixture) *call.Call {
		f.list(call.DenyList, homeMobile, "confirmed fraud", t0.Add(24*time.Hour))
		return f.call(homeMobile, dialled)
	}},
	{"list.deny", "expired", false, "", func(f *fixture) *call.Call {
		f.list(call.DenyList, homeMobile, "confirmed fraud", t0.Add(-time.Nanosecond))
		return f.call(homeMobile, dialled)
	}},
	{"list.deny", "another number", false, "", func(f *fixture) *call.Call {
		f.list(call.DenyList, homeMobile, "", time.Time{})
		return f.call(homeMobile2, dialled)
	}},

	// velocity, under testThresholds; event times relative to t0
	{"velocity.caller_minute", "3 calls in the last minute (threshold 3)", true, "3 calls in the last minute", func(f *fixture) *call.Call {
		f.history(3, homeMobile, dialled, func(i int) []opt { return []opt{ago(time.Duration(40-10*i) * time.Second)} }) // -40s, -30s, -20s
		return f.call(homeMobile, dialled)
	}},
	{"velocity.caller_minute", "2 calls in the last minute", false, "", func(f *fixture) *call.Call {
		f.history(2, homeMobile, dialled, func(i int) []opt { return []opt{ago(time.Duration(40-10*i) * time.Second)} })
		return f.call(homeMobile, dialled)
	}},
	{"velocity.caller_minute", "3 calls more than a minute ago", false, "", func(f *fixture) *call.Call {
		f.history(3, homeMobile, dialled, func(i int) []opt { return []opt{ago(time.Duration(90-10*i) * time.Second)} }) // -90s..-70s
		return f.call(homeMobile, dialled)
	}},
	{"velocity.caller_hour", "10 calls in the last hour (threshold 10)", true, "10 calls in the last hour", func(f *fixture) *call.Call {
		f.history(10, homeMobile, dialled, func(i int) []opt { return []opt{ago(time.Duration(50-5*i) * time.Minute)} }) // -50m..-5m
		return f.call(homeMobile, dialled)
	}},
	{"velocity.caller_hour", "9 calls in the last hour", false, "", func(f *fixture) *call.Call {
		f.history(9, homeMobile, dialled, func(i int) []opt { return []opt{ago(time.Duration(50-5*i) * time.Minute)} })
		return f.call(homeMobile, dialled)
	}},
	{"velocity.caller_day", "30 calls in the last day (threshold 30)", true, "30 calls in the last 24 hours", func(f *fixture) *call.Call {
		f.history(30, homeMobile, dialled, func(i int) []opt { return []opt{ago(time.Duration(1200-40*i) * time.Minute)} }) // -20h..-40m
		return f.call(homeMobile, dialled)
	}},
	{"velocity.caller_day", "29 calls in the last day", false, "", func(f *fixture) *call.Call {
		f.history(29, homeMobile, dialled, func(i int) []opt { return []opt{ago(time.Duration(1200-40*i) * time.Minute)} })
		return f.call(homeMobile, dialled)
	}},
	{"velocity.caller_day", "30 calls, the oldest 25 hours ago", false, "", func(f *fixture) *call.Call {
		f.history(30, homeMobile, dialled, func(i int) []opt {
			if i == 0 {
				return []opt{ago(25 * time.Hour)}
			}
			return []opt{ago(time.Duration(1200-40*i) * time.Minute)}
		})
		return f.call(homeMobile, dialled)
	}},
	{"velocity.distinct_dialled", "4 numbers in 4 blocks in the last hour (threshold 4)", true, "4 distinct numbers dialled", func(f *fixture) *call.Call {
		for i := range 4 {
			f.observe(f.call(homeMobile, otherBlock(i), ago(time.Duration(50-10*i)*time.Minute)))
		}
		return f.call(homeMobile, otherBlock(5))
	}},
	{"velocity.distinct_dialled", "3 numbers", false, "", func(f *fixture) *call.Call {
		for i := range 3 {
			f.observe(f.call(homeMobile, otherBlock(i), ago(time.Duration(50-10*i)*time.Minute)))
		}
		return f.call(homeMobile, otherBlock(5))
	}},
	{"velocity.distinct_dialled", "one number 4 times", false, "", func(f *fixture) *call.Call {
		f.history(4, homeMobile, otherBlock(0), func(i int) []opt { return []opt{ago(time.Duration(50-10*i) * time.Minute)} })
		return f.call(homeMobile, otherBlock(5))
	}},
	{"velocity.distinct_dialled", "4 numbers, one over an hour ago", false, "", func(f *fixture) *call.Call {
		for i := range 4 {
			f.observe(f.call(homeMobile, otherBlock(i), ago(time.Duration(61-10*i)*time.Minute)))
		}
		return f.call(homeMobile, otherBlock(5))
	}},
	{"velocity.distinct_users", "3 customer ids in 24h (threshold 3)", true, "3 distinct customer ids", func(f *fixture) *call.Call {
		f.history(3, homeMobile, dialled, func(i int) []opt {
			return []opt{ago(time.Duration(20-5*i) * time.Hour), user("cust-" + strconv.Itoa(i))}
		})
		return f.call(homeMobile, dialled, user("cust-9"))
	}},
	{"velocity.distinct_users", "2 customer ids", false, "", func(f *fixture) *call.Call {
		f.history(2, homeMobile, dialled, func(i int) []opt {
			return []opt{ago(time.Duration(20-5*i) * time.Hour), user("cust-" + strconv.Itoa(i))}
		})
		return f.call(homeMobile, dialled, user("cust-9"))
	}},
	{"velocity.distinct_users", "one id 3 times", false, "", func(f *fixture) *call.Call {
		f.history(3, homeMobile, dialled, func(i int) []opt { return []opt{ago(time.Duration(20-5*i) * time.Hour), user("cust-0")} })
		return f.call(homeMobile, dialled, user("cust-9"))
	}},
	{"velocity.distinct_users", "3 ids but this call presents none", false, "", func(f *fixture) *call.Call {
		f.history(3, homeMobile, dialled, func(i int) []opt {
			return []opt{ago(time.Duration(20-5*i) * time.Hour), user("cust-" + strconv.Itoa(i))}
		})
		return f.call(homeMobile, dialled)
	}},
	{"velocity.sweep", "4 numbers of one block (threshold 4)", true, "4 numbers of one block", func(f *fixture) *call.Call {
		for i := range 4 {
			f.observe(f.call(homeMobile, dialledIn(10+i), ago(time.Duration(40-i)*time.Minute)))
		}
		return f.call(homeMobile, dialledIn(14))
	}},
	{"velocity.sweep", "3 numbers of one block", false, "", func(f *fixture) *call.Call {
		for i := range 3 {
			f.observe(f.call(homeMobile, dialledIn(10+i), ago(time.Duration(40-i)*time.Minute)))
		}
		return f.call(homeMobile, dialledIn(14))
	}},
	{"velocity.sweep", "4 numbers in different blocks", false, "", func(f *fixture) *call.Call {
		for i := range 4 {
			f.observe(f.call(homeMobile, otherBlock(i), ago(time.Duration(40-i)*time.Minute)))
		}
		return f.call(homeMobile, dialledIn(14))
	}},
	{"velocity.dialled_burst", "25 distinct callers in 10 minutes (threshold 25)", true, "25 distinct callers", func(f *fixture) *call.Call {
		for i := range 25 {
			f.observe(f.call(fmt.Sprintf("+4474001234%02d", 60+i), dialled, ago(time.Duration(590-20*i)*time.Second)))
		}
		return f.call(homeMobile, dialled)
	}},
	{"velocity.dialled_burst", "24 distinct callers", false, "", func(f *fixture) *call.Call {
		for i := range 24 {
			f.observe(f.call(fmt.Sprintf("+4474001234%02d", 60+i), dialled, ago(time.Duration(590-20*i)*time.Second)))
		}
		return f.call(homeMobile, dialled)
	}},
	{"velocity.dialled_burst", "25 callers, one 11 minutes ago", false, "", func(f *fixture) *call.Call {
		for i := range 25 {
			d := time.Duration(590-20*i) * time.Second
			if i == 0 {
				d = 11 * time.Minute
			}
			f.observe(f.call(fmt.Sprintf("+4474001234%02d", 60+i), dialled, ago(d)))
		}
		return f.call(homeMobile, dialled)
	}},
	{"velocity.dialled_burst", "25 distinct callers to a published (DNO-listed) number", false, "", func(f *fixture) *call.Call {
		f.list(call.DNOList, dialled, "main number", time.Time{})
		for i := range 25 {
			f.observe(f.call(fmt.Sprintf("+4474001234%02d", 60+i), dialled, ago(time.Duration(590-20*i)*time.Second)))
		}
		return f.call(homeMobile, dialled)
	}},
	{"velocity.short_calls", "3 of 5 ended calls short (threshold 5, share 0.6)", true, "3 of 5 ended calls were short", func(f *fixture) *call.Call {
		f.history(5, homeMobile, dialled, func(i int) []opt {
			d := 3 * time.Second
			if i >= 3 {
				d = 5 * time.Minute
			}
			return []opt{ago(time.Duration(10-i) * time.Hour), ended(d)}
		})
		return f.call(homeMobile, dialled)
	}},
	{"velocity.short_calls", "2 of 5 short", false, "", func(f *fixture) *call.Call {
		f.history(5, homeMobile, dialled, func(i int) []opt {
			d := 3 * time.Second
			if i >= 2 {
				d = 5 * time.Minute
			}
			return []opt{ago(time.Duration(10-i) * time.Hour), ended(d)}
		})
		return f.call(homeMobile, dialled)
	}},
	{"velocity.short_calls", "4 of 4 short: too few ended calls", false, "", func(f *fixture) *call.Call {
		f.history(4, homeMobile, dialled, func(i int) []opt { return []opt{ago(time.Duration(10-i) * time.Hour), ended(time.Second)} })
		return f.call(homeMobile, dialled)
	}},

	// customer link
	{"link.unknown_number", "customer calls from a number not linked to them", true, "other known numbers", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		return f.call(homeMobile2, dialled, user("cust-1"))
	}},
	{"link.unknown_number", "number linked to another customer", true, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		f.e.Link(tid, f.e.Number(tid, homeMobile2), "cust-2")
		return f.call(homeMobile2, dialled, user("cust-1"))
	}},
	{"link.unknown_number", "customer has a candidate number from one verified call", true, "", func(f *fixture) *call.Call {
		f.observe(f.call(homeMobile, dialled, user("cust-1"), ago(48*time.Hour), verstat("TN-Validation-Passed-A")))
		return f.call(homeMobile2, dialled, user("cust-1"))
	}},
	{"link.unknown_number", "caller is the customer's candidate number", false, "", func(f *fixture) *call.Call {
		f.observe(f.call(homeMobile, dialled, user("cust-1"), ago(48*time.Hour), verstat("TN-Validation-Passed-A")))
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.unknown_number", "customer without linked numbers", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-2")
		return f.call(homeMobile2, dialled, user("cust-1"))
	}},
	{"link.unknown_number", "customer's own number", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.unknown_number", "withheld caller", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		return f.call("anonymous", dialled, user("cust-1"))
	}},
	{"link.unknown_number", "no customer id", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		return f.call(homeMobile2, dialled)
	}},
	{"link.unknown_number", "the only linked number was unlinked", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		f.e.Unlink(tid, f.e.Number(tid, homeMobile))
		return f.call(homeMobile2, dialled, user("cust-1"))
	}},
	{"link.known_customer", "linked by the store", true, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.known_customer", "linked by two allowed A-verified calls a day apart", true, "", func(f *fixture) *call.Call {
		f.twice(homeMobile, "cust-1", 24*time.Hour, verstat("TN-Validation-Passed-A"))
		return f.call("07400 123456", dialled, user("cust-1"))
	}},
	{"link.known_customer", "one A-verified call is only a candidate", false, "", func(f *fixture) *call.Call {
		f.observe(f.call(homeMobile, dialled, user("cust-1"), ago(48*time.Hour), verstat("TN-Validation-Passed-A")))
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.known_customer", "two A-verified calls 10 hours apart", false, "", func(f *fixture) *call.Call {
		f.twice(homeMobile, "cust-1", 10*time.Hour, verstat("TN-Validation-Passed-A"))
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.known_customer", "unverified allowed calls a day apart link too (UK calls rarely carry verstat)", true, "", func(f *fixture) *call.Call {
		f.twice(homeMobile, "cust-1", 24*time.Hour)
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.known_customer", "calls with a spoofing sign do not link", false, "", func(f *fixture) *call.Call {
		f.twice(homeMobile, "cust-1", 24*time.Hour, verstat("TN-Validation-Failed"))
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.known_customer", "another customer", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		return f.call(homeMobile, dialled, user("cust-2"))
	}},
	{"link.known_customer", "no customer id on the call", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		return f.call(homeMobile, dialled)
	}},
	{"link.known_customer", "unlinked", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		f.e.Unlink(tid, f.e.Number(tid, homeMobile))
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.known_customer", "suppressed by dno.listed", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		f.list(call.DNOList, homeMobile, "", time.Time{})
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.known_customer", "suppressed by from_pai_mismatch", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		return f.call(homeMobile, dialled, user("cust-1"), from("<sip:"+homeFixed2+"@x>"), pai("<sip:"+homeMobile+"@x>"))
	}},
	{"link.known_customer", "suppressed by verstat.failed", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		return f.call(homeMobile, dialled, user("cust-1"), verstat("TN-Validation-Failed"))
	}},
	{"link.known_customer", "suppressed by route.home_cli_international", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeFixed), "cust-1")
		return f.call(homeFixed, dialled, user("cust-1"), ingress("intl"))
	}},
	{"link.known_customer", "suppressed by list.deny", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, homeMobile), "cust-1")
		f.list(call.DenyList, homeMobile, "", time.Time{})
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.known_customer", "suppressed by cli.same_as_dialled", false, "", func(f *fixture) *call.Call {
		f.e.Link(tid, f.e.Number(tid, dialled), "cust-1")
		return f.call(dialled, dialled, user("cust-1"))
	}},
	{"link.known_customer", "flagged calls do not link", false, "", func(f *fixture) *call.Call {
		for _, d := range []time.Duration{48 * time.Hour, 24 * time.Hour} {
			c := f.call(homeMobile, dialled, user("cust-1"), ago(d), verstat("TN-Validation-Passed-A"))
			c.Verdict = f.evaluate(c)
			c.Verdict.Action = call.Flag // as if the policy had flagged it
			if f.e.Observe(c) {
				f.tb.Error("Observe of a flagged call reported a new link")
			}
		}
		return f.call(homeMobile, dialled, user("cust-1"))
	}},
	{"link.known_customer", "withheld caller never links", false, "", func(f *fixture) *call.Call {
		f.twice("anonymous", "cust-1", 24*time.Hour, verstat("TN-Validation-Passed-A"))
		return f.call("anonymous", dialled, user("cust-1"))
	}},
}

func TestMarkers(t *testing.T) {
	for _, tc := range markerCases {
		verb := "fires"
		if !tc.fire {
			verb = "silent"
		}
		t.Run(tc.code+"/"+verb+"/"+tc.name, func(t *testing.T) {
			f := newFixture(t, call.DefaultPolicy())
			c := tc.run(f)
			before := *c
			v := f.evaluate(c)
			if !reflect.DeepEqual(before, *c) {
				t.Errorf("Evaluate changed the call:\nbefore %+v\nafter  %+v", before, *c)
			}
			m, ok := marker(v, tc.code)
			if ok != tc.fire {
				t.Fatalf("%s fired = %v, want %v; markers %v", tc.code, ok, tc.fire, codes(v))
			}
			if ok && !strings.Contains(m.Detail, tc.detail) {
				t.Errorf("%s detail = %q, want it to contain %q", tc.code, m.Detail, tc.detail)
			}
			checkVerdict(t, c, v, call.DefaultPolicy())
		})
	}
}

// checkVerdict checks what holds for every verdict under policy p (without
// Weights overrides): known codes, each at most once, default weights, no
// phone number in a detail, score and action consistent.
func checkVerdict(t *testing.T, c *call.Call, v call.Verdict, p call.Policy) {
	t.Helper()
	seen := map[string]bool{}
	logit := p.Prior
	for _, m := range v.Markers {
		w, known := defaultWeight[m.Code]
		if !known {
			t.Errorf("marker %q is not in screen.Signals", m.Code)
		}
		if seen[m.Code] {
			t.Errorf("marker %q twice in %v", m.Code, codes(v))
		}
		seen[m.Code] = true
		if pw, ok := p.Weights[m.Code]; ok {
			w = pw
		}
		if m.Weight != w {
			t.Errorf("marker %s weight %v, want %v", m.Code, m.Weight, w)
		}
		logit += w
		for _, n := range []call.Number{c.Caller, c.Dialled} {
			if len(n.E164) > 4 && strings.Contains(m.Detail, n.E164[3:]) {
				t.Errorf("marker %s detail %q contains a phone number", m.Code, m.Detail)
			}
		}
	}
	if want := logistic(logit); math.Abs(v.Score-want) > 1e-12 {
		t.Errorf("score %v, want logistic(%v) = %v", v.Score, logit, want)
	}
	if v.Score < 0 || v.Score > 1 || math.IsNaN(v.Score) {
		t.Errorf("score %v outside [0,1]", v.Score)
	}
	least := call.Allow
	for _, m := range v.Markers {
		if a, ok := p.Actions[m.Code]; ok && a.Rank() > least.Rank() {
			least = a
		}
	}
	want := least
	switch {
	case v.Score >= p.BlockAt:
		want = call.Block
	case v.Score >= p.FlagAt && least != call.Block:
		want = call.Flag
	}
	if v.Action != want {
		t.Errorf("action %s, want %s (score %v, markers %v)", v.Action, want, v.Score, codes(v))
	}
	if v.Policy != "v"+strconv.Itoa(p.Version) {
		t.Errorf("policy %q, want v%d", v.Policy, p.Version)
	}
	if !v.EvaluatedAt.Equal(t0) {
		t.Errorf("EvaluatedAt %v, want the engine clock's %v", v.EvaluatedAt, t0)
	}
}

// TestEveryMarkerCovered fails when a code in screen.Signals has no firing
// case in markerCases: a new marker needs a test.
func TestEveryMarkerCovered(t *testing.T) {
	fires := map[string]bool{}
	for _, tc := range markerCases {
		if _, ok := defaultWeight[tc.code]; !ok {
			t.Errorf("case %q tests %q, which is not in screen.Signals", tc.name, tc.code)
		}
		if tc.fire {
			fires[tc.code] = true
		}
	}
	seen := map[string]bool{}
	e := screen.New(screen.Config{})
	for _, s := range screen.Signals {
		if seen[s.Code] {
			t.Errorf("code %s listed twice in screen.Signals", s.Code)
		}
		seen[s.Code] = true
		if !fires[s.Code] {
			t.Errorf("marker %s has no firing case in markerCases", s.Code)
		}
		if s.Family == "" || s.Meaning == "" {
			t.Errorf("marker %s has no family or meaning", s.Code)
		}
		if !e.KnownMarker(s.Code) {
			t.Errorf("KnownMarker(%q) = false", s.Code)
		}
	}
}

func TestNormaliseVerstat(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"TN-Validation-Passed-A", screen.VerstatPassedA},
		{"tn_validation_passed_a", screen.VerstatPassedA},
		{"TN Validation Passed A", screen.VerstatPassedA},
		{`"TN-Validation-Passed-A"`, screen.VerstatPassedA},
		{"  tn-validation-passed-a  ", screen.VerstatPassedA},
		{"TN-Validation-Passed", screen.VerstatPassed},
		{"TN-Validation-Passed-U", screen.VerstatPassed},
		{"TN-Validation-Passed-B", screen.VerstatPassedB},
		{"tn_validation_passed_c", screen.VerstatPassedC},
		{"verstat=TN-Validation-Failed-B", screen.VerstatFailed},
		{"TN-Validation-Failed", screen.VerstatFailed},
		{"TN-Validation-Failed-A", screen.VerstatFailed},
		{"tn_validation_failed_c", screen.VerstatFailed},
		{"No-TN-Validation", screen.VerstatNoVerify},
		{"no_tn_validation", screen.VerstatNoVerify},
		{"<sip:+12015550123@example.com;verstat=TN-Validation-Passed;user=phone>", screen.VerstatPassed},
		{"sip:+12015550123@example.com;user=phone;verstat=No-TN-Validation", screen.VerstatNoVerify},
		{"tel:+12015550123;verstat=TN-Validation-Failed,tel:+1", screen.VerstatFailed},
		{"", screen.VerstatNone},
		{"passed", screen.VerstatNone},
		{"TN-Validation-Passed-D", screen.VerstatNone},
		{"TN-Validation", screen.VerstatNone},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := screen.NormaliseVerstat(tc.in); got != tc.want {
				t.Errorf("NormaliseVerstat(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestScore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		run   func(f *fixture) *call.Call
		codes []string
	}{
		{"no markers", func(f *fixture) *call.Call { return f.call(homeFixed, dialled) }, nil},
		{"one marker", func(f *fixture) *call.Call { return f.call("anonymous", dialled) }, []string{"cli.withheld"}},
		{"negative weight", func(f *fixture) *call.Call { return f.call(usNumber, dialled, verstat("TN-Validation-Passed-A")) },
			[]string{"verstat.passed_a"}},
		{"several", func(f *fixture) *call.Call {
			return f.call(dramaFixed, dialled, ingress("pstn-9"), privacy("id"), verstat("No-TN-Validation"))
		}, []string{"cli.invalid", "route.unknown", "identity.privacy", "verstat.none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, call.DefaultPolicy())
			v := f.evaluate(tc.run(f))
			if got := codes(v); !slices.Equal(got, tc.codes) {
				t.Fatalf("markers %v, want %v", got, tc.codes)
			}
			logit := call.DefaultPolicy().Prior
			for _, c := range tc.codes {
				logit += defaultWeight[c]
			}
			want := 1 / (1 + math.Exp(-logit))
			if math.Abs(v.Score-want) > 1e-12 {
				t.Errorf("score %.15f, want logistic(%v) = %.15f", v.Score, logit, want)
			}
		})
	}
}

// invalidCLI gives one marker, cli.invalid.
func invalidCLI(f *fixture) *call.Call { return f.call(dramaFixed, dialled) }

// invalidPolicy is the default policy with the prior set so that a call
// with only cli.invalid scores logistic(-0.5) = 0.3775, whatever the
// marker's default weight.
func invalidPolicy() call.Policy {
	p := call.DefaultPolicy()
	p.Prior = -0.5 - defaultWeight["cli.invalid"]
	return p
}

func TestPolicyThresholds(t *testing.T) {
	score := logistic(invalidPolicy().Prior + defaultWeight["cli.invalid"])
	if math.Abs(score-0.3775) > 1e-4 {
		t.Fatalf("scenario score %v, want about 0.3775", score)
	}
	for _, tc := range []struct {
		name          string
		flagAt, block float64
		want          call.Action
	}{
		{"below flag", 0.5, 0.9, call.Allow},
		{"above flag", 0.3, 0.9, call.Flag},
		{"exactly at flag", score, 0.9, call.Flag},
		{"just below flag", math.Nextafter(score, 1), 0.9, call.Allow},
		{"above block", 0.3, 0.35, call.Block},
		{"exactly at block", 0.3, score, call.Block},
		{"just below block", 0.3, math.Nextafter(score, 1), call.Flag},
		{"flag and block equal", score, score, call.Block},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := invalidPolicy()
			p.FlagAt, p.BlockAt = tc.flagAt, tc.block
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, p)
			v := f.evaluate(invalidCLI(f))
			if v.Score != score {
				t.Fatalf("score %v, want %v", v.Score, score)
			}
			if v.Action != tc.want {
				t.Errorf("flag_at %v block_at %v: action %s, want %s", tc.flagAt, tc.block, v.Action, tc.want)
			}
		})
	}
}

func TestPolicyActions(t *testing.T) {
	t.Run("dno.listed blocks at a low score", func(t *testing.T) {
		p := call.DefaultPolicy()
		p.Weights = map[string]float64{"dno.listed": 0}
		f := newFixture(t, p)
		f.list(call.DNOList, tollFree, "", time.Time{})
		v := f.evaluate(f.call(tollFree, dialled, verstat("TN-Validation-Passed-A")))
		if v.Score >= call.DefaultPolicy().FlagAt {
			t.Fatalf("score %v: scenario meant to score low", v.Score)
		}
		if v.Action != call.Block {
			t.Errorf("action %s, want block (policy action for dno.listed); markers %v", v.Action, codes(v))
		}
	})
	t.Run("list.deny blocks at a low score", func(t *testing.T) {
		p := call.DefaultPolicy()
		p.Weights = map[string]float64{"list.deny": 0}
		f := newFixture(t, p)
		f.list(call.DenyList, homeFixed, "", time.Time{})
		if v := f.evaluate(f.call(homeFixed, dialled)); v.Action != call.Block || v.Score >= p.FlagAt {
			t.Errorf("action %s score %v, want block with a low score", v.Action, v.Score)
		}
	})
	t.Run("flag action", func(t *testing.T) {
		p := call.DefaultPolicy()
		p.Actions["identity.privacy"] = call.Flag
		f := newFixture(t, p)
		v := f.evaluate(f.call(homeFixed, dialled, privacy("id")))
		if v.Action != call.Flag || v.Score >= p.FlagAt {
			t.Errorf("action %s score %v, want flag with a low score", v.Action, v.Score)
		}
		checkVerdict(t, f.call(homeFixed, dialled, privacy("id")), v, p)
	})
	t.Run("flag action under a block score stays block", func(t *testing.T) {
		p := invalidPolicy()
		p.Actions["cli.invalid"] = call.Flag
		p.BlockAt = 0.3
		f := newFixture(t, p)
		if v := f.evaluate(invalidCLI(f)); v.Action != call.Block {
			t.Errorf("action %s, want block", v.Action)
		}
	})
	t.Run("allow action never lowers", func(t *testing.T) {
		p := invalidPolicy()
		p.Actions["cli.invalid"] = call.Allow
		p.FlagAt = 0.3
		f := newFixture(t, p)
		if v := f.evaluate(invalidCLI(f)); v.Action != call.Flag {
			t.Errorf("action %s, want flag: an action is the least action", v.Action)
		}
	})
	t.Run("action for a marker that did not fire", func(t *testing.T) {
		f := newFixture(t, call.DefaultPolicy())
		if v := f.evaluate(f.call(homeFixed, dialled)); v.Action != call.Allow {
			t.Errorf("action %s, want allow", v.Action)
		}
	})
}

func TestPolicyWeights(t *testing.T) {
	p := call.DefaultPolicy()
	p.Weights = map[string]float64{"cli.invalid": 5, "verstat.none": -0.3, "dno.listed": 20}
	f := newFixture(t, p)
	c := f.call(dramaFixed, dialled, verstat("No-TN-Validation"))
	v := f.evaluate(c)
	if got := codes(v); !slices.Equal(got, []string{"cli.invalid", "verstat.none"}) {
		t.Fatalf("markers %v", got)
	}
	if v.Markers[0].Weight != 5 || v.Markers[1].Weight != -0.3 {
		t.Errorf("weights %v, %v; want the policy's 5 and -0.3", v.Markers[0].Weight, v.Markers[1].Weight)
	}
	if want := logistic(-4 + 5 - 0.3); math.Abs(v.Score-want) > 1e-12 {
		t.Errorf("score %v, want %v", v.Score, want)
	}
	if v.Action != call.Flag {
		t.Errorf("action %s, want flag at score %v", v.Action, v.Score)
	}
	checkVerdict(t, c, v, p)
}

// TestPolicyNotAliased checks the engine keeps its own copy of a policy:
// changing the maps of a policy value after SetPolicy (or of one read back
// with Policy) does not change live scoring.
func TestPolicyNotAliased(t *testing.T) {
	p := invalidPolicy()
	p.Weights = map[string]float64{"cli.invalid": defaultWeight["cli.invalid"]}
	f := newFixture(t, p)
	p.Weights["cli.invalid"] = 20
	p.Actions["cli.invalid"] = call.Block
	back, _ := f.e.Policy(tid)
	back.Weights["cli.invalid"] = 20
	back.Actions["cli.invalid"] = call.Block
	v := f.evaluate(invalidCLI(f))
	if v.Markers[0].Weight != defaultWeight["cli.invalid"] || v.Action != call.Allow {
		t.Errorf("weight %v action %s after the caller changed its maps: want %v allow", v.Markers[0].Weight, v.Action, defaultWeight["cli.invalid"])
	}
}

func TestShadowPolicy(t *testing.T) {
	// Explicit weights, so the scenario does not move with the defaults.
	live := call.DefaultPolicy()
	live.Version = 3
	live.Weights = map[string]float64{"cli.invalid": 3.5, "identity.privacy": 0.5, "route.unknown": 0.3, "link.known_customer": -2.5, "link.unknown_number": 1, "verstat.passed_a": -2}
	shadow := call.DefaultPolicy()
	shadow.Version = 3
	shadow.FlagAt, shadow.BlockAt = 0.2, 0.3
	shadow.Prior = -1
	shadow.Weights = maps.Clone(live.Weights)
	shadow.Weights["identity.privacy"] = 4
	shadow.Weights["verstat.passed_a"] = 0
	shadow.Actions = map[string]call.Action{"route.unknown": call.Flag}
	withShadow := live
	withShadow.Shadow = &shadow
	if err := withShadow.Validate(); err != nil {
		t.Fatal(err)
	}

	fs := newFixture(t, withShadow)
	fl := newFixture(t, live) // the same live policy without a shadow
	fs.e.Link(tid, fs.e.Number(tid, homeFixed), "cust-1")
	fl.e.Link(tid, fl.e.Number(tid, homeFixed), "cust-1")
	for _, tc := range []struct {
		name       string
		opts       []opt
		liveAction call.Action
		shadowAct  call.Action
	}{
		{"nothing", nil, call.Allow, call.Allow},
		{"privacy", []opt{privacy("id")}, call.Allow, call.Block},
		{"unknown route", []opt{ingress("pstn-9")}, call.Allow, call.Flag},
		{"invalid", nil, call.Allow, call.Block},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caller := homeFixed
			if tc.name == "invalid" {
				caller = dramaFixed
			}
			opts := append([]opt{user("cust-1"), verstat("TN-Validation-Passed-A")}, tc.opts...)
			cs, cl := fs.call(caller, dialled, opts...), fl.call(caller, dialled, opts...)
			vs, sh, err := fs.e.Evaluate(context.Background(), cs)
			if err != nil {
				t.Fatal(err)
			}
			vl, none, err := fl.e.Evaluate(context.Background(), cl)
			if err != nil {
				t.Fatal(err)
			}
			if none != nil {
				t.Errorf("shadow verdict %+v without a shadow policy", none)
			}
			if sh == nil {
				t.Fatal("no shadow verdict")
			}
			vs.Elapsed, vl.Elapsed = 0, 0
			if !reflect.DeepEqual(vs, vl) {
				t.Errorf("live verdict changed by the shadow policy:\nwith    %+v\nwithout %+v", vs, vl)
			}
			if vs.Action != tc.liveAction || sh.Action != tc.shadowAct {
				t.Errorf("actions live %s shadow %s, want %s %s (live %+v, shadow %+v)", vs.Action, sh.Action, tc.liveAction, tc.shadowAct, vs, *sh)
			}
			if vs.Policy != "v3" || sh.Policy != "v3-shadow" {
				t.Errorf("policies %q %q, want v3 and v3-shadow", vs.Policy, sh.Policy)
			}
			if !slices.Equal(codes(vs), codes(*sh)) {
				t.Errorf("shadow markers %v differ from live %v", codes(*sh), codes(vs))
			}
			logit := shadow.Prior
			for _, m := range sh.Markers {
				w := defaultWeight[m.Code]
				if sw, ok := shadow.Weights[m.Code]; ok {
					w = sw
				}
				if m.Weight != w {
					t.Errorf("shadow weight of %s %v, want %v", m.Code, m.Weight, w)
				}
				logit += w
			}
			if math.Abs(sh.Score-logistic(logit)) > 1e-12 {
				t.Errorf("shadow score %v, want %v", sh.Score, logistic(logit))
			}
			// The live verdict decides what Observe does: verified calls
			// the shadow would block still link when live allowed them.
			cs.Verdict, cs.Shadow = vs, sh
			cs.Caller = fs.e.Number(tid, homeMobile)
			cs.StartedAt = t0.Add(-48 * time.Hour)
			fs.e.Observe(cs) // a candidate
			cs.StartedAt = t0
			if tc.liveAction == call.Allow && !fs.e.Observe(cs) {
				t.Errorf("Observe of live-allowed calls did not link (shadow said %s)", sh.Action)
			}
			fs.e.Unlink(tid, cs.Caller)
		})
	}
}

func TestUnknownTenant(t *testing.T) {
	f := newFixture(t, call.DefaultPolicy())
	c := f.call(homeFixed, dialled)
	c.Tenant = "nobody"
	v, sh, err := f.e.Evaluate(context.Background(), c)
	if call.ErrorCode(err) != call.NotFound {
		t.Fatalf("Evaluate for an unknown tenant: err %v (code %q), want code %q", err, call.ErrorCode(err), call.NotFound)
	}
	if sh != nil || v.Action != "" || len(v.Markers) != 0 {
		t.Errorf("verdict %+v, shadow %v with the error", v, sh)
	}
	c.Verdict.Action = call.Allow
	c.UserRef = "cust-1"
	if f.e.Observe(c) {
		t.Error("Observe for an unknown tenant reported a link")
	}
	f.e.ObserveEnd(c)
	for name, err := range map[string]error{
		"SetPolicy":       f.e.SetPolicy("nobody", call.DefaultPolicy()),
		"PutRoute":        f.e.PutRoute("nobody", testRoutes[0]),
		"DeleteRoute":     f.e.DeleteRoute("nobody", "dom"),
		"PutListEntries":  f.e.PutListEntries("nobody", call.ListEntry{List: call.DenyList, Number: c.Caller}),
		"DeleteListEntry": f.e.DeleteListEntry("nobody", call.DenyList, c.Caller),
	} {
		if call.ErrorCode(err) != call.NotFound {
			t.Errorf("%s for an unknown tenant: %v, want code %q", name, err, call.NotFound)
		}
	}
	if _, ok := f.e.Policy("nobody"); ok {
		t.Error("Policy for an unknown tenant: ok")
	}
}

// TestVelocityCountsBefore checks a call does not count itself: the first
// calls of a burst stay under the threshold, and the marker fires from the
// call after the threshold-th observed one.
func TestVelocityCountsBefore(t *testing.T) {
	f := newFixture(t, call.DefaultPolicy())
	for i := range 6 {
		c := f.call(homeMobile, dialled, at(t0.Add(time.Duration(i)*5*time.Second)))
		v := f.observe(c)
		m, fired := marker(v, "velocity.caller_minute")
		if want := i >= 3; fired != want {
			t.Fatalf("call %d: caller_minute fired = %v, want %v", i+1, fired, want)
		}
		if fired && m.Detail != strconv.Itoa(i)+" calls in the last minute" {
			t.Errorf("call %d: detail %q", i+1, m.Detail)
		}
	}
	// Evaluate alone does not count.
	for range 5 {
		f.evaluate(f.call(homeMobile2, dialled))
	}
	if v := f.evaluate(f.call(homeMobile2, dialled)); v.Has("velocity.caller_minute") {
		t.Error("Evaluate without Observe counted the call")
	}
}

func TestThresholdsConfig(t *testing.T) {
	clk := newClock(t0)
	e := screen.New(screen.Config{Now: clk.Now, Thresholds: screen.Thresholds{CallsPerMinute: 1}}) // the rest default
	e.SetTenant(call.Tenant{ID: tid, Region: "GB"}, call.DefaultPolicy())
	f := &fixture{tb: t, e: e, clock: clk}
	f.observe(f.call(homeMobile, dialled, ago(10*time.Second)))
	if v := f.evaluate(f.call(homeMobile, dialled)); !v.Has("velocity.caller_minute") {
		t.Errorf("CallsPerMinute 1: markers %v after one call", codes(v))
	}
}

// spec is a call as a front end receives it: raw strings.
type spec struct {
	caller, dialled string
	at              time.Time
	ingress, user   string
	sig             call.Signalling
	end             *call.End
}

// replayCalls generates n varied calls deterministically: genuine callers,
// a few fraudsters sweeping the tenant's numbers under many customer ids,
// withheld, invalid and foreign callers, mixed number formats and
// signalling, events slightly out of order, and call ends.
func replayCalls(n int) []spec {
	r := rand.New(rand.NewPCG(2025, 12))
	national := func(e164 string) string { return "0" + e164[3:] }
	var genuine []string
	for i := range 400 {
		if i%2 == 0 {
			genuine = append(genuine, fmt.Sprintf("+4412123%05d", 40000+i))
		} else {
			genuine = append(genuine, fmt.Sprintf("+4474001%05d", 20000+i))
		}
	}
	fraudsters := []string{"+447400199001", "+441134960123", "+447400199002", frFixed, dramaFixed}
	odd := []string{"anonymous", "", "ABC123", premium, pager, "+4412123456789", "+4930123456", usNumber, deFixed, guernseyMob, tollFree, dialled, dialledIn(91)}
	verstats := []string{"", "", "", "TN-Validation-Passed-A", "tn_validation_passed_b", "TN-Validation-Passed-C", "verstat=TN-Validation-Failed-B", "No-TN-Validation", "bogus"}
	ingresses := []string{"dom", "dom", "dom", "dom", "dom", "dom", "intl-fr", "intl", "pstn-9", ""}
	out := make([]spec, 0, n)
	clock := t0.Add(-3 * time.Hour)
	for range n {
		clock = clock.Add(time.Duration(r.IntN(4000)) * time.Millisecond)
		s := spec{at: clock, ingress: ingresses[r.IntN(len(ingresses))]}
		if r.IntN(10) == 0 { // late event
			s.at = clock.Add(-time.Duration(r.IntN(120)) * time.Second)
		}
		switch k := r.IntN(100); {
		case k < 70:
			g := r.IntN(len(genuine))
			s.caller = genuine[g]
			s.user = "cust-" + strconv.Itoa(g%300) // customers mostly call from their own number
			if r.IntN(5) == 0 {
				s.user = "cust-" + strconv.Itoa(r.IntN(300))
			}
		case k < 85:
			s.caller = fraudsters[r.IntN(len(fraudsters))]
			s.user = "cust-" + strconv.Itoa(r.IntN(300))
		default:
			s.caller = odd[r.IntN(len(odd))]
		}
		if r.IntN(3) == 0 {
			s.user = ""
		}
		if r.IntN(2) == 0 {
			s.dialled = dialled
		} else {
			s.dialled = dialledIn(r.IntN(100))
		}
		e164 := s.caller
		if strings.HasPrefix(e164, "+44") && len(e164) == 13 && r.IntN(3) == 0 {
			s.caller = national(e164)
		}
		shaken := []string{"fake;verified;A", "fake;verified;B", "fake;verified;C", "fake;unverified", "fake;failed;bad_signature",
			"fake;failed;orig_mismatch", "fake;failed;dest_mismatch", "fake;failed;stale_iat", "fake;failed;untrusted_cert",
			"fake;failed;malformed", "fake;failed;fetch_failed"}
		if r.IntN(4) == 0 {
			s.sig.Identity = []string{shaken[r.IntN(len(shaken))]}
		}
		switch r.IntN(6) {
		case 0:
		case 1:
			s.sig.From = "<sip:" + e164 + "@carrier.example>;tag=" + strconv.Itoa(r.IntN(1000))
		case 2:
			s.sig.From = "<sip:" + e164 + "@carrier.example>"
			s.sig.PAI = []string{"<tel:" + e164 + ">"}
		case 3:
			s.sig.From = "<sip:" + genuine[r.IntN(len(genuine))] + "@carrier.example>"
			s.sig.PAI = []string{"<sip:" + e164 + "@carrier.example;user=phone>"}
		case 4:
			s.sig.PAI = []string{"<sip:" + e164 + "@carrier.example>", "<tel:" + genuine[r.IntN(len(genuine))] + ">"}
		case 5:
			s.sig.From = `"Anonymous" <sip:anonymous@anonymous.invalid>`
			s.sig.PAI = []string{"<sip:" + e164 + "@carrier.example>"}
			s.sig.Privacy = "id"
		}
		s.sig.Verstat = verstats[r.IntN(len(verstats))]
		if r.IntN(2) == 0 {
			d := time.Duration(r.IntN(300)) * time.Second
			if slices.Contains(fraudsters, e164) {
				d = time.Duration(r.IntN(8)) * time.Second
			}
			s.end = &call.End{Duration: d, Result: call.Answered}
		}
		out = append(out, s)
	}
	return out
}

// replayEngine sets up the state every replay starts from.
func replayEngine(t testing.TB) *fixture {
	p := call.DefaultPolicy()
	sh := call.DefaultPolicy()
	sh.FlagAt, sh.BlockAt = 0.3, 0.7
	sh.Weights = map[string]float64{"velocity.dialled_burst": 0.5}
	p.Shadow = &sh
	f := newFixture(t, p)
	f.useConsortium(replayConsortium(), p) // see consortium_test.go
	for i := range 5 {
		f.list(call.DNOList, dialledIn(90+i), "IVR", time.Time{})
	}
	f.list(call.DenyList, "+447400199002", "confirmed fraud", t0.Add(-time.Hour)) // expires mid-replay
	f.list(call.DenyList, "+441134960123", "", time.Time{})
	f.list(call.AllowList, "+441212340000", "staff", time.Time{})
	f.list(call.AllowList, "+447400120001", "staff", t0)
	for i := range 50 {
		f.e.Link(tid, f.e.Number(tid, fmt.Sprintf("+4412123%05d", 40000+2*i)), "cust-"+strconv.Itoa(i))
	}
	return f
}

type replayed struct {
	live, shadow call.Verdict
	newLink      bool
}

func replay(t testing.TB, calls []spec) []replayed {
	f := replayEngine(t)
	out := make([]replayed, len(calls))
	for i, s := range calls {
		c := f.call(s.caller, s.dialled, at(s.at), ingress(s.ingress), user(s.user))
		c.Signalling = s.sig
		c.End = s.end
		live, sh, err := f.e.Evaluate(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if sh == nil {
			t.Fatal("no shadow verdict")
		}
		live.Elapsed, sh.Elapsed = 0, 0
		c.Verdict, c.Shadow = live, sh
		out[i] = replayed{live: live, shadow: *sh, newLink: f.e.Observe(c)}
		if c.End != nil {
			f.e.ObserveEnd(c)
		}
	}
	return out
}

func TestReplayDeterminism(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 1000
	}
	calls := replayCalls(n)
	a := replay(t, calls)
	b := replay(t, calls)
	fired := map[string]int{}
	actions := map[call.Action]int{}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Fatalf("call %d (%+v) differs on replay:\nA %+v\nB %+v", i, calls[i], a[i], b[i])
		}
		if math.Float64bits(a[i].live.Score) != math.Float64bits(b[i].live.Score) {
			t.Fatalf("call %d: score bits differ", i)
		}
		for _, m := range a[i].live.Markers {
			fired[m.Code]++
		}
		actions[a[i].live.Action]++
	}
	t.Logf("%d calls: actions %v; markers %v", n, actions, fired)
	// The replay is only worth something if it exercises the engine.
	var missing []string
	for _, s := range screen.Signals {
		if fired[s.Code] == 0 {
			missing = append(missing, s.Code)
		}
	}
	if len(missing) > 0 {
		t.Logf("never fired in the replay: %v", missing)
	}
	if len(missing) > 2 {
		t.Errorf("replay fired %d of %d marker codes; extend replayCalls", len(fired), len(screen.Signals))
	}
	for _, act := range []call.Action{call.Allow, call.Flag, call.Block} {
		if actions[act] == 0 {
			t.Errorf("replay gave no %s verdict", act)
		}
	}
}

// TestConcurrent drives every entry point from many goroutines; run it
// under -race.
func TestConcurrent(t *testing.T) {
	f := newFixture(t, call.DefaultPolicy())
	e := f.e
	ctx := context.Background()
	const workers, perWorker = 8, 400
	var wg sync.WaitGroup
	var stop atomic.Bool
	var failures atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range perWorker {
				caller := fmt.Sprintf("+4474001%05d", r.IntN(2000))
				c := &call.Call{
					Tenant:    tid,
					Caller:    e.Number(tid, caller),
					Dialled:   e.Number(tid, dialledIn(r.IntN(100))),
					StartedAt: t0.Add(time.Duration(w*perWorker+i) * time.Millisecond),
					Ingress:   testRoutes[r.IntN(len(testRoutes))].ID,
					UserRef:   "cust-" + strconv.Itoa(r.IntN(50)),
					Signalling: call.Signalling{
						From: "<sip:" + caller + "@x>", PAI: []string{"<tel:" + caller + ">"},
						Verstat: "TN-Validation-Passed-B",
					},
					End: &call.End{Duration: time.Duration(r.IntN(30)) * time.Second},
				}
				v, _, err := e.Evaluate(ctx, c)
				if err != nil || v.Score < 0 || v.Score > 1 || !v.Action.Valid() {
					failures.Add(1)
					continue
				}
				c.Verdict = v
				e.Observe(c)
				e.ObserveEnd(c)
			}
		}()
	}
	// Writers run until the evaluators are done.
	var wwg sync.WaitGroup
	writer := func(fn func(i int)) {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for i := 0; !stop.Load(); i++ {
				fn(i)
			}
		}()
	}
	writer(func(i int) {
		n := e.Number(tid, fmt.Sprintf("+4474001%05d", i%2000))
		e.PutListEntries(tid,
			call.ListEntry{List: call.DenyList, Number: n, Reason: "r"},
			call.ListEntry{List: call.AllowList, Number: call.Number{E164: fmt.Sprintf("+4412123%05d", i%100000)}},
			call.ListEntry{List: call.DNOList, Number: call.Number{E164: dialledIn(i % 100)}, ExpiresAt: t0.Add(time.Duration(i) * time.Millisecond)},
		)
		if i%3 == 0 {
			e.DeleteListEntry(tid, call.DenyList, n)
		}
		e.Listed(tid, call.DenyList, n)
	})
	writer(func(i int) {
		p := call.DefaultPolicy()
		p.Version = i + 1
		p.FlagAt = 0.3 + float64(i%5)/10
		p.Weights = map[string]float64{"verstat.passed": float64(i % 3)}
		e.SetPolicy(tid, p)
		e.Policy(tid)
		if i%10 == 0 {
			e.SetTenant(call.Tenant{ID: tid, Name: "Bank " + strconv.Itoa(i), Region: "GB"}, p)
			e.Tenant(tid)
		}
	})
	writer(func(i int) {
		n := e.Number(tid, fmt.Sprintf("+4474001%05d", i%2000))
		e.Link(tid, n, "cust-"+strconv.Itoa(i%50))
		if i%7 == 0 {
			e.Unlink(tid, n)
		}
		e.PutRoute(tid, call.Route{ID: "r" + strconv.Itoa(i%10), Kind: call.International})
		if i%4 == 0 {
			e.DeleteRoute(tid, "r"+strconv.Itoa(i%10))
		}
		e.Route(tid, "dom")
		e.ListLen(tid, call.DenyList)
	})
	writer(func(i int) {
		if i%50 == 0 { // tenants come and go alongside
			e.SetTenant(call.Tenant{ID: "t-" + strconv.Itoa(i), Region: "US"}, call.DefaultPolicy())
		}
		e.NumberIn(fmt.Sprintf("201555%04d", i%10000), "US")
	})
	wg.Wait()
	stop.Store(true)
	wwg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d evaluations failed", n)
	}
	// Writes are visible once they return.
	n := e.Number(tid, homeMobile2)
	e.PutListEntries(tid, call.ListEntry{List: call.DenyList, Number: n})
	if v := f.evaluate(f.call(homeMobile2, dialled)); !v.Has("list.deny") {
		t.Errorf("deny entry written before the call not seen: %v", codes(v))
	}
}

// TestManyMarkers puts as many markers on one call as the engine can give,
// to check none is dropped.
func TestManyMarkers(t *testing.T) {
	f := newFixture(t, call.DefaultPolicy())
	caller := "+4412123456789" // invalid, impossible length, but has a key
	f.list(call.DNOList, caller, "", time.Time{})
	f.list(call.DenyList, caller, "", time.Time{})
	f.list(call.AllowList, caller, "", time.Time{})
	for i := range 30 {
		d := ago(time.Duration(50-i) * time.Second)
		f.observe(f.call(caller, dialledIn(i), d, user("cust-"+strconv.Itoa(i)), ended(time.Second)))
		f.observe(f.call(fmt.Sprintf("+4474001234%02d", i), caller, d))
	}
	v := f.evaluate(f.call(caller, caller, ingress("pstn-9"), user("cust-99"),
		from("<sip:"+homeFixed+"@x>"), pai("<sip:"+caller+"@x>", "<sip:"+homeFixed2+"@x>"), privacy("id"), verstat("TN-Validation-Failed")))
	want := []string{
		"cli.invalid", "cli.impossible_length", "cli.same_as_dialled", "dno.listed", "route.unknown",
		"identity.multiple_pai", "identity.from_pai_mismatch", "identity.privacy", "verstat.failed",
		"list.deny", // no list.allow: spoofing signs fired
		"velocity.caller_minute", "velocity.caller_hour", "velocity.caller_day", "velocity.distinct_dialled",
		"velocity.distinct_users", "velocity.sweep", "velocity.short_calls",
		// no velocity.dialled_burst: the dialled number (the caller's own)
		// is on the DNO list, a published number that takes bursts.
	}
	if got := codes(v); !slices.Equal(got, want) {
		t.Errorf("markers\n got %v\nwant %v", got, want)
	}
	if v.Action != call.Block || v.Score < 0.999 {
		t.Errorf("action %s score %v", v.Action, v.Score)
	}
}

func TestSignalsTable(t *testing.T) {
	families := map[string]bool{}
	for _, s := range screen.Signals {
		families[s.Family] = true
		if !strings.HasPrefix(s.Code, strings.SplitN(s.Code, ".", 2)[0]+".") || strings.ToLower(s.Code) != s.Code {
			t.Errorf("code %q: want family.name in lower case", s.Code)
		}
		if s.Weight < -20 || s.Weight > 20 {
			t.Errorf("%s: default weight %v outside the policy range [-20,20]", s.Code, s.Weight)
		}
	}
	if got := slices.Sorted(maps.Keys(families)); len(got) < 7 {
		t.Errorf("families %v", got)
	}
}
