// Package seal holds ringfence's keys, envelope encryption and pseudonyms.
// It is pure apart from files of keys: the master key file and the
// keystore directory of tenant key-encryption keys.
//
// Keys form an envelope. A 32-byte MasterKey (from a file or the
// environment) seals each tenant's 32-byte key-encryption key (KEK), kept in
// its own file in a Keystore directory outside the database. The KEK wraps
// the tenant's key set; the wrapped blob is stored beside the tenant in the
// database and opened at start into a TenantKeys. Shredding a tenant
// destroys its KEK file, so no copy of the blob, not even one in a database
// backup taken before, opens again, whoever holds the master key
// (crypto-shredding), unless a copy of the keystore directory survives too
// (see Keystore). Key sets written before keystores existed (format 1)
// are wrapped directly under the master key; they still open, and
// Keyring.Upgrade rewraps them in format 2. Shredding protects format 2 only.
//
// A tenant key set holds one or more AES-256-GCM data keys, each with a
// version (1, 2, ...; Keyring.Rotate adds the next), a minimum decryption
// version below which keys have been dropped (Keyring.Retire), and one
// 32-byte HMAC-SHA-256 pseudonym key that never changes.
//
// Rotation runs in three steps: Keyring.Rotate adds a data key version that
// new seals use; a background job calls TenantKeys.Reseal on every stored
// ciphertext, moving it to the newest version; Keyring.Retire then raises the
// minimum decryption version, and ciphertexts of older versions are refused
// with ErrRetiredKey. Keystore.RotateMaster re-seals every KEK under a new
// master key, resumably.
//
// # Ciphertext format (TenantKeys.Seal)
//
//	offset  size  field
//	0       1     format version, 1
//	1       4     data key version, big-endian
//	5       12    random nonce
//	17      n+16  AES-256-GCM ciphertext and tag
//
// The caller's additional data (for example "calls/caller/<record id>") is
// authenticated but not stored, so a ciphertext opens only where it was sealed.
// The header is not authenticated; changing it selects another format or key
// and authentication fails. Rotate before a data key has sealed 2^32 values
// (the limit for random 96-bit nonces).
//
// # Wrapped tenant key set format (Keyring)
//
//	offset  size  field
//	0       1     format version, 1 or 2
//	1       12    random nonce
//	13      m+16  AES-256-GCM of the key set below, under the master key
//	              (format 1) or the tenant's KEK (format 2)
//
// The additional data is the format byte, "ringfence/seal tenant keys", a zero
// byte and the tenant id, so a blob opens only for its own tenant. The sealed
// key set is
//
//	4 bytes    minimum decryption version, big-endian (format 2 only)
//	32 bytes   pseudonym key
//	k × 36     data keys, oldest first: 4-byte big-endian version, 32-byte key
//
// with k >= 1 and versions strictly increasing; the last is the newest. No
// data key is older than the minimum version; in format 1, which has no
// field for it, the minimum is the oldest key's version (Retire drops the
// keys below it, so that holds for both formats).
//
// # Key-encryption key file format (Keystore)
//
// The keystore is a directory of mode 0700 with one file of mode 0600 per
// tenant, named by the lowercase hex of the tenant id and ".kek":
//
//	offset  size  field
//	0       1     format version, 1
//	1       8     id of the master key that sealed it (MasterKey.ID)
//	9       12    random nonce
//	21      48    AES-256-GCM under that master key of the 32-byte KEK
//
// The additional data is the first 9 bytes, "ringfence/seal tenant kek", a
// zero byte and the tenant id. The master key id, derived from the key by
// HMAC, picks the key during a master rotation, when files sealed under the
// old and the new key coexist. A file is written to "<name>.tmp", fsynced,
// then renamed or linked into place and the directory fsynced; Shred zeroes
// both names before removing them.
package seal

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"sync"
)

// ErrDecrypt is wrapped by every error that means "these bytes cannot be
// opened here": wrong key, wrong tenant or additional data, truncated or
// tampered input, unknown format or key version.
var ErrDecrypt = errors.New("seal: cannot decrypt (wrong key, wrong binding or tampered data)")

// ErrRetiredKey is wrapped, beside ErrDecrypt, by TenantKeys.Open of a
// ciphertext sealed with a data key version below the key set's minimum
// decryption version (Keyring.Retire): its key has been destroyed.
var ErrRetiredKey = errors.New("seal: data key version retired")

const (
	formatV1   = 1
	headerSize = 1 + 4           // format version, key version
	overhead   = headerSize + 28 // + nonce and tag
)

// TenantKeys is one tenant's opened key set, from Keyring.Open (the zero
// value is not usable). It is immutable and safe for concurrent use. It never
// prints or logs its keys.
type TenantKeys struct {
	keys       hidden[[]versionedAEAD] // oldest first; the last is the newest
	minVersion uint32                  // older versions are refused
	macs       *sync.Pool              // of *pseudonymer; the key is inside New
}

// hidden holds key material out of reach of fmt and slog: whatever the verb
// or nesting, they print a func as an address and never what it captures.
type hidden[T any] func() T

func hide[T any](v T) hidden[T] { return func() T { return v } }

type versionedAEAD struct {
	version uint32
	aead    cipher.AEAD // AES-256-GCM with random nonces
}

type pseudonymer struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newTenantKeys(s *keySet) (*TenantKeys, error) {
	keys := make([]versionedAEAD, len(s.data))
	for i, d := range s.data {
		aead, err := newAEAD(d.key[:])
		if err != nil {
			return nil, err
		}
		keys[i] = versionedAEAD{version: d.version, aead: aead}
	}
	macKey := s.pseudonym // a copy, owned by the pool
	macs := &sync.Pool{New: func() any {
		return &pseudonymer{mac: hmac.New(sha256.New, macKey[:])}
	}}
	return &TenantKeys{keys: hide(keys), minVersion: s.minVersion, macs: macs}, nil
}

// KeyVersion returns the version of the newest data key, the one Seal uses.
func (t *TenantKeys) KeyVersion() uint32 { return t.newest().version }

// MinVersion returns the minimum decryption version: Open refuses
// ciphertexts of older data key versions with ErrRetiredKey.
func (t *TenantKeys) MinVersion() uint32 { return t.minVersion }

func (t *TenantKeys) newest() versionedAEAD {
	keys := t.keys()
	return keys[len(keys)-1]
}

// Seal encrypts plaintext under the newest data key and returns the
// ciphertext in the format described in the package comment. aad binds the
// ciphertext to where it is stored; Open must be given the same aad.
// Seal allocates only the returned slice.
func (t *TenantKeys) Seal(plaintext, aad []byte) []byte {
	k := t.newest()
	out := make([]byte, headerSize, overhead+len(plaintext))
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:], k.version)
	return k.aead.Seal(out, nil, plaintext, aad)
}

// Open decrypts a ciphertext made by Seal with any data key version this key
// set holds, and the same aad. Every error wraps ErrDecrypt; an unknown key
// version is named in the message, and one below the minimum decryption
// version also wraps ErrRetiredKey.
func (t *TenantKeys) Open(ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < overhead {
		return nil, fmt.Errorf("seal: ciphertext too short (%d bytes): %w", len(ciphertext), ErrDecrypt)
	}
	if ciphertext[0] != formatV1 {
		return nil, fmt.Errorf("seal: unknown ciphertext format %d: %w", ciphertext[0], ErrDecrypt)
	}
	version := binary.BigEndian.Uint32(ciphertext[1:])
	if version < t.minVersion {
		return nil, fmt.Errorf("seal: data key version %d is below the minimum %d: %w: %w", version, t.minVersion, ErrRetiredKey, ErrDecrypt)
	}
	aead := t.aead(version)
	if aead == nil {
		return nil, fmt.Errorf("seal: unknown data key version %d: %w", version, ErrDecrypt)
	}
	plaintext, err := aead.Open(nil, nil, ciphertext[headerSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("seal: data key version %d: %w", version, ErrDecrypt)
	}
	return plaintext, nil
}

func (t *TenantKeys) aead(version uint32) cipher.AEAD {
	keys := t.keys()
	for i := len(keys) - 1; i >= 0; i-- { // usually the newest
		if keys[i].version == version {
			return keys[i].aead
		}
	}
	return nil
}

// Reseal moves a ciphertext to the newest data key version, for the
// background rewrap after Keyring.Rotate: given one already sealed with the
// newest version it returns it unchanged (changed false, not authenticated:
// reading it later does that); otherwise it opens it with aad and seals the
// plaintext again with the same aad, and changed is true. Errors are those
// of Open; the ciphertext is then left as it is.
func (t *TenantKeys) Reseal(ciphertext, aad []byte) (out []byte, changed bool, err error) {
	if v, ok := CiphertextVersion(ciphertext); ok && v == t.KeyVersion() {
		return ciphertext, false, nil
	}
	plain, err := t.Open(ciphertext, aad)
	if err != nil {
		return nil, false, err
	}
	out = t.Seal(plain, aad)
	clear(plain)
	return out, true, nil
}

// CiphertextVersion returns the data key version a ciphertext was sealed
// with, so that a rotation job can find values to re-seal. ok is false if
// the bytes are not in a known ciphertext format. It does not authenticate.
func CiphertextVersion(ciphertext []byte) (version uint32, ok bool) {
	if len(ciphertext) < overhead || ciphertext[0] != formatV1 {
		return 0, false
	}
	return binary.BigEndian.Uint32(ciphertext[1:]), true
}

// Pseudonym returns HMAC-SHA-256 of value under the tenant's pseudonym key:
// deterministic for a tenant, unlinkable across tenants, stable across
// rotations. Callers pass the E.164 form of a number ("+447700900123") or
// "user:"+userRef. It does not allocate in the steady state.
func (t *TenantKeys) Pseudonym(value string) [32]byte {
	p := t.macs.Get().(*pseudonymer)
	p.mac.Reset()
	p.buf = append(p.buf[:0], value...)
	p.mac.Write(p.buf)
	p.mac.Sum(p.sum[:0])
	sum := p.sum
	clear(p.buf) // do not keep the number around
	if cap(p.buf) > 1024 {
		p.buf = nil
	}
	t.macs.Put(p)
	return sum
}

const tenantKeysRedacted = "seal.TenantKeys(redacted)"

// String returns a fixed placeholder; key material is never printed.
func (t *TenantKeys) String() string { return tenantKeysRedacted }

// GoString returns a fixed placeholder; key material is never printed.
func (t *TenantKeys) GoString() string { return tenantKeysRedacted }

// LogValue returns a fixed placeholder; key material is never logged.
func (t *TenantKeys) LogValue() slog.Value { return slog.StringValue(tenantKeysRedacted) }
