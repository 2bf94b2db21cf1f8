package call

import (
	"time"
)

// Action is what the verdict tells the caller of the engine to do.
type Action string

const (
	Allow Action = "allow"
	Flag  Action = "flag"
	Block Action = "block"
	// Unscored is given by a front end that could not evaluate the call and
	// failed open (engine unavailable or over its concurrency budget).
	Unscored Action = "unscored"
)

// Valid reports whether a is allow, flag or block.
func (a Action) Valid() bool { return a == Allow || a == Flag || a == Block }

// Rank orders actions by severity: allow < flag < block.
func (a Action) Rank() int {
	switch a {
	case Flag:
		return 1
	case Block:
		return 2
	}
	return 0
}

// Marker is one reason behind a verdict. Codes are part of the API and are
// documented in docs/markers.md; the weight is the marker's log-odds
// contribution to the score. Detail never contains a phone number.
type Marker struct {
	Code   string  `json:"code"`
	Weight float64 `json:"weight"`
	Detail string  `json:"detail,omitempty"`
}

// Verdict is the engine's answer for one call.
type Verdict struct {
	Score       float64       `json:"score"` // in [0,1]: logistic(prior + sum of weights)
	Action      Action        `json:"action"`
	Markers     []Marker      `json:"markers"`
	Policy      string        `json:"policy"` // policy version that decided the action
	EvaluatedAt time.Time     `json:"evaluated_at"`
	Elapsed     time.Duration `json:"-"`
}

// Has reports whether the verdict carries a marker with the code.
func (v *Verdict) Has(code string) bool {
	for _, m := range v.Markers {
		if m.Code == code {
			return true
		}
	}
	return false
}
