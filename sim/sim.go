// Package sim generates realistic, labelled call traffic for one tenant (a
// bank's contact centre) and drives a running ringfence server with it
// through the public HTTP API, then summarises how well the server told
// fraud from genuine calls.
//
// Generate is pure: it builds a Traffic (routes, the tenant's inbound-only
// numbers, and calls in event-time order, each with its scenario and truth)
// from a Config. Client.Setup installs the routes and the do-not-originate
// list; Run screens every call, reports every call's end, posts analysts'
// labels some calls later, and returns a Summary.
//
// It is used by `ringfence simulate`, `ringfence demo` and the load
// benchmarks.
package sim

import "time"

// Config says what traffic to generate and how to send it. Zero values are
// useful defaults.
type Config struct {
	Seed        int64         // deterministic generation: same Seed and Start, same Traffic
	Calls       int           // total screen requests (default 5000)
	Start       time.Time     // event time of the first call (default: now minus Span)
	Span        time.Duration // event-time span the calls spread over (default 24h)
	FraudShare  float64       // share of calls that are fraud (default 0.08; negative: none)
	LabelShare  float64       // share of fraud calls an analyst confirms (default 0.6; negative: none)
	LabelAfter  int           // labels are posted this many calls after the call (default 200), modelling analyst delay
	Concurrency int           // parallel requests (default 8); calls are dispatched in event-time order
	// SharedFraud is the share of fraudsters' own numbers (the callers of
	// many_accounts, enumeration and social_engineering campaigns and each
	// number_rotation number; spoofed numbers never) taken from a pool
	// common to every tenant generated with the same Pool, in the same
	// order: the same fraudsters attacking several banks. Default 0: none,
	// and the traffic is what it was without the field. Clamped to [0,1].
	SharedFraud float64
	Pool        int64 // seeds the common pool of fraud numbers (see SharedFraud)
	// Region is the tenant's home country. Only "GB" is implemented: every
	// home number generated is a GB number, and Run refuses other regions.
	Region string
}

// Defaults used for zero Config fields.
const (
	DefaultCalls       = 5000
	DefaultSpan        = 24 * time.Hour
	DefaultFraudShare  = 0.08
	DefaultLabelShare  = 0.6
	DefaultLabelAfter  = 200
	DefaultConcurrency = 8
)

// withDefaults fills zero fields. Start is left zero here; Generate sets it
// from the clock when it is needed.
func (c Config) withDefaults() Config {
	if c.Calls <= 0 {
		c.Calls = DefaultCalls
	}
	if c.Span <= 0 {
		c.Span = DefaultSpan
	}
	c.FraudShare = share(c.FraudShare, DefaultFraudShare)
	c.LabelShare = share(c.LabelShare, DefaultLabelShare)
	c.SharedFraud = min(max(c.SharedFraud, 0), 1)
	if c.LabelAfter <= 0 {
		c.LabelAfter = DefaultLabelAfter
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Region == "" {
		c.Region = "GB"
	}
	return c
}

// share returns v in [0,1], def for 0 and 0 for negative v.
func share(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return min(max(v, 0), 1)
}

// Traffic is everything Generate produces for one tenant.
type Traffic struct {
	Routes []Route  // the tenant's ingress routes, installed by Setup
	DNO    []string // the tenant's inbound-only (published) numbers in E.164, installed by Setup
	Calls  []Call   // in event-time order
}

// Route is one of the tenant's interconnect routes, as PUT to
// /v1/routes/{id}.
type Route struct {
	ID       string `json:"-"`
	Kind     string `json:"kind"` // "domestic" or "international"
	Country  string `json:"country,omitempty"`
	FailOpen bool   `json:"fail_open"`
}

// Call is one generated call: the screen request and what really happened.
type Call struct {
	Request   ScreenRequest
	Fraud     bool          // the truth
	Scenario  string        // which generator made it (see Scenarios)
	FraudType string        // for fraud: the fraud_type an analyst would label it with
	Duration  time.Duration // how long the call lasts if it is let through
	Result    string        // how it ends if let through: answered, busy, no_answer, failed
	Egress    string        // egress route id, "" when the call never left
}

// ScreenRequest is the body of POST /v1/screen.
type ScreenRequest struct {
	CallRef      string     `json:"call_ref"`
	Caller       string     `json:"caller"` // E.164, or "anonymous" when withheld
	Dialled      string     `json:"dialled"`
	StartedAt    time.Time  `json:"started_at"` // event time; encodes as RFC 3339 with nanoseconds
	IngressRoute string     `json:"ingress_route"`
	ApplianceID  string     `json:"appliance_id"`
	UserRef      string     `json:"user_ref,omitempty"`
	Signalling   Signalling `json:"signalling"`
}

// Signalling is the SIP header data of a screen request.
type Signalling struct {
	From      string   `json:"from,omitempty"`
	PAI       []string `json:"pai,omitempty"` // P-Asserted-Identity values
	Verstat   string   `json:"verstat,omitempty"`
	Privacy   string   `json:"privacy,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
}
