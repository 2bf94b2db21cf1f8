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
)

// Keyring wraps and opens tenant key sets with the master key. It is safe for
// concurrent use.
type Keyring struct {
	aead hidden[cipher.AEAD] // nil for the zero MasterKey
}

// NewKeyring returns a Keyring for m. With the zero MasterKey every method
// returns an error, as they do for an empty tenant id.
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

// NewTenantKeys generates a fresh key set for tenantID (data key version 1
// and a pseudonym key) and returns it wrapped under the master key, an opaque
// blob to store beside the tenant.
func (k *Keyring) NewTenantKeys(tenantID string) (wrapped []byte, err error) {
	s := &keySet{data: []dataKey{{version: 1}}}
	rand.Read(s.pseudonym[:])
	rand.Read(s.data[0].key[:])
	defer s.clear()
	return k.wrap(tenantID, s)
}

// Open unwraps a blob made by NewTenantKeys or Rotate for the same tenant.
// A wrong tenant id, a wrong master key, or truncated or tampered bytes give
// an error wrapping ErrDecrypt.
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
// open ciphertexts of every older one. The pseudonym key is kept, so
// pseudonyms (and lookups by them) do not change. Errors are those of Open.
func (k *Keyring) Rotate(tenantID string, wrapped []byte) ([]byte, error) {
	s, err := k.unwrap(tenantID, wrapped)
	if err != nil {
		return nil, err
	}
	defer s.clear()
	newest := s.data[len(s.data)-1].version
	if newest == math.MaxUint32 {
		return nil, errors.New("seal: data key versions exhausted")
	}
	d := dataKey{version: newest + 1}
	rand.Read(d.key[:])
	s.data = append(s.data, d)
	return k.wrap(tenantID, s)
}

func (k *Keyring) wrap(tenantID string, s *keySet) ([]byte, error) {
	if err := k.check(tenantID); err != nil {
		return nil, err
	}
	plain := s.marshal()
	defer clear(plain)
	out := append(make([]byte, 0, 1+28+len(plain)), formatV1)
	return k.aead().Seal(out, nil, plain, wrapAAD(formatV1, tenantID)), nil
}

func (k *Keyring) unwrap(tenantID string, wrapped []byte) (*keySet, error) {
	if err := k.check(tenantID); err != nil {
		return nil, err
	}
	if len(wrapped) < 1+28 {
		return nil, fmt.Errorf("seal: wrapped tenant keys too short (%d bytes): %w", len(wrapped), ErrDecrypt)
	}
	if wrapped[0] != formatV1 {
		return nil, fmt.Errorf("seal: unknown wrapped tenant keys format %d: %w", wrapped[0], ErrDecrypt)
	}
	plain, err := k.aead().Open(nil, nil, wrapped[1:], wrapAAD(wrapped[0], tenantID))
	if err != nil {
		return nil, fmt.Errorf("seal: opening keys of tenant %q: %w", tenantID, ErrDecrypt)
	}
	defer clear(plain)
	return unmarshalKeySet(plain)
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
	pseudonym [keySize]byte
	data      []dataKey // oldest first, versions strictly increasing
}

type dataKey struct {
	version uint32
	key     [keySize]byte
}

func (s *keySet) marshal() []byte {
	b := make([]byte, 0, keySize+len(s.data)*dataKeySize)
	b = append(b, s.pseudonym[:]...)
	for _, d := range s.data {
		b = binary.BigEndian.AppendUint32(b, d.version)
		b = append(b, d.key[:]...)
	}
	return b
}

// unmarshalKeySet parses bytes that authenticated under the master key, so a
// malformed set means a bug in whatever wrote it, not tampering.
func unmarshalKeySet(b []byte) (*keySet, error) {
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
	return s, nil
}

func (s *keySet) clear() {
	clear(s.pseudonym[:])
	for i := range s.data {
		clear(s.data[i].key[:])
	}
}
