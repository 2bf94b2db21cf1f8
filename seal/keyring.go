package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

const (
	keySize      = 32
	dataKeySize  = 4 + keySize
	wrapAADLabel = "ringfence/seal tenant keys\x00"
	wrapV1       = 1 // key set sealed under the master key
	wrapV2       = 2 // key set sealed under the tenant's KEK (Keystore)
)

// Keyring wraps and opens tenant key sets. It is safe for concurrent use.
//
// A Keyring from NewKeyring wraps key sets under the master key (format 1);
// one from NewKeyringWithKeystore wraps them under each tenant's KEK
// (format 2), so that Shred can destroy a tenant, and still opens format 1
// blobs, which Upgrade, Rotate and Retire rewrap in format 2.
type Keyring struct {
	aead hidden[cipher.AEAD] // nil for the zero MasterKey
	ks   *Keystore           // nil: format 1, no shredding
}

// NewKeyring returns a Keyring for m that writes format 1 key sets and opens
// format 1 only. With the zero MasterKey every method returns an error, as
// they do for an empty tenant id.
func NewKeyring(m MasterKey) *Keyring {
	if m.key == nil {
		return &Keyring{}
	}
	aead, err := newAEAD(m.key()[:])
	if err != nil { // cannot happen: the key is 32 bytes
		return &Keyring{}
	}
	return &Keyring{aead: hide(aead)}
}

// NewKeyringWithKeystore returns a Keyring that writes format 2 key sets,
// sealed under tenant KEKs held in ks, and opens format 2 and (with m, the
// master key that wrapped them) format 1. With a nil ks it is NewKeyring(m).
func NewKeyringWithKeystore(m MasterKey, ks *Keystore) *Keyring {
	k := NewKeyring(m)
	k.ks = ks
	return k
}

// NewTenantKeys generates a fresh key set for tenantID (data key version 1
// and a pseudonym key) and returns it wrapped, an opaque blob to store
// beside the tenant. With a keystore it first creates the tenant's KEK file
// if there is none (an existing one is kept, so older blobs stay valid).
func (k *Keyring) NewTenantKeys(tenantID string) (wrapped []byte, err error) {
	s := &keySet{minVersion: 1, data: []dataKey{{version: 1}}}
	rand.Read(s.pseudonym[:])
	rand.Read(s.data[0].key[:])
	defer s.clear()
	return k.wrap(tenantID, s)
}

// Open unwraps a blob made by NewTenantKeys, Rotate, Retire or Upgrade for
// the same tenant. A wrong tenant id, a wrong master key, truncated or
// tampered bytes, or a format 2 blob without the keystore give an error
// wrapping ErrDecrypt; a shredded (or missing) KEK one wrapping ErrDecrypt
// and ErrShredded.
func (k *Keyring) Open(tenantID string, wrapped []byte) (*TenantKeys, error) {
	s, err := k.unwrap(tenantID, wrapped)
	if err != nil {
		return nil, err
	}
	defer s.clear()
	return newTenantKeys(s)
}

// Rotate adds the next data key version to a wrapped key set and returns the
// new blob: TenantKeys opened from it seal with the new version and still
// open ciphertexts of every version from the minimum decryption version on.
// The pseudonym key is kept, so pseudonyms (and lookups by them) do not
// change. Errors are those of Open.
func (k *Keyring) Rotate(tenantID string, wrapped []byte) ([]byte, error) {
	s, err := k.unwrap(tenantID, wrapped)
	if err != nil {
		return nil, err
	}
	defer s.clear()
	newest := s.newest()
	if newest == math.MaxUint32 {
		return nil, errors.New("seal: data key versions exhausted")
	}
	d := dataKey{version: newest + 1}
	rand.Read(d.key[:])
	s.data = append(s.data, d)
	return k.wrap(tenantID, s)
}

// Retire raises the key set's minimum decryption version to minVersion and
// returns the new blob: the data keys of older versions are dropped, so
// TenantKeys opened from it refuse older ciphertexts with an error wrapping
// ErrDecrypt and ErrRetiredKey. Run it after every stored ciphertext has
// been resealed (TenantKeys.Reseal) to a version >= minVersion. minVersion
// must be between the current minimum and the newest version; the current
// minimum is accepted and changes nothing. Other errors are those of Open.
func (k *Keyring) Retire(tenantID string, wrapped []byte, minVersion uint32) ([]byte, error) {
	s, err := k.unwrap(tenantID, wrapped)
	if err != nil {
		return nil, err
	}
	defer s.clear()
	switch newest := s.newest(); {
	case minVersion > newest:
		return nil, fmt.Errorf("seal: minimum decryption version %d is above the newest data key version %d; rotate first", minVersion, newest)
	case minVersion < s.minVersion:
		return nil, fmt.Errorf("seal: minimum decryption version is %d; it cannot go back to %d (the older keys are destroyed)", s.minVersion, minVersion)
	}
	kept := s.data[:0] // in place: kept keys move over dropped ones
	for i := range s.data {
		if s.data[i].version >= minVersion {
			kept = append(kept, s.data[i])
		}
	}
	clear(s.data[len(kept):]) // what is left of the dropped keys
	s.data, s.minVersion = kept, minVersion
	return k.wrap(tenantID, s)
}

// Upgrade returns a blob wrapped in the Keyring's own format: a format 1
// blob opened by a Keyring with a keystore comes back as format 2 under the
// tenant's KEK (created if needed), with the same keys. changed is false,
// and wrapped is returned as is, when it is already in that format; it has
// then been opened, so it is known to be good. Errors are those of Open.
func (k *Keyring) Upgrade(tenantID string, wrapped []byte) (out []byte, changed bool, err error) {
	s, err := k.unwrap(tenantID, wrapped)
	if err != nil {
		return nil, false, err
	}
	defer s.clear()
	if wrapped[0] == k.format() {
		return wrapped, false, nil
	}
	out, err = k.wrap(tenantID, s)
	return out, err == nil, err
}

// Shred destroys tenantID's KEK (Keystore.Shred). It fails on a Keyring
// without a keystore: a format 1 key set can only be destroyed by deleting
// every copy of the blob. Format 1 blobs of the tenant are not affected, so
// Upgrade every stored blob before relying on shredding.
func (k *Keyring) Shred(tenantID string) error {
	if k.ks == nil {
		return errors.New("seal: keyring has no keystore; format 1 key sets cannot be shredded")
	}
	return k.ks.Shred(tenantID)
}

func (k *Keyring) format() byte {
	if k.ks != nil {
		return wrapV2
	}
	return wrapV1
}

func (k *Keyring) wrap(tenantID string, s *keySet) ([]byte, error) {
	if err := k.check(tenantID); err != nil {
		return nil, err
	}
	format, aead := k.format(), k.aead()
	if format == wrapV2 {
		var err error
		if aead, err = k.ks.ensureKEK(tenantID); err != nil {
			return nil, err
		}
	}
	plain := s.marshal(format)
	defer clear(plain)
	out := append(make([]byte, 0, 1+28+len(plain)), format)
	return aead.Seal(out, nil, plain, wrapAAD(format, tenantID)), nil
}

func (k *Keyring) unwrap(tenantID string, wrapped []byte) (*keySet, error) {
	if err := k.check(tenantID); err != nil {
		return nil, err
	}
	if len(wrapped) < 1+28 {
		return nil, fmt.Errorf("seal: wrapped tenant keys too short (%d bytes): %w", len(wrapped), ErrDecrypt)
	}
	var aead cipher.AEAD
	switch wrapped[0] {
	case wrapV1:
		aead = k.aead()
	case wrapV2:
		if k.ks == nil {
			return nil, fmt.Errorf("seal: keys of tenant %q are in format 2, which needs the keystore: %w", tenantID, ErrDecrypt)
		}
		var err error
		if aead, err = k.ks.kek(tenantID); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("seal: unknown wrapped tenant keys format %d: %w", wrapped[0], ErrDecrypt)
	}
	plain, err := aead.Open(nil, nil, wrapped[1:], wrapAAD(wrapped[0], tenantID))
	if err != nil {
		return nil, fmt.Errorf("seal: opening keys of tenant %q: %w", tenantID, ErrDecrypt)
	}
	defer clear(plain)
	return unmarshalKeySet(wrapped[0], plain)
}

func (k *Keyring) check(tenantID string) error {
	switch {
	case k.aead == nil:
		return errors.New("seal: keyring has no master key (zero MasterKey)")
	case tenantID == "":
		return errors.New("seal: empty tenant id")
	}
	return nil
}

func wrapAAD(format byte, tenantID string) []byte {
	aad := make([]byte, 0, 1+len(wrapAADLabel)+len(tenantID))
	aad = append(aad, format)
	aad = append(aad, wrapAADLabel...)
	return append(aad, tenantID...)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// keySet is a tenant's raw key material, as sealed inside a wrapped blob.
type keySet struct {
	minVersion uint32 // no data key is older; format 1: the oldest version
	pseudonym  [keySize]byte
	data       []dataKey // oldest first, versions strictly increasing
}

type dataKey struct {
	version uint32
	key     [keySize]byte
}

func (s *keySet) newest() uint32 { return s.data[len(s.data)-1].version }

// marshal encodes s for a wrapped blob of the given format. Format 1 has no
// minimum version field: it is implied by the oldest data key, which Retire
// makes equal to it.
func (s *keySet) marshal(format byte) []byte {
	b := make([]byte, 0, 4+keySize+len(s.data)*dataKeySize)
	if format == wrapV2 {
		b = binary.BigEndian.AppendUint32(b, s.minVersion)
	}
	b = append(b, s.pseudonym[:]...)
	for _, d := range s.data {
		b = binary.BigEndian.AppendUint32(b, d.version)
		b = append(b, d.key[:]...)
	}
	return b
}

// unmarshalKeySet parses bytes that authenticated under the master key or a
// KEK, so a malformed set means a bug in whatever wrote it, not tampering.
func unmarshalKeySet(format byte, b []byte) (*keySet, error) {
	var minVersion uint32
	if format == wrapV2 {
		if len(b) < 4 {
			return nil, fmt.Errorf("seal: malformed tenant key set (%d bytes)", len(b))
		}
		minVersion, b = binary.BigEndian.Uint32(b), b[4:]
	}
	if len(b) < keySize+dataKeySize || (len(b)-keySize)%dataKeySize != 0 {
		return nil, fmt.Errorf("seal: malformed tenant key set (%d bytes)", len(b))
	}
	s := &keySet{data: make([]dataKey, (len(b)-keySize)/dataKeySize)}
	copy(s.pseudonym[:], b)
	b = b[keySize:]
	var prev uint32
	for i := range s.data {
		d := &s.data[i]
		d.version = binary.BigEndian.Uint32(b)
		if d.version <= prev {
			s.clear()
			return nil, fmt.Errorf("seal: malformed tenant key set (version %d after %d)", d.version, prev)
		}
		copy(d.key[:], b[4:])
		prev, b = d.version, b[dataKeySize:]
	}
	if format == wrapV1 {
		minVersion = s.data[0].version
	}
	if minVersion == 0 || minVersion > s.data[0].version {
		s.clear()
		return nil, fmt.Errorf("seal: malformed tenant key set (minimum version %d, oldest key %d)", minVersion, s.data[0].version)
	}
	s.minVersion = minVersion
	return s, nil
}

func (s *keySet) clear() {
	clear(s.pseudonym[:])
	for i := range s.data {
		clear(s.data[i].key[:])
	}
}
