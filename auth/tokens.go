package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// MaxTokenSize bounds a token before anything parses it.
	MaxTokenSize = 8 << 10
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway = 30 * time.Second
	// maxScopes bounds the resources one token may carry.
	maxScopes = 16
)

// ErrBadToken is any token that does not verify: its detail is logged at
// debug level, never shown (it would help forge one).
var ErrBadToken = errors.New("invalid or expired token")

// Scope is one resource of a token request or grant: "repository:NAME:pull,push".
type Scope struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// ParseScope parses a scope parameter of the token request. The name may
// hold ':' only in the middle part; the last part is the actions.
func ParseScope(s string) (Scope, bool) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Scope{}, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return Scope{}, false
	}
	name, acts := rest[:i], rest[i+1:]
	sc := Scope{Type: typ, Name: name}
	for a := range strings.SplitSeq(acts, ",") {
		if a != "" {
			sc.Actions = append(sc.Actions, a)
		}
	}
	return sc, true
}

func (s Scope) String() string { return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",") }

// Claims are a token's JWT claims: the registered ones and the grants.
type Claims struct {
	jwt.RegisteredClaims
	Access []Scope `json:"access"`
}

// Grant returns the actions the token grants on repository repo.
func (c *Claims) Grant(repo string) Action {
	var a Action
	for _, s := range c.Access {
		if s.Type != "repository" || s.Name != repo {
			continue
		}
		for _, n := range s.Actions {
			if x, ok := ParseAction(n); ok {
				a |= x
			}
		}
	}
	return a
}

// Registry reports whether the token grants registry:<name>:* ("catalog",
// "admin").
func (c *Claims) Registry(name string) bool {
	for _, s := range c.Access {
		if s.Type == "registry" && s.Name == name {
			return true
		}
	}
	return false
}

// Signer issues and verifies tokens with one key.
type Signer struct {
	key     crypto.Signer
	method  jwt.SigningMethod
	issuer  string
	service string
	ttl     time.Duration
	parser  *jwt.Parser
}

// NewSigner returns a signer of tokens for service, issued by issuer and
// valid for ttl. now is the clock verification reads (time.Now in
// production; tests move it).
func NewSigner(key crypto.Signer, issuer, service string, ttl time.Duration, now func() time.Time) (*Signer, error) {
	m, err := methodOf(key)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, method: m, issuer: issuer, service: service, ttl: ttl,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{m.Alg()}), // the allow-list: exactly our key's
			jwt.WithAudience(service),
			jwt.WithIssuer(issuer),
			jwt.WithLeeway(Leeway),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(now),
		)}, nil
}

// Alg is the JWT algorithm of the signer's key.
func (s *Signer) Alg() string { return s.method.Alg() }

// Public is the verification key.
func (s *Signer) Public() crypto.PublicKey { return s.key.Public() }

// TTL is how long an issued token is valid.
func (s *Signer) TTL() time.Duration { return s.ttl }

func methodOf(key crypto.Signer) (jwt.SigningMethod, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("token key: ECDSA keys must be on P-256 (ES256)")
		}
		return jwt.SigningMethodES256, nil
	case ed25519.PrivateKey:
		return jwt.SigningMethodEdDSA, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("token key: RSA keys must have at least 2048 bits")
		}
		return jwt.SigningMethodRS256, nil
	}
	return nil, fmt.Errorf("token key: unsupported key type %T (want ECDSA P-256, Ed25519 or RSA)", key)
}

// Issue signs a token for subject with the granted scopes, issued at now.
func (s *Signer) Issue(subject string, access []Scope, now time.Time) (string, error) {
	id := make([]byte, 12)
	rand.Read(id)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{s.service},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        fmt.Sprintf("%x", id),
		},
		Access: access,
	}
	return jwt.NewWithClaims(s.method, c).SignedString(s.key)
}

// Verify parses and checks a token: size, algorithm, signature, exp, nbf,
// iat, aud and iss. Every failure is ErrBadToken (wrapping the reason).
func (s *Signer) Verify(token string) (*Claims, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadToken, MaxTokenSize)
	}
	var c Claims
	_, err := s.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.key.Public(), nil })
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if c.Subject == "" || len(c.Access) > maxScopes {
		return nil, fmt.Errorf("%w: no subject or too many scopes", ErrBadToken)
	}
	return &c, nil
}

// LoadKey reads a PEM private key (PKCS#8, SEC 1 EC or PKCS#1 RSA).
func LoadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return parseKey(path, data)
}

func parseKey(path string, data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("token key %s: no PEM block", path)
	}
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("token key %s: PEM block %q is not a private key", path, b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("token key %s: %v", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("token key %s: %T cannot sign", path, k)
	}
	if _, err := methodOf(s); err != nil {
		return nil, err
	}
	return s, nil
}

// LoadOrCreateKey reads the key at path, or makes a P-256 key there (mode
// 0600) when there is none: the first start of a server without a
// configured key. Two replicas starting together on one data directory
// both end with the key that was written first.
func LoadOrCreateKey(path string) (crypto.Signer, error) {
	if _, err := os.Stat(path); err == nil {
		return LoadKey(path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("token key: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	// Written aside, then linked into place: link fails when the name
	// exists, so a replica never reads a half-written key.
	f, err := os.CreateTemp(filepath.Dir(path), ".token-key-*")
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(0o600)
	if err == nil {
		err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if err := os.Link(tmp, path); errors.Is(err, os.ErrExist) {
		return LoadKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return k, nil
}
