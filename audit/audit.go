// Package audit keeps ringfence's audit log: an append-only list of who did
// what to which object, for which tenant and when, in which every entry
// carries the SHA-256 of the entry before it (a hash chain) and whose state
// is signed from time to time with an Ed25519 key (checkpoints). Verify
// walks the chain and the checkpoints and names the first entry that was
// edited, reordered, inserted, deleted or truncated away, or the first
// checkpoint with a bad signature.
//
// The hash chain alone shows any change in the middle of the log to anyone
// who recomputes it; the signed checkpoints also catch what an attacker
// with write access to the database could otherwise do unseen: rewrite the
// whole chain from some entry on, or cut its tail. Entries after the newest
// checkpoint are protected by the chain and by the store's append-only
// triggers only, so checkpoint often (and keep a copy of the newest
// checkpoint outside the database to catch the removal of checkpoints).
//
// Entries never hold personal data: objects are ids (record ids, case ids,
// key names), never phone numbers, and details are JSON of ids, counts and
// versions. Record rejects an event whose fields look like an E.164 number.
//
// The storage is store.AuditLog (both backends); see docs/audit.md for the
// format and the list of actions.
package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// DefaultRetentionYears is how long audit entries are kept by default.
const DefaultRetentionYears = 6

// Limits on an event's fields.
const (
	maxField  = 1024     // tenant, actor, action, object
	maxDetail = 64 << 10 // the JSON of Detail
)

// ErrBroken is wrapped by the error of an operation that found the log
// broken (Checkpoint, Purge): run Verify for the report.
var ErrBroken = errors.New("audit log is broken")

// Reader is what Verify reads.
type Reader interface {
	AuditEntries(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
	AuditCheckpoints(ctx context.Context, after int64, limit int) ([]store.AuditCheckpoint, error)
}

// Store is what Log needs of the store (store.AuditLog).
type Store interface {
	Reader
	AppendAudit(ctx context.Context, entries []store.AuditEntry, chain func(prev []byte, e *store.AuditEntry)) error
	LastAuditEntry(ctx context.Context) (store.AuditEntry, error)
	PutAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error
	LastAuditCheckpoint(ctx context.Context) (store.AuditCheckpoint, error)
	PurgeAuditBefore(ctx context.Context, seq int64) (int64, error)
}

// Event is one audited action, as its caller describes it.
type Event struct {
	Tenant string // "" for a platform-level action
	Actor  string // required: KeyActor, UserActor, ActorOperator, ActorSystem
	Action string // required: one of the Action constants (lower case, dotted)
	Object string // ids of what was acted on; never a phone number
	Detail any    // marshalled to JSON (nil: none); ids, counts, versions only
}

// Log appends to the audit log and signs its checkpoints. Safe for
// concurrent use, by several processes on one store as well (the store
// serialises appends).
type Log struct {
	st     Store
	signer ed25519.PrivateKey
	keyID  string
	now    func() time.Time
}

// New returns a Log on st that signs checkpoints with signer, naming it
// keyID, and stamps entries with now (nil: time.Now). A nil or malformed
// signer is allowed until Checkpoint or Purge is called.
func New(st Store, signer ed25519.PrivateKey, keyID string, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{st: st, signer: signer, keyID: keyID, now: now}
}

// KeyFromSecret returns the checkpoint signing key whose seed is secret,
// which must be ed25519.SeedSize (32) bytes (as seal.MasterKey.Derive
// returns); it returns nil otherwise.
func KeyFromSecret(secret []byte) ed25519.PrivateKey {
	if len(secret) != ed25519.SeedSize {
		return nil
	}
	return ed25519.NewKeyFromSeed(secret)
}

// Record appends ev to the log and returns once the entry is durable, so an
// operation that records before it acts (or before it returns what it
// read) never happens unaudited. Invalid if the event lacks an actor or an
// action, is malformed, or a field looks like a phone number; TooLarge if
// a field is over its limit; otherwise the store's error.
func (l *Log) Record(ctx context.Context, ev Event) error {
	e, err := l.entry(ev)
	if err != nil {
		return err
	}
	if err := l.st.AppendAudit(ctx, []store.AuditEntry{e}, chain); err != nil {
		return fmt.Errorf("audit: record %s: %w", ev.Action, err)
	}
	return nil
}

// chain is the store's chain function: the entry's hash, over its Prev.
func chain(prev []byte, e *store.AuditEntry) {
	e.Prev = prev
	e.Hash = EntryHash(*e)
}

// entry checks ev and makes its unchained entry.
func (l *Log) entry(ev Event) (store.AuditEntry, error) {
	e := store.AuditEntry{
		At:     l.now().UTC().Truncate(Precision),
		Tenant: ev.Tenant, Actor: ev.Actor, Action: ev.Action, Object: ev.Object,
	}
	if ev.Detail != nil {
		b, err := json.Marshal(ev.Detail)
		if err != nil {
			return e, call.Errorf(call.Invalid, "audit event detail: %v", err)
		}
		e.Detail = string(b)
	}
	switch {
	case e.Actor == "":
		return e, call.Errorf(call.Invalid, "audit event needs an actor")
	case !validAction(e.Action):
		return e, call.Errorf(call.Invalid, "audit event action must be lower-case dotted words")
	case len(e.Detail) > maxDetail:
		return e, call.Errorf(call.TooLarge, "audit event detail is over %d bytes", maxDetail)
	}
	for _, f := range []struct{ name, v string }{
		{"tenant", e.Tenant}, {"actor", e.Actor}, {"object", e.Object}, {"detail", e.Detail},
	} {
		switch {
		case f.name != "detail" && len(f.v) > maxField:
			return e, call.Errorf(call.TooLarge, "audit event %s is over %d bytes", f.name, maxField)
		case !utf8.ValidString(f.v) || containsNUL(f.v):
			return e, call.Errorf(call.Invalid, "audit event %s is not valid text", f.name)
		case looksLikeNumber(f.v):
			return e, call.Errorf(call.Invalid, "audit event %s looks like a phone number: name ids instead", f.name)
		}
	}
	return e, nil
}

// validAction reports whether a is lower-case words of [a-z0-9_-] joined
// by dots.
func validAction(a string) bool {
	if a == "" || len(a) > maxField || a[0] == '.' || a[len(a)-1] == '.' {
		return false
	}
	for i := range len(a) {
		c := a[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
		case c == '.' && a[i-1] != '.':
		default:
			return false
		}
	}
	return true
}

func containsNUL(s string) bool {
	for i := range len(s) {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// looksLikeNumber reports whether s holds a '+' followed by 7 or more
// digits, as an E.164 number written out would.
func looksLikeNumber(s string) bool {
	for i := range len(s) {
		if s[i] != '+' {
			continue
		}
		n := 0
		for j := i + 1; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
			n++
		}
		if n >= 7 {
			return true
		}
	}
	return false
}

// Checkpoint signs the log's newest entry: it verifies the entries since
// the newest checkpoint (all of them if there is none), so it never vouches
// for a broken chain, then stores a checkpoint of (seq, hash, time, key id)
// signed with the Log's key. If the newest entry is checkpointed already it
// returns that checkpoint. Invalid without a usable signing key; NotFound
// if the log is empty; an error wrapping ErrBroken if verification fails.
func (l *Log) Checkpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	pub, err := l.public()
	if err != nil {
		return store.AuditCheckpoint{}, err
	}
	head, err := l.st.LastAuditEntry(ctx)
	if err != nil {
		return store.AuditCheckpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	last, err := l.st.LastAuditCheckpoint(ctx)
	switch {
	case call.ErrorCode(err) == call.NotFound:
		last = store.AuditCheckpoint{}
	case err != nil:
		return store.AuditCheckpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	case last.Seq >= head.Seq:
		return last, nil
	}
	rep, err := verifySince(ctx, l.st, pub, last)
	if err != nil {
		return store.AuditCheckpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	if !rep.OK() {
		return store.AuditCheckpoint{}, fmt.Errorf("audit: checkpoint: %w: %s", ErrBroken, rep.Break)
	}
	c := store.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, At: l.now().UTC().Truncate(Precision), KeyID: l.keyID}
	c.Signature = ed25519.Sign(l.signer, CheckpointMessage(c))
	err = l.st.PutAuditCheckpoint(ctx, c)
	if call.ErrorCode(err) == call.Conflict {
		// Another node checkpointed the same entry first.
		cs, err := l.st.AuditCheckpoints(ctx, head.Seq-1, 1)
		if err == nil && len(cs) == 1 && cs[0].Seq == head.Seq {
			return cs[0], nil
		}
	}
	if err != nil {
		return store.AuditCheckpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return c, nil
}

// public returns the public half of the signing key; Invalid if there is
// no usable key.
func (l *Log) public() (ed25519.PublicKey, error) {
	if len(l.signer) != ed25519.PrivateKeySize {
		return nil, call.Errorf(call.Invalid, "audit: no checkpoint signing key")
	}
	return l.signer.Public().(ed25519.PublicKey), nil
}

// Purge is the audit log's retention: it deletes the entries older than the
// newest checkpoint made at or before `before` (zero: DefaultRetentionYears
// before now) whose signature is the Log key's and whose entry still has
// the signed hash, so the retained log starts at a signed hash and still
// verifies. Before deleting it records an ActionRetentionPurge entry
// (Object "audit"). It returns how many entries it deleted: 0, and records
// nothing, when no checkpoint qualifies.
func (l *Log) Purge(ctx context.Context, before time.Time) (int64, error) {
	pub, err := l.public()
	if err != nil {
		return 0, err
	}
	if before.IsZero() {
		before = l.now().AddDate(-DefaultRetentionYears, 0, 0)
	}
	var at store.AuditCheckpoint
	for after := int64(0); ; {
		cs, err := l.st.AuditCheckpoints(ctx, after, pageSize)
		if err != nil {
			return 0, fmt.Errorf("audit: purge: %w", err)
		}
		for _, c := range cs {
			if !c.At.After(before) && ed25519.Verify(pub, CheckpointMessage(c), c.Signature) {
				at = c
			}
		}
		if len(cs) < pageSize {
			break
		}
		after = cs[len(cs)-1].Seq
	}
	if at.Seq == 0 {
		return 0, nil
	}
	es, err := l.st.AuditEntries(ctx, store.AuditFilter{After: at.Seq - 1, Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("audit: purge: %w", err)
	}
	if len(es) != 1 || es[0].Seq != at.Seq || string(es[0].Hash) != string(at.Hash) || string(EntryHash(es[0])) != string(at.Hash) {
		return 0, fmt.Errorf("audit: purge: %w: entry %d does not match its checkpoint", ErrBroken, at.Seq)
	}
	first, err := l.st.AuditEntries(ctx, store.AuditFilter{Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("audit: purge: %w", err)
	}
	if len(first) == 0 || first[0].Seq >= at.Seq {
		return 0, nil // purged up to there already
	}
	err = l.Record(ctx, Event{Actor: ActorSystem, Action: ActionRetentionPurge, Object: "audit",
		Detail: map[string]any{"before_seq": at.Seq, "checkpoint_at": at.At}})
	if err != nil {
		return 0, fmt.Errorf("audit: purge: %w", err)
	}
	n, err := l.st.PurgeAuditBefore(ctx, at.Seq)
	if err != nil {
		return 0, fmt.Errorf("audit: purge: %w", err)
	}
	return n, nil
}
