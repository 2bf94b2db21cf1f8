package consortium

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfence/ringfence/store"
)

// Recency weighting of the confidence: a member's reports count fully when
// fresh and half as much every HalfLife after its newest one.
const (
	HalfLife = 90 * 24 * time.Hour
	// memberWeight is how sure one fresh confirmed report makes us.
	memberWeight = 0.8
)

// Signal is what one member may learn about a number from the consortium:
// nothing (the zero Signal) for a non-member, a former member or a member
// outside reciprocity, and for a disputed entry. Otherwise it counts only
// OTHER members' live reports: a member's own reports alone are not
// consortium evidence (its own deny list is for that), so an entry only it
// reported gives the zero Signal. Never names a member.
type Signal struct {
	Members    int       // distinct other members with a live report
	Types      Types     // fraud types those members reported
	First      time.Time // their first report
	Last       time.Time // their newest report
	Confidence float64   // 1 - prod(1 - 0.8 * 0.5^(age_i/HalfLife)) over those members, in [0,1)
}

// Found reports whether the signal carries evidence.
func (s Signal) Found() bool { return s.Members > 0 }

// Contribution is one member's live reports of an entry, as a view holds
// them: when SetEntry rebuilds an entry from the store.
type Contribution struct {
	Tenant string
	Type   FraudType
	At     time.Time
}

// View is the in-memory index screening reads: for each entry (consortium
// pseudonym) the distinct reporting members, fraud types, first and last
// report and whether it is disputed; and each member's standing.
//
// Keys are the first 16 bytes of the 32-byte pseudonym. A pseudonym is an
// HMAC-SHA-256 output, so 128-bit prefixes collide with probability about
// n²/2^129 (1e-25 at 10M entries): no collision check is worth its memory.
// Entries are kept in a slice of pointer-free structs indexed by the map, so
// the garbage collector does not scan them; up to two contributions sit
// inline and entries with more keep the rest in a side map.
//
// Safe for concurrent use: Lookup takes the read lock only.
type View struct {
	key    []byte
	hashes sync.Pool // *hasher

	mu          sync.RWMutex
	reciprocity store.Reciprocity
	expiry      time.Duration
	members     map[string]*member
	byIndex     []*member
	index       map[[16]byte]uint32
	entries     []entry
	free        []uint32
	more        map[uint32][]contrib // contributions past the inline two
}

type member struct {
	idx      uint16
	tenant   string
	joined   int64 // unix seconds
	left     int64 // unix seconds; 0 while a member
	lastSelf int64 // unix seconds of its newest report since joining; 0: none
	impact   atomic.Int64
}

// contrib is one member's live reports of one entry (12 bytes).
type contrib struct {
	member      uint16
	types       Types
	first, last uint32 // unix seconds
}

// entry is one pseudonym's state (32 bytes, no pointers).
type entry struct {
	inline   [2]contrib
	n        uint16 // contributions, inline then in more
	disputed bool
	used     bool
}

type hasher struct {
	h   hash.Hash
	buf [24]byte
	sum [sha256.Size]byte
}

// NewView returns an empty view for the consortium whose pseudonym key is
// key (the view keeps it; callers must not change it).
func NewView(key []byte) *View {
	v := &View{key: key, members: map[string]*member{}, index: map[[16]byte]uint32{}, more: map[uint32][]contrib{}, expiry: DefaultExpiry}
	v.hashes.New = func() any { return &hasher{h: hmac.New(sha256.New, key)} }
	return v
}

// Pseudonym is the consortium pseudonym of an E.164 number: HMAC-SHA-256
// of its E.164 string under the consortium key.
func Pseudonym(key []byte, e164 string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(e164))
	return m.Sum(nil)
}

// short returns the index key of a pseudonym; false if it is too short.
func short(p []byte) ([16]byte, bool) {
	var k [16]byte
	if len(p) < 16 {
		return k, false
	}
	copy(k[:], p)
	return k, true
}

// keyOf computes the index key of an E.164 number without allocating.
func (v *View) keyOf(e164 string) ([16]byte, bool) {
	var k [16]byte
	if len(e164) < 2 || len(e164) > 24 {
		return k, false
	}
	hs := v.hashes.Get().(*hasher)
	hs.h.Reset()
	n := copy(hs.buf[:], e164)
	hs.h.Write(hs.buf[:n])
	s := hs.h.Sum(hs.sum[:0])
	copy(k[:], s)
	v.hashes.Put(hs)
	return k, true
}

// SetPolicy sets the reciprocity policy and entry expiry.
func (v *View) SetPolicy(r store.Reciprocity, expiry time.Duration) {
	v.mu.Lock()
	v.reciprocity, v.expiry = r, expiry
	v.mu.Unlock()
}

// SetMember adds or updates a member: its membership, and the time of its
// newest report since joining (zero if none), which reciprocity reads.
// A membership that has ended (LeftAt set) drops the member's
// contributions, as Leave does.
func (v *View) SetMember(m store.Membership, lastReport time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	mb := v.memberLocked(m.Tenant)
	mb.joined = m.JoinedAt.Unix()
	mb.lastSelf = 0
	if !lastReport.IsZero() && !lastReport.Before(m.JoinedAt) {
		mb.lastSelf = lastReport.Unix()
	}
	mb.left = 0
	if !m.LeftAt.IsZero() {
		mb.left = max(m.LeftAt.Unix(), 1)
		v.dropMemberLocked(mb.idx)
	}
}

// memberLocked returns the tenant's member record, making one. Hold v.mu.
func (v *View) memberLocked(tenant string) *member {
	mb := v.members[tenant]
	if mb == nil {
		mb = &member{idx: uint16(len(v.byIndex)), tenant: tenant}
		v.members[tenant] = mb
		v.byIndex = append(v.byIndex, mb)
	}
	return mb
}

// Leave ends a membership at `at` and drops every contribution of the
// member (its reports are withdrawn with it).
func (v *View) Leave(tenant string, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	mb := v.members[tenant]
	if mb == nil {
		return
	}
	mb.left = max(at.Unix(), 1)
	v.dropMemberLocked(mb.idx)
}

// dropMemberLocked removes one member's contributions from every entry.
// Linear in the entries: leaving is rare. Hold v.mu.
func (v *View) dropMemberLocked(idx uint16) {
	for i := range v.entries {
		e := &v.entries[i]
		if !e.used || e.n == 0 {
			continue
		}
		cs := v.contribs(uint32(i))
		if j := slices.IndexFunc(cs, func(c contrib) bool { return c.member == idx }); j >= 0 {
			v.setContribs(uint32(i), slices.Delete(cs, j, j+1))
		}
	}
	v.compactLocked()
}

// contribs returns a copy of an entry's contributions, sorted by member.
func (v *View) contribs(i uint32) []contrib {
	e := &v.entries[i]
	out := make([]contrib, 0, e.n)
	out = append(out, e.inline[:min(int(e.n), 2)]...)
	return append(out, v.more[i]...)
}

// setContribs stores an entry's contributions (sorted by member).
func (v *View) setContribs(i uint32, cs []contrib) {
	e := &v.entries[i]
	e.n = uint16(len(cs))
	e.inline = [2]contrib{}
	copy(e.inline[:], cs)
	if len(cs) > 2 {
		v.more[i] = slices.Clone(cs[2:])
	} else {
		delete(v.more, i)
	}
}

// compactLocked frees entries with no contribution and no dispute.
func (v *View) compactLocked() {
	for k, i := range v.index {
		if e := &v.entries[i]; e.n == 0 && !e.disputed {
			v.removeLocked(k, i)
		}
	}
}

func (v *View) removeLocked(k [16]byte, i uint32) {
	delete(v.index, k)
	delete(v.more, i)
	v.entries[i] = entry{}
	v.free = append(v.free, i)
}

// slotLocked returns the entry index of key k, making one if make is set.
func (v *View) slotLocked(k [16]byte, create bool) (uint32, bool) {
	if i, ok := v.index[k]; ok {
		return i, true
	}
	if !create {
		return 0, false
	}
	var i uint32
	if n := len(v.free); n > 0 {
		i, v.free = v.free[n-1], v.free[:n-1]
	} else {
		i = uint32(len(v.entries))
		v.entries = append(v.entries, entry{})
	}
	v.entries[i] = entry{used: true}
	v.index[k] = i
	return i, true
}

func secs(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// Report adds one live report of a member to an entry. A tenant the view
// does not know as a member is added as one joined now.
func (v *View) Report(tenant string, pseudonym []byte, t FraudType, at time.Time) {
	k, ok := short(pseudonym)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	mb := v.memberLocked(tenant)
	if mb.joined == 0 {
		mb.joined = at.Unix()
	}
	if at.Unix() >= mb.joined {
		mb.lastSelf = max(mb.lastSelf, at.Unix())
	}
	i, _ := v.slotLocked(k, true)
	s := secs(at)
	if e := &v.entries[i]; e.n == 0 { // a new entry: no copy needed
		e.inline[0], e.n = contrib{member: mb.idx, types: t.bit(), first: s, last: s}, 1
		return
	}
	cs := v.contribs(i)
	j, found := slices.BinarySearchFunc(cs, mb.idx, func(c contrib, m uint16) int { return int(c.member) - int(m) })
	if found {
		cs[j].types |= t.bit()
		cs[j].first, cs[j].last = min(cs[j].first, s), max(cs[j].last, s)
	} else {
		cs = slices.Insert(cs, j, contrib{member: mb.idx, types: t.bit(), first: s, last: s})
	}
	v.setContribs(i, cs)
}

// SetEntry replaces an entry with the given live contributions and dispute
// state, as read back from the store (a follower applying an entry change,
// a withdrawal, a resolved dispute). No contributions and no dispute
// removes the entry.
func (v *View) SetEntry(pseudonym []byte, reports []Contribution, disputed bool) {
	k, ok := short(pseudonym)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var cs []contrib
	for _, r := range reports {
		mb := v.memberLocked(r.Tenant)
		if mb.left != 0 {
			continue
		}
		if r.At.Unix() >= mb.joined {
			mb.lastSelf = max(mb.lastSelf, r.At.Unix())
		}
		s := secs(r.At)
		j, found := slices.BinarySearchFunc(cs, mb.idx, func(c contrib, m uint16) int { return int(c.member) - int(m) })
		if found {
			cs[j].types |= r.Type.bit()
			cs[j].first, cs[j].last = min(cs[j].first, s), max(cs[j].last, s)
		} else {
			cs = slices.Insert(cs, j, contrib{member: mb.idx, types: r.Type.bit(), first: s, last: s})
		}
	}
	if len(cs) == 0 && !disputed {
		if i, ok := v.index[k]; ok {
			v.removeLocked(k, i)
		}
		return
	}
	i, _ := v.slotLocked(k, true)
	v.setContribs(i, cs)
	v.entries[i].disputed = disputed
}

// SetDisputed suspends (true) or restores (false) an entry at once. A
// dispute on a number with no entry is remembered, so a report that
// arrives while it is open stays suspended too.
func (v *View) SetDisputed(pseudonym []byte, disputed bool) {
	k, ok := short(pseudonym)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	i, ok := v.slotLocked(k, disputed)
	if !ok {
		return
	}
	v.entries[i].disputed = disputed
	if !disputed && v.entries[i].n == 0 {
		v.removeLocked(k, i)
	}
}

// Sweep drops contributions whose newest report is older than the expiry
// at now, and entries left with none; it returns how many entries it
// removed. The store's purge is the durable side of the same rule.
func (v *View) Sweep(now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	cut := now.Add(-v.expiry).Unix()
	removed := 0
	for k, i := range v.index {
		cs := v.contribs(i)
		last := int64(0)
		for _, c := range cs {
			last = max(last, int64(c.last))
		}
		if len(cs) > 0 && last < cut {
			v.setContribs(i, nil)
			if !v.entries[i].disputed {
				v.removeLocked(k, i)
				removed++
			}
		}
	}
	return removed
}

// Len returns how many entries the view holds.
func (v *View) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.index)
}

// Receives reports whether the tenant receives the consortium signal at
// now: an active member that joined within the grace period or reported
// within the contribution window.
func (v *View) Receives(tenant string, now time.Time) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	mb := v.members[tenant]
	return mb != nil && v.receivesLocked(mb, now.Unix())
}

func (v *View) receivesLocked(mb *member, now int64) bool {
	if mb.left != 0 || mb.joined == 0 {
		return false
	}
	r := v.reciprocity
	if now-mb.joined <= int64(r.GracePeriod/time.Second) {
		return true
	}
	return mb.lastSelf != 0 && now-mb.lastSelf <= int64(r.ContributionWindow/time.Second)
}

// Lookup returns what the member may see about an E.164 number at now (see
// Signal). It counts the hit towards the impact of the members whose
// reports it shows. Allocation-free; takes the read lock only.
func (v *View) Lookup(tenant, e164 string, now time.Time) Signal {
	v.mu.RLock()
	mb := v.members[tenant]
	ok := mb != nil && v.receivesLocked(mb, now.Unix())
	v.mu.RUnlock()
	if !ok {
		return Signal{}
	}
	k, ok := v.keyOf(e164)
	if !ok {
		return Signal{}
	}
	return v.lookup(mb, k, now)
}

// LookupPseudonym is Lookup by consortium pseudonym.
func (v *View) LookupPseudonym(tenant string, pseudonym []byte, now time.Time) Signal {
	k, ok := short(pseudonym)
	if !ok {
		return Signal{}
	}
	v.mu.RLock()
	mb := v.members[tenant]
	ok = mb != nil && v.receivesLocked(mb, now.Unix())
	v.mu.RUnlock()
	if !ok {
		return Signal{}
	}
	return v.lookup(mb, k, now)
}

func (v *View) lookup(mb *member, k [16]byte, now time.Time) Signal {
	var s Signal
	var others [8]uint16 // impact credited to the first 8 members
	no := 0
	v.mu.RLock()
	i, ok := v.index[k]
	if !ok || v.entries[i].disputed {
		v.mu.RUnlock()
		return s
	}
	e := &v.entries[i]
	var first, last uint32
	miss := 1.0
	visit := func(c contrib) {
		if c.member == mb.idx {
			return
		}
		if s.Members == 0 || c.first < first {
			first = c.first
		}
		last = max(last, c.last)
		s.Members++
		s.Types |= c.types
		age := float64(now.Unix()-int64(c.last)) / HalfLife.Seconds()
		miss *= 1 - memberWeight*math.Exp2(-max(age, 0))
		if no < len(others) {
			others[no] = c.member
			no++
		}
	}
	for _, c := range e.inline[:min(int(e.n), 2)] {
		visit(c)
	}
	if e.n > 2 {
		for _, c := range v.more[i] {
			visit(c)
		}
	}
	for _, m := range others[:no] {
		v.byIndex[m].impact.Add(1)
	}
	v.mu.RUnlock()
	if s.Members > 0 {
		s.First, s.Last = time.Unix(int64(first), 0).UTC(), time.Unix(int64(last), 0).UTC()
		s.Confidence = 1 - miss
	}
	return s
}

// takeImpact returns and zeroes the impact counted per member since the
// last call.
func (v *View) takeImpact() map[string]int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := map[string]int64{}
	for t, mb := range v.members {
		if n := mb.impact.Swap(0); n != 0 {
			out[t] = n
		}
	}
	return out
}

// pendingImpact returns the unflushed impact of one member.
func (v *View) pendingImpact(tenant string) int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if mb := v.members[tenant]; mb != nil {
		return mb.impact.Load()
	}
	return 0
}
