package attest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// The one-word verification of a version.
const (
	// Verified: a current signature verified by a key trusted when it was
	// recorded, no invalid signature or attestation, and every attestation
	// type the policy requires verified too.
	Verified = "verified"
	// Unsigned: no signature, or a required attestation is missing.
	Unsigned = "unsigned"
	// Invalid: a signature or attestation failed: altered, malformed, about
	// another digest, or not verified by the key it names.
	Invalid = "invalid"
	// Untrusted: signed, but by no key trusted at the time.
	Untrusted = "untrusted"
)

// StatusMissing is the status of a finding the policy asked for and no
// record provides.
const StatusMissing = "missing"

// Finding is one signature or attestation as reported: the stored check
// judged by the key ring as it is now.
type Finding struct {
	Kind          string        `json:"kind"`
	Format        string        `json:"format,omitempty"`
	Referrer      digest.Digest `json:"referrer,omitempty"`
	KeyID         string        `json:"keyId,omitempty"`
	KeyName       string        `json:"keyName,omitempty"`
	KeyState      string        `json:"keyState,omitempty"`
	Algorithm     string        `json:"algorithm,omitempty"`
	PredicateType string        `json:"predicateType,omitempty"`
	// Status is verified, failed, unverifiable or missing.
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	Recorded   *time.Time `json:"recorded,omitempty"`
	VerifiedAt *time.Time `json:"verifiedAt,omitempty"`
	Superseded *time.Time `json:"superseded,omitempty"`
	// Identity is the signer of a keyless signature: the certificate's
	// issuer and subject, source repository and ref, when it was signed.
	Identity *Signer `json:"identity,omitempty"`
}

// Report is everything attest knows about one manifest.
type Report struct {
	Repository   string        `json:"repository"`
	Digest       digest.Digest `json:"digest"`
	Verification string        `json:"verification"`
	Signatures   []Finding     `json:"signatures"`
	Attestations []Finding     `json:"attestations"`
	Policy       PolicyResult  `json:"policy"`
}

// PolicyResult says whether the manifest meets the policy of its repository.
type PolicyResult struct {
	// Matched is false when no policy covers the repository (permissive).
	Matched              bool     `json:"matched"`
	RequireSignature     bool     `json:"requireSignature,omitempty"`
	VerifyBeforeVisible  bool     `json:"verifyBeforeVisible,omitempty"`
	RequiredAttestations []string `json:"requiredAttestations,omitempty"`
	Satisfied            bool     `json:"satisfied"`
	// Pending: the policy says "verify before visible" and the version is
	// not verified yet, so pack listings leave it out and tags do not
	// resolve for pulls.
	Pending  bool     `json:"pending,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// MaxSupersededShown bounds the superseded findings a report lists, the
// most recently superseded first: each cosign sign in the tag schema
// supersedes a manifest that holds every earlier signature, so the
// history grows faster than the signatures that count.
const MaxSupersededShown = 32

// Evaluate reports on manifest d of repo from the stored records and the
// key ring as it is now, so a retired or revoked key changes the answer
// without re-checking any signature: the current findings, which decide,
// and the most recently superseded ones, which do not.
func (s *Service) Evaluate(ctx context.Context, repo string, d digest.Digest) (*Report, error) {
	return s.evaluate(ctx, repo, d, MaxSupersededShown)
}

// evaluate is Evaluate listing at most history superseded findings; the
// pull gate asks for none.
func (s *Service) evaluate(ctx context.Context, repo string, d digest.Digest, history int) (*Report, error) {
	tn, err := s.trustNow(ctx)
	if err != nil {
		return nil, err
	}
	return s.evaluateWith(ctx, s.forRepo(tn, repo), repo, d, history)
}

// Subject names a manifest to evaluate.
type Subject struct {
	Repo   string
	Digest digest.Digest
}

// EvaluateMany is Evaluate for each of subjects, in order, reading the
// key ring and the trusted roots once and the records of all subjects
// together: a listing page, or compliance's pass over every version, asks
// for a report on each, and two record queries per report were nearly all
// of a page's queries (2,000 for a 1,000-item page). Each lists at most
// history superseded findings (MaxSupersededShown as Evaluate; 0 for a
// verdict alone).
func (s *Service) EvaluateMany(ctx context.Context, subjects []Subject, history int) ([]*Report, error) {
	tn, err := s.trustNow(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]storage.AttestSubject, len(subjects))
	for i, sub := range subjects {
		keys[i] = storage.AttestSubject{Repo: sub.Repo, Subject: sub.Digest}
	}
	current, superseded, err := s.st.AttestRecordsBySubjects(ctx, keys, s.cfg.maxRecords()+1, history)
	if err != nil {
		return nil, err
	}
	out := make([]*Report, len(subjects))
	for i, sub := range subjects {
		out[i] = s.judge(s.forRepo(tn, sub.Repo), sub.Repo, sub.Digest, current[keys[i]], superseded[keys[i]])
	}
	return out, nil
}

// evaluateWith is evaluate under tn, the trust of repo.
func (s *Service) evaluateWith(ctx context.Context, tn trusted, repo string, d digest.Digest, history int) (*Report, error) {
	recs, err := s.st.AttestRecordsBySubject(ctx, repo, d, s.cfg.maxRecords()+1)
	if err != nil {
		return nil, err
	}
	old, err := s.st.SupersededAttestRecords(ctx, repo, d, history)
	if err != nil {
		return nil, err
	}
	return s.judge(tn, repo, d, recs, old), nil
}

// judge reports on manifest d of repo under tn from recs, its current records
// (at most max records + 1), and old, its superseded ones.
func (s *Service) judge(tn trusted, repo string, d digest.Digest, recs, old []storage.AttestRecord) *Report {
	max := s.cfg.maxRecords()
	rep := &Report{Repository: repo, Digest: d, Signatures: []Finding{}, Attestations: []Finding{}}
	if len(recs) > max {
		// More than the pull path reads: the rest is unknown, and unknown
		// is not verified.
		recs = recs[:max]
		rep.Signatures = append(rep.Signatures, Finding{Kind: KindSignature, Status: storage.SigFailed,
			Reason: fmt.Sprintf("limit: more than %d signature records about this manifest (attest.max_records_per_subject); the rest were not read", max)})
	}
	for _, rec := range append(recs, old...) {
		f := finding(rec, tn)
		if rec.Kind == KindSignature {
			rep.Signatures = append(rep.Signatures, f)
		} else {
			rep.Attestations = append(rep.Attestations, f)
		}
	}
	s.judgeReport(rep, s.cfg.PolicyFor(repo))
	return rep
}

func (s *Service) keyMap(ctx context.Context) (map[string]*storage.Key, error) {
	keys, err := s.st.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	return keyMap(keys), nil
}

func keyMap(keys []*storage.Key) map[string]*storage.Key {
	m := make(map[string]*storage.Key, len(keys))
	for _, k := range keys {
		m[k.ID] = k
	}
	return m
}

// trusted is what a stored record is judged by when reported: the key
// ring, the trusted roots and the identities of the repository's policy,
// as they are now.
type trusted struct {
	keys  map[string]*storage.Key
	roots map[string]string // trusted root name → digest
	ids   []verify.CertificateIdentity
}

// trustNow reads the key ring and the trusted roots; forRepo adds the
// identities repo's policy names. A store that lists both in one read
// (storage.TrustLister) is asked once, as fresh as two reads: no trust
// change is missed. Only a root not parsed yet needs its document, and
// the two reads that bring it.
func (s *Service) trustNow(ctx context.Context) (trusted, error) {
	if tl, ok := s.st.(storage.TrustLister); ok {
		keys, refs, err := tl.ListTrust(ctx)
		if err != nil {
			return trusted{}, err
		}
		if roots, ok := s.rootsKnown(refs); ok {
			return trusted{keys: keyMap(keys), roots: roots}, nil
		}
	}
	keys, err := s.keyMap(ctx)
	if err != nil {
		return trusted{}, err
	}
	ts, err := s.trust(ctx)
	if err != nil {
		return trusted{}, err
	}
	tn := trusted{keys: keys, roots: make(map[string]string, len(ts.roots))}
	for _, r := range ts.roots {
		tn.roots[r.name] = r.digest
	}
	return tn, nil
}

func (s *Service) forRepo(tn trusted, repo string) trusted {
	tn.ids = nil
	if i := s.cfg.policyIndex(repo); i >= 0 {
		tn.ids = s.ids[i]
	}
	return tn
}

// finding applies the key ring, or for a keyless signature the trusted
// roots and identities, to a stored record. A signature the bytes prove
// is only "verified" if its key vouched for it when it was recorded, or
// if the root that verified it is still trusted as it was and the
// policy names its signer.
func finding(rec storage.AttestRecord, tn trusted) Finding {
	f := Finding{
		Kind: rec.Kind, Format: rec.Format, Referrer: rec.Referrer, KeyID: rec.KeyID,
		Algorithm: rec.Algorithm, PredicateType: rec.PredicateType,
		Status: rec.Status, Reason: rec.Reason,
		Recorded: timePtr(rec.Recorded), VerifiedAt: timePtr(rec.Checked), Superseded: timePtr(rec.Superseded),
	}
	if p, ok := decodeProof(rec.Keyless); ok {
		f.Identity = signerOf(p)
		if rec.Status == storage.SigVerified {
			if why := tn.judgeKeyless(p, f.Identity); why != "" {
				f.Status, f.Reason = storage.SigUnverifiable, why
			}
		}
		return f
	}
	k := tn.keys[rec.KeyID]
	if k != nil {
		f.KeyName, f.KeyState = k.Name, k.State
	}
	if rec.Status == storage.SigVerified {
		why := judge(k, rec.Recorded)
		if why == "" && !k.HasUsage(storage.KeyUsageSignatures) {
			why = fmt.Sprintf("key %s (%s) is not trusted for signatures", short(k.ID), k.Name)
		}
		if why != "" {
			f.Status, f.Reason = storage.SigUnverifiable, why
		}
	}
	return f
}

// judgeKeyless is the verdict on a verified keyless signature now: ""
// when its root is trusted as it was and the policy names its signer,
// else why not.
func (tn trusted) judgeKeyless(p *keylessProof, who *Signer) string {
	switch d, ok := tn.roots[p.Root]; {
	case !ok:
		return fmt.Sprintf("keyless signature by %s, verified by trusted root %s, which is no longer trusted", who, p.Root)
	case d != p.RootDigest:
		return fmt.Sprintf("keyless signature by %s: trusted root %s changed since it was checked, and it is being checked again", who, p.Root)
	case len(tn.ids) == 0:
		return fmt.Sprintf("keyless signature by %s: the repository's policy names no identity (attest.policies[].identities)", who)
	case matchIdentity(tn.ids, p.Identity) < 0:
		return fmt.Sprintf("keyless signature by %s, an identity the repository's policy does not name", who)
	}
	return ""
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// judgeReport sets the verification word and the policy result from the
// current (not superseded) findings.
func (s *Service) judgeReport(rep *Report, p *Policy) {
	var anyFailed, anySig, sigOK bool
	verifiedTypes := map[string]bool{}
	for _, f := range rep.Signatures {
		if f.Superseded != nil {
			continue
		}
		anySig = true
		anyFailed = anyFailed || f.Status == storage.SigFailed
		sigOK = sigOK || f.Status == storage.SigVerified
	}
	for _, f := range rep.Attestations {
		if f.Superseded != nil {
			continue
		}
		anyFailed = anyFailed || f.Status == storage.SigFailed
		if f.Status == storage.SigVerified {
			verifiedTypes[f.PredicateType] = true
		}
	}
	res := PolicyResult{Matched: p != nil}
	var missing []string
	if p != nil {
		res.RequireSignature, res.VerifyBeforeVisible = p.RequireSignature, p.VerifyBeforeVisible
		res.RequiredAttestations = p.RequiredAttestations
		for _, t := range p.RequiredAttestations {
			if !verifiedTypes[t] && !slices.Contains(missing, t) {
				missing = append(missing, t)
				rep.Attestations = append(rep.Attestations, Finding{Kind: KindAttestation, PredicateType: t,
					Status: StatusMissing, Reason: "the policy requires a verified attestation of this type"})
			}
		}
	}
	switch {
	case anyFailed:
		rep.Verification = Invalid
	case !anySig:
		rep.Verification = Unsigned
	case !sigOK:
		rep.Verification = Untrusted
	case len(missing) > 0:
		rep.Verification = Unsigned
	default:
		rep.Verification = Verified
	}
	if anyFailed {
		res.Problems = append(res.Problems, "a signature or attestation is invalid")
	}
	if p != nil && (p.RequireSignature || p.VerifyBeforeVisible) && rep.Verification != Verified && !anyFailed {
		res.Problems = append(res.Problems, "no signature by a trusted key or identity ("+rep.Verification+")")
	}
	for _, t := range missing {
		res.Problems = append(res.Problems, "no verified attestation of type "+t)
	}
	res.Satisfied = len(res.Problems) == 0
	res.Pending = p != nil && p.VerifyBeforeVisible && !res.Satisfied
	rep.Policy = res
}

// CheckPull implements registry.PullGate. Where the policy requires
// signatures, a manifest is served only when its report meets the policy,
// or by digest within the policy's signing window after its first push.
// Where it says "verify before visible", a version that does not is
// pending: not pullable by tag, though still by digest, which is how
// cosign fetches what it signs. Signature and attestation manifests of
// other manifests are exempt (they are verified by what they hold, and
// cosign must fetch them to verify): see exempt.
func (s *Service) CheckPull(ctx context.Context, repo string, d digest.Digest, tag string) ([]string, error) {
	p := s.cfg.PolicyFor(repo)
	if p == nil || !p.RequireSignature && !(p.VerifyBeforeVisible && tag != "") {
		return nil, nil
	}
	m, err := s.src.Manifest(ctx, repo, d.String())
	if err != nil {
		return nil, err
	}
	if ok, err := s.exempt(ctx, repo, m, tag); err != nil || ok {
		return nil, err
	}
	if tag == "" && p.SigningWindow > 0 && s.now().Sub(m.Created) < p.SigningWindow {
		return nil, nil // being signed: see Policy.SigningWindow (Created is the first push)
	}
	rep, err := s.evaluate(ctx, repo, d, 0)
	if err != nil {
		return nil, err
	}
	switch {
	case rep.Policy.Satisfied:
		return nil, nil
	case p.RequireSignature:
		return nil, oci.Errorf(oci.ErrDenied, "pull of %s@%s refused by the signature policy: %s (verification: %s)",
			repo, d, strings.Join(rep.Policy.Problems, "; "), rep.Verification)
	}
	return nil, oci.Errorf(oci.ErrDenied, "%s:%s is pending until it is verified (%s): pull it by digest to sign it",
		repo, tag, strings.Join(rep.Policy.Problems, "; "))
}

// maxExemptProbe bounds the records read to decide an exemption.
const maxExemptProbe = 8

// exempt reports whether m is a signature or attestation manifest of
// another manifest, which the signature policy does not gate: never a
// pack (WithGatedTypes), only a manifest that holds nothing but
// signatures, and only once attest has indexed it as being about another
// subject. That is a manifest with a subject field, or the target of a
// sha256-<hex>.sig/.att tag whose payload names that digest (a record
// that did not fail: a failed one may be about another digest). Media
// types alone prove nothing: anyone can give a pack DSSE layers.
//
// A signature manifest pulled before the worker indexed it (cosign
// verify right after cosign sign) is indexed here, once: after that it
// has records, and whatever they say, this does not index it again.
func (s *Service) exempt(ctx context.Context, repo string, m *storage.Manifest, tag string) (bool, error) {
	if s.gated != nil && s.gated(m.ArtifactType) {
		return false, nil
	}
	sm, err := ParseSignatureManifest(m.Payload)
	if err != nil || sm == nil || len(sm.Items) != sm.Layers {
		return false, nil
	}
	recs, err := s.st.AttestRecordsByReferrer(ctx, repo, m.Digest, maxExemptProbe)
	if err != nil {
		return false, err
	}
	if len(recs) == 0 {
		hint := sm.Subject
		if hint == "" {
			hint, _, _ = TagSubject(tag)
		}
		if hint == "" || hint == m.Digest {
			return false, nil // about nothing, or about itself
		}
		tagged := sm.Subject == "" // pulled by its tag-schema tag, which points here
		if recs, err = s.Index(ctx, repo, m.Digest, hint, tagged); err != nil {
			return false, err
		}
	}
	for _, r := range recs {
		if r.Subject != m.Digest && (sm.Subject != "" || r.Status != storage.SigFailed) {
			return true, nil
		}
	}
	return false, nil
}

var _ registry.PullGate = (*Service)(nil)

// String is the report in one line, for logs.
func (r *Report) String() string {
	return fmt.Sprintf("%s@%s: %s (%d signatures, %d attestations)", r.Repository, r.Digest, r.Verification, len(r.Signatures), len(r.Attestations))
}
