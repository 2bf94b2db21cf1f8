package privacy

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ringfence/ringfence/call"
)

// Type is the data-subject right a case exercises (UK GDPR Articles 15-21
// and 7(3)).
type Type string

const (
	Access            Type = "access"             // Article 15: a copy of the data
	Portability       Type = "portability"        // Article 20: the data as JSON and CSV
	Rectification     Type = "rectification"      // Article 16: correct inaccurate data
	Erasure           Type = "erasure"            // Article 17: delete the data
	Restriction       Type = "restriction"        // Article 18: keep but do not use
	Objection         Type = "objection"          // Article 21: stop processing on legitimate interests
	ConsentWithdrawal Type = "consent_withdrawal" // Article 7(3): stop processing based on consent
)

// Types lists every case type in a stable order.
var Types = []Type{Access, Portability, Rectification, Erasure, Restriction, Objection, ConsentWithdrawal}

// Valid reports whether t is one of Types.
func (t Type) Valid() bool {
	for _, v := range Types {
		if t == v {
			return true
		}
	}
	return false
}

// Status is where a case stands.
type Status string

const (
	Open             Status = "open"              // received, nothing done yet
	AwaitingIdentity Status = "awaiting_identity" // the requester was asked to prove who they are
	Paused           Status = "paused"            // waiting for information from the requester; the clock stands still
	InProgress       Status = "in_progress"       // identity confirmed; the clock runs
	Completed        Status = "completed"         // answered; the case has a receipt
	Refused          Status = "refused"           // closed without complying; the outcome says why
)

// Terminal reports whether no further transition is allowed from s.
func (s Status) Terminal() bool { return s == Completed || s == Refused }

// IdentityState is the state of the check that the requester is the data
// subject.
type IdentityState string

const (
	IdentityPending   IdentityState = "pending"
	IdentityConfirmed IdentityState = "confirmed"
	IdentityFailed    IdentityState = "failed"
)

// Outcome says how a closed case ended.
type Outcome string

const (
	Complied          Outcome = "complied"            // every record found was acted on
	PartlyComplied    Outcome = "partly_complied"     // some records kept (legal hold or legal basis), as the receipt shows
	NoData            Outcome = "no_data"             // nothing was held about the subject
	OutcomeRefused    Outcome = "refused"             // refused (manifestly unfounded or excessive, an exemption); the reason says which
	IdentityNotProven Outcome = "identity_not_proven" // the identity check failed
)

// EventKind names a step of a case's timeline.
type EventKind string

const (
	EventReceived          EventKind = "received"
	EventIdentityRequested EventKind = "identity_requested"
	EventIdentityConfirmed EventKind = "identity_confirmed"
	EventIdentityFailed    EventKind = "identity_failed"
	EventPaused            EventKind = "paused"
	EventResumed           EventKind = "resumed"
	EventExtended          EventKind = "extended"
	EventCompleted         EventKind = "completed"
	EventRefused           EventKind = "refused"
)

// Event is one step of a case's timeline. The deadline is derived from the
// events (see Case.Deadline), never stored.
type Event struct {
	Kind EventKind `json:"kind"`
	At   time.Time `json:"at"`
	// Months is the extension granted (extended only).
	Months int `json:"months,omitempty"`
	// ToldAt is when the requester was told of the extension (extended only).
	ToldAt time.Time `json:"told_at,omitzero"`
	// Reason is free text for people: what information is awaited (paused),
	// why more time is needed (extended), why the case was refused. It must
	// not hold phone numbers; Validate-style checks refuse long digit runs.
	Reason string `json:"reason,omitempty"`
}

// Subject identifies the data subject of a case: a phone number (E.164),
// the tenant's pseudonymised user reference, or both. The privacy package
// only passes a Subject through (to check it and to say which identifiers a
// case has); it never stores one: the caller seals it apart from the case.
// Its String and LogValue are redacted so that it cannot leak into logs.
type Subject struct {
	Number  string `json:"number,omitempty"`   // "+441632960001"
	UserRef string `json:"user_ref,omitempty"` // the tenant's user id
}

// Validate reports the first problem with s as an *call.Error: at least one
// identifier, the number in E.164 form, the user reference 1-128 printable
// characters. Messages never repeat the values.
func (s Subject) Validate() error {
	switch {
	case s.Number == "" && s.UserRef == "":
		return call.Errorf(call.Invalid, "subject: give a phone number, a user reference or both")
	case s.Number != "" && !validE164(s.Number):
		return call.Errorf(call.Invalid, "subject.number: must be in E.164 form, '+' and 8-15 digits")
	case s.UserRef != "" && !validRef(s.UserRef):
		return call.Errorf(call.Invalid, "subject.user_ref: must be 1-128 printable characters")
	}
	return nil
}

// Identifiers returns which identifiers s holds ("number", "user_ref"),
// never their values.
func (s Subject) Identifiers() []string {
	var ids []string
	if s.Number != "" {
		ids = append(ids, "number")
	}
	if s.UserRef != "" {
		ids = append(ids, "user_ref")
	}
	return ids
}

// String is redacted.
func (s Subject) String() string { return "privacy.Subject{redacted}" }

// GoString is redacted.
func (s Subject) GoString() string { return s.String() }

// LogValue is redacted.
func (s Subject) LogValue() slog.Value { return slog.StringValue(s.String()) }

func validE164(n string) bool {
	if len(n) < 9 || len(n) > 16 || n[0] != '+' || n[1] == '0' {
		return false
	}
	for i := 1; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

func validRef(r string) bool {
	if len(r) > 128 {
		return false
	}
	for _, c := range r {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return r != ""
}

// hasDigitRun reports whether s holds 7 or more digits in a row (ignoring
// spaces, '+' and brackets between them), the shape of a phone number. Dates
// such as 2026-09-03 pass: '-' and '.' break a run.
func hasDigitRun(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			n++
			if n >= 7 {
				return true
			}
		case c == ' ' || c == '(' || c == ')' || c == '+':
		default:
			n = 0
		}
	}
	return false
}

// Case is one data-subject request and its timeline. It holds no subject
// identifier, only which kinds were given. A Case is a value the caller
// stores; it is not safe for concurrent use. Every transition method checks
// the current status and returns an *call.Error with code Conflict when the
// transition is not allowed from there, or Invalid when an argument is wrong;
// on error the case is unchanged.
//
// The state machine:
//
//	open ──request identity──▶ awaiting_identity
//	open, awaiting_identity ──confirm identity──▶ in_progress
//	open, awaiting_identity ──fail identity──▶ refused
//	in_progress ──pause──▶ paused ──resume──▶ in_progress
//	in_progress, paused ──extend──▶ (unchanged)
//	in_progress ──complete──▶ completed
//	any but completed, refused ──refuse──▶ refused
type Case struct {
	ID          string        `json:"id"`
	TenantID    string        `json:"tenant_id"`
	Type        Type          `json:"type"`
	Identifiers []string      `json:"identifiers"` // which subject identifiers were given: "number", "user_ref"
	Status      Status        `json:"status"`
	Identity    IdentityState `json:"identity"`
	Outcome     Outcome       `json:"outcome,omitempty"`
	Events      []Event       `json:"events"`
	Receipt     *Receipt      `json:"receipt,omitempty"`
}

// NewCase opens a case of type typ for subject, received at received. The
// subject is checked but not kept. It returns an *call.Error (Invalid) when
// an argument is wrong.
func NewCase(id, tenantID string, typ Type, subject Subject, received time.Time) (*Case, error) {
	switch {
	case !call.ValidID(id):
		return nil, call.Errorf(call.Invalid, "id: must be 1-64 characters of letters, digits, '-', '_' or '.'")
	case !call.ValidID(tenantID):
		return nil, call.Errorf(call.Invalid, "tenant_id: must be 1-64 characters of letters, digits, '-', '_' or '.'")
	case !typ.Valid():
		return nil, call.Errorf(call.Invalid, "type: must be one of %s", typeList())
	case received.IsZero():
		return nil, call.Errorf(call.Invalid, "received: required")
	}
	if err := subject.Validate(); err != nil {
		return nil, err
	}
	return &Case{
		ID:          id,
		TenantID:    tenantID,
		Type:        typ,
		Identifiers: subject.Identifiers(),
		Status:      Open,
		Identity:    IdentityPending,
		Events:      []Event{{Kind: EventReceived, At: received}},
	}, nil
}

func typeList() string {
	s := make([]string, len(Types))
	for i, t := range Types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// Received returns when the request was received.
func (c *Case) Received() time.Time {
	for _, e := range c.Events {
		if e.Kind == EventReceived {
			return e.At
		}
	}
	return time.Time{}
}

// check refuses a transition named op unless the case is in one of from and
// at is not earlier than the last event.
func (c *Case) check(op string, at time.Time, from ...Status) error {
	ok := false
	for _, s := range from {
		if c.Status == s {
			ok = true
			break
		}
	}
	if !ok {
		return call.Errorf(call.Conflict, "case %s: cannot %s a case that is %s", c.ID, op, c.Status)
	}
	if at.IsZero() {
		return call.Errorf(call.Invalid, "at: required")
	}
	if n := len(c.Events); n > 0 && at.Before(c.Events[n-1].At) {
		return call.Errorf(call.Invalid, "at: %s is before the case's last event (%s)",
			at.UTC().Format(time.RFC3339), c.Events[n-1].At.UTC().Format(time.RFC3339))
	}
	return nil
}

func checkReason(field, reason string, required bool) error {
	switch {
	case required && strings.TrimSpace(reason) == "":
		return call.Errorf(call.Invalid, "%s: required", field)
	case len(reason) > 1000:
		return call.Errorf(call.Invalid, "%s: at most 1000 characters", field)
	case hasDigitRun(reason):
		return call.Errorf(call.Invalid, "%s: must not contain phone numbers or other long digit runs", field)
	}
	return nil
}

// RequestIdentity records that the requester was asked to prove their
// identity at at. Allowed from open.
func (c *Case) RequestIdentity(at time.Time) error {
	if err := c.check("request identity for", at, Open); err != nil {
		return err
	}
	c.Events = append(c.Events, Event{Kind: EventIdentityRequested, At: at})
	c.Status = AwaitingIdentity
	return nil
}

// ConfirmIdentity records that the requester's identity was confirmed at at;
// the clock starts on the later of receipt and at. Allowed from open and
// awaiting_identity.
func (c *Case) ConfirmIdentity(at time.Time) error {
	if err := c.check("confirm identity for", at, Open, AwaitingIdentity); err != nil {
		return err
	}
	c.Events = append(c.Events, Event{Kind: EventIdentityConfirmed, At: at})
	c.Status = InProgress
	c.Identity = IdentityConfirmed
	return nil
}

// FailIdentity records that the identity check failed at at and closes the
// case as refused with outcome identity_not_proven. Allowed from open and
// awaiting_identity.
func (c *Case) FailIdentity(at time.Time, reason string) error {
	if err := c.check("fail identity for", at, Open, AwaitingIdentity); err != nil {
		return err
	}
	if err := checkReason("reason", reason, false); err != nil {
		return err
	}
	c.Events = append(c.Events, Event{Kind: EventIdentityFailed, At: at, Reason: reason})
	c.Status = Refused
	c.Identity = IdentityFailed
	c.Outcome = IdentityNotProven
	return nil
}

// Pause stops the clock at at while the case waits for information from the
// requester (a clarification, a fee); reason says what is awaited. Allowed
// from in_progress.
func (c *Case) Pause(at time.Time, reason string) error {
	if err := c.check("pause", at, InProgress); err != nil {
		return err
	}
	if err := checkReason("reason", reason, true); err != nil {
		return err
	}
	c.Events = append(c.Events, Event{Kind: EventPaused, At: at, Reason: reason})
	c.Status = Paused
	return nil
}

// Resume restarts the clock at at, when the requester supplied what was
// awaited; the due date moves by the calendar days paused. Allowed from
// paused.
func (c *Case) Resume(at time.Time) error {
	if err := c.check("resume", at, Paused); err != nil {
		return err
	}
	c.Events = append(c.Events, Event{Kind: EventResumed, At: at})
	c.Status = InProgress
	return nil
}

// MaxExtension is the most the time limit can be extended, in months
// (UK GDPR Article 12(3)).
const MaxExtension = 2

// Extend extends the time limit by months (1 or 2; at most MaxExtension in
// total over all extensions), recorded at at, the requester having been told
// at toldAt. Allowed from in_progress and paused. It returns an *call.Error
// with code Invalid when months is out of range or would take the total
// over MaxExtension, when reason is empty, when toldAt is after at, or when
// toldAt's date is after the original (one-month) due date: the requester
// must be told within the first month.
func (c *Case) Extend(at, toldAt time.Time, months int, reason string) error {
	if err := c.check("extend", at, InProgress, Paused); err != nil {
		return err
	}
	d := c.Deadline(at)
	switch {
	case months < 1 || months > MaxExtension:
		return call.Errorf(call.Invalid, "months: must be 1 or 2")
	case d.ExtendedMonths+months > MaxExtension:
		return call.Errorf(call.Invalid, "months: the case is already extended by %d month(s); the total may not exceed %d", d.ExtendedMonths, MaxExtension)
	case toldAt.IsZero():
		return call.Errorf(call.Invalid, "told_at: required: the requester must be told of an extension")
	case toldAt.After(at):
		return call.Errorf(call.Invalid, "told_at: must not be after the time the extension is recorded")
	case toldAt.Before(c.Received()):
		return call.Errorf(call.Invalid, "told_at: must not be before the request was received")
	case daysBetween(d.Original, toldAt) > 0:
		return call.Errorf(call.Invalid, "told_at: the requester must be told of an extension by the original due date, %s",
			d.Original.Format(time.DateOnly))
	}
	if err := checkReason("reason", reason, true); err != nil {
		return err
	}
	c.Events = append(c.Events, Event{Kind: EventExtended, At: at, Months: months, ToldAt: toldAt, Reason: reason})
	return nil
}

// Complete closes the case at at with its receipt. The receipt's CaseID,
// Type and CompletedAt are filled from the case; its stores are checked
// (Receipt.Validate). The outcome follows from the stores: no_data when
// nothing was found, partly_complied when anything found was not acted on,
// complied otherwise. Allowed from in_progress.
func (c *Case) Complete(at time.Time, r Receipt) error {
	if err := c.check("complete", at, InProgress); err != nil {
		return err
	}
	r.CaseID, r.Type, r.CompletedAt = c.ID, c.Type, at
	r.Stores = append([]StoreResult(nil), r.Stores...)
	if err := r.Validate(); err != nil {
		return err
	}
	c.Events = append(c.Events, Event{Kind: EventCompleted, At: at})
	c.Status = Completed
	c.Outcome = r.outcome()
	c.Receipt = &r
	return nil
}

// Refuse closes the case at at without complying (manifestly unfounded or
// excessive, or an exemption applies); reason is required. Allowed from any
// status but completed and refused.
func (c *Case) Refuse(at time.Time, reason string) error {
	if err := c.check("refuse", at, Open, AwaitingIdentity, Paused, InProgress); err != nil {
		return err
	}
	if err := checkReason("reason", reason, true); err != nil {
		return err
	}
	c.Events = append(c.Events, Event{Kind: EventRefused, At: at, Reason: reason})
	c.Status = Refused
	c.Outcome = OutcomeRefused
	return nil
}

// Actions a StoreResult reports. Kept records use KeptLegalHold or
// KeptLegalBasis, which say why.
const (
	ActionDeleted    = "deleted"
	ActionExported   = "exported"
	ActionRectified  = "rectified"
	ActionRestricted = "restricted"
	ActionStopped    = "processing stopped" // objection, consent withdrawal
	ActionNone       = "none"               // nothing found
)

// KeptLegalHold is the action for records kept because legal hold id
// applies.
func KeptLegalHold(id string) string { return "kept: legal hold " + id }

// KeptLegalBasis is the action for records kept on a legal basis described
// by text (e.g. "Article 17(3)(e): defence of legal claims").
func KeptLegalBasis(text string) string { return "kept: legal basis " + text }

// Receipt is the completion receipt of a case: what each store held about
// the subject and what was done. It names no subject identifier.
type Receipt struct {
	CaseID      string        `json:"case_id"`
	Type        Type          `json:"type"`
	CompletedAt time.Time     `json:"completed_at"`
	Stores      []StoreResult `json:"stores"`
}

// StoreResult is one store's part of a receipt.
type StoreResult struct {
	Store  string `json:"store"`  // where: "sqlite", "postgres", "archive", "consortium", ...
	Class  Class  `json:"class"`  // the data class
	Found  int64  `json:"found"`  // records about the subject found
	Done   int64  `json:"done"`   // records the action was carried out on
	Action string `json:"action"` // see the Action constants, KeptLegalHold, KeptLegalBasis
}

// Kept reports whether the result records data kept on purpose.
func (s StoreResult) Kept() bool { return strings.HasPrefix(s.Action, "kept: ") }

// Validate reports the first problem with r as an *call.Error (Invalid): at
// least one store; each with a store name, a known class, an action, and
// 0 <= Done <= Found; a kept action names its hold or basis.
func (r Receipt) Validate() error {
	if len(r.Stores) == 0 {
		return call.Errorf(call.Invalid, "stores: at least one store result is required")
	}
	for i, s := range r.Stores {
		f := fmt.Sprintf("stores[%d]", i)
		switch {
		case strings.TrimSpace(s.Store) == "":
			return call.Errorf(call.Invalid, "%s.store: required", f)
		case !s.Class.Valid():
			return call.Errorf(call.Invalid, "%s.class: unknown data class %q", f, s.Class)
		case strings.TrimSpace(s.Action) == "":
			return call.Errorf(call.Invalid, "%s.action: required", f)
		case s.Kept() && !validKept(s.Action):
			return call.Errorf(call.Invalid, "%s.action: a kept action must name its legal hold or legal basis", f)
		case s.Found < 0 || s.Done < 0 || s.Done > s.Found:
			return call.Errorf(call.Invalid, "%s: need 0 <= done <= found", f)
		}
		// A hold is named by its id, which may hold digits; everything
		// else is free text that must not carry a number.
		if id, ok := strings.CutPrefix(s.Action, KeptLegalHold("")); ok {
			if !call.ValidID(id) {
				return call.Errorf(call.Invalid, "%s.action: the legal hold id must be 1-64 characters of letters, digits, '-', '_' or '.'", f)
			}
			continue
		}
		if err := checkReason(f+".action", s.Action, true); err != nil {
			return err
		}
	}
	return nil
}

// validKept reports whether a kept action names a legal hold or a basis.
func validKept(action string) bool {
	for _, p := range []string{KeptLegalHold(""), KeptLegalBasis("")} {
		if rest, ok := strings.CutPrefix(action, p); ok && strings.TrimSpace(rest) != "" {
			return true
		}
	}
	return false
}

func (r Receipt) outcome() Outcome {
	var found int64
	partial := false
	for _, s := range r.Stores {
		found += s.Found
		if s.Done < s.Found || s.Kept() {
			partial = true
		}
	}
	switch {
	case found == 0:
		return NoData
	case partial:
		return PartlyComplied
	}
	return Complied
}
