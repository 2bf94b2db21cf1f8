package consortium

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ringfence/ringfence/store"
)

var vt0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func testView(members ...string) *View {
	v := NewView([]byte("k"))
	v.SetPolicy(store.Reciprocity{ContributionWindow: 90 * 24 * time.Hour, GracePeriod: 30 * 24 * time.Hour}, DefaultExpiry)
	for _, m := range members {
		v.SetMember(store.Membership{Tenant: m, JoinedAt: vt0}, time.Time{})
	}
	return v
}

func TestViewManyMembers(t *testing.T) {
	members := []string{"m0", "m1", "m2", "m3", "m4", "m5"}
	v := testView(members...)
	p := Pseudonym(v.key, "+447700900001")
	// Reports in reverse member order, so insertion sorts them.
	for i := len(members) - 1; i >= 1; i-- {
		v.Report(members[i], p, FraudTypes[i], vt0.Add(time.Duration(i)*time.Hour))
	}
	v.Report("m3", p, Robocall, vt0.Add(10*time.Hour)) // a second report: same member
	now := vt0.Add(24 * time.Hour)
	for _, tc := range []struct {
		who     string
		members int
		last    time.Duration
	}{
		{"m0", 5, 10 * time.Hour},
		{"m3", 4, 5 * time.Hour},
		{"m5", 4, 10 * time.Hour},
	} {
		s := v.Lookup(tc.who, "+447700900001", now)
		if s.Members != tc.members || !s.Last.Equal(vt0.Add(tc.last)) || !s.First.Equal(vt0.Add(time.Hour)) {
			t.Errorf("%s: %+v; want %d members, last at +%v", tc.who, s, tc.members, tc.last)
		}
	}
	if s := v.Lookup("m0", "+447700900001", now); s.Types != Types(0b1111110)|Robocall.bit() {
		t.Errorf("types = %s", s.Types)
	}
	v.Leave("m1", now)
	v.Leave("m4", now)
	if s := v.Lookup("m0", "+447700900001", now); s.Members != 3 || s.Types.Has(FraudTypes[1]) || s.Types.Has(FraudTypes[4]) {
		t.Errorf("after two members left: %+v (%s)", s, s.Types)
	}
	v.SetEntry(p, nil, false)
	if v.Len() != 0 || len(v.more) != 0 {
		t.Errorf("SetEntry(nil) left %d entries, %d overflow lists", v.Len(), len(v.more))
	}
}

func TestViewConfidence(t *testing.T) {
	v := testView("a", "b", "c")
	p := Pseudonym(v.key, "+447700900002")
	v.Report("a", p, APP, vt0)
	one := v.LookupPseudonym("c", p, vt0).Confidence
	old := v.LookupPseudonym("c", p, vt0.Add(HalfLife)).Confidence
	v.Report("b", p, APP, vt0)
	two := v.LookupPseudonym("c", p, vt0).Confidence
	if !(old < one && one < two && two < 1) || one != memberWeight {
		t.Errorf("confidence one fresh %v, one a half-life old %v, two fresh %v", one, old, two)
	}
}

func TestViewDisputeBeforeReport(t *testing.T) {
	v := testView("a", "b")
	p := Pseudonym(v.key, "+447700900003")
	v.SetDisputed(p, true)
	v.Report("a", p, APP, vt0)
	if v.LookupPseudonym("b", p, vt0).Found() {
		t.Error("a report on a disputed number scores")
	}
	v.SetDisputed(p, false)
	if !v.LookupPseudonym("b", p, vt0).Found() {
		t.Error("report does not score after the dispute closed")
	}
}

// fill loads n entries of one or two reporting members straight into the
// index (the benchmark's setup; Report does the same one at a time).
func fill(v *View, n int, at time.Time) (hit string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.index = make(map[[16]byte]uint32, n)
	v.entries = make([]entry, 0, n)
	a, b := v.memberLocked("a"), v.memberLocked("b")
	var buf [16 * 4096]byte
	s := secs(at)
	for i := 0; i < n; i += 4096 {
		rand.Read(buf[:])
		for j := 0; j < 4096 && i+j < n; j++ {
			var k [16]byte
			copy(k[:], buf[16*j:])
			e := entry{used: true, n: 1}
			e.inline[0] = contrib{member: a.idx, types: 1, first: s, last: s}
			if (i+j)%4 == 0 {
				e.n = 2
				e.inline[1] = contrib{member: b.idx, types: 2, first: s, last: s}
			}
			v.index[k] = uint32(len(v.entries))
			v.entries = append(v.entries, e)
		}
	}
	hit = "+447700900999"
	hs := Pseudonym(v.key, hit)
	k, _ := short(hs)
	v.index[k] = uint32(len(v.entries))
	v.entries = append(v.entries, entry{used: true, n: 2, inline: [2]contrib{{member: a.idx, types: 1, first: s, last: s}, {member: b.idx, types: 2, first: s, last: s}}})
	return hit
}

// BenchmarkLookup measures a lookup with 10M entries loaded (and 100k for
// comparison), and reports the view's memory per entry.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{100_000, 10_000_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			v := testView("a", "b", "c")
			hit := fill(v, n, vt0)
			runtime.GC()
			runtime.ReadMemStats(&after)
			perEntry := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
			now := vt0.Add(time.Hour)
			for _, c := range []struct {
				name, number string
				found        bool
			}{{"hit", hit, true}, {"miss", "+447700900998", false}} {
				b.Run(c.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if v.Lookup("c", c.number, now).Found() != c.found {
							b.Fatal("wrong answer")
						}
					}
					b.ReportMetric(perEntry, "B/entry")
				})
			}
			b.Run("hit-parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					var buf [8]byte
					for pb.Next() {
						binary.LittleEndian.PutUint64(buf[:], 1)
						v.Lookup("c", hit, now)
					}
				})
			})
			runtime.KeepAlive(v)
		})
	}
}
