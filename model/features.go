// Package model is ringfence's learned risk signal: the per-call feature
// schema, training of an L2-regularised logistic regression on labelled
// calls, calibration, evaluation against the live hand-set scoring, and the
// report of that evaluation. It is pure: no store, no HTTP, no clock but the
// times in its input.
//
// A trained Model scores a feature vector in log-odds and splits that
// log-odds into per-feature contributions, so the screening engine can show
// it as markers model.<feature> and a verdict stays explainable.
package model

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
)

// SchemaVersion names the feature schema below. A model records the schema
// it was trained on and refuses vectors of another width; any change to the
// Names list (order, meaning or length) must change the version.
const SchemaVersion = "features-1"

// markerCodes are the engine's marker codes the schema has one activation
// feature for, in schema order. It is a copy of screen.Signals' codes at the
// time of SchemaVersion, kept here (not read from package screen) so a new
// engine marker cannot silently change a trained model's inputs, and so
// screen can import this package. The test TestSchemaCoversEngineMarkers
// fails when screen gains a code the schema lacks.
var markerCodes = []string{
	"cli.withheld", "cli.invalid", "cli.impossible_length", "cli.special_range",
	"cli.same_as_dialled", "dno.listed",
	"route.home_cli_international", "route.home_mobile_roaming", "route.country_mismatch", "route.unknown",
	"identity.from_pai_mismatch", "identity.multiple_pai", "identity.privacy",
	"shaken.verified_a", "shaken.verified_b", "shaken.verified_c", "shaken.failed_signature",
	"shaken.orig_mismatch", "shaken.dest_mismatch", "shaken.stale", "shaken.untrusted",
	"shaken.malformed", "shaken.cert_unavailable", "shaken.unverified",
	"verstat.passed_a", "verstat.passed", "verstat.passed_c", "verstat.failed", "verstat.none",
	"list.allow", "list.deny",
	"velocity.caller_minute", "velocity.caller_hour", "velocity.caller_day",
	"velocity.distinct_dialled", "velocity.distinct_users", "velocity.sweep",
	"velocity.dialled_burst", "velocity.short_calls",
	"link.unknown_number", "link.known_customer",
	"consortium.reported", "consortium.reported_multi", "consortium.recent",
}

// Feature describes one input of the model.
type Feature struct {
	Name    string // stable; the marker model.<Name> carries its contribution
	Source  string // where Extract reads it
	Meaning string
}

// countFeature maps a velocity marker to the feature holding log(1+count)
// of the number its detail starts with.
var countFeature = []struct{ marker, name, meaning string }{
	{"velocity.caller_minute", "count.caller_minute", "log(1+calls by the caller in the last minute), when the marker fired"},
	{"velocity.caller_hour", "count.caller_hour", "log(1+calls by the caller in the last hour), when the marker fired"},
	{"velocity.caller_day", "count.caller_day", "log(1+calls by the caller in the last 24 hours), when the marker fired"},
	{"velocity.distinct_dialled", "count.distinct_dialled", "log(1+distinct numbers the caller dialled in the last hour), when the marker fired"},
	{"velocity.distinct_users", "count.distinct_users", "log(1+distinct customer ids the caller presented in 24 hours), when the marker fired"},
	{"velocity.sweep", "count.sweep", "log(1+numbers of one block the caller dialled in the last hour), when the marker fired"},
	{"velocity.dialled_burst", "count.dialled_burst", "log(1+distinct callers to the dialled number in 10 minutes), when the marker fired"},
}

// Schema is the feature schema of SchemaVersion, in vector order.
var Schema = func() []Feature {
	var fs []Feature
	for _, code := range markerCodes {
		fs = append(fs, Feature{code, "verdict marker", "1 when the engine's marker " + code + " fired, else 0"})
	}
	for _, c := range countFeature {
		fs = append(fs, Feature{c.name, "detail of " + c.marker, c.meaning})
	}
	fs = append(fs,
		Feature{"count.ended_day", "detail of velocity.short_calls", "log(1+the caller's ended calls in 24 hours), when the marker fired"},
		Feature{"share.short_calls", "detail of velocity.short_calls", "share of those ended calls that were short, when the marker fired"},
		Feature{"count.consortium_members", "detail of consortium.reported (members=N)", "log(1+distinct other members that reported the caller)"},
		Feature{"consortium.confidence", "detail of consortium.reported (confidence=X)", "the consortium's recency-weighted confidence in those reports, 0 to 1"},
		Feature{"consortium.age", "detail of consortium.recent (last report Nh ago)", "log(1+hours since the newest report), when under 7 days"},
		Feature{"caller.present", "call.Caller", "1 when the CLI has an E.164 form"},
		Feature{"caller.valid", "call.Caller", "1 when the CLI is in an assigned range"},
		Feature{"caller.home", "call.Caller, tenant region", "1 when the CLI's region is the tenant's home region"},
		Feature{"caller.foreign", "call.Caller, tenant region", "1 when the CLI's region is known and not the home region"},
		Feature{"type.mobile", "call.Caller.Type", "1 for a mobile CLI"},
		Feature{"type.fixed_line", "call.Caller.Type", "1 for a fixed-line CLI"},
		Feature{"type.fixed_or_mobile", "call.Caller.Type", "1 for a CLI whose range may be either (NANP)"},
		Feature{"type.non_geographic", "call.Caller.Type", "1 for toll-free, shared-cost, UAN, personal or VoIP CLI"},
		Feature{"type.unknown", "call.Caller.Type", "1 for a present CLI of unknown type"},
		Feature{"ingress.international", "call.Ingress, route table", "1 when the ingress route is international"},
		Feature{"ingress.missing", "call.Ingress", "1 when the call names no ingress route"},
		Feature{"ingress.country_is_caller", "call.Ingress, route table, call.Caller", "1 when the route's far-end country is the CLI's region"},
		Feature{"sig.no_pai", "call.Signalling.PAI", "1 when no P-Asserted-Identity came with the call"},
		Feature{"sig.user_agent", "call.Signalling.UserAgent", "1 when the signalling carries a User-Agent (a gateway or PBX showing through)"},
		Feature{"sig.identity", "call.Signalling.Identity", "1 when the call carries an Identity header (PASSporT)"},
		Feature{"sig.verstat", "call.Signalling.Verstat", "1 when the carrier sent any verstat"},
		Feature{"sig.diversion", "call.Signalling.Diversion", "1 when the call was diverted"},
		Feature{"customer.ref", "call.UserRef", "1 when the IVR identified a customer id before the lookup"},
		Feature{"time.hour_sin", "call.StartedAt in the tenant's zone", "sin(2π·hour of day/24)"},
		Feature{"time.hour_cos", "call.StartedAt in the tenant's zone", "cos(2π·hour of day/24)"},
		Feature{"time.night", "call.StartedAt in the tenant's zone", "1 from 22:00 to 06:59 local time"},
		Feature{"time.weekend", "call.StartedAt in the tenant's zone", "1 on Saturday and Sunday local time"},
	)
	return fs
}()

// Width is the length of a feature vector.
var Width = len(Schema)

// Names returns the feature names in vector order.
func Names() []string {
	ns := make([]string, len(Schema))
	for i, f := range Schema {
		ns[i] = f.Name
	}
	return ns
}

var (
	markerIndex = func() map[string]int {
		m := make(map[string]int, len(markerCodes))
		for i, c := range markerCodes {
			m[c] = i
		}
		return m
	}()
	countIndex = func() map[string]int {
		m := make(map[string]int, len(countFeature))
		for _, c := range countFeature {
			m[c.marker] = index(c.name)
		}
		return m
	}()
	iEnded, iShortShare                            = index("count.ended_day"), index("share.short_calls")
	iMembers, iConfidence, iAge                    = index("count.consortium_members"), index("consortium.confidence"), index("consortium.age")
	iPresent, iValid, iHome, iForeign              = index("caller.present"), index("caller.valid"), index("caller.home"), index("caller.foreign")
	iMobile, iFixed, iFixedOrMob, iNonGeo, iTypeUn = index("type.mobile"), index("type.fixed_line"), index("type.fixed_or_mobile"), index("type.non_geographic"), index("type.unknown")
	iIntl, iNoIngress, iRouteCC                    = index("ingress.international"), index("ingress.missing"), index("ingress.country_is_caller")
	iNoPAI, iUA, iIdentity, iVerstat, iDiversion   = index("sig.no_pai"), index("sig.user_agent"), index("sig.identity"), index("sig.verstat"), index("sig.diversion")
	iUserRef                                       = index("customer.ref")
	iHourSin, iHourCos, iNight, iWeekend           = index("time.hour_sin"), index("time.hour_cos"), index("time.night"), index("time.weekend")
)

func index(name string) int {
	for i, f := range Schema {
		if f.Name == name {
			return i
		}
	}
	panic("model: no feature " + name) // a typo in this file; caught by any test
}

// Routes looks up a tenant's ingress route. *screen.Engine satisfies it.
type Routes interface {
	Route(tenantID, id string) (call.Route, bool)
}

// Extractor computes feature vectors for one tenant's calls. Its fields are
// read-only after construction; it is safe for concurrent use.
type Extractor struct {
	Region   string         // the tenant's home region ("GB")
	Location *time.Location // the tenant's time zone for hour-of-week features; nil => UTC
	Routes   Routes         // nil => every named route counts as domestic
}

// Extract writes the feature vector of c, screened with verdict v, into dst
// (grown to Width if shorter) and returns it. It reads the markers by code,
// parses the counts velocity markers carry in their detail ("12 calls in the
// last hour"; a detail that does not start with a number gives 0), and the
// call's numbers, route, signalling and start time. It allocates nothing
// when dst has room.
func (x *Extractor) Extract(dst []float32, c *call.Call, v *call.Verdict) []float32 {
	if cap(dst) < Width {
		dst = make([]float32, Width)
	}
	dst = dst[:Width]
	clear(dst)
	for i := range v.Markers {
		m := &v.Markers[i]
		j, ok := markerIndex[m.Code]
		if !ok {
			continue // a marker newer than the schema, or model.*
		}
		dst[j] = 1
		if k, ok := countIndex[m.Code]; ok {
			dst[k] = log1p(leadingInt(m.Detail))
			continue
		}
		switch m.Code {
		case "consortium.reported":
			// "members=2 types=spoofing confidence=0.83"
			dst[iMembers] = log1p(leadingInt(after(m.Detail, "members=")))
			dst[iConfidence] = leadingFraction(after(m.Detail, "confidence="))
		case "consortium.recent":
			// "last report 5h ago"
			dst[iAge] = log1p(leadingInt(after(m.Detail, "last report ")))
		case "velocity.short_calls":
			// "S of E ended calls were short"
			short := leadingInt(m.Detail)
			ended := 0
			if i := strings.Index(m.Detail, " of "); i >= 0 {
				ended = leadingInt(m.Detail[i+4:])
			}
			dst[iEnded] = log1p(ended)
			if ended > 0 {
				dst[iShortShare] = float32(short) / float32(ended)
			}
		}
	}
	n := &c.Caller
	if n.Present() {
		dst[iPresent] = 1
		if n.Valid {
			dst[iValid] = 1
		}
		switch {
		case n.Region != "" && n.Region == x.Region:
			dst[iHome] = 1
		case n.Region != "":
			dst[iForeign] = 1
		}
		switch n.Type {
		case call.TypeMobile:
			dst[iMobile] = 1
		case call.TypeFixedLine:
			dst[iFixed] = 1
		case call.TypeFixedOrMob:
			dst[iFixedOrMob] = 1
		case call.TypeTollFree, call.TypeSharedCost, call.TypeUAN, call.TypePersonal, call.TypeVoIP:
			dst[iNonGeo] = 1
		case call.TypePremiumRate, call.TypePager, call.TypeVoicemail:
			// cli.special_range says it
		default:
			dst[iTypeUn] = 1
		}
	}
	if c.Ingress == "" {
		dst[iNoIngress] = 1
	} else if x.Routes != nil {
		if r, ok := x.Routes.Route(c.Tenant, c.Ingress); ok {
			if r.Kind == call.International {
				dst[iIntl] = 1
			}
			if r.Country != "" && r.Country == n.Region {
				dst[iRouteCC] = 1
			}
		}
	}
	s := &c.Signalling
	dst[iNoPAI] = flag(len(s.PAI) == 0)
	dst[iUA] = flag(s.UserAgent != "")
	dst[iIdentity] = flag(len(s.Identity) > 0)
	dst[iVerstat] = flag(s.Verstat != "")
	dst[iDiversion] = flag(s.Diversion != "")
	dst[iUserRef] = flag(c.UserRef != "")

	loc := x.Location
	if loc == nil {
		loc = time.UTC
	}
	t := c.StartedAt.In(loc)
	h := float64(t.Hour()) + float64(t.Minute())/60
	dst[iHourSin] = float32(math.Sin(2 * math.Pi * h / 24))
	dst[iHourCos] = float32(math.Cos(2 * math.Pi * h / 24))
	dst[iNight] = flag(t.Hour() >= 22 || t.Hour() < 7)
	wd := t.Weekday()
	dst[iWeekend] = flag(wd == time.Saturday || wd == time.Sunday)
	return dst
}

// HourOfWeek returns the hour of the week (0 = Monday 00:00) of t in loc
// (nil => UTC), the index the time features are derived from.
func HourOfWeek(t time.Time, loc *time.Location) int {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	return (int(t.Weekday())+6)%7*24 + t.Hour()
}

// Zone returns the time zone of a home region for the time features: the
// zone of its capital for the regions ringfence serves, UTC for others or
// when the system has no zone data.
func Zone(region string) *time.Location {
	name, ok := zones[region]
	if !ok {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

var zones = map[string]string{
	"GB": "Europe/London", "IE": "Europe/Dublin", "NL": "Europe/Amsterdam",
	"DE": "Europe/Berlin", "FR": "Europe/Paris", "US": "America/New_York",
}

func flag(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

func log1p(n int) float32 { return float32(math.Log1p(float64(n))) }

// after returns what follows the first key in s, "" if key is absent.
func after(s, key string) string {
	if i := strings.Index(s, key); i >= 0 {
		return s[i+len(key):]
	}
	return ""
}

// leadingFraction parses a decimal such as "0.83" at the start of s,
// clamped to [0,1]; 0 if s does not start with one.
func leadingFraction(s string) float32 {
	end := 0
	for end < len(s) && end < 12 && (s[end] >= '0' && s[end] <= '9' || s[end] == '.') {
		end++
	}
	if end == 0 {
		return 0 // ParseFloat would allocate its error
	}
	f, err := strconv.ParseFloat(s[:end], 32)
	if err != nil {
		return 0
	}
	return float32(min(max(f, 0), 1))
}

// leadingInt parses the decimal number s starts with (after spaces), 0 if
// none. Detail strings are engine output, but parse defensively: cap the
// value so a long digit run cannot overflow.
func leadingInt(s string) int {
	s = strings.TrimLeft(s, " ")
	n := 0
	for i := 0; i < len(s) && i < 9 && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
