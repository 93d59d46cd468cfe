package attest

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/packreg/packreg/storage"
)

// Keyless signatures: a short-lived Fulcio certificate bound to an OIDC
// identity signs, and a Rekor entry or an RFC 3161 timestamp proves when.
// sigstore-go verifies them against the trusted roots (roots.go), offline:
// the inclusion promise (signed entry timestamp) or inclusion proof and
// checkpoint in the signature, the timestamp's chain to a trusted
// authority, the certificate's chain to a trusted Fulcio CA at the proven
// signing time, the signature over the exact bytes. A record stores what
// that proves (keylessProof); whether the identity is trusted is the
// policy's word at report time (identity.go).

// How the signing time of a keyless signature was proven.
const (
	TimeFromLog = "transparency-log"    // a Rekor entry's integrated time
	TimeFromTSA = "timestamp-authority" // an RFC 3161 signed timestamp
)

// keylessProof is a record's Keyless: what the certificate and its
// evidence prove, in the record's own words.
type keylessProof struct {
	// Identity is the certificate's signer: OIDC issuer, subject
	// alternative name and Fulcio's extensions (source repository, ref,
	// workflow trigger...), as sigstore-go summarizes them.
	Identity certificate.Summary `json:"identity"`
	// Root and RootDigest name the trusted root that verified the
	// signature ("" when none did).
	Root       string `json:"root,omitempty"`
	RootDigest string `json:"rootDigest,omitempty"`
	// RootsChecked is the digest of the set of roots the check ran
	// against: a record checked under another set is checked again when
	// the set changes (recheckKeyless).
	RootsChecked string    `json:"rootsChecked"`
	SignedAt     time.Time `json:"signedAt,omitzero"`
	TimeSource   string    `json:"timeSource,omitempty"`
}

func decodeProof(s string) (*keylessProof, bool) {
	if s == "" {
		return nil, false
	}
	var p keylessProof
	if json.Unmarshal([]byte(s), &p) != nil {
		return nil, false
	}
	return &p, true
}

// certEntity is a keyless signature of the tag schema or OCI 1.1 layout as
// sigstore-go verifies it: cosign's layer annotations read into the parts
// of a sigstore bundle.
type certEntity struct {
	cert       *x509.Certificate
	content    verify.SignatureContent
	entries    []*tlog.Entry
	timestamps [][]byte
}

var _ verify.SignedEntity = (*certEntity)(nil)

func (e *certEntity) HasInclusionPromise() bool {
	for _, t := range e.entries {
		if t.HasInclusionPromise() {
			return true
		}
	}
	return false
}

func (e *certEntity) HasInclusionProof() bool {
	for _, t := range e.entries {
		if t.HasInclusionProof() {
			return true
		}
	}
	return false
}

func (e *certEntity) SignatureContent() (verify.SignatureContent, error) { return e.content, nil }
func (e *certEntity) Timestamps() ([][]byte, error)                      { return e.timestamps, nil }
func (e *certEntity) TlogEntries() ([]*tlog.Entry, error)                { return e.entries, nil }
func (e *certEntity) Version() (string, error)                           { return "v0.1", nil }
func (e *certEntity) VerificationContent() (verify.VerificationContent, error) {
	return bundle.NewCertificate(e.cert), nil
}

// maxCertMaterial bounds each annotation of keyless material: a Fulcio
// certificate is about 3 KiB, a Rekor entry a few more.
const maxCertMaterial = 256 << 10

// certEntityOf reads cosign's annotations: the leaf certificate (the
// chain is advice: the trusted root holds the CAs), the Rekor entry with
// its signed entry timestamp, and the RFC 3161 timestamp.
func certEntityOf(m *CertMaterial, content verify.SignatureContent) (*certEntity, error) {
	for _, a := range []string{m.Certificate, m.Chain, m.RekorBundle, m.Timestamp} {
		if len(a) > maxCertMaterial {
			return nil, fmt.Errorf("keyless annotation of %d bytes, at most %d", len(a), maxCertMaterial)
		}
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(m.Certificate))
	if err != nil || len(certs) != 1 {
		return nil, errors.New("certificate annotation is not one PEM certificate")
	}
	e := &certEntity{cert: certs[0], content: content}
	if m.RekorBundle != "" {
		entry, err := rekorEntry(m.RekorBundle)
		if err != nil {
			return nil, fmt.Errorf("rekor bundle annotation: %w", err)
		}
		e.entries = []*tlog.Entry{entry}
	}
	if m.Timestamp != "" {
		var ts struct {
			SignedRFC3161Timestamp string `json:"SignedRFC3161Timestamp"`
		}
		if err := decodeStrict([]byte(m.Timestamp), &ts); err != nil {
			return nil, fmt.Errorf("timestamp annotation: %w", err)
		}
		der, err := decodeBase64(ts.SignedRFC3161Timestamp)
		if err != nil || len(der) == 0 {
			return nil, errors.New("timestamp annotation: SignedRFC3161Timestamp is not base64")
		}
		e.timestamps = [][]byte{der}
	}
	return e, nil
}

// rekorEntry reads cosign's Rekor bundle: the canonical entry body, its
// integrated time, log index and log id, and the signed entry timestamp
// (the log's promise of inclusion) over them.
func rekorEntry(s string) (*tlog.Entry, error) {
	var rb struct {
		SignedEntryTimestamp string `json:"SignedEntryTimestamp"`
		Payload              struct {
			Body           string `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogIndex       int64  `json:"logIndex"`
			LogID          string `json:"logID"`
		} `json:"Payload"`
	}
	if err := decodeStrict([]byte(s), &rb); err != nil {
		return nil, err
	}
	body, err := decodeBase64(rb.Payload.Body)
	if err != nil || len(body) == 0 {
		return nil, errors.New("body is not base64")
	}
	set, err := decodeBase64(rb.SignedEntryTimestamp)
	if err != nil || len(set) == 0 {
		return nil, errors.New("SignedEntryTimestamp is not base64")
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil || len(logID) != sha256.Size {
		return nil, errors.New("logID is not a hex SHA-256")
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kv); err != nil || kv.Kind == "" || kv.APIVersion == "" {
		return nil, errors.New("body is not a Rekor entry")
	}
	return tlog.ParseTransparencyLogEntry(&protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: set},
		CanonicalizedBody: body,
	})
}

// messageContent is a message signature over payload, for sigstore-go.
func messageContent(sig, payload []byte) verify.SignatureContent {
	sum := sha256.Sum256(payload)
	return bundle.NewMessageSignature(sum[:], "SHA2_256", sig)
}

// keyless checks entity against the trusted roots and sets the record's
// outcome and Keyless. artifact gives, afresh for each root tried, what
// the signature must cover (nil: a DSSE envelope, whose subjects the
// caller checks). Every fault is "failed": the certificate is in the
// signature, so nothing is waiting for a key; only a registry with no
// trusted root at all leaves it unverifiable until one is added.
func (c *checker) keyless(rec *storage.AttestRecord, entity verify.SignedEntity, artifact func() verify.ArtifactPolicyOption) {
	ts := c.r.trust
	proof := keylessProof{RootsChecked: ts.digest}
	defer func() {
		b, err := json.Marshal(proof)
		if err != nil {
			panic(err) // strings and a time always marshal
		}
		rec.Keyless = string(b)
	}()
	if sc, err := entity.SignatureContent(); err == nil {
		h := sha256.Sum256(sc.Signature())
		rec.SigHash = hex.EncodeToString(h[:])
	}
	vc, err := entity.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		failf(rec, "keyless signature without a certificate")
		return
	}
	cert := vc.Certificate()
	rec.Algorithm = keyAlgorithm(cert.PublicKey)
	if proof.Identity, err = certificate.SummarizeCertificate(cert); err != nil {
		failf(rec, "certificate: %v", err)
		return
	}
	if len(ts.roots) == 0 {
		rec.Status = storage.SigUnverifiable
		rec.Reason = "keyless signature, and no trusted root is configured (attest.trusted_roots, /api/v1/trusted-roots)"
		return
	}
	res, tr, err := ts.verify(entity, artifact)
	if err != nil {
		failf(rec, "keyless signature does not verify: %v", err)
		return
	}
	rec.Status, rec.Reason = storage.SigVerified, ""
	proof.Root, proof.RootDigest = tr.name, tr.digest
	for _, t := range res.VerifiedTimestamps {
		if proof.SignedAt.IsZero() || t.Timestamp.Before(proof.SignedAt) {
			proof.SignedAt, proof.TimeSource = t.Timestamp.UTC(), TimeFromTSA
			if t.Type == "Tlog" {
				proof.TimeSource = TimeFromLog
			}
		}
	}
}

// verify tries each trusted root in turn; the first that verifies the
// whole signature wins. A signature's transparency log entries, when it
// has any, must verify; otherwise an RFC 3161 timestamp must prove the
// signing time. The current time never stands in for a proven one.
func (ts *trustSet) verify(entity verify.SignedEntity, artifact func() verify.ArtifactPolicyOption) (*verify.VerificationResult, *trustRoot, error) {
	opts := []verify.VerifierOption{verify.WithObserverTimestamps(1)}
	if entries, err := entity.TlogEntries(); err == nil && len(entries) > 0 {
		opts = append(opts, verify.WithTransparencyLog(1))
	}
	var errs []string
	for _, tr := range ts.roots {
		v, err := verify.NewVerifier(tr.tm, opts...)
		if err != nil {
			return nil, nil, err
		}
		a := verify.WithoutArtifactUnsafe()
		if artifact != nil {
			a = artifact()
		}
		res, err := v.Verify(entity, verify.NewPolicy(a, verify.WithoutIdentitiesUnsafe()))
		if err == nil {
			return res, tr, nil
		}
		errs = append(errs, fmt.Sprintf("trusted root %s: %v", tr.name, err))
	}
	return nil, nil, errors.New(strings.Join(errs, "; "))
}

// artifactBytes is the artifact policy of a message signature over b.
func artifactBytes(b []byte) func() verify.ArtifactPolicyOption {
	return func() verify.ArtifactPolicyOption { return verify.WithArtifact(bytes.NewReader(b)) }
}
