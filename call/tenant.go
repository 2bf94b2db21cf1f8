package call

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Tenant is an organisation whose calls ringfence screens.
type Tenant struct {
	ID        string
	Name      string
	Region    string // home country (ISO 3166 alpha-2) for national number formats
	CreatedAt time.Time
}

// RouteKind says where an ingress or egress route connects to.
type RouteKind string

const (
	Domestic      RouteKind = "domestic"
	International RouteKind = "international"
)

// Route is one of a tenant's interconnect routes.
type Route struct {
	ID       string    `json:"id"`
	Kind     RouteKind `json:"kind"`
	Country  string    `json:"country,omitempty"`   // ISO 3166 alpha-2 of the far end, if known
	FailOpen bool      `json:"fail_open,omitempty"` // when the engine cannot answer: pass calls unscored (true) or refuse them (false)
}

// Validate reports the first problem with r as an *Error naming the field.
func (r Route) Validate() error {
	switch {
	case !ValidID(r.ID):
		return Errorf(Invalid, "id: must be 1-64 characters of letters, digits, '-', '_' or '.'")
	case r.Kind != Domestic && r.Kind != International:
		return Errorf(Invalid, "kind: must be %q or %q", Domestic, International)
	case r.Country != "" && !ValidRegion(r.Country):
		return Errorf(Invalid, "country: must be an ISO 3166 alpha-2 code such as \"GB\"")
	}
	return nil
}

// ListKind names one of a tenant's number lists.
type ListKind string

const (
	AllowList ListKind = "allow"
	DenyList  ListKind = "deny"
	DNOList   ListKind = "dno" // do-not-originate: the tenant's inbound-only numbers
)

// ParseListKind checks s names a list.
func ParseListKind(s string) (ListKind, error) {
	switch k := ListKind(s); k {
	case AllowList, DenyList, DNOList:
		return k, nil
	}
	return "", Errorf(NotFound, "no list %q: lists are allow, deny and dno", s)
}

// ListEntry is one number on one of a tenant's lists.
type ListEntry struct {
	List      ListKind
	Number    Number
	Reason    string
	ExpiresAt time.Time // zero: never
	CreatedAt time.Time
}

// Live reports whether the entry applies at t.
func (e ListEntry) Live(t time.Time) bool { return e.ExpiresAt.IsZero() || t.Before(e.ExpiresAt) }

// Policy turns a score and markers into an action for one tenant.
type Policy struct {
	Version int                `json:"version"`
	FlagAt  float64            `json:"flag_at"`           // score at or above which a call is flagged
	BlockAt float64            `json:"block_at"`          // score at or above which a call is blocked
	Prior   float64            `json:"prior"`             // log-odds before any marker
	Weights map[string]float64 `json:"weights,omitempty"` // per marker code, replaces the default weight
	Actions map[string]Action  `json:"actions,omitempty"` // per marker code, the least action when it fires (e.g. dno.listed: block)
	// BlockWith is the SIP answer for a block: 608 (Rejected, with Call-Info
	// redress) or 603 (Decline).
	BlockWith int     `json:"block_with,omitempty"`
	Redress   string  `json:"redress,omitempty"` // URI for the RFC 8688 Call-Info redress pointer
	Shadow    *Policy `json:"shadow,omitempty"`  // evaluated beside this one and recorded, never acted on
}

// DefaultPolicy is what a new tenant starts with.
func DefaultPolicy() Policy {
	return Policy{
		Version: 1,
		FlagAt:  0.5,
		BlockAt: 0.9,
		Prior:   -4,
		// Ofcom: calls with a UK CLI from abroad (other than roaming
		// mobiles) should not be connected.
		Actions:   map[string]Action{"dno.listed": Block, "list.deny": Block, "route.home_cli_international": Block},
		BlockWith: 608,
	}
}

// Validate reports the first problem with p as an *Error naming the field.
func (p Policy) Validate() error {
	if err := p.validate(""); err != nil {
		return err
	}
	if p.Shadow != nil {
		if p.Shadow.Shadow != nil {
			return Errorf(Invalid, "shadow.shadow: a shadow policy cannot have its own shadow")
		}
		return p.Shadow.validate("shadow.")
	}
	return nil
}

func (p Policy) validate(prefix string) error {
	switch {
	case !(p.FlagAt > 0 && p.FlagAt <= 1):
		return Errorf(Invalid, "%sflag_at: must be in (0,1]", prefix)
	case !(p.BlockAt > 0 && p.BlockAt <= 1):
		return Errorf(Invalid, "%sblock_at: must be in (0,1]", prefix)
	case p.BlockAt < p.FlagAt:
		return Errorf(Invalid, "%sblock_at: must not be below flag_at", prefix)
	case p.Prior < -20 || p.Prior > 20:
		return Errorf(Invalid, "%sprior: must be within [-20,20] log-odds", prefix)
	case p.BlockWith != 0 && p.BlockWith != 603 && p.BlockWith != 608:
		return Errorf(Invalid, "%sblock_with: must be 603 or 608", prefix)
	case len(p.Redress) > 512:
		return Errorf(Invalid, "%sredress: at most 512 characters", prefix)
	}
	for code, w := range p.Weights {
		if w < -20 || w > 20 {
			return Errorf(Invalid, "%sweights.%s: must be within [-20,20] log-odds", prefix, code)
		}
	}
	for code, a := range p.Actions {
		if !a.Valid() {
			return Errorf(Invalid, "%sactions.%s: must be allow, flag or block", prefix, code)
		}
	}
	return nil
}

// ValidID reports whether s is usable as a tenant, route or appliance id:
// 1-64 characters of letters, digits, '-', '_' or '.'.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// ValidText reports whether s can be stored as text in every store: valid
// UTF-8 without NUL (PostgreSQL refuses both, SQLite takes them).
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// ValidRegion reports whether s is an upper-case ISO 3166 alpha-2 code.
func ValidRegion(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
