package digest

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Algorithms packreg accepts.
const (
	SHA256 = "sha256"
	SHA512 = "sha512"
)

// ErrInvalid reports a digest that is malformed or uses an unsupported algorithm.
var ErrInvalid = errors.New("invalid digest")

// Digest is a validated "algorithm:hex" string. The zero value is "no digest".
type Digest string

// Parse validates s. Only sha256 and sha512 with lowercase hex of the right
// length are accepted.
func Parse(s string) (Digest, error) {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("%w: %q has no algorithm", ErrInvalid, truncate(s))
	}
	n := hexLen(alg)
	if n == 0 {
		return "", fmt.Errorf("%w: unsupported algorithm %q", ErrInvalid, truncate(alg))
	}
	if len(hex) != n {
		return "", fmt.Errorf("%w: %s wants %d hex characters, got %d", ErrInvalid, alg, n, len(hex))
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("%w: %q is not lowercase hex", ErrInvalid, truncate(s))
		}
	}
	return Digest(s), nil
}

// Supported reports whether alg names an algorithm packreg accepts.
func Supported(alg string) bool { return hexLen(alg) != 0 }

func hexLen(alg string) int {
	switch alg {
	case SHA256:
		return 64
	case SHA512:
		return 128
	}
	return 0
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Algorithm returns the part before the colon.
func (d Digest) Algorithm() string {
	alg, _, _ := strings.Cut(string(d), ":")
	return alg
}

// Hex returns the part after the colon.
func (d Digest) Hex() string {
	_, hex, _ := strings.Cut(string(d), ":")
	return hex
}

func (d Digest) String() string { return string(d) }

// NewHash returns a fresh hash for alg, or nil when alg is not supported.
// Both hashes implement encoding.BinaryMarshaler, which upload sessions use to
// persist a running hash between requests.
func NewHash(alg string) hash.Hash {
	switch alg {
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	}
	return nil
}

// FromBytes returns the digest of b under alg.
func FromBytes(alg string, b []byte) Digest {
	h := NewHash(alg)
	h.Write(b)
	return FromHash(alg, h)
}

// FromHash formats the current sum of h.
func FromHash(alg string, h hash.Hash) Digest {
	return Digest(fmt.Sprintf("%s:%x", alg, h.Sum(nil)))
}

// MarshalHash returns the running state of h (from NewHash).
func MarshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("digest: hash state cannot be marshalled")
	}
	return m.MarshalBinary()
}

// RestoreHash returns a hash for alg resumed from state; empty state is a fresh hash.
func RestoreHash(alg string, state []byte) (hash.Hash, error) {
	h := NewHash(alg)
	if h == nil {
		return nil, fmt.Errorf("%w: unsupported algorithm %q", ErrInvalid, alg)
	}
	if len(state) == 0 {
		return h, nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("digest: restore %s state: %w", alg, err)
	}
	return h, nil
}
