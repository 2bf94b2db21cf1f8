package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scenario names, genuine first. Each Call carries one.
//
// Genuine: "customer" (a retail customer from their own GB mobile or
// landline, on a domestic route), "business" (a high-volume business
// customer, often dialling their relationship manager's direct line),
// "withheld" (a customer withholding their number), "roaming" (a customer's
// GB mobile abroad, on an international route), "foreign" (a customer living
// abroad, from a number of the route's country).
//
// Fraud: "dno_spoof" (the bank's own published number as caller, often from
// abroad), "uk_cli_abroad" (a GB landline CLI on an international route),
// "invalid_cli" (unallocated, impossible or premium-rate CLI),
// "many_accounts" (one number working through dozens of real customers'
// accounts in an hour), "number_rotation" (dozens of fresh numbers hitting
// one direct-dial number within minutes), "enumeration" (one number dialling
// sequential direct-dial numbers), "social_engineering" (a plausible GB
// mobile with a victim's customer id and nothing else amiss).
var Scenarios = []string{
	"customer", "business", "withheld", "roaming", "foreign",
	"dno_spoof", "uk_cli_abroad", "invalid_cli", "many_accounts",
	"number_rotation", "enumeration", "social_engineering",
}

// fraudMix is the share of fraud calls each fraud scenario gets, the fraud
// type an analyst labels it with (one of the consortium's fraud types, so a
// member's labels are shared) and the generator of one campaign of at most
// max calls.
var fraudMix = []struct {
	scenario, fraudType string
	share               float64
	campaign            func(g *gen, max int)
}{
	{"dno_spoof", "impersonation", 0.12, (*gen).dnoSpoof},
	{"uk_cli_abroad", "impersonation", 0.12, (*gen).ukCLIAbroad},
	{"invalid_cli", "impersonation", 0.10, (*gen).invalidCLI},
	{"many_accounts", "account_takeover", 0.20, (*gen).manyAccounts},
	{"number_rotation", "impersonation", 0.18, (*gen).numberRotation},
	{"enumeration", "robocall", 0.12, (*gen).enumeration},
	{"social_engineering", "account_takeover", 0.16, (*gen).socialEngineering},
}

// The tenant's numbers. Published contact-centre numbers are inbound only,
// so they make its do-not-originate list; the weights are how often
// customers dial each. Forty direct-dial numbers sit in one block of a
// hundred, ddiBlock00 to ddiBlock39.
var published = []struct {
	number string
	weight float64
}{
	{"+443456002020", 0.55}, // main line
	{"+443457001234", 0.20}, // cards
	{"+448005551234", 0.15}, // freephone
	{"+443301234567", 0.05}, // business banking
	{"+442038704000", 0.05}, // switchboard
}

const (
	ddiBlock = "+4420387052"
	ddis     = 40
)

func ddi(k int) string { return ddiBlock + fmt.Sprintf("%02d", k) }

// Number ranges, as national significant number prefixes after +44, that
// libphonenumber knows as GB mobiles and GB geographic lines. The Channel
// Islands' and Isle of Man's 07 ranges and the 076 pagers are left out.
var (
	gbMobilePrefixes = strings.Fields("71 72 73 740 741 742 743 744 746 747 748 749 " +
		"751 753 754 755 756 757 758 759 771 772 773 774 775 776 777 780 781 " +
		"784 785 786 787 788 789 790 792 794 795 796 797 798 799")
	gbLandlinePrefixes = strings.Fields("141 151 161 191 203 207 208 292")
	usAreaCodes        = strings.Fields("212 312 415 617 646 917")
	foreignCountries   = strings.Fields("NL NL US US DE IE")
)

// busy is the relative call rate by hour of day (UTC): quiet at night,
// peaks in the morning and mid-afternoon.
var busy = [24]float64{
	0.05, 0.03, 0.02, 0.02, 0.02, 0.05, 0.15, 0.4, 0.8, 1, 1, 0.9,
	0.8, 0.9, 1, 0.9, 0.8, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1, 0.07,
}

// Generate builds the tenant's routes, its do-not-originate list and
// cfg.Calls calls in event-time order, of which round(Calls*FraudShare) are
// fraud split across the fraud scenarios. It is pure: the same Config (with
// the same Start; a zero Start reads the clock) gives the same Traffic.
// Numbers are GB numbers whatever cfg.Region says.
func Generate(cfg Config) Traffic {
	cfg = cfg.withDefaults()
	if cfg.Start.IsZero() {
		cfg.Start = time.Now().Add(-cfg.Span).Truncate(time.Second)
	}
	g := &gen{
		r:      rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)),
		shared: cfg.SharedFraud,
		pool:   cfg.Pool,
		start:  cfg.Start.UTC(),
		span:   cfg.Span,
		calls:  make([]Call, 0, cfg.Calls),
	}
	nFraud := int(math.Round(float64(cfg.Calls) * cfg.FraudShare))
	nGenuine := cfg.Calls - nFraud
	days := cfg.Span.Hours() / 24
	g.population(max(20, min(nGenuine, int(math.Ceil(float64(nGenuine)/(1.5*days))))))

	done := 0
	for i, s := range fraudMix {
		quota := min(int(math.Round(float64(nFraud)*s.share)), nFraud-done)
		if i == len(fraudMix)-1 {
			quota = nFraud - done
		}
		for left := quota; left > 0; {
			from := len(g.calls)
			s.campaign(g, left)
			for j := from; j < len(g.calls); j++ {
				c := &g.calls[j]
				c.Fraud, c.Scenario, c.FraudType = true, s.scenario, s.fraudType
			}
			left -= len(g.calls) - from
		}
		done += quota
	}
	for range nGenuine {
		g.customerCall(&g.people[g.customer()], g.when())
	}

	// Sort an index rather than the calls: moving whole Calls is slow.
	order := make([]int, len(g.calls))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return g.calls[a].Request.StartedAt.Compare(g.calls[b].Request.StartedAt)
	})
	calls := make([]Call, len(order))
	for i, j := range order {
		calls[i] = g.calls[j]
		calls[i].Request.CallRef = "sim-" + strconv.FormatInt(cfg.Seed, 10) + "-" + strconv.Itoa(i)
	}
	t := Traffic{
		Routes: []Route{
			{ID: "uk-domestic-1", Kind: "domestic", Country: "GB", FailOpen: true},
			{ID: "uk-domestic-2", Kind: "domestic", Country: "GB", FailOpen: true},
			{ID: "intl-1", Kind: "international", FailOpen: true},
			{ID: "intl-nl", Kind: "international", Country: "NL", FailOpen: true},
			{ID: "intl-us", Kind: "international", Country: "US", FailOpen: true},
		},
		Calls: calls,
	}
	for _, p := range published {
		t.DNO = append(t.DNO, p.number)
	}
	return t
}

// gen holds the state of one Generate run.
type gen struct {
	r      *rand.Rand
	shared float64 // Config.SharedFraud
	pool   int64   // Config.Pool
	pooled int     // pool numbers used so far
	start  time.Time
	span   time.Duration
	people []customer
	cum    []float64 // cumulative call weights of people
	gb     []int     // indexes of GB customers: fraud victims
	calls  []Call
}

// customer is one of the bank's customers.
type customer struct {
	ref     string   // stable user_ref
	numbers []string // own numbers, main first
	country string
	weight  float64 // relative call rate
	ddi     string  // relationship manager's direct line (business customers)
}

// population makes n customers: mostly GB retail customers with a mobile,
// some with a landline or a second number, a few frequent callers, 2%
// business customers calling about six times as often, 2% living abroad.
func (g *gen) population(n int) {
	total := 0.0
	for range n {
		c := customer{ref: fmt.Sprintf("u%010x", g.r.Uint64()>>24), country: "GB", weight: 1}
		switch p := g.r.Float64(); {
		case p < 0.02:
			c.country = foreignCountries[g.r.IntN(len(foreignCountries))]
			c.numbers = []string{g.foreignNumber(c.country)}
		case p < 0.04:
			c.weight = 6
			c.numbers = []string{g.gbLandline(), g.gbMobile()}
			c.ddi = ddi(g.r.IntN(ddis))
		default:
			if p < 0.14 {
				c.weight = 2.5
			}
			mobile, landline := g.gbMobile(), g.gbLandline()
			if g.chance(0.15) {
				mobile, landline = landline, mobile
			}
			c.numbers = []string{mobile}
			if g.chance(0.3) {
				c.numbers = append(c.numbers, landline)
			}
		}
		if c.country == "GB" {
			g.gb = append(g.gb, len(g.people))
		}
		total += c.weight
		g.people = append(g.people, c)
		g.cum = append(g.cum, total)
	}
}

// customer picks a customer in proportion to their call rate.
func (g *gen) customer() int {
	return sort.SearchFloat64s(g.cum, g.r.Float64()*g.cum[len(g.cum)-1])
}

// victim picks a GB customer whose id a fraudster presents.
func (g *gen) victim() string { return g.people[g.gb[g.r.IntN(len(g.gb))]].ref }

// customerCall adds one genuine call by c at offset at.
func (g *gen) customerCall(c *customer, at time.Duration) {
	num := c.numbers[0]
	if len(c.numbers) > 1 && g.chance(0.25) {
		num = c.numbers[1]
	}
	dialled := g.published()
	if c.ddi != "" && g.chance(0.6) {
		dialled = c.ddi
	}
	userRef := ""
	if g.chance(0.8) { // the IVR identified the customer before the lookup
		userRef = c.ref
	}
	scenario := "customer"
	if c.ddi != "" {
		scenario = "business"
	}
	req := g.request(num, dialled, userRef, at)
	switch {
	case c.country != "GB":
		scenario = "foreign"
		req.IngressRoute = map[string]string{"NL": "intl-nl", "US": "intl-us"}[c.country]
		if req.IngressRoute == "" {
			req.IngressRoute = "intl-1"
		}
		req.Signalling = signalling(num, num, req.IngressRoute)
	case g.chance(0.05):
		scenario = "withheld"
		req.Caller = "anonymous"
		req.Signalling = signalling("anonymous", num, req.IngressRoute) // the network still asserts the number
		req.Signalling.Privacy = "id"
	case strings.HasPrefix(num, "+447") && g.chance(0.04):
		scenario = "roaming"
		req.IngressRoute = g.international()
		req.Signalling = signalling(num, num, req.IngressRoute)
	default:
		switch p := g.r.Float64(); {
		case p < 0.55:
			req.Signalling.Verstat = "TN-Validation-Passed-A"
		case p < 0.6:
			req.Signalling.Verstat = "No-TN-Validation"
		}
	}
	call := Call{Request: req, Scenario: scenario}
	switch p := g.r.Float64(); {
	case p < 0.86: // answered: minutes, log-normal around four
		d := time.Duration(math.Exp(math.Log(240)+0.8*g.r.NormFloat64()) * float64(time.Second))
		call.Duration, call.Result, call.Egress = min(max(d, 15*time.Second), 45*time.Minute), "answered", g.domestic()
	case p < 0.93: // abandoned in the queue
		call.Duration, call.Result, call.Egress = g.seconds(10, 120), "no_answer", g.domestic()
	case p < 0.97:
		call.Duration, call.Result = g.seconds(0, 3), "busy"
	default:
		call.Result = "failed"
	}
	g.calls = append(g.calls, call)
}

// request returns a screen request on a domestic route whose From and
// P-Asserted-Identity both carry the caller.
func (g *gen) request(caller, dialled, userRef string, at time.Duration) ScreenRequest {
	route := g.domestic()
	return ScreenRequest{
		Caller:       caller,
		Dialled:      dialled,
		StartedAt:    g.start.Add(at),
		IngressRoute: route,
		ApplianceID:  "sim",
		UserRef:      userRef,
		Signalling:   signalling(caller, caller, route),
	}
}

// fraud adds a fraud call: answered with probability answered, lasting
// between lo and hi seconds, and with the ingress route, From and PAI
// reworked the way such calls arrive. pai "" leaves PAI out.
func (g *gen) fraud(req ScreenRequest, route, pai string, answered, lo, hi float64) {
	req.IngressRoute = route
	req.Signalling = signalling(req.Caller, pai, route)
	if g.chance(0.3) {
		req.Signalling.UserAgent = "Asterisk PBX 18.12.1" // a VoIP gateway's PBX shows through
	}
	call := Call{Request: req, Result: "no_answer", Duration: g.seconds(lo, hi), Egress: g.domestic()}
	if g.chance(answered) {
		call.Result = "answered"
	}
	g.calls = append(g.calls, call)
}

// dnoSpoof: one call presenting one of the bank's own published numbers,
// mostly from abroad, sometimes to the very number presented.
func (g *gen) dnoSpoof(int) {
	caller := published[g.r.IntN(len(published))].number
	route := g.domestic()
	if g.chance(0.7) {
		route = g.international()
	}
	pai := caller
	if g.chance(0.3) {
		pai = ""
	}
	req := g.request(caller, g.published(), g.maybe(0.4, g.victim), g.when())
	g.fraud(req, route, pai, 0.7, 5, 90)
}

// ukCLIAbroad: one to three calls from a spoofed GB landline arriving on an
// international route within half an hour.
func (g *gen) ukCLIAbroad(max int) {
	caller, route := g.gbLandline(), g.international()
	for _, at := range g.burst(min(max, 1+g.r.IntN(3)), 30*time.Minute) {
		pai := caller
		if g.chance(0.5) {
			pai = ""
		}
		req := g.request(caller, g.published(), g.maybe(0.6, g.victim), at)
		g.fraud(req, route, pai, 0.8, 10, 120)
	}
}

// invalidCLI: one call from an unallocated, impossible or premium-rate CLI.
func (g *gen) invalidCLI(int) {
	var caller string
	switch g.r.IntN(5) {
	case 0:
		caller = "+444" + g.digits(9) // unallocated 04 range
	case 1:
		caller = "+447" + g.digits(6) // too short for a mobile
	case 2:
		caller = "+44909" + g.digits(7) // premium rate
	case 3:
		caller = "+440000000000"
	default:
		caller = "+44207" + g.digits(9) // too long
	}
	route := g.domestic()
	if g.chance(0.5) {
		route = g.international()
	}
	req := g.request(caller, g.published(), g.maybe(0.3, g.victim), g.when())
	g.fraud(req, route, caller, 0.6, 3, 60)
}

// manyAccounts: one GB mobile calls the IVR lines 20-50 times in an hour,
// each time presenting a different real customer's id.
func (g *gen) manyAccounts(max int) {
	caller := g.own(g.gbMobile())
	route := g.domestic()
	for _, at := range g.burst(min(max, 20+g.r.IntN(31)), time.Hour) {
		dialled := published[g.r.IntN(2)].number
		req := g.request(caller, dialled, g.victim(), at)
		g.fraud(req, route, caller, 0.9, 20, 90)
	}
}

// numberRotation: 30-45 fresh GB mobile numbers call one direct-dial number
// within eight minutes.
func (g *gen) numberRotation(max int) {
	dialled := ddi(g.r.IntN(ddis))
	route := g.domestic()
	if g.chance(0.3) {
		route = "intl-1"
	}
	for _, at := range g.burst(min(max, 30+g.r.IntN(16)), 8*time.Minute) {
		caller := g.own(g.gbMobile())
		req := g.request(caller, dialled, g.maybe(0.2, g.victim), at)
		g.fraud(req, route, caller, 0.6, 2, 20)
	}
}

// enumeration: one number dials 10-30 consecutive numbers of the
// direct-dial block, one every 20 seconds to two minutes, hanging up at once.
func (g *gen) enumeration(max int) {
	n := min(max, 10+g.r.IntN(21))
	caller := g.gbMobile()
	if g.chance(0.3) {
		caller = g.gbLandline()
	}
	caller = g.own(caller)
	route := g.domestic()
	if g.chance(0.2) {
		route = "intl-1"
	}
	first := g.r.IntN(100 - n + 1)
	at := g.when()
	offsets := make([]time.Duration, n)
	for k := range offsets {
		offsets[k] = at
		at += g.seconds(20, 120)
	}
	for k, at := range g.fit(offsets) {
		req := g.request(caller, ddi(first+k), "", at)
		g.fraud(req, route, caller, 0.5, 0, 6)
	}
}

// socialEngineering: a fraudster's own GB mobile calls once or twice about
// one victim's account; nothing in the signalling is wrong.
func (g *gen) socialEngineering(max int) {
	caller, victim := g.own(g.gbMobile()), g.victim()
	for _, at := range g.burst(min(max, 1+g.r.IntN(2)), time.Hour) {
		req := g.request(caller, g.published(), victim, at)
		g.fraud(req, req.IngressRoute, caller, 0.95, 5, 60)
		if g.chance(0.5) {
			g.calls[len(g.calls)-1].Request.Signalling.Verstat = "TN-Validation-Passed-A"
		}
	}
}

// when draws an offset into the span, following the daily profile.
func (g *gen) when() time.Duration {
	for {
		d := time.Duration(g.r.Int64N(int64(g.span)))
		if g.r.Float64() < busy[g.start.Add(d).Hour()] {
			return d
		}
	}
}

// burst returns n ascending offsets within a window of length over that
// starts at a time drawn by when.
func (g *gen) burst(n int, over time.Duration) []time.Duration {
	at := g.when()
	offsets := make([]time.Duration, n)
	for i := 1; i < n; i++ {
		offsets[i] = time.Duration(g.r.Int64N(int64(over)))
	}
	slices.Sort(offsets)
	for i := range offsets {
		offsets[i] += at
	}
	return g.fit(offsets)
}

// fit shifts ascending offsets back so the last falls inside the span,
// squeezing them if they are longer than the span.
func (g *gen) fit(offsets []time.Duration) []time.Duration {
	first, last := offsets[0], offsets[len(offsets)-1]
	if last < g.span {
		return offsets
	}
	scale := 1.0
	if last-first >= g.span {
		scale = float64(g.span-1) / float64(last-first)
	}
	begin := max(0, g.span-1-time.Duration(float64(last-first)*scale))
	for i, o := range offsets {
		offsets[i] = begin + time.Duration(float64(o-first)*scale)
	}
	return offsets
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// maybe returns f() with probability p, else "".
func (g *gen) maybe(p float64, f func() string) string {
	if g.chance(p) {
		return f()
	}
	return ""
}

func (g *gen) seconds(lo, hi float64) time.Duration {
	return time.Duration((lo + (hi-lo)*g.r.Float64()) * float64(time.Second))
}

func (g *gen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

// published picks a published number in proportion to how often customers
// dial it.
func (g *gen) published() string {
	p := g.r.Float64()
	for _, n := range published {
		if p -= n.weight; p < 0 {
			return n.number
		}
	}
	return published[0].number
}

func (g *gen) domestic() string { return []string{"uk-domestic-1", "uk-domestic-2"}[g.r.IntN(2)] }

func (g *gen) international() string {
	return []string{"intl-1", "intl-1", "intl-1", "intl-nl", "intl-us"}[g.r.IntN(5)]
}

// gbMobile returns a GB mobile number (+44 7, ten national digits).
func (g *gen) gbMobile() string {
	p := gbMobilePrefixes[g.r.IntN(len(gbMobilePrefixes))]
	return "+44" + p + g.digits(10-len(p))
}

// gbLandline returns a geographic GB number whose local part starts 2-9.
func (g *gen) gbLandline() string {
	p := gbLandlinePrefixes[g.r.IntN(len(gbLandlinePrefixes))]
	return "+44" + p + string(byte('2'+g.r.IntN(8))) + g.digits(9-len(p))
}

// foreignNumber returns a mobile (or, for the US, a geographic) number of
// country.
func (g *gen) foreignNumber(country string) string {
	switch country {
	case "NL":
		return "+316" + string(byte('1'+g.r.IntN(5))) + g.digits(7)
	case "US":
		return "+1" + usAreaCodes[g.r.IntN(len(usAreaCodes))] + string(byte('2'+g.r.IntN(8))) + g.digits(6)
	case "DE":
		return "+49151" + g.digits(8)
	default: // IE
		return "+35387" + g.digits(7)
	}
}

// signalling returns From and P-Asserted-Identity as the route's carrier
// would send them; pai "" leaves PAI out, from "anonymous" withholds.
func signalling(from, pai, route string) Signalling {
	host := route + ".carrier.example"
	s := Signalling{From: "<sip:" + from + "@" + host + ";user=phone>"}
	if from == "anonymous" {
		s.From = `"Anonymous" <sip:anonymous@anonymous.invalid>`
	}
	if pai != "" {
		s.PAI = []string{"<sip:" + pai + "@" + host + ";user=phone>"}
	}
	return s
}
