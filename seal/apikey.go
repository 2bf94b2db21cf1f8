package seal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// NewAPIKey returns a new bearer token prefix + "_" + base64url(32 random
// bytes), for example "rf_live_Zm9v...", and its hash, the only thing to
// store. The prefix must be non-empty ASCII letters, digits and underscores,
// so that a leaked key is recognisable (secret scanners) and splits cleanly.
func NewAPIKey(prefix string) (key string, hash [32]byte, err error) {
	if !validPrefix(prefix) {
		return "", hash, errors.New("seal: API key prefix must be non-empty ASCII letters, digits and underscores (like \"rf_live\")")
	}
	var b [32]byte
	rand.Read(b[:])
	key = prefix + "_" + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashAPIKey(key), nil
}

// HashAPIKey returns SHA-256 of the key as presented: the value to look a
// key up by. A plain hash suffices because keys carry 256 random bits.
func HashAPIKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }

func validPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, c := range []byte(p) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
