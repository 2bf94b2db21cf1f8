package seal

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// keyrings returns the two kinds of Keyring, each with a new master key.
func keyrings(t *testing.T) map[string]*Keyring {
	t.Helper()
	m1, m2 := mustMaster(t), mustMaster(t)
	withKS, _, _ := newKeystoreKeys(t, m2)
	return map[string]*Keyring{"format 1": NewKeyring(m1), "format 2": withKS}
}

// TestRotateResealRetire runs the whole data key rotation on a simulated
// table: rotate, reseal every stored value, retire the old version.
func TestRotateResealRetire(t *testing.T) {
	for name, kr := range keyrings(t) {
		t.Run(name, func(t *testing.T) {
			w1, err := kr.NewTenantKeys("t1")
			if err != nil {
				t.Fatal(err)
			}
			v1, err := kr.Open("t1", w1)
			if err != nil {
				t.Fatal(err)
			}
			if v1.MinVersion() != 1 || v1.KeyVersion() != 1 {
				t.Fatalf("new key set: versions %d..%d, want 1..1", v1.MinVersion(), v1.KeyVersion())
			}
			table := map[string][]byte{} // aad -> ciphertext
			plain := func(aad string) string { return "+44770090" + aad[len(aad)-4:] }
			for i := range 6 {
				aad := fmt.Sprintf("calls/caller/%04d", i)
				table[aad] = v1.Seal([]byte(plain(aad)), []byte(aad))
			}
			oldCopy := map[string][]byte{}
			for aad, ct := range table {
				oldCopy[aad] = bytes.Clone(ct)
			}

			w2, err := kr.Rotate("t1", w1)
			if err != nil {
				t.Fatal(err)
			}
			v2, err := kr.Open("t1", w2)
			if err != nil {
				t.Fatal(err)
			}
			// Written after the rotation: already newest, left alone.
			table["calls/caller/0100"] = v2.Seal([]byte(plain("calls/caller/0100")), []byte("calls/caller/0100"))

			changedCount := 0
			for aad, ct := range table {
				out, changed, err := v2.Reseal(ct, []byte(aad))
				if err != nil {
					t.Fatalf("Reseal(%s): %v", aad, err)
				}
				if wasOld := ct[4] == 1; changed != wasOld {
					t.Errorf("Reseal(%s): changed = %v for version %d", aad, changed, ct[4])
				}
				if !changed && &out[0] != &ct[0] {
					t.Errorf("Reseal(%s) copied an up-to-date ciphertext", aad)
				}
				if changed {
					changedCount++
				}
				table[aad] = out
			}
			if changedCount != 6 {
				t.Errorf("%d ciphertexts resealed, want 6", changedCount)
			}
			for aad, ct := range table {
				if v, ok := CiphertextVersion(ct); !ok || v != 2 {
					t.Errorf("%s: version %d after rewrap, want 2", aad, v)
				}
			}

			w3, err := kr.Retire("t1", w2, 2)
			if err != nil {
				t.Fatal(err)
			}
			if w3[0] != w1[0] {
				t.Errorf("Retire changed the format from %d to %d", w1[0], w3[0])
			}
			v3, err := kr.Open("t1", w3)
			if err != nil {
				t.Fatal(err)
			}
			if v3.MinVersion() != 2 || v3.KeyVersion() != 2 {
				t.Errorf("retired key set: versions %d..%d, want 2..2", v3.MinVersion(), v3.KeyVersion())
			}
			for aad, ct := range table {
				if got, err := v3.Open(ct, []byte(aad)); err != nil || string(got) != plain(aad) {
					t.Errorf("resealed %s: %q, %v", aad, got, err)
				}
			}
			for aad, ct := range oldCopy {
				got, err := v3.Open(ct, []byte(aad))
				if !errors.Is(err, ErrRetiredKey) || !errors.Is(err, ErrDecrypt) || got != nil {
					t.Errorf("old %s: %q, %v; want ErrRetiredKey and ErrDecrypt", aad, got, err)
				}
				if _, _, err := v3.Reseal(ct, []byte(aad)); !errors.Is(err, ErrRetiredKey) {
					t.Errorf("Reseal of old %s: %v, want ErrRetiredKey", aad, err)
				}
			}
			if v1.Pseudonym("+447700900123") != v3.Pseudonym("+447700900123") {
				t.Error("pseudonym changed")
			}

			// Rotating on keeps the minimum; unknown versions are not "retired".
			w4, err := kr.Rotate("t1", w3)
			if err != nil {
				t.Fatal(err)
			}
			v4, err := kr.Open("t1", w4)
			if err != nil {
				t.Fatal(err)
			}
			if v4.MinVersion() != 2 || v4.KeyVersion() != 3 {
				t.Errorf("rotated after retire: versions %d..%d, want 2..3", v4.MinVersion(), v4.KeyVersion())
			}
			future := bytes.Clone(table["calls/caller/0100"])
			future[4] = 9
			if _, err := v4.Open(future, []byte("calls/caller/0100")); !errors.Is(err, ErrDecrypt) || errors.Is(err, ErrRetiredKey) || !strings.Contains(err.Error(), "version 9") {
				t.Errorf("unknown version: %v; want ErrDecrypt naming version 9, not ErrRetiredKey", err)
			}
		})
	}
}

func TestRetireBounds(t *testing.T) {
	for name, kr := range keyrings(t) {
		t.Run(name, func(t *testing.T) {
			w, err := kr.NewTenantKeys("t1")
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if w, err = kr.Rotate("t1", w); err != nil {
					t.Fatal(err)
				}
			}
			retired, err := kr.Retire("t1", w, 2) // versions 2..3
			if err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name    string
				wrapped []byte
				min     uint32
				wantMin uint32 // 0: an error
				msg     string
			}{
				{"zero", w, 0, 0, "cannot go back"},
				{"no change", w, 1, 1, ""},
				{"newest", w, 3, 3, ""},
				{"above newest", w, 4, 0, "above the newest"},
				{"same again", retired, 2, 2, ""},
				{"lower", retired, 1, 0, "cannot go back"},
				{"wrong tenant", w, 2, 0, "cannot decrypt"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tenant := "t1"
					if tt.name == "wrong tenant" {
						tenant = "t2"
					}
					out, err := kr.Retire(tenant, tt.wrapped, tt.min)
					if tt.wantMin == 0 {
						if err == nil || !strings.Contains(err.Error(), tt.msg) {
							t.Fatalf("Retire = %v; want an error saying %q", err, tt.msg)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					tk, err := kr.Open("t1", out)
					if err != nil {
						t.Fatal(err)
					}
					if tk.MinVersion() != tt.wantMin || tk.KeyVersion() != 3 {
						t.Errorf("versions %d..%d, want %d..3", tk.MinVersion(), tk.KeyVersion(), tt.wantMin)
					}
					set, err := kr.unwrap("t1", out)
					if err != nil {
						t.Fatal(err)
					}
					if got := len(set.data); got != int(4-tt.wantMin) {
						t.Errorf("%d data keys kept, want %d", got, 4-tt.wantMin)
					}
				})
			}
		})
	}
}

func TestUpgrade(t *testing.T) {
	m := mustMaster(t)
	v1ring := NewKeyring(m)
	w1, err := v1ring.NewTenantKeys("t1")
	if err != nil {
		t.Fatal(err)
	}
	if w1, err = v1ring.Rotate("t1", w1); err != nil {
		t.Fatal(err)
	}
	old, err := v1ring.Open("t1", w1)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("calls/caller/01J1")
	ct := old.Seal([]byte("+447700900123"), aad)

	kr, _, _ := newKeystoreKeys(t, m)
	if _, err := kr.Open("t1", w1); err != nil {
		t.Fatalf("keystore keyring opens format 1: %v", err)
	}
	w2, changed, err := kr.Upgrade("t1", w1)
	if err != nil || !changed || w2[0] != 2 {
		t.Fatalf("Upgrade = format %v, %v, %v; want format 2, changed", w2[:1], changed, err)
	}
	tk, err := kr.Open("t1", w2)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tk.Open(ct, aad); err != nil || string(got) != "+447700900123" {
		t.Errorf("upgraded keys open old data: %q, %v", got, err)
	}
	if tk.KeyVersion() != 2 || tk.MinVersion() != 1 || tk.Pseudonym("x") != old.Pseudonym("x") {
		t.Error("upgrade changed the keys")
	}
	if again, changed, err := kr.Upgrade("t1", w2); err != nil || changed || !bytes.Equal(again, w2) {
		t.Errorf("second Upgrade: changed %v, %v", changed, err)
	}
	if same, changed, err := v1ring.Upgrade("t1", w1); err != nil || changed || !bytes.Equal(same, w1) {
		t.Errorf("format 1 keyring, format 1 blob: changed %v, %v", changed, err)
	}
	if err := kr.Shred("t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Open("t1", w2); !errors.Is(err, ErrShredded) {
		t.Errorf("upgraded blob after shred: %v, want ErrShredded", err)
	}
	// The documented limit: a format 1 blob is under the master key alone,
	// so shredding cannot reach a copy of it. Upgrade every blob first.
	if _, err := v1ring.Open("t1", w1); err != nil {
		t.Errorf("format 1 copy: %v (expected to still open)", err)
	}
}

func TestResealFails(t *testing.T) {
	_, tk, _ := newKeys(t, "t1")
	aad := []byte("calls/caller/01J1")
	ct := tk.Seal([]byte("+447700900123"), aad)
	tests := []struct {
		name    string
		keys    *TenantKeys
		ct, aad []byte
	}{
		{"short", tk, ct[:10], aad},
		{"unknown format", tk, append([]byte{9}, ct[1:]...), aad},
		{"older version, wrong aad", tk, append([]byte{1, 0, 0, 0, 0}, ct[5:]...), []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := tt.keys.Reseal(tt.ct, tt.aad)
			if !errors.Is(err, ErrDecrypt) || changed || out != nil {
				t.Errorf("Reseal = %x, %v, %v; want ErrDecrypt", out, changed, err)
			}
		})
	}
	// Rotated keys of another tenant with the same name: a version 1
	// ciphertext must be authenticated before it is resealed.
	kr := NewKeyring(mustMaster(t))
	w, _ := kr.NewTenantKeys("t1")
	w, _ = kr.Rotate("t1", w)
	rotated, err := kr.Open("t1", w)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := rotated.Reseal(ct, aad); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Reseal under foreign keys: %v, want ErrDecrypt", err)
	}
}
