package seal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// MasterKey is the 32-byte key that wraps every tenant's key set. The zero
// value holds no key. It never prints or logs its bytes, even as an
// unexported field of another struct; Encode is the only way out.
type MasterKey struct {
	key hidden[*[keySize]byte]
}

const masterKeyRedacted = "seal.MasterKey(redacted)"

const generateHint = "generate one with `head -c 32 /dev/urandom | base64`"

// NewMasterKey returns a new random master key.
func NewMasterKey() (MasterKey, error) {
	k := new([keySize]byte)
	rand.Read(k[:]) // never fails (crypto/rand)
	return MasterKey{key: hide(k)}, nil
}

// ParseMasterKey decodes a master key from base64 of exactly 32 bytes, in
// the standard or URL-safe alphabet, padded or not. Surrounding whitespace is
// ignored. Errors say what is wrong and never contain the input.
func ParseMasterKey(s string) (MasterKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return MasterKey{}, errors.New("seal: master key is empty; " + generateHint)
	}
	b, ok := decodeBase64(s)
	if !ok {
		return MasterKey{}, fmt.Errorf("seal: master key (%d characters) is not base64; %s", len(s), generateHint)
	}
	defer clear(b)
	if len(b) != keySize {
		return MasterKey{}, fmt.Errorf("seal: master key decodes to %d bytes, want %d; %s", len(b), keySize, generateHint)
	}
	k := new([keySize]byte)
	copy(k[:], b)
	return MasterKey{key: hide(k)}, nil
}

func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// LoadMasterKeyFile reads a master key written by GenerateMasterKeyFile (or
// any file holding what ParseMasterKey accepts). It refuses a file that its
// group or others may read.
func LoadMasterKeyFile(path string) (MasterKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return MasterKey{}, fmt.Errorf("seal: master key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return MasterKey{}, fmt.Errorf("seal: master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return MasterKey{}, fmt.Errorf("seal: master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return MasterKey{}, fmt.Errorf("seal: master key file %s has mode %04o, readable beyond its owner; run `chmod 600 %s`", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return MasterKey{}, fmt.Errorf("seal: master key file %s: %w", path, err)
	}
	defer clear(b)
	m, err := ParseMasterKey(string(b))
	if err != nil {
		return MasterKey{}, fmt.Errorf("%w (in %s)", err, path)
	}
	return m, nil
}

// GenerateMasterKeyFile creates path with mode 0600, writes a new master key
// to it as standard base64 and a newline, and returns the key. It fails,
// leaving the file alone, if path already exists.
func GenerateMasterKeyFile(path string) (MasterKey, error) {
	m, err := NewMasterKey()
	if err != nil {
		return MasterKey{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return MasterKey{}, fmt.Errorf("seal: creating master key file: %w", err)
	}
	_, err = io.WriteString(f, m.Encode()+"\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return MasterKey{}, fmt.Errorf("seal: writing master key file: %w", err)
	}
	return m, nil
}

// Encode returns the key as standard base64, the form ParseMasterKey and the
// key file take. It returns "" for the zero MasterKey.
func (m MasterKey) Encode() string {
	if m.key == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(m.key()[:])
}

// String returns a fixed placeholder; the key is never printed.
func (m MasterKey) String() string { return masterKeyRedacted }

// GoString returns a fixed placeholder; the key is never printed.
func (m MasterKey) GoString() string { return masterKeyRedacted }

// LogValue returns a fixed placeholder; the key is never logged.
func (m MasterKey) LogValue() slog.Value { return slog.StringValue(masterKeyRedacted) }

// Derive returns a 32-byte secret for one purpose, derived from the master
// key with HMAC-SHA-256 over the label (e.g. the key of shared velocity
// pseudonyms, which every node of a cluster must agree on). Different labels
// give independent secrets; the master key cannot be recovered from one.
func (m MasterKey) Derive(label string) []byte {
	if m.key == nil {
		return nil
	}
	mac := hmac.New(sha256.New, m.key()[:])
	mac.Write([]byte("ringfence/seal derive\x00" + label))
	return mac.Sum(nil)
}
