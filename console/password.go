package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/ringfence/ringfence/call"
)

// Argon2id parameters of new hashes: OWASP's minimum (19 MiB, 2 passes, 1
// lane). Stored hashes carry their own parameters, so raising these only
// affects passwords set afterwards.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	// MinPassword is the shortest password HashPassword accepts.
	MinPassword = 12
	maxPassword = 1024
)

// HashPassword returns the encoded argon2id hash of pw in the PHC string
// format ($argon2id$v=19$m=..,t=..,p=..$salt$hash). Invalid if pw is
// shorter than MinPassword or longer than 1024 bytes.
func HashPassword(pw string) ([]byte, error) {
	if len(pw) < MinPassword {
		return nil, call.Errorf(call.Invalid, "password: at least %d characters", MinPassword)
	}
	if len(pw) > maxPassword {
		return nil, call.Errorf(call.Invalid, "password: at most %d characters", maxPassword)
	}
	return hashPassword(pw), nil
}

// hashPassword is HashPassword without the length rules.
func hashPassword(pw string) []byte {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// VerifyPassword reports whether pw matches the encoded hash, in constant
// time over the derived key. An error means the hash is not one
// HashPassword makes (or has absurd parameters).
func VerifyPassword(encoded []byte, pw string) (bool, error) {
	parts := strings.Split(string(encoded), "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, fmt.Errorf("password hash: not argon2id")
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, fmt.Errorf("password hash: unsupported version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("password hash: parameters: %w", err)
	}
	if m < 8 || m > 1<<21 || t < 1 || t > 16 || p < 1 {
		return false, fmt.Errorf("password hash: parameters out of range")
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("password hash: salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, fmt.Errorf("password hash: key: %w", err)
	}
	if len(pw) > maxPassword {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
