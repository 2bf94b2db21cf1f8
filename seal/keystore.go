package seal

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ErrShredded is wrapped (beside ErrDecrypt) by every error that means a
// tenant's key-encryption key is gone: shredded by Keystore.Shred, or its
// file lost. Nothing can open that tenant's format 2 key set any more.
var ErrShredded = errors.New("seal: tenant key-encryption key destroyed (shredded or missing)")

const (
	kekFormatV1   = 1
	masterIDSize  = 8
	kekHeaderSize = 1 + masterIDSize
	kekFileSize   = kekHeaderSize + 12 + keySize + 16 // header, nonce, sealed KEK and tag
	kekExt        = ".kek"
	kekTmpExt     = ".kek.tmp"
	kekAADLabel   = "ringfence/seal tenant kek\x00"
	masterIDLabel = "keystore master key id"
)

// Keystore holds each tenant's key-encryption key (KEK) in its own file, in
// a directory outside the database. A tenant's key set in the database
// (wrapped format 2) is sealed under its KEK, so destroying the file
// (Shred) makes every copy of that key set, and so the tenant's data,
// unreadable, even with the master key. The file format is in the package
// comment.
//
// A Keystore is safe for concurrent use by goroutines. One process at a time
// should write a keystore directory (create, shred, rotate); several may read
// it. It caches no key: every Keyring.Open reads the tenant's file, so a
// Shred takes effect for the next Open (TenantKeys opened before stay usable
// until dropped).
//
// Backups of the directory defeat shredding for as long as they are kept:
// keep them apart from database backups, and no longer than the erasure
// promise allows. Zeroing a file before removing it is a best effort; on
// copy-on-write or flash storage the old blocks may survive until reused,
// which is why the KEK is itself sealed under the master key.
type Keystore struct {
	dir string

	mu     sync.RWMutex
	sealer masterAEAD   // seals new and rotated files
	accept []masterAEAD // open files; sealer first

	// beforeReplace, if set, runs before a rotated file replaces the old
	// one; an error stops the rotation there (tests simulate a crash).
	beforeReplace func(tenantID string) error
}

// masterAEAD is a master key's AEAD and its public id, which KEK files
// carry so that the right key is chosen during a master rotation.
type masterAEAD struct {
	id   [masterIDSize]byte
	aead hidden[cipher.AEAD]
}

func newMasterAEAD(m MasterKey) (masterAEAD, error) {
	if m.key == nil {
		return masterAEAD{}, errors.New("seal: keystore needs a master key (zero MasterKey)")
	}
	aead, err := newAEAD(m.key()[:])
	if err != nil {
		return masterAEAD{}, err
	}
	var id [masterIDSize]byte
	copy(id[:], m.Derive(masterIDLabel))
	return masterAEAD{id: id, aead: hide(aead)}, nil
}

// ID returns a public identifier of the key: hex of 8 bytes derived from it
// with Derive, so it reveals nothing of the key. KEK files record the id of
// the master key that sealed them. It returns "" for the zero MasterKey.
func (m MasterKey) ID() string {
	if m.key == nil {
		return ""
	}
	return hex.EncodeToString(m.Derive(masterIDLabel)[:masterIDSize])
}

// OpenKeystore opens the keystore directory dir, creating it with mode 0700
// if it does not exist. It refuses a directory its group or others may
// enter, and the zero MasterKey. New KEK files are sealed under m.
//
// previous are master keys also accepted when reading KEK files, for the
// time of a master key rotation: after a crash in RotateMaster, open with
// the new key and the old one in previous (or with the old key alone) and
// call RotateMaster(new) again to finish.
func OpenKeystore(dir string, m MasterKey, previous ...MasterKey) (*Keystore, error) {
	sealer, err := newMasterAEAD(m)
	if err != nil {
		return nil, err
	}
	ks := &Keystore{dir: dir, sealer: sealer, accept: []masterAEAD{sealer}}
	for _, p := range previous {
		ma, err := newMasterAEAD(p)
		if err != nil {
			return nil, err
		}
		ks.addAccepted(ma)
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("seal: creating keystore: %w", err)
		}
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("seal: keystore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("seal: keystore %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("seal: keystore %s has mode %04o, open beyond its owner; run `chmod 700 %s`", dir, perm, dir)
	}
	return ks, nil
}

func (ks *Keystore) addAccepted(ma masterAEAD) {
	for _, a := range ks.accept {
		if a.id == ma.id {
			return
		}
	}
	ks.accept = append(ks.accept, ma)
}

// Dir returns the keystore directory.
func (ks *Keystore) Dir() string { return ks.dir }

func (ks *Keystore) path(tenantID, ext string) string {
	return filepath.Join(ks.dir, hex.EncodeToString([]byte(tenantID))+ext)
}

// kek returns the AEAD of tenantID's KEK. A missing file gives an error
// wrapping ErrDecrypt, ErrShredded and fs.ErrNotExist; a truncated or
// tampered file, or one sealed under a master key the keystore does not
// hold, gives an error wrapping ErrDecrypt.
func (ks *Keystore) kek(tenantID string) (cipher.AEAD, error) {
	ks.mu.RLock()
	k, err := ks.readKEK(tenantID)
	ks.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	defer clear(k[:])
	return newAEAD(k[:])
}

// ensureKEK returns the AEAD of tenantID's KEK, creating the file with a
// new random KEK if there is none. It never replaces an existing file.
func (ks *Keystore) ensureKEK(tenantID string) (cipher.AEAD, error) {
	if tenantID == "" {
		return nil, errors.New("seal: empty tenant id")
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	k, err := ks.readKEK(tenantID)
	if errors.Is(err, fs.ErrNotExist) {
		k = new([keySize]byte)
		rand.Read(k[:])
		err = ks.writeKEK(tenantID, k, false)
	}
	if err != nil {
		return nil, err
	}
	defer clear(k[:])
	return newAEAD(k[:])
}

// readKEK reads and opens tenantID's file. ks.mu must be held.
func (ks *Keystore) readKEK(tenantID string) (*[keySize]byte, error) {
	b, err := readSmallFile(ks.path(tenantID, kekExt))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("seal: tenant %q: %w (%w): %w", tenantID, ErrShredded, err, ErrDecrypt)
	}
	if err != nil {
		return nil, fmt.Errorf("seal: tenant %q key-encryption key: %w", tenantID, err)
	}
	return ks.openKEK(tenantID, b)
}

func (ks *Keystore) openKEK(tenantID string, b []byte) (*[keySize]byte, error) {
	if len(b) != kekFileSize || b[0] != kekFormatV1 {
		return nil, fmt.Errorf("seal: tenant %q key-encryption key file is malformed (%d bytes): %w", tenantID, len(b), ErrDecrypt)
	}
	ma, ok := ks.accepted([masterIDSize]byte(b[1:kekHeaderSize]))
	if !ok {
		return nil, fmt.Errorf("seal: tenant %q key-encryption key is sealed under master key %x, not %s: %w",
			tenantID, b[1:kekHeaderSize], ks.acceptedIDs(), ErrDecrypt)
	}
	plain, err := ma.aead().Open(nil, nil, b[kekHeaderSize:], kekAAD(b[:kekHeaderSize], tenantID))
	if err != nil {
		return nil, fmt.Errorf("seal: opening key-encryption key of tenant %q: %w", tenantID, ErrDecrypt)
	}
	k := new([keySize]byte)
	copy(k[:], plain)
	clear(plain)
	return k, nil
}

func (ks *Keystore) accepted(id [masterIDSize]byte) (masterAEAD, bool) {
	for _, a := range ks.accept {
		if a.id == id {
			return a, true
		}
	}
	return masterAEAD{}, false
}

func (ks *Keystore) acceptedIDs() string {
	ids := make([]string, len(ks.accept))
	for i, a := range ks.accept {
		ids[i] = hex.EncodeToString(a.id[:])
	}
	return strings.Join(ids, " or ")
}

func kekAAD(header []byte, tenantID string) []byte {
	aad := make([]byte, 0, len(header)+len(kekAADLabel)+len(tenantID))
	aad = append(aad, header...)
	aad = append(aad, kekAADLabel...)
	return append(aad, tenantID...)
}

// sealKEK returns the file content of k for tenantID under ma.
func sealKEK(ma masterAEAD, tenantID string, k *[keySize]byte) []byte {
	out := make([]byte, kekHeaderSize, kekFileSize)
	out[0] = kekFormatV1
	copy(out[1:], ma.id[:])
	return ma.aead().Seal(out, nil, k[:], kekAAD(out[:kekHeaderSize], tenantID))
}

// writeKEK writes tenantID's file atomically: a temporary file beside it,
// fsync, then a rename over (replace) or a hard link that fails if the file
// exists (create), and an fsync of the directory. ks.mu must be held.
func (ks *Keystore) writeKEK(tenantID string, k *[keySize]byte, replace bool) error {
	final, tmp := ks.path(tenantID, kekExt), ks.path(tenantID, kekTmpExt)
	if err := writeSyncedFile(tmp, sealKEK(ks.sealer, tenantID, k)); err != nil {
		shredFile(tmp)
		return fmt.Errorf("seal: writing key-encryption key of tenant %q: %w", tenantID, err)
	}
	if replace {
		if ks.beforeReplace != nil {
			if err := ks.beforeReplace(tenantID); err != nil {
				return err // leaves tmp behind, as a crash would
			}
		}
		if err := os.Rename(tmp, final); err != nil {
			shredFile(tmp)
			return fmt.Errorf("seal: replacing key-encryption key of tenant %q: %w", tenantID, err)
		}
	} else {
		err := os.Link(tmp, final)
		if rerr := os.Remove(tmp); err == nil && rerr != nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("seal: creating key-encryption key of tenant %q: %w", tenantID, err)
		}
	}
	if err := syncDir(ks.dir); err != nil {
		return fmt.Errorf("seal: key-encryption key of tenant %q: %w", tenantID, err)
	}
	return nil
}

// Shred destroys tenantID's KEK: it overwrites the file (and any temporary
// file a crash left beside it) with zeros, fsyncs, removes it and fsyncs the
// directory. Afterwards every format 2 key set of the tenant, including
// copies taken before, fails to open with an error wrapping ErrDecrypt and
// ErrShredded. Shred of a tenant without a file succeeds, so an interrupted
// offboarding can be run again.
func (ks *Keystore) Shred(tenantID string) error {
	if tenantID == "" {
		return errors.New("seal: empty tenant id")
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var errs []error
	for _, ext := range []string{kekTmpExt, kekExt} {
		if err := shredFile(ks.path(tenantID, ext)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := syncDir(ks.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("seal: shredding tenant %q: %w", tenantID, err)
	}
	return nil
}

// RotateMaster re-seals every KEK file under newMaster, one file at a time,
// each replaced atomically; the KEKs themselves, and so the key sets in the
// database, do not change. From its start new files are sealed under
// newMaster, and files sealed under any accepted key keep opening. When
// every file is done only newMaster is accepted, and a keystore opened with
// the old master key opens none of them.
//
// A crash or error midway leaves each file sealed under either the old or
// the new key, never neither: open the keystore with both (see
// OpenKeystore) and call RotateMaster(newMaster) again to finish; files
// already under newMaster are skipped. A file sealed under a key the
// keystore does not hold is reported and left alone, and the old keys stay
// accepted.
func (ks *Keystore) RotateMaster(newMaster MasterKey) error {
	next, err := newMasterAEAD(newMaster)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	accept := []masterAEAD{next}
	for _, a := range ks.accept {
		if a.id != next.id {
			accept = append(accept, a)
		}
	}
	ks.sealer, ks.accept = next, accept
	ks.mu.Unlock()

	tenants, err := ks.tenants()
	if err != nil {
		return err
	}
	var errs []error
	for _, tenantID := range tenants {
		if err := ks.rotateOne(tenantID, next); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("seal: master key rotation unfinished (run it again): %w", err)
	}
	ks.mu.Lock()
	if ks.sealer.id == next.id { // not overtaken by another rotation
		ks.accept = []masterAEAD{next}
	}
	ks.mu.Unlock()
	return nil
}

func (ks *Keystore) rotateOne(tenantID string, next masterAEAD) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	b, err := readSmallFile(ks.path(tenantID, kekExt))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // shredded meanwhile
	}
	if err != nil {
		return fmt.Errorf("seal: tenant %q key-encryption key: %w", tenantID, err)
	}
	if len(b) == kekFileSize && bytes.Equal(b[1:kekHeaderSize], next.id[:]) {
		return nil // done before a crash or an error
	}
	k, err := ks.openKEK(tenantID, b)
	if err != nil {
		return err
	}
	defer clear(k[:])
	return ks.writeKEK(tenantID, k, true)
}

// tenants lists the tenant ids that have a KEK file, from the file names.
func (ks *Keystore) tenants() ([]string, error) {
	entries, err := os.ReadDir(ks.dir)
	if err != nil {
		return nil, fmt.Errorf("seal: keystore: %w", err)
	}
	var ids []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), kekExt)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		id, err := hex.DecodeString(name)
		if err != nil || len(id) == 0 {
			continue // not ours
		}
		ids = append(ids, string(id))
	}
	return ids, nil
}

// MasterKeyIDs counts the KEK files by the id (MasterKey.ID) of the master
// key that sealed them, so an operator can see whether a rotation finished.
// Files too short to carry an id are counted under "malformed".
func (ks *Keystore) MasterKeyIDs() (map[string]int, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	tenants, err := ks.tenants()
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, tenantID := range tenants {
		b, err := readSmallFile(ks.path(tenantID, kekExt))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("seal: tenant %q key-encryption key: %w", tenantID, err)
		case len(b) < kekHeaderSize:
			counts["malformed"]++
		default:
			counts[hex.EncodeToString(b[1:kekHeaderSize])]++
		}
	}
	return counts, nil
}

// String returns the keystore's directory; it holds no key material.
func (ks *Keystore) String() string { return "seal.Keystore(" + ks.dir + ")" }

// GoString is String.
func (ks *Keystore) GoString() string { return ks.String() }

// LogValue logs the directory only.
func (ks *Keystore) LogValue() slog.Value { return slog.StringValue(ks.String()) }

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4096))
}

func writeSyncedFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = f.Chmod(0o600) // whatever the umask or an older file's mode
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// shredFile overwrites path with zeros, fsyncs and removes it. A missing
// file is not an error.
func shredFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt(make([]byte, fi.Size()), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
