package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/seal"
	"github.com/ringfence/ringfence/store"
)

// Incoming is a call as a front end received it: raw numbers and headers.
type Incoming struct {
	Tenant     string
	Ref        string    // integrator's id, optional
	Caller     string    // raw CLI; "" or "anonymous" means withheld
	Dialled    string    // raw dialled number, required
	StartedAt  time.Time // zero => now
	Ingress    string
	Appliance  string // "" => the node's appliance id
	UserRef    string
	Signalling call.Signalling
}

// Limits on incoming fields; longer input is refused, not truncated.
const (
	maxRef       = 128
	maxHeader    = 2048
	maxHeaders   = 8
	maxFutureIn  = 5 * time.Minute
	maxPastIn    = 400 * 24 * time.Hour
	maxNumberRaw = 64
)

// Validate reports the first problem with in as an *call.Error naming the
// API field.
func (in *Incoming) Validate(now time.Time) error {
	switch {
	case len(in.Ref) > maxRef:
		return call.Errorf(call.Invalid, "call_ref: at most %d characters", maxRef)
	case in.Dialled == "":
		return call.Errorf(call.Invalid, "dialled: required")
	case len(in.Dialled) > maxNumberRaw:
		return call.Errorf(call.Invalid, "dialled: at most %d characters", maxNumberRaw)
	case len(in.Caller) > maxNumberRaw:
		return call.Errorf(call.Invalid, "caller: at most %d characters", maxNumberRaw)
	case in.Ingress != "" && !call.ValidID(in.Ingress):
		return call.Errorf(call.Invalid, "ingress_route: must be 1-64 characters of letters, digits, '-', '_' or '.'")
	case in.Appliance != "" && !call.ValidID(in.Appliance):
		return call.Errorf(call.Invalid, "appliance_id: must be 1-64 characters of letters, digits, '-', '_' or '.'")
	case len(in.UserRef) > maxRef:
		return call.Errorf(call.Invalid, "user_ref: at most %d characters", maxRef)
	case !call.ValidText(in.Ref) || !call.ValidText(in.UserRef):
		// Stored as text (the numbers are only ever sealed or hashed).
		return call.Errorf(call.Invalid, "call_ref and user_ref: must be UTF-8 text without NUL")
	case !in.StartedAt.IsZero() && in.StartedAt.After(now.Add(maxFutureIn)):
		return call.Errorf(call.Invalid, "started_at: more than 5 minutes in the future")
	case !in.StartedAt.IsZero() && in.StartedAt.Before(now.Add(-maxPastIn)):
		return call.Errorf(call.Invalid, "started_at: more than 400 days in the past")
	}
	s := &in.Signalling
	if len(s.PAI) > maxHeaders || len(s.Identity) > maxHeaders {
		return call.Errorf(call.Invalid, "signalling: at most %d pai or identity values", maxHeaders)
	}
	for _, f := range []struct{ name, v string }{
		{"from", s.From}, {"verstat", s.Verstat}, {"privacy", s.Privacy},
		{"diversion", s.Diversion}, {"user_agent", s.UserAgent},
	} {
		if len(f.v) > maxHeader {
			return call.Errorf(call.Invalid, "signalling.%s: at most %d characters", f.name, maxHeader)
		}
	}
	for _, vs := range [][]string{s.PAI, s.Identity} {
		for _, v := range vs {
			if len(v) > 4*maxHeader {
				return call.Errorf(call.Invalid, "signalling: pai and identity values at most %d characters", 4*maxHeader)
			}
		}
	}
	return nil
}

// Screen evaluates an incoming call, counts it in the velocity windows and
// queues its record for the store; the record is durable within the
// recorder's flush time (Sync waits for it). It returns the call with its id
// and verdict. Errors: Invalid for bad input, NotFound for an unknown
// tenant, Overloaded if ctx ends while the recorder queue is full.
func (n *Node) Screen(ctx context.Context, in Incoming) (*call.Call, error) {
	start := time.Now()
	now := n.now()
	if err := in.Validate(now); err != nil {
		return nil, err
	}
	c := &call.Call{
		ID:          n.ids.Next(now),
		Tenant:      in.Tenant,
		Ref:         in.Ref,
		Caller:      n.engine.Number(in.Tenant, in.Caller),
		Dialled:     n.engine.Number(in.Tenant, in.Dialled),
		StartedAt:   in.StartedAt,
		Ingress:     in.Ingress,
		ApplianceID: in.Appliance,
		UserRef:     in.UserRef,
		Signalling:  in.Signalling,
		Review:      call.Review{Status: call.Unreviewed},
	}
	if c.StartedAt.IsZero() {
		c.StartedAt = now
	}
	if c.ApplianceID == "" {
		c.ApplianceID = n.cfg.ApplianceID
	}
	if !c.Dialled.Present() {
		return nil, call.Errorf(call.Invalid, "dialled: not a telephone number")
	}
	live, shadow, err := n.engine.Evaluate(ctx, c)
	if err != nil {
		return nil, err
	}
	c.Verdict, c.Shadow = live, shadow
	c.Verdict.Elapsed = time.Since(start) // normalisation included
	linked := n.engine.Observe(c)
	if err := n.rec.enqueue(ctx, c, false, linked); err != nil {
		return nil, err
	}
	n.m.screened(c.Verdict.Action, time.Since(start))
	return c, nil
}

// personal is the sealed part of a call record.
type personal struct {
	Caller     string          `json:"caller"`
	Dialled    string          `json:"dialled"`
	UserRef    string          `json:"user_ref,omitempty"`
	Signalling call.Signalling `json:"signalling"`
}

type verdicts struct {
	Live   call.Verdict  `json:"live"`
	Shadow *call.Verdict `json:"shadow,omitempty"`
}

func aad(kind, tenant, id string) []byte { return []byte(kind + "/" + tenant + "/" + id) }

// pseudonym returns the keyed pseudonym of a number, nil if it has no E.164
// form.
func pseudonym(k *seal.TenantKeys, n call.Number) []byte {
	if !n.Present() {
		return nil
	}
	p := k.Pseudonym(n.E164)
	return p[:]
}

func userPseudonym(k *seal.TenantKeys, ref string) []byte {
	if ref == "" {
		return nil
	}
	p := k.Pseudonym("user:" + ref)
	return p[:]
}

// sealCall turns a screened call into its stored row.
func (n *Node) sealCall(c *call.Call) (store.Call, error) {
	k, err := n.tenantKeys(c.Tenant)
	if err != nil {
		return store.Call{}, err
	}
	p, err := json.Marshal(personal{Caller: c.Caller.Raw, Dialled: c.Dialled.Raw, UserRef: c.UserRef, Signalling: c.Signalling})
	if err != nil {
		return store.Call{}, err
	}
	v, err := json.Marshal(verdicts{Live: c.Verdict, Shadow: c.Shadow})
	if err != nil {
		return store.Call{}, err
	}
	codes := make([]string, len(c.Verdict.Markers))
	for i, m := range c.Verdict.Markers {
		codes[i] = m.Code
	}
	return store.Call{
		ID: c.ID, Tenant: c.Tenant, Ref: c.Ref, StartedAt: c.StartedAt.UTC(),
		Ingress: c.Ingress, Appliance: c.ApplianceID,
		CallerPseudonym:  pseudonym(k, c.Caller),
		DialledPseudonym: pseudonym(k, c.Dialled),
		UserPseudonym:    userPseudonym(k, c.UserRef),
		Score:            c.Verdict.Score, Action: c.Verdict.Action, Markers: codes,
		Verdict: v,
		Sealed:  k.Seal(p, aad("calls", c.Tenant, c.ID)),
		Review:  call.Unreviewed,
	}, nil
}

// sealLink turns a customer link into its stored row.
func (n *Node) sealLink(tenant string, caller call.Number, userRef string, at time.Time) (store.Link, error) {
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return store.Link{}, err
	}
	cp, up := pseudonym(k, caller), userPseudonym(k, userRef)
	blob, _ := json.Marshal([2]string{caller.E164, userRef})
	return store.Link{
		CallerPseudonym: cp, UserPseudonym: up, At: at.UTC(),
		Sealed: k.Seal(blob, linkAAD(tenant, cp, up)),
	}, nil
}

// linkAAD binds a sealed link to its tenant and its pair of pseudonyms.
func linkAAD(tenant string, caller, user []byte) []byte {
	return aad("links", tenant, fmt.Sprintf("%x/%x", caller, user))
}

func openLink(tenant string, k *seal.TenantKeys, l store.Link) (caller, user string, err error) {
	b, err := k.Open(l.Sealed, linkAAD(tenant, l.CallerPseudonym, l.UserPseudonym))
	if err != nil {
		return "", "", fmt.Errorf("open link: %w", err)
	}
	var v [2]string
	if err := json.Unmarshal(b, &v); err != nil {
		return "", "", fmt.Errorf("decode link: %w", err)
	}
	return v[0], v[1], nil
}

// openCall turns a stored row back into a call.
func (n *Node) openCall(row store.Call) (*call.Call, error) {
	k, err := n.tenantKeys(row.Tenant)
	if err != nil {
		return nil, err
	}
	b, err := k.Open(row.Sealed, aad("calls", row.Tenant, row.ID))
	if err != nil {
		return nil, fmt.Errorf("open call %s: %w", row.ID, err)
	}
	var p personal
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode call %s: %w", row.ID, err)
	}
	var v verdicts
	if err := json.Unmarshal(row.Verdict, &v); err != nil {
		return nil, fmt.Errorf("decode verdict %s: %w", row.ID, err)
	}
	c := &call.Call{
		ID: row.ID, Tenant: row.Tenant, Ref: row.Ref,
		Caller:    n.engine.Number(row.Tenant, p.Caller),
		Dialled:   n.engine.Number(row.Tenant, p.Dialled),
		StartedAt: row.StartedAt, Ingress: row.Ingress, ApplianceID: row.Appliance,
		UserRef: p.UserRef, Signalling: p.Signalling,
		Verdict: v.Live, Shadow: v.Shadow,
		Review: call.Review{Status: row.Review, FraudType: row.FraudType},
	}
	if c.Review.Status == "" {
		c.Review.Status = call.Unreviewed
	}
	if row.End != nil {
		c.End = &call.End{Duration: row.End.Duration, Result: row.End.Result, Egress: row.End.Egress}
	}
	return c, nil
}
