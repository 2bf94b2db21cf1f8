package screen

import (
	"strconv"

	"github.com/ringfence/ringfence/call"
)

// Signal describes one marker code: its family, default weight (log-odds)
// and meaning. The table is the source of docs/markers.md.
type Signal struct {
	Code    string
	Family  string
	Weight  float64
	Meaning string
}

// Signals lists every marker the engine can emit. Codes are part of the API:
// never rename one; add new codes instead.
var Signals = []Signal{
	{"cli.withheld", "numbering", 1.0, "The caller withheld its number (anonymous, restricted or absent)."},
	{"cli.invalid", "numbering", 4.5, "The CLI is not a dialable number: not digits, or outside any assigned range of its country's numbering plan."},
	{"cli.impossible_length", "numbering", 1.5, "The CLI's length is impossible for its country (added to cli.invalid)."},
	{"cli.special_range", "numbering", 4.5, "The CLI is in a range that never originates calls (premium rate, pager, voicemail access)."},
	{"cli.same_as_dialled", "do-not-originate", 5.0, "The caller presents the very number it dialled: the tenant's own number spoofed back at it."},
	{"dno.listed", "do-not-originate", 6.0, "The caller is on the tenant's do-not-originate list of inbound-only numbers: such numbers never call out, so the CLI is spoofed."},
	{"route.home_cli_international", "route", 4.5, "A home-country fixed or non-geographic CLI arrived on an international ingress route (Ofcom: such calls should not carry a UK CLI)."},
	{"route.home_mobile_roaming", "route", 1.0, "A home-country mobile CLI arrived on an international ingress route: roaming customers do this, spoofers too."},
	{"route.country_mismatch", "route", 0.7, "The CLI's country differs from the country of the ingress route, which is neither the home country nor the CLI's."},
	{"route.unknown", "route", 0.3, "The ingress route is not in the tenant's route table."},
	{"identity.from_pai_mismatch", "identity", 1.5, "The number in From differs from the one in P-Asserted-Identity."},
	{"identity.multiple_pai", "identity", 1.0, "More than one P-Asserted-Identity naming different numbers."},
	{"identity.privacy", "identity", 0.5, "The Privacy header asks to hide the identity (id, header or user) while the CLI is presented (a withheld CLI gets cli.withheld only)."},
	{"shaken.verified_a", "STIR/SHAKEN", -2.5, "ringfence verified the call's PASSporT: signature, trusted certificate, fresh iat, orig and dest match; full (A) attestation."},
	{"shaken.verified_b", "STIR/SHAKEN", -1.0, "The PASSporT verified with partial (B) attestation."},
	{"shaken.verified_c", "STIR/SHAKEN", -0.3, "The PASSporT verified with gateway (C) attestation."},
	{"shaken.failed_signature", "STIR/SHAKEN", 4.0, "The PASSporT's ES256 signature does not verify with its certificate."},
	{"shaken.orig_mismatch", "STIR/SHAKEN", 4.5, "The PASSporT was signed for another calling number than the call presents."},
	{"shaken.dest_mismatch", "STIR/SHAKEN", 2.0, "The PASSporT was signed for another dialled number (and no diversion PASSporT explains it)."},
	{"shaken.stale", "STIR/SHAKEN", 2.5, "The PASSporT's iat is outside the freshness window of the call's start (a replayed PASSporT)."},
	{"shaken.untrusted", "STIR/SHAKEN", 2.5, "The signing certificate does not chain to a trusted STI-CA, is not valid at the call's start, or breaks the SHAKEN profile."},
	{"shaken.malformed", "STIR/SHAKEN", 1.0, "The Identity header or PASSporT cannot be read as RFC 8224/8225/8588 require (compact form, wrong alg, non-standard numbers)."},
	{"shaken.cert_unavailable", "STIR/SHAKEN", 0.5, "The certificate URL (x5u) could not be fetched or is not https."},
	{"shaken.unverified", "STIR/SHAKEN", 0, "The PASSporT's certificate is not cached yet: the call is scored without it while it is fetched for the next call."},
	{"verstat.passed_a", "verstat", -2.0, "The terminating carrier verified the caller's STIR/SHAKEN signature with full (A) attestation."},
	{"verstat.passed", "verstat", -1.0, "The carrier verified the signature with partial (B) or unspecified attestation."},
	{"verstat.passed_c", "verstat", -0.3, "The carrier verified a gateway (C) attestation: the signer only knows where the call entered."},
	{"verstat.failed", "verstat", 3.0, "The carrier's STIR/SHAKEN verification failed (TN-Validation-Failed)."},
	{"verstat.none", "verstat", 0.3, "The carrier did not verify the number (No-TN-Validation)."},
	{"list.allow", "lists", -6.0, "The caller is on the tenant's allow list (not applied when a spoofing sign fired)."},
	{"list.deny", "lists", 6.0, "The caller is on the tenant's deny list (including numbers of confirmed fraud)."},
	{"velocity.caller_minute", "velocity", 1.5, "Many calls from this caller in the last minute."},
	{"velocity.caller_hour", "velocity", 1.5, "Many calls from this caller in the last hour."},
	{"velocity.caller_day", "velocity", 1.0, "Many calls from this caller in the last 24 hours."},
	{"velocity.distinct_dialled", "velocity", 2.0, "The caller dialled many distinct numbers of the tenant in the last hour."},
	{"velocity.distinct_users", "velocity", 4.5, "The caller presented many distinct customer ids in the last 24 hours (one number working many accounts)."},
	{"velocity.sweep", "velocity", 3.0, "The caller dialled sequential numbers of one number block in the last hour (enumeration sweep)."},
	{"velocity.dialled_burst", "velocity", 4.0, "A burst of distinct callers to this dialled number in the last 10 minutes (number rotation). Not applied to the tenant's published numbers (its DNO list), which take many callers by design."},
	{"velocity.short_calls", "velocity", 1.5, "Most of this caller's ended calls in the last 24 hours were short."},
	{"link.unknown_number", "customer link", 2.5, "The customer id on this call has other numbers linked to it or seen with it in an allowed, spoof-free call, and this caller is none of them (account takeover often calls from a new number)."},
	{"link.known_customer", "customer link", -2.5, "The caller is linked to the customer id on this call (by two earlier allowed, spoof-free calls at least 20 hours apart, or by an analyst's genuine label), and no spoofing sign fired."},
	{"consortium.reported", "consortium", 3.0, "Another consortium member confirmed fraud by this number (an analyst's fraud label or a report with evidence); detail: members, fraud types and a recency-weighted confidence. Only members within reciprocity receive it; the tenant's own reports and disputed entries do not count."},
	{"consortium.reported_multi", "consortium", 2.0, "Two or more distinct other members reported the number (added to consortium.reported)."},
	{"consortium.recent", "consortium", 1.5, "The newest report by another member is less than 7 days old at the call's start (added to consortium.reported)."},
}

// PatternSignals lists the marker families whose codes are made at run
// time from a pattern: Code is the pattern, Weight is unused (the weight is
// computed per call). KnownMarker accepts every code a pattern makes; the
// rows are documented in docs/markers.md beside Signals.
var PatternSignals = []Signal{
	{"model.<feature>", "model", 0, "The tenant's learned model scored the call (the verdict's policy then reads `v<N>+model-<model format version>`). One marker `model.<feature>` for each of the 5 features contributing most to the model's log-odds (`<feature>` is a feature name from docs/model.md, e.g. `model.dno.listed`); weight = its contribution relative to a call at the training mean, detail = the feature's value. `model.rest` carries the other features' sum. The model's base log-odds plus these weights is the score's log-odds; the signal markers stay in the verdict as evidence, with weight 0. Policy actions apply to these codes; policy weights do not."},
}

var defaultWeight = func() map[string]float64 {
	m := make(map[string]float64, len(Signals))
	for _, s := range Signals {
		m[s.Code] = s.Weight
	}
	return m
}()

// Thresholds are the counts at which velocity markers fire. Zero values take
// the defaults in parentheses.
type Thresholds struct {
	CallsPerMinute  int     // (3) calls by one caller in 1 min
	CallsPerHour    int     // (10) in 1 h
	CallsPerDay     int     // (30) in 24 h
	DistinctDialled int     // (4) distinct dialled numbers in 1 h
	DistinctUsers   int     // (3) distinct customer ids in 24 h
	Sweep           int     // (4) numbers of one block in 1 h
	DialledBurst    int     // (8) distinct callers to one unpublished number in 10 min
	ShortCalls      int     // (5) ended calls in 24 h before the share counts
	ShortShare      float64 // (0.6) share of those that were short
}

func (t Thresholds) withDefaults() Thresholds {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.CallsPerMinute, 3)
	def(&t.CallsPerHour, 10)
	def(&t.CallsPerDay, 30)
	def(&t.DistinctDialled, 4)
	def(&t.DistinctUsers, 3)
	def(&t.Sweep, 4)
	def(&t.DialledBurst, 8)
	def(&t.ShortCalls, 5)
	if t.ShortShare <= 0 {
		t.ShortShare = 0.6
	}
	return t
}

// eval gathers the markers for one call. It lives on the stack.
type eval struct {
	e     *Engine
	t     *tenant
	c     *call.Call
	found [24]call.Marker
	n     int
	stir  *call.Shaken // the STIR/SHAKEN outcome, if verified
}

func (ev *eval) add(code, detail string) {
	if ev.n < len(ev.found) {
		ev.found[ev.n] = call.Marker{Code: code, Weight: defaultWeight[code], Detail: detail}
		ev.n++
	}
}

func (ev *eval) has(code string) bool {
	for _, m := range ev.found[:ev.n] {
		if m.Code == code {
			return true
		}
	}
	return false
}

// collect runs every signal family in a fixed order, so the same call and
// state always give the same markers in the same order.
func (ev *eval) collect() {
	ev.numbering()
	ev.dno()
	ev.route()
	ev.identity()
	ev.shaken()
	ev.verstat()
	ev.lists()
	ev.consortium()
	ev.velocity()
	ev.customerLink() // last: it looks at the spoofing signs above
}

// spoofCodes are markers that say the CLI itself is not to be trusted.
var spoofCodes = map[string]bool{
	"cli.same_as_dialled": true, "dno.listed": true, "route.home_cli_international": true,
	"verstat.failed": true, "identity.from_pai_mismatch": true, "list.deny": true,
	"shaken.failed_signature": true, "shaken.orig_mismatch": true, "shaken.stale": true,
}

func spoofed(ms []call.Marker) bool {
	for _, m := range ms {
		if spoofCodes[m.Code] {
			return true
		}
	}
	return false
}

func count(n int, what string) string { return strconv.Itoa(n) + " " + what }

// KnownMarker reports whether code is a marker the engine emits: a code of
// Signals, or one PatternSignals makes (model.<feature> for every feature of
// model.Schema, and model.rest).
func (e *Engine) KnownMarker(code string) bool {
	_, ok := defaultWeight[code]
	return ok || modelCodes[code]
}
