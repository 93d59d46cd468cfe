package storage

import (
	"context"
	"slices"
	"time"

	"github.com/packreg/packreg/digest"
)

// Key states. A key is judged by its state and validity window at the time a
// signature was recorded: retiring closes the window (NotAfter), revoking
// withdraws trust from everything the key ever signed.
const (
	KeyActive  = "active"
	KeyRetired = "retired"
	KeyRevoked = "revoked"
)

// Key is a public key of the attest key ring.
type Key struct {
	// ID is the lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo:
	// the same bytes a sigstore bundle's publicKey hint hashes.
	ID        string
	Name      string // unique, chosen by the operator
	PEM       string // the PUBLIC KEY block as given
	Algorithm string // "ecdsa-p256", "rsa-3072", "ed25519"...
	State     string // KeyActive, KeyRetired or KeyRevoked
	// NotBefore and NotAfter bound when a signature may be recorded to count;
	// the zero time means no bound.
	NotBefore time.Time
	NotAfter  time.Time
	// Usage says what the key is trusted to vouch for (KeyUsage*): a key
	// trusted for bundles only never verifies a signature of a version,
	// nor one for signatures only a bundle. Never empty once stored; a
	// key stored before usages existed reads as {KeyUsageSignatures}.
	Usage   []string
	Created time.Time
	Updated time.Time
}

// Key usages: what a key of the ring is trusted to sign.
const (
	// KeyUsageSignatures: signatures and attestations of what the
	// registry holds (cosign).
	KeyUsageSignatures = "signatures"
	// KeyUsageBundles: offline bundles exported by another registry.
	KeyUsageBundles = "bundles"
)

// HasUsage reports whether k is trusted for usage.
func (k *Key) HasUsage(usage string) bool { return slices.Contains(k.Usage, usage) }

// Outcomes of the check of one signature, as stored. They say what the bytes
// prove, not whether the key is trusted today: attest applies the key's
// state and window when it reports.
const (
	// SigVerified: the signature verifies with KeyID over content about Subject.
	SigVerified = "verified"
	// SigFailed: malformed, about another digest, altered content, or a
	// signature that a key it names does not verify. Never trusted.
	SigFailed = "failed"
	// SigUnverifiable: well formed and about Subject, but no known key
	// verifies it.
	SigUnverifiable = "unverifiable"
)

// AttestRecord is one signature or attestation found in a referrer manifest
// (one simple-signing layer, one DSSE signature, one bundle), about one
// subject. Records are keyed by (Repo, Subject, Referrer, Index): one
// referrer reached as the signature of two subjects (a .sig manifest
// tagged for another digest too) has records about each, and checking it
// for one never rewrites what was found for the other.
type AttestRecord struct {
	Repo     string
	Referrer digest.Digest // the manifest that holds it
	Index    int           // its position in the referrer (layer, DSSE signature)
	Kind     string        // "signature" or "attestation"
	Format   string        // how it was stored: "cosign-tag", "cosign-oci11", "sigstore-bundle"...
	Subject  digest.Digest // the manifest it is about
	// KeyID is the key that verified it (SigVerified), or the key the
	// signature names (bundle hint, DSSE keyid) when that key failed it.
	KeyID         string
	Algorithm     string
	PredicateType string
	// SigHash is the hex SHA-256 of the raw signature bytes: the same
	// signature found over other content betrays an altered payload.
	SigHash string
	// PayloadDigest is the digest of the signed bytes (payload layer, DSSE payload).
	PayloadDigest digest.Digest
	Status        string // SigVerified, SigFailed or SigUnverifiable
	Reason        string // why, for failed and unverifiable
	// Recorded is when packreg first saw it; keys are judged at this time,
	// and re-checks keep it.
	Recorded time.Time
	Checked  time.Time // when the last check ran
	// Superseded is when a newer signature replaced it (a .sig tag moved,
	// a rotation through the API); zero while it counts.
	Superseded time.Time
	// Keyless is what a certificate (Fulcio, "keyless") signature proves,
	// as attest encodes it (JSON: the signer's identity, the trusted root
	// that verified it, when it was signed and how that was proven); ""
	// for a key signature. storage keeps it whole and reads nothing in it.
	Keyless string
}

// TrustedRoot is a Sigstore trusted root added through the API: the
// Fulcio CAs, Rekor and CT log keys and timestamp authorities keyless
// signatures are verified against, offline.
type TrustedRoot struct {
	Name    string // unique, chosen by the operator
	JSON    []byte // trusted_root.json as given
	Digest  string // hex SHA-256 of JSON
	Created time.Time
}

// TrustLister is an optional Attest ability: the key ring (ListKeys) and
// the name and digest of every trusted root (ListTrustedRoots without
// the documents), in one read. attest judges every report, listing page
// and gated pull by them; two reads each before.
type TrustLister interface {
	ListTrust(ctx context.Context) ([]*Key, []RootRef, error)
}

// RootRef names a trusted root and the digest of its document, by name.
type RootRef struct{ Name, Digest string }

// AttestSubject names a manifest of a repository that records are about.
type AttestSubject struct {
	Repo    string
	Subject digest.Digest
}

// AttestCursor positions a walk over all records, in (Repo, Subject,
// Referrer, Index) order.
type AttestCursor struct {
	Repo     string
	Subject  digest.Digest
	Referrer digest.Digest
	Index    int
}

// Attest is the attest package's part of the store: the key ring, the
// trusted roots added through the API and the signature records.
type Attest interface {
	// CreateKey stores k, and records evs (Blobs explains them) with it;
	// ErrConflict when its ID or Name is taken.
	CreateKey(ctx context.Context, k *Key, evs ...Event) error
	// GetKey returns the key, or ErrNotFound.
	GetKey(ctx context.Context, id string) (*Key, error)
	// ListKeys returns every key, oldest first.
	ListKeys(ctx context.Context) ([]*Key, error)
	// UpdateKey stores k's State, NotBefore, NotAfter and Updated, and
	// records evs with them; ErrNotFound if absent.
	UpdateKey(ctx context.Context, k *Key, evs ...Event) error

	// PutAttestRecords replaces the records about subject found in
	// referrer of repo with recs (each about subject), in one
	// transaction; records of referrer about other subjects stay. A
	// record whose Index existed before keeps its Recorded time, and a
	// record of a Kind that was superseded in referrer stays superseded
	// at that time: a re-check must neither move when a signature was
	// seen nor bring back one a newer signature replaced. Only
	// SupersedeAttestRecords changes Superseded once it is stored.
	PutAttestRecords(ctx context.Context, repo string, subject, referrer digest.Digest, recs []AttestRecord) error
	// DeleteAttestRecords removes the records of referrer in repo about
	// subject, or about every subject when subject is "" (the referrer is
	// gone). None is not an error.
	DeleteAttestRecords(ctx context.Context, repo string, subject, referrer digest.Digest) error
	// SupersedeAttestRecords marks, at at, the current records of subject in
	// repo of kind and format (any format when empty) whose referrer is not
	// keep, makes keep's records of kind current again (a tag moved back
	// to it), in one transaction, and returns how many it marked.
	SupersedeAttestRecords(ctx context.Context, repo string, subject digest.Digest, kind, format string, keep digest.Digest, at time.Time) (int, error)
	// AttestRecordsBySubject lists at most n current (not superseded)
	// records about subject in repo, oldest first: what the caps count
	// and the verdict reads. Callers ask for one more than they can use
	// to learn that there are more: the pull gate reads this on every
	// pull, so however many superseded records a subject has, it reads
	// none of them.
	AttestRecordsBySubject(ctx context.Context, repo string, subject digest.Digest, n int) ([]AttestRecord, error)
	// SupersededAttestRecords lists at most n superseded records about
	// subject in repo, the most recently superseded first: the history
	// a report shows.
	SupersededAttestRecords(ctx context.Context, repo string, subject digest.Digest, n int) ([]AttestRecord, error)
	// AttestRecordsBySubjects is AttestRecordsBySubject with n and
	// SupersededAttestRecords with history for each of subjects, each list
	// in the same order, in a few queries rather than two per subject: a
	// listing page reports on every version it holds. A subject without
	// records has no entry in a map.
	AttestRecordsBySubjects(ctx context.Context, subjects []AttestSubject, n, history int) (current, superseded map[AttestSubject][]AttestRecord, err error)
	// AttestRecordsByReferrer lists at most n records found in referrer
	// of repo, about any subject, in (Subject, Index) order.
	AttestRecordsByReferrer(ctx context.Context, repo string, referrer digest.Digest, n int) ([]AttestRecord, error)
	// AttestRecordsByKey lists the records whose KeyID is keyID, oldest first.
	AttestRecordsByKey(ctx context.Context, keyID string) ([]AttestRecord, error)
	// AttestRecordsBySigHash lists the records whose SigHash is h.
	AttestRecordsBySigHash(ctx context.Context, h string) ([]AttestRecord, error)
	// AttestRecordsWithStatus walks the records with status after the
	// cursor, up to n, in cursor order.
	AttestRecordsWithStatus(ctx context.Context, status string, after AttestCursor, n int) ([]AttestRecord, error)

	// CreateTrustedRoot stores r and records evs with it; ErrConflict
	// when its Name is taken.
	CreateTrustedRoot(ctx context.Context, r *TrustedRoot, evs ...Event) error
	// ListTrustedRoots returns every trusted root, by name.
	ListTrustedRoots(ctx context.Context) ([]*TrustedRoot, error)
	// DeleteTrustedRoot removes the root and records evs with it;
	// ErrNotFound if absent.
	DeleteTrustedRoot(ctx context.Context, name string, evs ...Event) error
}
