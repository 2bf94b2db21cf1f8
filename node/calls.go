package node

import (
	"context"
	"time"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// maxCallDuration bounds a reported call duration.
const maxCallDuration = 7 * 24 * time.Hour

// UpdateCallEnd records how a call ended and counts it in the short-call
// window. It answers at once; the update is durable with the recorder's
// next commit (Sync waits for it). NotFound if the tenant has no such record.
func (n *Node) UpdateCallEnd(ctx context.Context, tenant, id string, end call.End) (*call.Call, error) {
	switch {
	case end.Duration < 0 || end.Duration > maxCallDuration:
		return nil, call.Errorf(call.Invalid, "duration_s: must be between 0 and 604800")
	case !end.Result.Valid():
		return nil, call.Errorf(call.Invalid, "result: must be answered, busy, no_answer, failed or rejected")
	case end.Egress != "" && !call.ValidID(end.Egress):
		return nil, call.Errorf(call.Invalid, "egress_route: must be 1-64 characters of letters, digits, '-', '_' or '.'")
	}
	c, err := n.record(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	updated := *c
	updated.End = &end
	if err := n.rec.enqueue(ctx, &updated, true, false); err != nil {
		return nil, err
	}
	if c.End == nil {
		n.engine.ObserveEnd(&updated) // a repeated update is not counted twice
	}
	return &updated, nil
}

// Call returns one of the tenant's records, opened, including one still
// waiting to be written. NotFound if absent.
func (n *Node) Call(ctx context.Context, tenant, id string) (*call.Call, error) {
	c, err := n.record(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return c, n.audit(ctx, tenant, "call.read", id, nil)
}

// record is Call without the audit, for the node's own reads.
func (n *Node) record(ctx context.Context, tenant, id string) (*call.Call, error) {
	if !call.ValidRecordID(id) {
		return nil, call.Errorf(call.NotFound, "no call record %q", id)
	}
	if c := n.rec.lookup(tenant, id); c != nil {
		return c, nil
	}
	row, err := n.store.Call(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return n.openCall(row)
}

// Calls returns the tenant's records matching f, newest first, and the
// cursor for the next page ("" when there is none). Every call screened
// before it is included (it waits for the recorder to commit them).
func (n *Node) Calls(ctx context.Context, tenant string, f store.CallFilter) ([]*call.Call, string, error) {
	switch {
	case f.Limit < 0 || f.Limit > 1000:
		return nil, "", call.Errorf(call.Invalid, "limit: must be between 1 and 1000")
	case f.Action != "" && !f.Action.Valid() && f.Action != call.Unscored:
		return nil, "", call.Errorf(call.Invalid, "action: must be allow, flag, block or unscored")
	case f.Review != "" && f.Review != call.Unreviewed && f.Review != call.Fraud && f.Review != call.Genuine && f.Review != call.Disputed:
		return nil, "", call.Errorf(call.Invalid, "label: must be unreviewed, fraud, genuine or disputed")
	case f.Before != "" && !call.ValidRecordID(f.Before):
		return nil, "", call.Errorf(call.Invalid, "before: not a record id")
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	// Read your writes: calls screened before this request are listed.
	if err := n.rec.sync(ctx); err != nil {
		return nil, "", err
	}
	rows, err := n.store.Calls(ctx, tenant, f)
	if err != nil {
		return nil, "", err
	}
	out := make([]*call.Call, 0, len(rows))
	for _, r := range rows {
		c, err := n.openCall(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, c)
	}
	next := ""
	if len(rows) == f.Limit {
		next = rows[len(rows)-1].ID
	}
	if len(rows) > 0 {
		ids := map[string]any{"records": len(rows), "newest": rows[0].ID, "oldest": rows[len(rows)-1].ID}
		if err := n.audit(ctx, tenant, "call.list", "calls", ids); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// fraudReason is the deny-list reason for a caller of confirmed fraud.
func fraudReason(id string) string { return "confirmed fraud, record " + id }

// Label stores an analyst's confirmation and acts on it at once: a fraud
// label puts the caller on the tenant's deny list and forgets its customer
// links; a genuine label links the caller to the call's user ref and lifts
// a deny entry that an earlier fraud label on this record made.
func (n *Node) Label(ctx context.Context, tenant, id string, l call.Label) (*call.Call, error) {
	switch {
	case l.Label != call.Fraud && l.Label != call.Genuine:
		return nil, call.Errorf(call.Invalid, "label: must be fraud or genuine")
	case len(l.FraudType) > 64:
		return nil, call.Errorf(call.Invalid, "fraud_type: at most 64 characters")
	case l.Label == call.Genuine && l.FraudType != "":
		return nil, call.Errorf(call.Invalid, "fraud_type: only for a fraud label")
	case len(l.Note) > 2000:
		return nil, call.Errorf(call.Invalid, "note: at most 2000 characters")
	case len(l.By) > 128:
		return nil, call.Errorf(call.Invalid, "by: at most 128 characters")
	case !call.ValidText(l.FraudType) || !call.ValidText(l.By):
		return nil, call.Errorf(call.Invalid, "fraud_type and by: must be UTF-8 text without NUL")
	case !call.ValidRecordID(id):
		return nil, call.Errorf(call.NotFound, "no call record %q", id)
	}
	k, err := n.tenantKeys(tenant)
	if err != nil {
		return nil, err
	}
	row := store.Label{
		Tenant: tenant, RecordID: id, Label: l.Label, FraudType: l.FraudType,
		By: l.By, At: n.now().UTC(),
	}
	if l.Note != "" {
		row.Sealed = k.Seal([]byte(l.Note), aad("labels", tenant, id))
	}
	// Labels are rare: write everything queued first, so the record and any
	// call-end update are in the store, then label it there.
	if err := n.rec.sync(ctx); err != nil {
		return nil, err
	}
	stored, err := n.store.Call(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	c, err := n.openCall(stored)
	if err != nil {
		return nil, err
	}
	// The audit entry goes first: a crash between the two leaves an entry
	// for a label that was never acknowledged (the client retries), never
	// a label without its entry.
	if err := n.audit(ctx, tenant, "label.write", id, map[string]string{"label": string(l.Label), "fraud_type": l.FraudType}); err != nil {
		return nil, err
	}
	if err := n.store.AddLabel(ctx, row); err != nil {
		return nil, err
	}
	c.Review.Status, c.Review.FraudType = l.Label, l.FraudType
	if !c.Caller.Present() {
		return c, nil
	}
	switch l.Label {
	case call.Fraud:
		entry := call.ListEntry{List: call.DenyList, Number: c.Caller, Reason: fraudReason(id), CreatedAt: row.At}
		if err := n.putListEntries(ctx, tenant, []call.ListEntry{entry}); err != nil {
			return nil, err
		}
		if err := n.store.DeleteLinks(ctx, tenant, pseudonym(k, c.Caller)); err != nil {
			return nil, err
		}
		n.engine.Unlink(tenant, c.Caller)
		n.shareLabel(ctx, tenant, id, c, l.FraudType)
	case call.Genuine:
		if deny, ok := n.engine.Listed(tenant, call.DenyList, c.Caller); ok && deny.Reason == fraudReason(id) {
			if err := n.DeleteListEntry(ctx, tenant, call.DenyList, c.Caller.E164); err != nil {
				return nil, err
			}
		}
		if c.UserRef != "" {
			link, err := n.sealLink(tenant, c.Caller, c.UserRef, row.At)
			if err != nil {
				return nil, err
			}
			if err := n.store.PutLinks(ctx, tenant, []store.Link{link}); err != nil {
				return nil, err
			}
			n.engine.Link(tenant, c.Caller, c.UserRef)
		}
	}
	return c, nil
}
