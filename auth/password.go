package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/ccr-infuse/infuse/internal/apperr"
)

// Params are the argon2id parameters of a password hash. A stored hash carries its own, so
// raising them later applies to new passwords and leaves old hashes verifiable.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams are OWASP's Password Storage Cheat Sheet's first argon2id configuration
// (m=19 MiB, t=2, p=1), which RFC 9106 §4 allows for memory-constrained servers: on this
// project's 2-core machine one hash takes ~25–40 ms and 19 MiB, so a burst of sign-ins cannot
// exhaust the server's memory, while an attacker with a stolen hash pays 19 MiB per guess.
// The 16-byte salt and 32-byte key are RFC 9106's recommendation.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Password rules (rule AU2): long enough to resist guessing, short enough that hashing it
// cannot be abused. No composition rules (NIST SP 800-63B §5.1.1.2).
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// CheckPassword applies the password rules (AU2).
func CheckPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return apperr.New(apperr.Invalid, RulePassword, "a password must be valid text")
	case n < MinPasswordLen:
		return apperr.New(apperr.Invalid, RulePassword, "a password needs at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return apperr.New(apperr.Invalid, RulePassword, "a password may have at most %d characters", MaxPasswordLen)
	case utf8.RuneCountInString(strings.Join(strings.Fields(pw), "")) < MinPasswordLen/2:
		// Spaces count towards the length, as in a pass phrase, but cannot be most of it.
		return apperr.New(apperr.Invalid, RulePassword, "a password needs at least %d characters that are not spaces", MinPasswordLen/2)
	}
	return nil
}

// HashPassword returns the argon2id hash of pw in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$key, unpadded standard base64), with a fresh random salt.
func HashPassword(pw string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", apperr.Wrap("auth.HashPassword", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches hash, comparing in constant time.
func VerifyPassword(hash, pw string) (bool, error) {
	p, salt, key, err := decodeHash(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

func decodeHash(hash string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, apperr.Wrap("auth.decodeHash", fmt.Errorf("not an argon2id hash"))
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, apperr.Wrap("auth.decodeHash", fmt.Errorf("argon2 version %q", parts[2]))
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, apperr.Wrap("auth.decodeHash", err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, apperr.Wrap("auth.decodeHash", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return p, nil, nil, apperr.Wrap("auth.decodeHash", fmt.Errorf("bad key"))
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
