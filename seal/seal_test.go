package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Golden values, written once by this package. They pin both formats: a blob
// or ciphertext stored today must open after any change to the code.
const (
	goldenMaster  = "LIHWV1G3dzPdTIqT87VwbestuN9muwvWmK9NTjd9fTM="
	goldenTenant  = "tenant-golden"
	goldenWrapped = "012af87d8b0744c1f18c846d5b798902f9e355a970bd186c171f1344de03b84bee31ff4b1316a598a486468d977b89696a6a0a8502c5fe3490600245d15da7a49d6597a7c3911859c496f06e37d8aba259c37f45107401aee7490a358891dc2734756688dc95f9a28dc4d08ae1af63d430990d3c2571bd8e0669c95f72200baa2723e30152"
	goldenPseud   = "80e63ac3f59ac71b5688e12f572e0225737b362b68462a5730d75f163e5c8374" // of "+447700900123"
)

// goldenSealed are ciphertexts under the golden key set, data key versions 1 and 2.
var goldenSealed = []struct{ hex, aad, plain string }{
	{"01000000015b3bf69d4ed1837225974ca393c798a552ff570e9932505e1950e12cb572f62cffeeb73881503f5f60",
		"calls/caller/01J0000000000000000000001", "+447700900123"},
	{"0100000002c45fd59774f8d1378a93ff8e07796e4ca6b21445674ff6eb4a825ac6b1a6ea17570fe12188ede3d4ad765c6320527537a39e8d9b48e0796e017d237077d738b04b",
		"calls/signalling/01J0000000000000000000002", "From: <sip:+447700900123@example.net>"},
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func goldenKeys(tb testing.TB) *TenantKeys {
	tb.Helper()
	m, err := ParseMasterKey(goldenMaster)
	if err != nil {
		tb.Fatal(err)
	}
	tk, err := NewKeyring(m).Open(goldenTenant, mustHex(tb, goldenWrapped))
	if err != nil {
		tb.Fatal(err)
	}
	return tk
}

// newKeys returns a fresh keyring and the opened and wrapped keys of tenant.
func newKeys(tb testing.TB, tenant string) (*Keyring, *TenantKeys, []byte) {
	tb.Helper()
	m, err := NewMasterKey()
	if err != nil {
		tb.Fatal(err)
	}
	kr := NewKeyring(m)
	wrapped, err := kr.NewTenantKeys(tenant)
	if err != nil {
		tb.Fatal(err)
	}
	tk, err := kr.Open(tenant, wrapped)
	if err != nil {
		tb.Fatal(err)
	}
	return kr, tk, wrapped
}

func TestGolden(t *testing.T) {
	tk := goldenKeys(t)
	if got := tk.KeyVersion(); got != 2 {
		t.Errorf("KeyVersion = %d, want 2", got)
	}
	for _, g := range goldenSealed {
		got, err := tk.Open(mustHex(t, g.hex), []byte(g.aad))
		if err != nil || string(got) != g.plain {
			t.Errorf("Open(%s) = %q, %v; want %q", g.aad, got, err, g.plain)
		}
	}
	if p := tk.Pseudonym("+447700900123"); hex.EncodeToString(p[:]) != goldenPseud {
		t.Errorf("Pseudonym = %x, want %s", p, goldenPseud)
	}
}

func TestSealOpen(t *testing.T) {
	_, tk, _ := newKeys(t, "t1")
	tests := []struct {
		name       string
		plain, aad []byte
	}{
		{"empty", nil, nil},
		{"number", []byte("+447700900123"), []byte("calls/caller/01J1")},
		{"no aad", []byte("+447700900123"), nil},
		{"200 bytes", bytes.Repeat([]byte{0xa5}, 200), []byte("calls/signalling/01J2")},
		{"64 KiB", bytes.Repeat([]byte("x"), 64<<10), []byte("media/01J3")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tk.Seal(tt.plain, tt.aad)
			if len(ct) != len(tt.plain)+overhead || cap(ct) != len(ct) {
				t.Errorf("len %d cap %d, want both %d", len(ct), cap(ct), len(tt.plain)+overhead)
			}
			if v, ok := CiphertextVersion(ct); !ok || v != 1 {
				t.Errorf("CiphertextVersion = %d, %v; want 1, true", v, ok)
			}
			got, err := tk.Open(ct, tt.aad)
			if err != nil || !bytes.Equal(got, tt.plain) {
				t.Fatalf("Open = %q, %v", got, err)
			}
			if again := tk.Seal(tt.plain, tt.aad); bytes.Equal(again, ct) {
				t.Error("two seals of the same value are equal; nonce not random")
			}
		})
	}
}

func TestOpenFails(t *testing.T) {
	_, tk, _ := newKeys(t, "t1")
	_, other, _ := newKeys(t, "t2")
	aad := []byte("calls/caller/01J1")
	ct := tk.Seal([]byte("+447700900123"), aad)

	type attempt struct {
		keys    *TenantKeys
		ct, aad []byte
	}
	tests := []struct {
		name     string
		attempts func() []attempt
		msg      string // the error message contains it
	}{
		{"wrong aad", func() []attempt {
			return []attempt{{tk, ct, []byte("calls/caller/01J2")}, {tk, ct, nil}, {tk, ct, append(aad, 0)}}
		}, ""},
		{"other tenant", func() []attempt { return []attempt{{other, ct, aad}} }, ""},
		{"flipped bit", func() []attempt {
			var as []attempt
			for i := range len(ct) * 8 {
				c := bytes.Clone(ct)
				c[i/8] ^= 1 << (i % 8)
				as = append(as, attempt{tk, c, aad})
			}
			return as
		}, ""},
		{"truncated", func() []attempt {
			var as []attempt
			for n := range len(ct) {
				as = append(as, attempt{tk, ct[:n], aad})
			}
			return as
		}, ""},
		{"extended", func() []attempt { return []attempt{{tk, append(bytes.Clone(ct), 0), aad}} }, ""},
		{"unknown version", func() []attempt {
			c := bytes.Clone(ct)
			c[4] = 7
			return []attempt{{tk, c, aad}}
		}, "version 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, a := range tt.attempts() {
				got, err := a.keys.Open(a.ct, a.aad)
				if !errors.Is(err, ErrDecrypt) || got != nil {
					t.Fatalf("attempt %d: Open = %q, %v; want ErrDecrypt", i, got, err)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("error %q does not mention %q", err, tt.msg)
				}
			}
		})
	}
}

func TestKeyringOpenFails(t *testing.T) {
	kr, _, wrapped := newKeys(t, "t1")
	otherRing, _, _ := newKeys(t, "t1")
	tests := []struct {
		name    string
		kr      *Keyring
		tenant  string
		wrapped func() [][]byte
	}{
		{"wrong tenant", kr, "t2", func() [][]byte { return [][]byte{wrapped} }},
		{"tenant prefix", kr, "t", func() [][]byte { return [][]byte{wrapped} }},
		{"wrong master key", otherRing, "t1", func() [][]byte { return [][]byte{wrapped} }},
		{"flipped bit", kr, "t1", func() [][]byte {
			var ws [][]byte
			for i := range len(wrapped) * 8 {
				w := bytes.Clone(wrapped)
				w[i/8] ^= 1 << (i % 8)
				ws = append(ws, w)
			}
			return ws
		}},
		{"truncated", kr, "t1", func() [][]byte {
			var ws [][]byte
			for n := range len(wrapped) {
				ws = append(ws, wrapped[:n])
			}
			return ws
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, w := range tt.wrapped() {
				if tk, err := tt.kr.Open(tt.tenant, w); !errors.Is(err, ErrDecrypt) || tk != nil {
					t.Fatalf("blob %d: Open = %v, %v; want ErrDecrypt", i, tk, err)
				}
				if _, err := tt.kr.Rotate(tt.tenant, w); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("blob %d: Rotate error = %v; want ErrDecrypt", i, err)
				}
			}
		})
	}

	t.Run("misuse", func(t *testing.T) {
		if _, err := kr.NewTenantKeys(""); err == nil {
			t.Error("NewTenantKeys(\"\") succeeded")
		}
		if _, err := NewKeyring(MasterKey{}).NewTenantKeys("t1"); err == nil {
			t.Error("NewTenantKeys with the zero MasterKey succeeded")
		}
		if _, err := NewKeyring(MasterKey{}).Open("t1", wrapped); err == nil {
			t.Error("Open with the zero MasterKey succeeded")
		}
	})
}

func TestRotate(t *testing.T) {
	kr, v1, wrapped := newKeys(t, "t1")
	aad := []byte("calls/caller/01J1")
	old := v1.Seal([]byte("+447700900123"), aad)

	wrapped2, err := kr.Rotate("t1", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := kr.Open("t1", wrapped2)
	if err != nil {
		t.Fatal(err)
	}
	if v2.KeyVersion() != 2 {
		t.Errorf("KeyVersion = %d, want 2", v2.KeyVersion())
	}
	if got, err := v2.Open(old, aad); err != nil || string(got) != "+447700900123" {
		t.Errorf("rotated keys open old ciphertext = %q, %v", got, err)
	}
	ct := v2.Seal([]byte("+447700900124"), aad)
	if ct[0] != 1 || !bytes.Equal(ct[1:5], []byte{0, 0, 0, 2}) {
		t.Errorf("new seal header = %x, want 0100000002", ct[:5])
	}
	if _, err := v1.Open(ct, aad); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("old keys open new ciphertext: %v; want ErrDecrypt naming version 2", err)
	}
	if v1.Pseudonym("+447700900123") != v2.Pseudonym("+447700900123") {
		t.Error("pseudonym changed on rotation")
	}

	wrapped3, err := kr.Rotate("t1", wrapped2)
	if err != nil {
		t.Fatal(err)
	}
	v3, err := kr.Open("t1", wrapped3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]byte{old, ct} {
		if _, err := v3.Open(c, aad); err != nil {
			t.Errorf("version 3 keys: %v", err)
		}
	}
	if v, _ := CiphertextVersion(v3.Seal(nil, nil)); v != 3 {
		t.Errorf("third version seals with %d", v)
	}
}

func TestPseudonym(t *testing.T) {
	_, a, _ := newKeys(t, "t1")
	_, b, _ := newKeys(t, "t2")
	tests := []struct {
		name string
		same bool
		x, y [32]byte
	}{
		{"deterministic", true, a.Pseudonym("+447700900123"), a.Pseudonym("+447700900123")},
		{"per tenant", false, a.Pseudonym("+447700900123"), b.Pseudonym("+447700900123")},
		{"per value", false, a.Pseudonym("+447700900123"), a.Pseudonym("+447700900124")},
		{"number vs user", false, a.Pseudonym("+447700900123"), a.Pseudonym("user:+447700900123")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.x == tt.y) != tt.same {
				t.Errorf("%x vs %x: equal = %v, want %v", tt.x, tt.y, tt.x == tt.y, tt.same)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	_, tk, _ := newKeys(t, "t1")
	want := tk.Pseudonym("+447700900123")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			aad := fmt.Appendf(nil, "calls/caller/%d", g)
			for range 200 {
				if tk.Pseudonym("+447700900123") != want {
					t.Error("pseudonym differs under concurrency")
					return
				}
				if got, err := tk.Open(tk.Seal(aad, aad), aad); err != nil || !bytes.Equal(got, aad) {
					t.Errorf("round trip: %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	m, err := GenerateMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("generated file mode %04o, want 0600", fi.Mode().Perm())
	}
	content, _ := os.ReadFile(path)
	if string(content) != m.Encode()+"\n" {
		t.Errorf("file holds %d bytes, want base64 and a newline", len(content))
	}
	if _, err := GenerateMasterKeyFile(path); !errors.Is(err, os.ErrExist) {
		t.Errorf("generate over an existing file: %v, want ErrExist", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, content) {
		t.Error("generate changed an existing file")
	}

	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o644, false},
		{0o640, false},
		{0o604, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%04o", tt.mode), func(t *testing.T) {
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := LoadMasterKeyFile(path)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("load: %v", err)
			case tt.ok && got.Encode() != m.Encode():
				t.Error("loaded key differs from generated key")
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), "chmod 600")):
				t.Errorf("load error = %v; want a refusal telling to chmod 600", err)
			case !tt.ok && strings.Contains(err.Error(), m.Encode()):
				t.Error("error echoes the key")
			}
		})
	}

	t.Run("missing", func(t *testing.T) {
		if _, err := LoadMasterKeyFile(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want ErrNotExist", err)
		}
	})
	t.Run("bad content", func(t *testing.T) {
		p := filepath.Join(dir, "bad.key")
		secret := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
		if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadMasterKeyFile(p)
		if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), p) {
			t.Errorf("err = %v; want one naming the file, not echoing its content", err)
		}
	})
}

func TestParseMasterKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 11)[:32] // exercises +/ and -_
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"std", base64.StdEncoding.EncodeToString(raw), true},
		{"std with whitespace", " \t" + base64.StdEncoding.EncodeToString(raw) + "\r\n", true},
		{"raw url", base64.RawURLEncoding.EncodeToString(raw), true},
		{"url", base64.URLEncoding.EncodeToString(raw), true},
		{"raw std", base64.RawStdEncoding.EncodeToString(raw), true},
		{"empty", "  \n", false},
		{"short", base64.StdEncoding.EncodeToString(raw[:16]), false},
		{"long", base64.StdEncoding.EncodeToString(append(raw, raw...)), false},
		{"not base64", "correct horse battery staple correct horse!", false},
		{"hex", hex.EncodeToString(raw), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMasterKey(tt.in)
			if tt.ok {
				if err != nil || m.Encode() != base64.StdEncoding.EncodeToString(raw) {
					t.Fatalf("= %v, %v; want the key", m, err)
				}
				return
			}
			if err == nil {
				t.Fatal("succeeded")
			}
			if in := strings.TrimSpace(tt.in); in != "" && strings.Contains(err.Error(), in) {
				t.Errorf("error echoes input: %v", err)
			}
			if !strings.Contains(err.Error(), "generate") {
				t.Errorf("error does not say how to fix: %v", err)
			}
		})
	}
}

// leaks returns the forms of secret a careless print could show.
func leaks(secret []byte) []string {
	dec := fmt.Sprint(secret)                  // "[12 34 ...]"
	words := func(o binary.ByteOrder) string { // as in an AES key schedule
		return fmt.Sprint(o.Uint32(secret), o.Uint32(secret[4:]))
	}
	return []string{
		words(binary.BigEndian),
		words(binary.LittleEndian),
		hex.EncodeToString(secret),
		strings.ToUpper(hex.EncodeToString(secret)),
		base64.StdEncoding.EncodeToString(secret),
		base64.RawURLEncoding.EncodeToString(secret),
		dec[1 : len(dec)-1],
		fmt.Sprintf("%#v", secret)[len("[]byte{"):40],
	}
}

func TestNoKeyLeaks(t *testing.T) {
	m, err := NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	kr := NewKeyring(m)
	wrapped, err := kr.NewTenantKeys("t1")
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err = kr.Rotate("t1", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := kr.Open("t1", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	set, err := kr.unwrap("t1", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{m.key()[:], set.pseudonym[:], set.data[0].key[:], set.data[1].key[:]}

	type holder struct {
		m  MasterKey
		tk *TenantKeys
		kr *Keyring
	}
	values := map[string]any{
		"MasterKey": m, "*MasterKey": &m,
		"*TenantKeys": tk, "TenantKeys": *tk,
		"*Keyring": kr, "Keyring": *kr,
		"holder": holder{m, tk, kr}, "*holder": &holder{m, tk, kr},
		"holder of values": struct {
			tk TenantKeys
			kr Keyring
		}{*tk, *kr},
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			var out []string
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t"} {
				out = append(out, fmt.Sprintf(verb, v))
			}
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
			out = append(out, buf.String())
			for _, o := range out {
				for _, s := range secrets {
					for _, leak := range leaks(s) {
						if strings.Contains(o, leak) {
							t.Fatalf("output %q shows key bytes %q", o, leak)
						}
					}
				}
			}
		})
	}
	if got := fmt.Sprint(m, tk); got != "seal.MasterKey(redacted) seal.TenantKeys(redacted)" {
		t.Errorf("Sprint = %q", got)
	}
}

func TestAPIKey(t *testing.T) {
	key, hash, err := NewAPIKey("rf_live")
	if err != nil {
		t.Fatal(err)
	}
	secret, ok := strings.CutPrefix(key, "rf_live_")
	if b, err := base64.RawURLEncoding.DecodeString(secret); !ok || err != nil || len(b) != 32 {
		t.Errorf("key %q is not rf_live_ + base64url of 32 bytes", key)
	}
	if hash != HashAPIKey(key) || hash == HashAPIKey(key+"x") {
		t.Error("hash does not identify the key")
	}
	if key2, _, _ := NewAPIKey("rf_live"); key2 == key {
		t.Error("two keys are equal")
	}
	for _, prefix := range []string{"", "rf live", "rf-live", "rf_live\n", "ключ"} {
		if _, _, err := NewAPIKey(prefix); err == nil {
			t.Errorf("prefix %q accepted", prefix)
		}
	}
}

func FuzzOpen(f *testing.F) {
	tk := goldenKeys(f)
	known := map[string]string{} // ciphertext -> aad, the only pairs that may open
	for _, g := range goldenSealed {
		ct := mustHex(f, g.hex)
		known[string(ct)] = g.aad
		f.Add(ct, []byte(g.aad))
		f.Add(ct, []byte(g.aad+"x"))
		f.Add(ct[:len(ct)-1], []byte(g.aad))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1, 0, 0, 0, 1}, []byte("calls/caller/x"))
	f.Add(append([]byte{1, 0, 0, 0, 3}, make([]byte, 40)...), []byte{})
	f.Fuzz(func(t *testing.T, ct, aad []byte) {
		CiphertextVersion(ct)
		got, err := tk.Open(ct, aad)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || got != nil {
				t.Fatalf("Open = %q, %v; want nil and ErrDecrypt", got, err)
			}
			return
		}
		if want, ok := known[string(ct)]; !ok || want != string(aad) {
			t.Fatalf("forged ciphertext %x opened with aad %q", ct, aad)
		}
	})
}

func FuzzParseMasterKey(f *testing.F) {
	// Error messages may carry lengths, nothing else from the input.
	noDigits := func(s string) string {
		return strings.Map(func(r rune) rune {
			if '0' <= r && r <= '9' {
				return -1
			}
			return r
		}, s)
	}
	shapes := map[string]bool{}
	for _, bad := range []string{"", "!", "AAAA"} {
		_, err := ParseMasterKey(bad)
		shapes[noDigits(err.Error())] = true
	}
	f.Add(goldenMaster)
	f.Add(" " + goldenMaster + "\n")
	f.Add(strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(goldenMaster), "="))
	f.Add(goldenMaster[:40])
	f.Add("AAAA")
	f.Add("!!!!")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMasterKey(s)
		if err != nil {
			if !shapes[noDigits(err.Error())] {
				t.Fatalf("unexpected error message %q", err)
			}
			return
		}
		again, err := ParseMasterKey(m.Encode())
		if err != nil || again.Encode() != m.Encode() {
			t.Fatalf("Encode does not round trip: %v", err)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	tk := goldenKeys(b)
	aad := []byte("calls/signalling/01J0000000000000000000002")
	for _, size := range []int{200, 4096} {
		plain := bytes.Repeat([]byte("s"), size)
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				tk.Seal(plain, aad)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	tk := goldenKeys(b)
	aad := []byte("calls/signalling/01J0000000000000000000002")
	for _, size := range []int{200, 4096} {
		ct := tk.Seal(bytes.Repeat([]byte("s"), size), aad)
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tk.Open(ct, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPseudonym(b *testing.B) {
	tk := goldenKeys(b)
	b.ReportAllocs()
	for b.Loop() {
		tk.Pseudonym("+447700900123")
	}
}
