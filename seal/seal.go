// Package seal holds ringfence's keys, envelope encryption and pseudonyms.
// It is pure: no I/O except reading and writing the master key file.
//
// Keys form a two-level envelope. A 32-byte MasterKey (from a file or the
// environment) wraps each tenant's key set; the wrapped blob is stored beside
// the tenant and opened at start into a TenantKeys. Destroying a tenant's blob
// destroys its data (crypto-shredding).
//
// A tenant key set holds one or more AES-256-GCM data keys, each with a
// version (1, 2, ...; Keyring.Rotate adds the next), and one 32-byte
// HMAC-SHA-256 pseudonym key that never changes.
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
//	0       1     format version, 1
//	1       12    random nonce
//	13      m+16  AES-256-GCM under the master key of the key set below
//
// The additional data is the format byte, "ringfence/seal tenant keys", a zero
// byte and the tenant id, so a blob opens only for its own tenant. The sealed
// key set is
//
//	32 bytes   pseudonym key
//	k × 36     data keys, oldest first: 4-byte big-endian version, 32-byte key
//
// with k >= 1 and versions strictly increasing; the last is the newest.
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

const (
	formatV1   = 1
	headerSize = 1 + 4           // format version, key version
	overhead   = headerSize + 28 // + nonce and tag
)

// TenantKeys is one tenant's opened key set, from Keyring.Open (the zero
// value is not usable). It is immutable and safe for concurrent use. It never
// prints or logs its keys.
type TenantKeys struct {
	keys hidden[[]versionedAEAD] // oldest first; the last is the newest
	macs *sync.Pool              // of *pseudonymer; the key is inside New
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
	return &TenantKeys{keys: hide(keys), macs: macs}, nil
}

// KeyVersion returns the version of the newest data key, the one Seal uses.
func (t *TenantKeys) KeyVersion() uint32 { return t.newest().version }

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
// version is named in the message.
func (t *TenantKeys) Open(ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < overhead {
		return nil, fmt.Errorf("seal: ciphertext too short (%d bytes): %w", len(ciphertext), ErrDecrypt)
	}
	if ciphertext[0] != formatV1 {
		return nil, fmt.Errorf("seal: unknown ciphertext format %d: %w", ciphertext[0], ErrDecrypt)
	}
	version := binary.BigEndian.Uint32(ciphertext[1:])
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
