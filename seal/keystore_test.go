package seal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Golden format 2 values: the golden key set (goldenWrapped) upgraded to
// format 2 under a KEK sealed by goldenMaster, then retired to minimum
// version 2. They pin the keystore file and wrapped format 2.
const (
	goldenMasterID  = "5c309f7ccae8e6d1"
	goldenKEKFile   = "015c309f7ccae8e6d10403b96fda9af9932f394f171b61c59b317a4b41eb730f5da1bb50597f10612f62d03576dc2927b6472f4e9cf0027e03f7a0c4acff5beda4f4710ed5"
	goldenWrappedV2 = "025c4ca5d3869102dc2a7224252cbb2d29310be165301cce258a9fb8be9cebace9eee49fc1370bb05082637ccd35ee4709a5f8bbcde6a9e12efd21a1ad2dd4ee8b75fa4f2f96c277f55e5fe69673fd23c228eca76234ca24c426f9b7e42b44e5cd73384d63"
)

func mustMaster(tb testing.TB) MasterKey {
	tb.Helper()
	m, err := NewMasterKey()
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustKeystore(tb testing.TB, dir string, m MasterKey, previous ...MasterKey) *Keystore {
	tb.Helper()
	ks, err := OpenKeystore(dir, m, previous...)
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

// newKeystoreKeys returns a keyring with a keystore in a new directory, and
// the wrapped keys of each tenant.
func newKeystoreKeys(tb testing.TB, m MasterKey, tenants ...string) (*Keyring, string, map[string][]byte) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "keys")
	kr := NewKeyringWithKeystore(m, mustKeystore(tb, dir, m))
	wrapped := map[string][]byte{}
	for _, tenant := range tenants {
		w, err := kr.NewTenantKeys(tenant)
		if err != nil {
			tb.Fatal(err)
		}
		wrapped[tenant] = w
	}
	return kr, dir, wrapped
}

func TestGoldenV2(t *testing.T) {
	m, err := ParseMasterKey(goldenMaster)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID() != goldenMasterID {
		t.Errorf("ID = %s, want %s", m.ID(), goldenMasterID)
	}
	dir := filepath.Join(t.TempDir(), "keys")
	ks := mustKeystore(t, dir, m)
	name := filepath.Join(dir, hex.EncodeToString([]byte(goldenTenant))+".kek")
	if err := os.WriteFile(name, mustHex(t, goldenKEKFile), 0o600); err != nil {
		t.Fatal(err)
	}
	tk, err := NewKeyringWithKeystore(m, ks).Open(goldenTenant, mustHex(t, goldenWrappedV2))
	if err != nil {
		t.Fatal(err)
	}
	if tk.KeyVersion() != 2 || tk.MinVersion() != 2 {
		t.Errorf("versions %d..%d, want 2..2", tk.MinVersion(), tk.KeyVersion())
	}
	v1, v2 := goldenSealed[0], goldenSealed[1]
	if got, err := tk.Open(mustHex(t, v2.hex), []byte(v2.aad)); err != nil || string(got) != v2.plain {
		t.Errorf("Open(version 2) = %q, %v", got, err)
	}
	if _, err := tk.Open(mustHex(t, v1.hex), []byte(v1.aad)); !errors.Is(err, ErrRetiredKey) || !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(version 1) error = %v, want ErrRetiredKey and ErrDecrypt", err)
	}
	if p := tk.Pseudonym("+447700900123"); hex.EncodeToString(p[:]) != goldenPseud {
		t.Errorf("Pseudonym = %x, want %s", p, goldenPseud)
	}
}

func TestKeystoreFiles(t *testing.T) {
	m := mustMaster(t)
	kr, dir, wrapped := newKeystoreKeys(t, m, "t1", "tenant/with spaces")
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("keystore mode %04o, want 0700", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || fi.Size() != kekFileSize {
			t.Errorf("%s: mode %04o size %d, want 0600 and %d", e.Name(), fi.Mode().Perm(), fi.Size(), kekFileSize)
		}
	}
	want := []string{hex.EncodeToString([]byte("t1")) + ".kek", hex.EncodeToString([]byte("tenant/with spaces")) + ".kek"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("files %q, want %q (no temporary files left)", names, want)
	}
	for tenant, w := range wrapped {
		if w[0] != 2 {
			t.Errorf("%s: wrapped format %d, want 2", tenant, w[0])
		}
	}

	t.Run("second key set keeps the KEK", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(dir, want[0]))
		again, err := kr.NewTenantKeys("t1")
		if err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(filepath.Join(dir, want[0]))
		if !bytes.Equal(before, after) {
			t.Error("KEK file rewritten")
		}
		for _, w := range [][]byte{wrapped["t1"], again} {
			if _, err := kr.Open("t1", w); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("refusals", func(t *testing.T) {
		open := filepath.Join(t.TempDir(), "open")
		if err := os.Mkdir(open, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(open, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, dir string
			m         MasterKey
			msg       string
		}{
			{"group readable", open, m, "chmod 700"},
			{"not a directory", file, m, "not a directory"},
			{"zero master key", t.TempDir(), MasterKey{}, "zero MasterKey"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ks, err := OpenKeystore(tt.dir, tt.m)
				if err == nil || !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("OpenKeystore = %v, %v; want an error saying %q", ks, err, tt.msg)
				}
			})
		}
		if _, err := OpenKeystore(t.TempDir(), m, MasterKey{}); err == nil {
			t.Error("zero previous master key accepted")
		}
	})
}

func TestShred(t *testing.T) {
	m := mustMaster(t)
	kr, dir, wrapped := newKeystoreKeys(t, m, "t1", "t2")
	backup := bytes.Clone(wrapped["t1"]) // a database copy taken before
	aad := []byte("calls/caller/01J1")
	tk, err := kr.Open("t1", backup)
	if err != nil {
		t.Fatal(err)
	}
	ct := tk.Seal([]byte("+447700900123"), aad)
	kekPath := filepath.Join(dir, hex.EncodeToString([]byte("t1"))+".kek")
	tmpPath := kekPath + ".tmp"
	// A crash while writing can leave a temporary copy: shred takes it too.
	if err := os.WriteFile(tmpPath, mustHex(t, goldenKEKFile), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := kr.Shred("t1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{kekPath, tmpPath} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after shred: %v", filepath.Base(p), err)
		}
	}

	// Whoever holds the master key and the old blob: this process, a new
	// one, a format 1 keyring, or one that makes a new KEK for the id.
	fresh := NewKeyringWithKeystore(m, mustKeystore(t, dir, m))
	attempts := []struct {
		name      string
		kr        *Keyring
		shredded  bool // the error names the missing KEK
		beforeNew bool
	}{
		{"same keyring", kr, true, true},
		{"reopened keystore", fresh, true, true},
		{"master key only", NewKeyring(m), false, true},
		{"after a new KEK for the id", kr, false, false},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			if !a.beforeNew {
				if _, err := kr.NewTenantKeys("t1"); err != nil {
					t.Fatal(err)
				}
			}
			_, err := a.kr.Open("t1", backup)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open of the shredded tenant's blob: %v, want ErrDecrypt", err)
			}
			if a.shredded && (!errors.Is(err, ErrShredded) || !errors.Is(err, fs.ErrNotExist)) {
				t.Errorf("error %v does not wrap ErrShredded and fs.ErrNotExist", err)
			}
			for _, f := range []func() error{
				func() error { _, err := a.kr.Rotate("t1", backup); return err },
				func() error { _, err := a.kr.Retire("t1", backup, 1); return err },
				func() error { _, _, err := a.kr.Upgrade("t1", backup); return err },
			} {
				if err := f(); !errors.Is(err, ErrDecrypt) {
					t.Errorf("rewrap of the shredded blob: %v, want ErrDecrypt", err)
				}
			}
		})
	}
	if got, err := tk.Open(ct, aad); err != nil || string(got) != "+447700900123" {
		t.Errorf("keys opened before the shred: %q, %v (they stay usable until dropped)", got, err)
	}
	if _, err := fresh.Open("t2", wrapped["t2"]); err != nil {
		t.Errorf("other tenant after shred: %v", err)
	}
	if err := kr.Shred("never-existed"); err != nil {
		t.Errorf("Shred of a tenant without a file: %v, want nil (idempotent)", err)
	}
	if err := NewKeyring(m).Shred("t2"); err == nil {
		t.Error("Shred without a keystore succeeded")
	}
	if _, err := NewKeyring(m).Open("t2", wrapped["t2"]); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "keystore") {
		t.Errorf("format 2 without a keystore: %v, want ErrDecrypt naming the keystore", err)
	}
}

func TestKEKFileDamage(t *testing.T) {
	m := mustMaster(t)
	kr, dir, wrapped := newKeystoreKeys(t, m, "t1", "t2")
	path := func(tenant string) string { return filepath.Join(dir, hex.EncodeToString([]byte(tenant))+".kek") }
	good, err := os.ReadFile(path("t1"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(path("t2"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		name    string
		content []byte
	}
	add := func(name string, b []byte) {
		cases = append(cases, struct {
			name    string
			content []byte
		}{name, b})
	}
	for n := range len(good) {
		add(fmt.Sprintf("truncated to %d", n), good[:n])
	}
	for i := range len(good) * 8 {
		b := bytes.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		add(fmt.Sprintf("bit %d flipped", i), b)
	}
	add("extended", append(bytes.Clone(good), 0))
	add("zeros", make([]byte, len(good)))
	add("another tenant's file", other)

	for _, c := range cases {
		if err := os.WriteFile(path("t1"), c.content, 0o600); err != nil {
			t.Fatal(err)
		}
		if tk, err := kr.Open("t1", wrapped["t1"]); !errors.Is(err, ErrDecrypt) || tk != nil {
			t.Fatalf("%s: Open = %v, %v; want ErrDecrypt", c.name, tk, err)
		}
	}

	if err := os.WriteFile(path("t1"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Open("t1", wrapped["t1"]); err != nil {
		t.Fatalf("restored file: %v", err)
	}
	if err := os.Remove(path("t1")); err != nil {
		t.Fatal(err)
	}
	_, err = kr.Open("t1", wrapped["t1"])
	for _, target := range []error{ErrDecrypt, ErrShredded, fs.ErrNotExist} {
		if !errors.Is(err, target) {
			t.Errorf("missing file: %v does not wrap %v", err, target)
		}
	}
}

func TestRotateMaster(t *testing.T) {
	oldM, newM := mustMaster(t), mustMaster(t)
	tenants := []string{"t1", "t2", "t3"}
	kr, dir, wrapped := newKeystoreKeys(t, oldM, tenants...)
	aad := []byte("calls/caller/01J1")
	cts := map[string][]byte{}
	for _, tenant := range tenants {
		tk, err := kr.Open(tenant, wrapped[tenant])
		if err != nil {
			t.Fatal(err)
		}
		cts[tenant] = tk.Seal([]byte(tenant), aad)
	}

	p := filepath.Join(dir, hex.EncodeToString([]byte("t1"))+".kek")
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.ks.RotateMaster(newM); err != nil {
		t.Fatal(err)
	}
	if ids, err := kr.ks.MasterKeyIDs(); err != nil || len(ids) != 1 || ids[newM.ID()] != 3 {
		t.Errorf("MasterKeyIDs = %v, %v; want 3 under %s", ids, err, newM.ID())
	}

	after, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	withNew := NewKeyringWithKeystore(oldM, mustKeystore(t, dir, newM)) // oldM: format 1 only
	withOld := NewKeyringWithKeystore(oldM, mustKeystore(t, dir, oldM))
	for _, tenant := range tenants {
		for name, r := range map[string]*Keyring{"rotated keystore": kr, "new master": withNew} {
			tk, err := r.Open(tenant, wrapped[tenant])
			if err != nil {
				t.Fatalf("%s, %s: %v", name, tenant, err)
			}
			if got, err := tk.Open(cts[tenant], aad); err != nil || string(got) != tenant {
				t.Errorf("%s, %s: data = %q, %v", name, tenant, got, err)
			}
		}
		if _, err := withOld.Open(tenant, wrapped[tenant]); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), newM.ID()) {
			t.Errorf("old master, %s: %v; want ErrDecrypt naming the new master key id", tenant, err)
		}
	}

	// A file sealed under the old key (say, from a backup) is refused by
	// the rotated keystore too: it accepts the new key only.
	if err := os.WriteFile(p, before, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Open("t1", wrapped["t1"]); !errors.Is(err, ErrDecrypt) {
		t.Errorf("rotated keystore opens an old-key file: %v", err)
	}
	if err := os.WriteFile(p, after, 0o600); err != nil {
		t.Fatal(err)
	}

	// Beyond the id check: relabelled as the old key's, the file still
	// does not authenticate under the old key.
	b := bytes.Clone(after)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[1:], mustHex(t, oldM.ID()))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := withOld.Open("t1", wrapped["t1"]); !errors.Is(err, ErrDecrypt) {
		t.Errorf("relabelled file opened under the old master: %v", err)
	}
	if err := kr.ks.RotateMaster(MasterKey{}); err == nil {
		t.Error("rotation to the zero master key succeeded")
	}
}

func TestRotateMasterResume(t *testing.T) {
	tenants := []string{"t1", "t2", "t3", "t4"} // rotated in this order (file names sort)
	tests := []struct {
		name   string
		reopen func(t *testing.T, dir string, oldM, newM MasterKey) *Keystore
	}{
		{"reopen with new and previous", func(t *testing.T, dir string, oldM, newM MasterKey) *Keystore {
			return mustKeystore(t, dir, newM, oldM)
		}},
		{"reopen with old", func(t *testing.T, dir string, oldM, newM MasterKey) *Keystore {
			return mustKeystore(t, dir, oldM)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldM, newM := mustMaster(t), mustMaster(t)
			kr, dir, wrapped := newKeystoreKeys(t, oldM, tenants...)
			crash := errors.New("simulated crash")
			done := 0
			kr.ks.beforeReplace = func(string) error {
				if done == 2 {
					return crash
				}
				done++
				return nil
			}
			if err := kr.ks.RotateMaster(newM); !errors.Is(err, crash) {
				t.Fatalf("RotateMaster = %v, want the simulated crash", err)
			}
			ids, err := kr.ks.MasterKeyIDs()
			if err != nil || ids[oldM.ID()] != 2 || ids[newM.ID()] != 2 {
				t.Fatalf("after the crash: %v, %v; want 2 files under each key", ids, err)
			}
			// The interrupted keystore still opens every tenant.
			for _, tenant := range tenants {
				if _, err := kr.Open(tenant, wrapped[tenant]); err != nil {
					t.Errorf("interrupted keystore, %s: %v", tenant, err)
				}
			}
			// A process offering only the new key cannot open the rest yet.
			newOnly := NewKeyringWithKeystore(newM, mustKeystore(t, dir, newM))
			if _, err := newOnly.Open("t4", wrapped["t4"]); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), oldM.ID()) {
				t.Errorf("new key only, unrotated tenant: %v; want ErrDecrypt naming the old key id", err)
			}

			ks := tt.reopen(t, dir, oldM, newM)
			both := NewKeyringWithKeystore(newM, mustKeystore(t, dir, newM, oldM))
			for _, tenant := range tenants {
				if _, err := both.Open(tenant, wrapped[tenant]); err != nil {
					t.Errorf("both keys, %s: %v", tenant, err)
				}
			}
			if err := ks.RotateMaster(newM); err != nil {
				t.Fatalf("resumed rotation: %v", err)
			}
			if ids, err := ks.MasterKeyIDs(); err != nil || len(ids) != 1 || ids[newM.ID()] != len(tenants) {
				t.Errorf("after resuming: %v, %v; want every file under the new key", ids, err)
			}
			oldOnly := NewKeyringWithKeystore(oldM, mustKeystore(t, dir, oldM))
			for _, tenant := range tenants {
				if _, err := newOnly.Open(tenant, wrapped[tenant]); err != nil {
					t.Errorf("new key, %s: %v", tenant, err)
				}
				if _, err := oldOnly.Open(tenant, wrapped[tenant]); !errors.Is(err, ErrDecrypt) {
					t.Errorf("old key, %s: %v; want ErrDecrypt", tenant, err)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) != len(tenants) {
				t.Errorf("%d files in the keystore, want %d (no temporary files left)", len(entries), len(tenants))
			}
		})
	}
}

func TestKeystoreConcurrentUse(t *testing.T) {
	m := mustMaster(t)
	kr, _, _ := newKeystoreKeys(t, m)
	var wg sync.WaitGroup
	blobs := make([][]byte, 8)
	for g := range blobs {
		wg.Go(func() {
			w, err := kr.NewTenantKeys("t1") // all race to create the one KEK
			if err != nil {
				t.Error(err)
				return
			}
			blobs[g] = w
			if _, err := kr.Open("t1", w); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() {
		if err := kr.ks.RotateMaster(mustMaster(t)); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	for i, w := range blobs {
		if _, err := kr.Open("t1", w); err != nil {
			t.Errorf("blob %d: %v", i, err)
		}
	}
}

func TestKeystoreNoKeyLeaks(t *testing.T) {
	m, m2 := mustMaster(t), mustMaster(t)
	kr, _, wrapped := newKeystoreKeys(t, m, "t1")
	ks := kr.ks
	kek, err := ks.readKEK("t1")
	if err != nil {
		t.Fatal(err)
	}
	set, err := kr.unwrap("t1", wrapped["t1"])
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.RotateMaster(m2); err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{m.key()[:], m2.key()[:], kek[:], set.pseudonym[:], set.data[0].key[:]}
	tk, err := kr.Open("t1", wrapped["t1"])
	if err != nil {
		t.Fatal(err)
	}

	_, errShred := NewKeyringWithKeystore(m, mustKeystore(t, filepath.Join(t.TempDir(), "empty"), m)).Open("t1", wrapped["t1"])
	_, errOld := NewKeyringWithKeystore(m, mustKeystore(t, ks.Dir(), m)).Open("t1", wrapped["t1"])
	type holder struct {
		ks *Keystore
		kr *Keyring
	}
	values := map[string]any{
		"*Keystore": ks, "*Keyring": kr, "Keyring": *kr, "*TenantKeys": tk,
		"holder": holder{ks, kr}, "*holder": &holder{ks, kr},
		"shredded error": errShred, "wrong master error": errOld,
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			var out []string
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
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
	if got, want := fmt.Sprint(ks), "seal.Keystore("+ks.Dir()+")"; got != want {
		t.Errorf("Sprint = %q, want %q", got, want)
	}
}
