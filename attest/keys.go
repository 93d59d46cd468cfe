package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/packreg/packreg/storage"
)

// ErrBadKey is wrapped by every reason a PEM key is refused.
var ErrBadKey = errors.New("unusable public key")

// maxPEM bounds a key submission; a 4096-bit RSA public key is under 1 KiB.
const maxPEM = 16 << 10

// PublicKey is a parsed trusted key.
type PublicKey struct {
	ID        string // hex SHA-256 of the DER SubjectPublicKeyInfo
	Algorithm string // "rsa-3072", "ecdsa-p256", "ed25519"
	PEM       string // re-encoded PUBLIC KEY block, canonical
	Key       crypto.PublicKey
}

// ParsePublicKey accepts exactly one PEM "PUBLIC KEY" block (PKIX) holding
// an RSA 2048/3072/4096, ECDSA P-256/P-384/P-521 or Ed25519 key, and
// nothing but whitespace around it. A private key is refused without
// repeating any of it.
func ParsePublicKey(text string) (*PublicKey, error) {
	if len(text) > maxPEM {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBadKey, maxPEM)
	}
	block, rest := pem.Decode([]byte(text))
	switch {
	case block == nil:
		return nil, fmt.Errorf("%w: no PEM block", ErrBadKey)
	case strings.Contains(block.Type, "PRIVATE"):
		return nil, fmt.Errorf("%w: that is a private key; send the PUBLIC KEY block (cosign.pub), and replace the private key if it was shared", ErrBadKey)
	case block.Type != "PUBLIC KEY":
		return nil, fmt.Errorf("%w: PEM block %q, want PUBLIC KEY", ErrBadKey, clip(block.Type))
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, fmt.Errorf("%w: data after the PEM block (one key per request)", ErrBadKey)
	}
	// cryptoutils is what cosign loads keys with, so both read a PEM alike.
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem.EncodeToMemory(block))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	if err := cryptoutils.ValidatePubKey(pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	sum := sha256.Sum256(der)
	return &PublicKey{
		ID:        hex.EncodeToString(sum[:]),
		Algorithm: keyAlgorithm(pub),
		PEM:       string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		Key:       pub,
	}, nil
}

func keyAlgorithm(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.Size()*8)
	case *ecdsa.PublicKey:
		return "ecdsa-" + strings.ToLower(strings.ReplaceAll(k.Curve.Params().Name, "-", ""))
	case ed25519.PublicKey:
		return "ed25519"
	}
	return "unknown"
}

// namedVerifier is one way a key may have signed: the scheme name goes in
// the record's algorithm.
type namedVerifier struct {
	name string
	v    signature.Verifier
}

// verifiersFor lists the schemes cosign v2.6.5 may have used with pub.
// Trying several is still exact: each is a full signature check by the
// same key over the same bytes.
//   - RSA: PKCS#1 v1.5 (cosign's default) and PSS, SHA-256.
//   - ECDSA: the curve's hash (SHA-384 for P-384, as cosign signs since
//     the sigstore algorithm registry), then SHA-256 (older cosign).
//   - Ed25519: Ed25519ph (cosign's default for images and attestations)
//     and pure Ed25519 (sign-blob without a transparency log).
func verifiersFor(pub crypto.PublicKey) ([]namedVerifier, error) {
	var out []namedVerifier
	add := func(name string, v signature.Verifier, err error) error {
		if err != nil {
			return err
		}
		out = append(out, namedVerifier{name, v})
		return nil
	}
	var err error
	switch k := pub.(type) {
	case *rsa.PublicKey:
		v, e := signature.LoadRSAPKCS1v15Verifier(k, crypto.SHA256)
		err = add("rsa-pkcs1v15-sha256", v, e)
		if err == nil {
			v2, e := signature.LoadRSAPSSVerifier(k, crypto.SHA256, nil)
			err = add("rsa-pss-sha256", v2, e)
		}
	case *ecdsa.PublicKey:
		hashes := []crypto.Hash{crypto.SHA256}
		switch k.Curve {
		case elliptic.P384():
			hashes = []crypto.Hash{crypto.SHA384, crypto.SHA256}
		case elliptic.P521():
			hashes = []crypto.Hash{crypto.SHA512, crypto.SHA256}
		}
		for _, h := range hashes {
			v, e := signature.LoadECDSAVerifier(k, h)
			if err = add(fmt.Sprintf("ecdsa-%s", strings.ToLower(strings.ReplaceAll(h.String(), "-", ""))), v, e); err != nil {
				break
			}
		}
	case ed25519.PublicKey:
		v, e := signature.LoadED25519phVerifier(k)
		err = add("ed25519ph", v, e)
		if err == nil {
			v2, e := signature.LoadED25519Verifier(k)
			err = add("ed25519", v2, e)
		}
	default:
		err = fmt.Errorf("%w: unsupported key type %T", ErrBadKey, pub)
	}
	return out, err
}

// ring is the key ring as one check sees it: every known key, whatever its
// state, so that a signature by a retired or revoked key is reported as
// such rather than as "unknown key".
type ring struct {
	keys  []*ringKey
	byID  map[string]*ringKey
	trust *trustSet // the trusted roots of keyless signatures
}

type ringKey struct {
	key       *storage.Key
	verifiers []namedVerifier
}

// verifierCache keeps parsed keys by id: a key's bytes never change, only
// its state, which comes fresh from the store with every ring.
type verifierCache struct {
	mu sync.Mutex
	m  map[string][]namedVerifier
}

func (c *verifierCache) get(k *storage.Key) ([]namedVerifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k.ID]; ok {
		return v, nil
	}
	pk, err := ParsePublicKey(k.PEM)
	if err != nil {
		return nil, err
	}
	if pk.ID != k.ID {
		return nil, fmt.Errorf("key %s: stored PEM hashes to %s", k.ID, pk.ID)
	}
	v, err := verifiersFor(pk.Key)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string][]namedVerifier{}
	}
	c.m[k.ID] = v
	return v, nil
}

// match is the outcome of checking one signature against the ring.
type match struct {
	keyID, alg string
	ok         bool
	// claimed: the signature named a key (bundle hint, DSSE keyid) and
	// only that key was tried.
	claimed bool
	known   bool // a claimed key is in the ring
}

// check verifies sig over msg with the claimed key when claim names one,
// else with every key of the ring.
func (r *ring) check(sig, msg []byte, claim string) match {
	if claim != "" {
		k, ok := r.byID[claim]
		if !ok {
			return match{keyID: claim, claimed: true}
		}
		m := k.check(sig, msg)
		m.claimed, m.known, m.keyID = true, true, claim
		return m
	}
	for _, k := range r.keys {
		if m := k.check(sig, msg); m.ok {
			m.keyID = k.key.ID
			return m
		}
	}
	return match{}
}

func (k *ringKey) check(sig, msg []byte) match {
	for _, v := range k.verifiers {
		if v.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)) == nil {
			return match{alg: v.name, ok: true}
		}
	}
	return match{}
}

// judge is a key's verdict on a signature recorded at t: "" when the key
// vouched for it then, else why not.
func judge(k *storage.Key, t time.Time) string {
	switch {
	case k == nil:
		return "the key is no longer in the key ring"
	case k.State == storage.KeyRevoked:
		return fmt.Sprintf("key %s (%s) is revoked", short(k.ID), k.Name)
	case !k.NotBefore.IsZero() && t.Before(k.NotBefore):
		return fmt.Sprintf("recorded %s, before key %s (%s) became valid on %s", stamp(t), short(k.ID), k.Name, stamp(k.NotBefore))
	case !k.NotAfter.IsZero() && !t.Before(k.NotAfter):
		return fmt.Sprintf("recorded %s, after key %s (%s) stopped being valid on %s", stamp(t), short(k.ID), k.Name, stamp(k.NotAfter))
	}
	return ""
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
