package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// inspect turns a manifest into the records of the signatures it holds:
// none when it is not a signature or attestation manifest, or when nothing
// says what it is about. Outside errors (storage down) are returned; every
// fault of the content itself becomes a failed record.
func (s *Service) inspect(ctx context.Context, r *ring, repo string, m *storage.Manifest, hint digest.Digest) ([]storage.AttestRecord, error) {
	now := s.now().UTC()
	base := storage.AttestRecord{Repo: repo, Referrer: m.Digest, Subject: hint, Recorded: now, Checked: now}
	sm, err := ParseSignatureManifest(m.Payload)
	if err != nil {
		if hint == "" {
			return nil, nil // not about anything we know of
		}
		rec := base
		rec.Kind, rec.Format = KindSignature, FormatCosignTag
		failf(&rec, "%v", err)
		return []storage.AttestRecord{rec}, nil
	}
	if sm == nil {
		return nil, nil
	}
	if sm.Subject != "" {
		base.Subject = sm.Subject
	}
	if base.Subject == "" {
		return nil, nil
	}
	base.Format = sm.Format
	c := &checker{s: s, r: r, repo: repo, subject: base.Subject}
	var out []storage.AttestRecord
	for _, it := range sm.Items {
		rec := base
		rec.Index = it.Index * maxEnvelopeSigs
		b, err := readBlob(ctx, s.src, repo, it.Digest, it.Size, maxDocument)
		switch {
		case errors.Is(err, errAltered):
			rec.Kind = itemKind(it)
			failf(&rec, "%v", err)
			out = append(out, rec)
			continue
		case errors.Is(err, oci.ErrBlobUnknown):
			rec.Kind = itemKind(it)
			failf(&rec, "layer blob %s is missing", it.Digest)
			out = append(out, rec)
			continue
		case err != nil:
			return nil, err
		}
		switch it.MediaType {
		case oci.MediaTypeCosignSimpleSigning:
			out = append(out, c.simpleSigning(ctx, rec, it, b))
		case oci.MediaTypeDSSE:
			rec.Kind = KindAttestation
			env, err := ParseEnvelope(b)
			if err != nil {
				failf(&rec, "%v", err)
				out = append(out, rec)
				continue
			}
			if it.Cert != nil {
				e, err := certEntityOf(it.Cert, &sgbundle.Envelope{Envelope: env.dsse()})
				if err != nil {
					failf(&rec, "%v", err)
					out = append(out, rec)
					continue
				}
				out = append(out, c.keylessEnvelope(rec, env, e))
				continue
			}
			out = append(out, c.envelope(ctx, rec, env, "")...)
		default:
			out = append(out, c.bundle(ctx, rec, b)...)
		}
	}
	return out, nil
}

func itemKind(it SigItem) string {
	if it.MediaType == oci.MediaTypeCosignSimpleSigning {
		return KindSignature
	}
	return KindAttestation
}

func failf(rec *storage.AttestRecord, format string, args ...any) {
	rec.Status = storage.SigFailed
	rec.Reason = clip2(fmt.Sprintf(format, args...))
}

// clip2 bounds a stored reason; the longest honest ones are about 200 bytes.
func clip2(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

// checker checks the items of one manifest.
type checker struct {
	s       *Service
	r       *ring
	repo    string
	subject digest.Digest
}

// simpleSigning: the signature annotation over the exact layer bytes, and
// the payload about this subject.
func (c *checker) simpleSigning(ctx context.Context, rec storage.AttestRecord, it SigItem, payload []byte) storage.AttestRecord {
	rec.Kind = KindSignature
	rec.PayloadDigest = it.Digest
	if it.SignatureErr != "" {
		failf(&rec, "%s", it.SignatureErr)
		return rec
	}
	_, about, err := ParseSimpleSigning(payload)
	if err != nil {
		failf(&rec, "%v", err)
		return rec
	}
	if it.Cert != nil {
		e, err := certEntityOf(it.Cert, messageContent(it.Signature, payload))
		if err != nil {
			failf(&rec, "%v", err)
			return rec
		}
		c.keyless(&rec, e, artifactBytes(payload))
	} else {
		c.verdict(ctx, &rec, it.Signature, payload, "")
	}
	if about != c.subject {
		c.about(&rec, "payload is about "+about.String())
	}
	return rec
}

// envelope: each DSSE signature over the PAE, and the in-toto statement
// about this subject. A statement of PredicateCosignSign is a signature.
func (c *checker) envelope(ctx context.Context, rec storage.AttestRecord, env *Envelope, claim string) []storage.AttestRecord {
	st, stErr := statementOf(&rec, env)
	msg := env.PAE()
	out := make([]storage.AttestRecord, 0, len(env.sigs))
	for j, sig := range env.sigs {
		r := rec
		r.Index = rec.Index + j
		if stErr != nil {
			failf(&r, "%v", stErr)
			out = append(out, r)
			continue
		}
		kc := claim
		if kc == "" {
			kc = keyIDClaim(env.Signatures[j].KeyID)
		}
		c.verdict(ctx, &r, sig, msg, kc)
		if !st.About(c.subject) {
			c.about(&r, "statement subjects do not include "+c.subject.String())
		}
		out = append(out, r)
	}
	return out
}

// statementOf reads the in-toto statement of env into rec: its predicate
// type, or the signature kind for PredicateCosignSign, and the digest of
// the signed bytes.
func statementOf(rec *storage.AttestRecord, env *Envelope) (*Statement, error) {
	rec.PayloadDigest = digest.FromBytes(digest.SHA256, env.PAE())
	st, err := ParseStatement(env.PayloadType, env.PayloadBytes())
	if err != nil {
		return nil, err
	}
	rec.PredicateType = st.PredicateType
	if st.PredicateType == PredicateCosignSign {
		rec.Kind = KindSignature
		rec.PredicateType = ""
	}
	return st, nil
}

// keylessEnvelope: a DSSE envelope signed with a certificate, as one
// record, its statement about this subject.
func (c *checker) keylessEnvelope(rec storage.AttestRecord, env *Envelope, entity verify.SignedEntity) storage.AttestRecord {
	st, err := statementOf(&rec, env)
	if err != nil {
		failf(&rec, "%v", err)
		return rec
	}
	c.keyless(&rec, entity, nil)
	if !st.About(c.subject) {
		c.about(&rec, "statement subjects do not include "+c.subject.String())
	}
	return rec
}

// bundle: a sigstore bundle holding a DSSE envelope or a message
// signature over the subject manifest's bytes.
func (c *checker) bundle(ctx context.Context, rec storage.AttestRecord, b []byte) []storage.AttestRecord {
	rec.Kind = KindAttestation
	bu, err := ParseBundle(b)
	if err != nil {
		failf(&rec, "%v", err)
		return []storage.AttestRecord{rec}
	}
	if bu.MessageSignature != nil {
		rec.Kind = KindSignature
	}
	var sb *sgbundle.Bundle
	if bu.Keyless() {
		// sigstore-go reads it again, into its own types, to verify it.
		sb = &sgbundle.Bundle{}
		if err := sb.UnmarshalJSON(b); err != nil {
			failf(&rec, "sigstore bundle: %v", err)
			return []storage.AttestRecord{rec}
		}
	}
	if bu.DSSEEnvelope != nil {
		if sb != nil {
			return []storage.AttestRecord{c.keylessEnvelope(rec, bu.DSSEEnvelope, sb)}
		}
		return c.envelope(ctx, rec, bu.DSSEEnvelope, bu.KeyHint())
	}
	rec.PayloadDigest = c.subject
	if c.subject.Algorithm() != digest.SHA256 || hex.EncodeToString(bu.messageDigest) != c.subject.Hex() {
		failf(&rec, "bundle messageDigest is not the subject %s", c.subject)
		return []storage.AttestRecord{rec}
	}
	m, err := c.s.src.Manifest(ctx, c.repo, c.subject.String())
	if err != nil {
		rec.Status = storage.SigUnverifiable
		rec.Reason = "the subject manifest is not in the repository (yet)"
		return []storage.AttestRecord{rec}
	}
	if sb != nil {
		c.keyless(&rec, sb, artifactBytes(m.Payload))
		return []storage.AttestRecord{rec}
	}
	c.verdict(ctx, &rec, bu.signature, m.Payload, bu.KeyHint())
	return []storage.AttestRecord{rec}
}

// keyIDClaim turns a DSSE keyid into a key ring id when it has that form
// (64 hex digits); any other keyid names no key packreg could know.
func keyIDClaim(k string) string {
	if len(k) != 64 {
		return ""
	}
	if _, err := hex.DecodeString(k); err != nil {
		return ""
	}
	return k
}

// verdict checks sig over msg against the ring and sets the outcome.
func (c *checker) verdict(ctx context.Context, rec *storage.AttestRecord, sig, msg []byte, claim string) {
	h := sha256.Sum256(sig)
	rec.SigHash = hex.EncodeToString(h[:])
	if rec.PayloadDigest == "" {
		rec.PayloadDigest = digest.FromBytes(digest.SHA256, msg)
	}
	m := c.r.check(sig, msg, claim)
	switch {
	case m.ok:
		rec.Status, rec.KeyID, rec.Algorithm = storage.SigVerified, m.keyID, m.alg
	case m.known:
		rec.KeyID = m.keyID
		failf(rec, "signature does not verify with key %s, which it names: content altered or signature forged", short(m.keyID))
	case m.claimed:
		rec.Status = storage.SigUnverifiable
		rec.Reason = fmt.Sprintf("signed by key %s, which is not in the key ring", short(m.keyID))
	default:
		if from := c.reused(ctx, rec); from != nil {
			rec.KeyID = from.KeyID
			failf(rec, "the same signature verified with key %s over other content (%s in %s): this content was altered",
				short(from.KeyID), from.Referrer, from.Repo)
			return
		}
		rec.Status = storage.SigUnverifiable
		rec.Reason = "no key in the key ring verifies this signature"
	}
}

// reused finds a record where the same signature bytes verified over other
// bytes. A signature lifted from verified content onto different content
// is an alteration, not an unknown key.
func (c *checker) reused(ctx context.Context, rec *storage.AttestRecord) *storage.AttestRecord {
	others, err := c.s.st.AttestRecordsBySigHash(ctx, rec.SigHash)
	if err != nil {
		c.s.log.WarnContext(ctx, "attest: signature reuse lookup failed", "err", err)
		return nil
	}
	for i := range others {
		o := &others[i]
		if o.Status == storage.SigVerified && o.PayloadDigest != rec.PayloadDigest {
			return o
		}
	}
	return nil
}

// about fails a record whose content is about another manifest, keeping
// the key that signed it (a real signature, for something else).
func (c *checker) about(rec *storage.AttestRecord, what string) {
	failf(rec, "%s, not %s: a signature for other content", what, c.subject)
}
