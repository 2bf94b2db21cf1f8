package call

import (
	"strconv"
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
	Shaken      *Shaken       `json:"shaken,omitempty"` // STIR/SHAKEN outcome, when the call carried a PASSporT
}

// Shaken is the outcome of verifying a call's PASSporTs (STIR/SHAKEN). It
// holds no phone number.
type Shaken struct {
	Status  string         `json:"status"` // verified, failed, unverified
	Attest  string         `json:"attest,omitempty"`
	OrigID  string         `json:"origid,omitempty"`
	Reasons []ShakenReason `json:"reasons,omitempty"`
}

// ShakenReason is one finding of the verification.
type ShakenReason struct {
	Code  string `json:"code"`
	Fatal bool   `json:"fatal"`
	Cause int    `json:"cause,omitempty"` // RFC 8224 SIP status: 403, 436, 437 or 438
	Text  string `json:"text"`
}

// Cause returns the SIP cause of the first fatal finding that has one, or
// 0 if there is none.
func (s *Shaken) Cause() int {
	if s == nil {
		return 0
	}
	for _, r := range s.Reasons {
		if r.Fatal && r.Cause != 0 {
			return r.Cause
		}
	}
	return 0
}

// ReasonHeader returns the RFC 9410 Reason header value for a STIR cause
// (403, 436, 437 or 438).
func ReasonHeader(cause int) string {
	return "STIR ;cause=" + strconv.Itoa(cause) + ` ;text="` + causeText[cause] + `"`
}

var causeText = map[int]string{
	403: "Stale Date",
	436: "Bad Identity Info",
	437: "Unsupported Credential",
	438: "Invalid Identity Header",
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
