package stir

import (
	"crypto/x509"
	"testing"
	"time"
)

// Benchmarks of the per-call path. Figures are in docs/stir.md.

// benchEnv returns a verifier with the SP certificate cached and a shaken
// PASSporT for a call at callTime, plus a div PASSporT retargeting it.
func benchEnv(b *testing.B) (v *Verifier, shaken, div string) {
	root := newRoot(b, "Bench Root")
	inter := root.intermediate(b, "Bench CA")
	sp := inter.sp(b, "1234")
	sp.chain = []*x509.Certificate{inter.cert}
	cs := newCertServer(b, true)
	x5u := cs.put("/sp.pem", sp.pem(), nil)
	v = newVerifier(b, Config{Roots: pool(root.cert), HTTPClient: cs.Client(), Now: func() time.Time { return callTime }})
	shaken = passport(b, sp.key, PPTShaken, x5u, claimsFor(caller[1:], "12155550142", callTime, "A"))
	div = passport(b, sp.key, PPTDiv, x5u, map[string]any{
		"orig": map[string]any{"tn": caller[1:]},
		"dest": map[string]any{"tn": []string{dialled[1:]}},
		"div":  map[string]any{"tn": "12155550142"},
		"iat":  callTime.Unix(),
	})
	v.Verify([]string{shaken}, caller, "", callTime)
	wait(b, v)
	return v, shaken, div
}

func BenchmarkVerify(b *testing.B) {
	v, shaken, div := benchEnv(b)
	b.Run("absent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v.Verify(nil, caller, dialled, callTime)
		}
	})
	b.Run("cached", func(b *testing.B) {
		ids := []string{shaken}
		b.ReportAllocs()
		for b.Loop() {
			if r := v.Verify(ids, caller, "+12155550142", callTime); r.Status != Verified {
				b.Fatal(describe(r))
			}
		}
	})
	b.Run("cached_parallel", func(b *testing.B) {
		ids := []string{shaken}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r := v.Verify(ids, caller, "+12155550142", callTime); r.Status != Verified {
					b.Fatal(describe(r))
				}
			}
		})
	})
	b.Run("cached_with_div", func(b *testing.B) {
		ids := []string{shaken, div}
		b.ReportAllocs()
		for b.Loop() {
			if r := v.Verify(ids, caller, dialled, callTime); r.Status != Verified {
				b.Fatal(describe(r))
			}
		}
	})
	b.Run("orig_mismatch", func(b *testing.B) {
		ids := []string{shaken}
		b.ReportAllocs()
		for b.Loop() {
			if r := v.Verify(ids, "+12155550101", "+12155550142", callTime); r.Status != Failed {
				b.Fatal(describe(r))
			}
		}
	})
}

// BenchmarkES256 is the floor: the signature check alone.
func BenchmarkES256(b *testing.B) {
	v, shaken, _ := benchEnv(b)
	id, err := ParseIdentity(shaken)
	if err != nil {
		b.Fatal(err)
	}
	h, c, sig := id.Parts()
	e := v.lookup(id.Info, false)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := verifyES256(e.pub, []byte(id.JWS[:len(h)+1+len(c)]), []byte(sig)); !ok || err != nil {
			b.Fatal("signature does not verify")
		}
	}
}

func BenchmarkParseIdentity(b *testing.B) {
	_, shaken, _ := benchEnv(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(shaken)))
	for b.Loop() {
		if _, err := ParseIdentity(shaken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckCertificate(b *testing.B) {
	root := newRoot(b, "Bench Root")
	sp := root.sp(b, "1234")
	b.ReportAllocs()
	for b.Loop() {
		if rs := CheckCertificate(sp.cert, callTime); len(rs) != 0 {
			b.Fatal(rs)
		}
	}
}
