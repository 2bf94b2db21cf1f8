package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/ringfence/ringfence/call"
	"github.com/ringfence/ringfence/store"
)

// pageSize is how many entries or checkpoints Verify reads at once, and how
// far it looks around a break to say what kind it is.
const pageSize = 1000

// Kind is the kind of a break in the log.
type Kind string

// Kinds of break, as Verify tells them apart.
const (
	// Edited: an entry's fields no longer give its hash (or an entry was
	// rewritten with a fresh hash, which its successor's Prev shows).
	Edited Kind = "edited"
	// Reordered: an entry sits at another entry's place (its Prev is the
	// hash of an entry elsewhere in the log).
	Reordered Kind = "reordered"
	// Inserted: an entry that the chain around it skips.
	Inserted Kind = "inserted"
	// Deleted: a seq is missing (a gap, or entries renumbered to hide it),
	// or the log starts after seq 1 without a checkpoint at its start.
	Deleted Kind = "deleted"
	// Truncated: the log ends before the newest signed checkpoint, or a
	// signed checkpoint's hash does not match its entry (the chain was cut
	// and rewritten from there or before).
	Truncated Kind = "truncated"
	// BadSignature: a checkpoint's signature does not verify with the key.
	BadSignature Kind = "signature"
)

// Break names the first place where the log is not as it was written.
type Break struct {
	Seq    int64 // the first seq affected
	Kind   Kind
	Detail string // what was found, for people; no entry contents
}

func (b *Break) String() string {
	return fmt.Sprintf("%s at seq %d: %s", b.Kind, b.Seq, b.Detail)
}

// Report is the result of Verify.
type Report struct {
	First          int64 // seq of the first stored entry (or of the checkpoint verification started from); 0 if none
	Last           int64 // seq of the last entry that verified; 0 if none
	Entries        int64 // entries that verified
	Checkpoints    int   // checkpoints checked
	LastCheckpoint int64 // seq of the newest checkpoint; 0 if none
	Break          *Break
}

// OK reports whether the log verified.
func (r Report) OK() bool { return r.Break == nil }

func (r Report) String() string {
	s := fmt.Sprintf("entries %d..%d (%d checked), %d checkpoints (newest at seq %d): ",
		r.First, r.Last, r.Entries, r.Checkpoints, r.LastCheckpoint)
	if r.Break == nil {
		return s + "ok"
	}
	return s + "BROKEN: " + r.Break.String()
}

// Verify walks the whole stored log and all its checkpoints and reports the
// first break, by seq: an entry edited, reordered, inserted or deleted; the
// log truncated before a signed checkpoint or rewritten under one; a
// checkpoint whose signature does not verify with pub. A log purged by
// retention verifies from the checkpoint at its first entry. The error is
// only for a failure to read (or Invalid for a malformed pub): a broken log
// is a Report with a Break and a nil error.
func Verify(ctx context.Context, st Reader, pub ed25519.PublicKey) (Report, error) {
	return verifySince(ctx, st, pub, store.AuditCheckpoint{})
}

// verifySince verifies the entries after the checkpoint since (all of them
// if since.Seq is 0) and every checkpoint. It starts from since only if its
// signature verifies and its entry still has its hash; else from the start.
func verifySince(ctx context.Context, st Reader, pub ed25519.PublicKey, since store.AuditCheckpoint) (Report, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Report{}, call.Errorf(call.Invalid, "audit: verify: malformed public key")
	}
	v := &verifier{ctx: ctx, st: st, pub: pub, cps: map[int64]store.AuditCheckpoint{}, recent: map[string]int64{}}
	if err := v.loadCheckpoints(); err != nil {
		return Report{}, err
	}
	after := int64(0)
	if since.Seq > 0 && v.validSig(since) {
		es, err := st.AuditEntries(ctx, store.AuditFilter{After: since.Seq - 1, Limit: 1})
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify: %w", err)
		}
		if len(es) == 1 && es[0].Seq == since.Seq && bytes.Equal(es[0].Hash, since.Hash) && bytes.Equal(EntryHash(es[0]), since.Hash) {
			after = since.Seq
			v.rep.First = since.Seq
			v.started, v.expect, v.prev = true, since.Seq+1, es[0].Hash
		}
	}
	if err := v.walk(after); err != nil {
		return Report{}, err
	}
	v.checkCheckpoints()
	return v.rep, nil
}

// verifier is the state of one Verify.
type verifier struct {
	ctx context.Context
	st  Reader
	pub ed25519.PublicKey

	cps   map[int64]store.AuditCheckpoint
	order []int64 // checkpoint seqs, ascending

	started        bool
	expect         int64  // the next seq
	prev, prevPrev []byte // hashes of the last two entries accepted
	recent         map[string]int64
	ring           []string // keys of recent, oldest first, at most pageSize

	rep      Report
	walkDone bool // the walk reached the end without a break
}

func (v *verifier) loadCheckpoints() error {
	for after := int64(0); ; {
		cs, err := v.st.AuditCheckpoints(v.ctx, after, pageSize)
		if err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		for _, c := range cs {
			v.cps[c.Seq] = c
			v.order = append(v.order, c.Seq)
		}
		if len(cs) < pageSize {
			return nil
		}
		after = cs[len(cs)-1].Seq
	}
}

func (v *verifier) validSig(c store.AuditCheckpoint) bool {
	return ed25519.Verify(v.pub, CheckpointMessage(c), c.Signature)
}

// walk reads the entries after seq after in pages and checks each.
func (v *verifier) walk(after int64) error {
	for {
		es, err := v.st.AuditEntries(v.ctx, store.AuditFilter{After: after, Limit: pageSize})
		if err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		for _, e := range es {
			b, err := v.check(e)
			if err != nil {
				return err
			}
			if b != nil {
				v.setBreak(b)
				return nil
			}
		}
		if len(es) < pageSize {
			v.walkDone = true
			return nil
		}
		after = es[len(es)-1].Seq
	}
}

// setBreak keeps b if it is the first break found so far by seq (an entry
// break wins a tie, since it is found first).
func (v *verifier) setBreak(b *Break) {
	if v.rep.Break == nil || b.Seq < v.rep.Break.Seq {
		v.rep.Break = b
	}
}

// check checks one entry against the chain so far; a break if it does not
// fit.
func (v *verifier) check(e store.AuditEntry) (*Break, error) {
	if !v.started {
		v.started = true
		v.rep.First = e.Seq
		v.expect, v.prev = 1, make([]byte, HashSize)
		if e.Seq > 1 {
			// Purged: the log must start at a signed checkpoint.
			c, ok := v.cps[e.Seq]
			switch {
			case !ok:
				return &Break{Seq: 1, Kind: Deleted, Detail: fmt.Sprintf("the log starts at seq %d and no checkpoint is there", e.Seq)}, nil
			case !v.validSig(c):
				return &Break{Seq: e.Seq, Kind: BadSignature, Detail: "the checkpoint at the log's start does not verify"}, nil
			case !bytes.Equal(c.Hash, e.Hash):
				return &Break{Seq: e.Seq, Kind: Truncated, Detail: "the log's first entry does not have its checkpoint's hash"}, nil
			}
			v.expect, v.prev = e.Seq, e.Prev
		}
	}
	p := v.expect
	if e.Seq != p {
		return &Break{Seq: p, Kind: Deleted, Detail: fmt.Sprintf("seqs %d to %d are missing", p, e.Seq-1)}, nil
	}
	ok := len(e.Hash) == HashSize && bytes.Equal(EntryHash(e), e.Hash)
	linked := bytes.Equal(e.Prev, v.prev)
	if !ok || !linked {
		return v.classify(e, ok, linked)
	}
	if c, has := v.cps[e.Seq]; has && !bytes.Equal(c.Hash, e.Hash) && v.validSig(c) {
		return &Break{Seq: e.Seq, Kind: Truncated, Detail: "the signed checkpoint's hash does not match the entry: the chain was rewritten at or before this seq, after the previous checkpoint"}, nil
	}
	v.accept(e)
	return nil, nil
}

// accept makes e the end of the verified chain.
func (v *verifier) accept(e store.AuditEntry) {
	v.rep.Entries++
	v.rep.Last = e.Seq
	v.expect = e.Seq + 1
	v.prevPrev, v.prev = v.prev, e.Hash
	k := string(e.Hash)
	v.recent[k] = e.Seq
	v.ring = append(v.ring, k)
	if len(v.ring) > pageSize {
		delete(v.recent, v.ring[0])
		v.ring = v.ring[1:]
	}
}

// classify says what kind of break entry e is, which does not fit the
// chain (ok: its fields give its hash; linked: its Prev is the hash of the
// entry before). It looks at the entries after e and the recent ones before.
func (v *verifier) classify(e store.AuditEntry, ok, linked bool) (*Break, error) {
	p := e.Seq
	ahead, err := v.st.AuditEntries(v.ctx, store.AuditFilter{After: p, Limit: pageSize})
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	if linked {
		// e's content or hash changed in place, or e was slipped in and the
		// next entry still links to the one before it.
		if len(ahead) > 0 && ahead[0].Seq == p+1 && bytes.Equal(ahead[0].Prev, v.prev) {
			return &Break{Seq: p, Kind: Inserted, Detail: "the entry after it links to the entry before it"}, nil
		}
		return &Break{Seq: p, Kind: Edited, Detail: "the entry's fields do not give its hash"}, nil
	}
	if p > 1 && v.prevPrev != nil && bytes.Equal(e.Prev, v.prevPrev) {
		return &Break{Seq: p - 1, Kind: Inserted, Detail: "the entry after it links to the entry before it"}, nil
	}
	if s, found := v.recent[string(e.Prev)]; found {
		return &Break{Seq: p, Kind: Reordered, Detail: fmt.Sprintf("the entry follows the entry now at seq %d", s)}, nil
	}
	for _, a := range ahead {
		if bytes.Equal(a.Hash, e.Prev) {
			return &Break{Seq: p, Kind: Reordered, Detail: fmt.Sprintf("the entry follows the entry now at seq %d", a.Seq)}, nil
		}
	}
	if !ok && len(ahead) > 0 && ahead[0].Seq == p+1 && bytes.Equal(ahead[0].Prev, v.prev) {
		return &Break{Seq: p, Kind: Inserted, Detail: "the entry after it links to the entry before it"}, nil
	}
	if ok && p == 1 {
		// Nothing comes before seq 1 to have been rewritten: it is the
		// entry itself, rewritten with a Prev that does not start the
		// chain (found by FuzzVerify, which saw this reported at seq 0).
		return &Break{Seq: p, Kind: Edited, Detail: "the first entry was rewritten: it does not link to the start of the chain"}, nil
	}
	if ok {
		return &Break{Seq: p - 1, Kind: Edited, Detail: "the entry was rewritten with a new hash: the next entry links to another"}, nil
	}
	moved := e
	moved.Seq = p + 1
	if bytes.Equal(EntryHash(moved), e.Hash) {
		return &Break{Seq: p, Kind: Deleted, Detail: "an entry was removed and the later ones renumbered"}, nil
	}
	return &Break{Seq: p, Kind: Edited, Detail: "the entry's fields and link do not give its hash"}, nil
}

// checkCheckpoints checks every checkpoint's signature, and that the log
// reaches every checkpoint (if the walk got to its end).
func (v *verifier) checkCheckpoints() {
	v.rep.Checkpoints = len(v.order)
	if len(v.order) > 0 {
		v.rep.LastCheckpoint = v.order[len(v.order)-1]
	}
	for _, seq := range v.order {
		c := v.cps[seq]
		if !v.validSig(c) {
			v.setBreak(&Break{Seq: seq, Kind: BadSignature, Detail: fmt.Sprintf("the checkpoint (key %q) does not verify", c.KeyID)})
			return
		}
		if v.walkDone && seq > v.rep.Last {
			v.setBreak(&Break{Seq: v.rep.Last + 1, Kind: Truncated,
				Detail: fmt.Sprintf("the log ends at seq %d before the signed checkpoint at seq %d", v.rep.Last, seq)})
			return
		}
	}
}
