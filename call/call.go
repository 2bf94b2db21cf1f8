// Package call holds ringfence's domain nouns: the call record, numbers, the
// verdict and its markers, tenants, routes, lists, labels and policy. It does no
// I/O; every other package imports it and it imports none of them.
package call

import (
	"time"
)

// Call is one screened call: the record described in the platform's privacy
// notice. Fields set by the front end on arrival come first; the evaluation,
// call-end data and review status are filled in later.
type Call struct {
	ID          string    // record id: sortable, unique (see NewID)
	Tenant      string    // owning tenant id
	Ref         string    // the integrator's own id for the call, optional
	Caller      Number    // calling line identity (may be withheld)
	Dialled     Number    // the number called
	StartedAt   time.Time // event time of the call; windows and replays run on it
	Ingress     string    // ingress route id
	ApplianceID string    // node or SBC that produced the record
	UserRef     string    // the tenant's pseudonymised customer id, optional
	Signalling  Signalling

	Verdict Verdict  // the live evaluation
	Shadow  *Verdict // the shadow policy's evaluation, if one is configured

	End    *End   // call-end data, nil until reported
	Review Review // analyst confirmation
}

// Signalling holds the headers that matter for screening, as received.
type Signalling struct {
	From      string   `json:"from,omitempty"`
	PAI       []string `json:"pai,omitempty"` // P-Asserted-Identity values, in order
	Identity  []string `json:"identity,omitempty"`
	Verstat   string   `json:"verstat,omitempty"`
	Privacy   string   `json:"privacy,omitempty"`
	Diversion string   `json:"diversion,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
	ViaCount  int      `json:"via_count,omitempty"`
}

// Result is how a call ended.
type Result string

const (
	Answered Result = "answered"
	Busy     Result = "busy"
	NoAnswer Result = "no_answer"
	Failed   Result = "failed"
	Rejected Result = "rejected"
)

// Valid reports whether r is one of the defined results.
func (r Result) Valid() bool {
	switch r {
	case Answered, Busy, NoAnswer, Failed, Rejected:
		return true
	}
	return false
}

// End is the call-end update that arrives after the call.
type End struct {
	Duration time.Duration
	Result   Result
	Egress   string // egress route id
}

// ReviewStatus is where a record stands with the analysts.
type ReviewStatus string

const (
	Unreviewed ReviewStatus = "unreviewed"
	Fraud      ReviewStatus = "fraud"
	Genuine    ReviewStatus = "genuine"
	Disputed   ReviewStatus = "disputed"
)

// Review is the analyst's confirmation of a record.
type Review struct {
	Status    ReviewStatus
	FraudType string
	Note      string
	By        string
	At        time.Time
}

// Label is an analyst's confirmation posted against a record.
type Label struct {
	Label     ReviewStatus // Fraud or Genuine
	FraudType string
	Note      string
	By        string
}
