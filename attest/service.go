package attest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Service is attest: it indexes signatures as they are pushed, keeps the
// key ring, reports and enforces. One per process; replicas share its
// records through the metadata store.
type Service struct {
	src       Source
	pub       Publisher
	st        Store
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	versions  VersionResolver
	cache     verifierCache
	gated     func(artifactType string) bool // never exempt from the pull gate
	ids       [][]verify.CertificateIdentity // compiled identities, by policy index
	rootFiles rootFiles                      // trusted roots from files (roots.go)

	wakeup chan struct{}   // the worker has events to look at (worker.go)
	settle storage.Settler // spaces drains started by wake-ups (settleTime)

	progress storage.Progress // Signal when the worker acknowledged events (Wait)
}

// Store is what attest keeps in the metadata store: keys, trusted roots and records, the
// outbox it takes its indexing work from, and the lease of the worker.
type Store interface {
	storage.Attest
	storage.Outbox
	storage.Leases
}

// VersionResolver maps a pack name and version to the repository and
// manifest digest they stand for. The default reads the tag: repository
// name, tag version.
type VersionResolver interface {
	ResolveVersion(ctx context.Context, name, version string) (repo string, d digest.Digest, err error)
}

// Option configures a Service.
type Option func(*Service)

// WithConfig sets the policies and the indexing batch size.
func WithConfig(c Config) Option { return func(s *Service) { s.cfg = c } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock replaces time.Now, for tests of validity windows.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithGatedTypes names the manifests the signature policy always gates,
// by artifact type (the pack types, from cmd: attest does not import
// pack), however much they look like signature manifests.
func WithGatedTypes(gated func(artifactType string) bool) Option {
	return func(s *Service) { s.gated = gated }
}

// ResolveVersionsWith sets the name/version lookup after New, for the pack
// index, which is itself built with attest's hooks. Call it before serving.
func (s *Service) ResolveVersionsWith(v VersionResolver) { s.versions = v }

// New returns a Service keeping its records in st. It needs its Source
// (Attach) before it serves: the registry is built with the service's
// hooks (CheckPull), so the two are wired in two steps. Key ring changes
// are recorded as events with the change (key.add, key.retire,
// key.revoke), which the audit trail records. Subscribe must have been
// called before the registry serves, and Run must be running, for pushes
// to be indexed.
func New(st Store, opts ...Option) *Service {
	s := &Service{st: st, log: slog.Default(), now: time.Now,
		wakeup: make(chan struct{}, 1), settle: storage.Settler{Window: settleTime}}
	for _, o := range opts {
		o(s)
	}
	s.ids = compileIdentities(&s.cfg)
	return s
}

// Attach gives the service what it reads signatures from and, when pub
// is not nil, where the API stores posted ones. Call it once, before
// serving.
func (s *Service) Attach(src Source, pub Publisher) {
	s.src, s.pub = src, pub
	if s.versions == nil {
		s.versions = tagResolver{src}
	}
}

// RegistryOptions are the hooks to build the registry with: the pull gate
// of the policy. Indexing takes its work from the store's outbox
// (Subscribe), not from registry subscribers, which a crash would miss.
func (s *Service) RegistryOptions() []registry.Option {
	return []registry.Option{registry.WithPullGate(s)}
}

// Config returns the configuration the service enforces.
func (s *Service) Config() Config { return s.cfg }

type tagResolver struct{ src Source }

func (t tagResolver) ResolveVersion(ctx context.Context, name, version string) (string, digest.Digest, error) {
	m, err := t.src.Manifest(ctx, name, version)
	if err != nil {
		return "", "", err
	}
	return name, m.Digest, nil
}

// loadRing reads the keys trusted for signatures, with every key's
// current state, and the trusted roots.
func (s *Service) loadRing(ctx context.Context) (*ring, error) {
	return s.loadRingFor(ctx, storage.KeyUsageSignatures)
}

// loadRingFor reads the keys trusted for usage: a key trusted for
// something else is not in the ring at all, so whatever it signed reads
// as signed by no known key.
func (s *Service) loadRingFor(ctx context.Context, usage string) (*ring, error) {
	keys, err := s.st.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := s.trust(ctx)
	if err != nil {
		return nil, err
	}
	r := &ring{byID: make(map[string]*ringKey, len(keys)), trust: ts}
	for _, k := range keys {
		if !k.HasUsage(usage) {
			continue
		}
		v, err := s.cache.get(k)
		if err != nil {
			// Keys are checked on the way in; a bad one here was edited
			// in the database. Skip it rather than stop verifying.
			s.log.ErrorContext(ctx, "unusable key in the key ring", "key", k.ID, "err", err)
			continue
		}
		rk := &ringKey{key: k, verifiers: v}
		r.keys = append(r.keys, rk)
		r.byID[k.ID] = rk
	}
	return r, nil
}

// Index (re)checks the signatures in manifest referrer of repo and stores
// the records. subject is the subject a tag-schema tag names ("" when the
// manifest was not found through one); tagged says the tag points at
// referrer now, so what it pointed at before is superseded.
func (s *Service) Index(ctx context.Context, repo string, referrer, subject digest.Digest, tagged bool) ([]storage.AttestRecord, error) {
	r, err := s.loadRing(ctx)
	if err != nil {
		return nil, err
	}
	return s.index(ctx, r, repo, referrer, subject, tagged)
}

func (s *Service) index(ctx context.Context, r *ring, repo string, referrer, hint digest.Digest, tagged bool) ([]storage.AttestRecord, error) {
	m, err := s.src.Manifest(ctx, repo, referrer.String())
	if errors.Is(err, oci.ErrManifestUnknown) {
		return nil, s.st.DeleteAttestRecords(ctx, repo, "", referrer)
	}
	if err != nil {
		return nil, err
	}
	recs, err := s.inspect(ctx, r, repo, m, hint)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		// Nothing about hint here; with no hint, nothing about anything
		// (a manifest with a subject field always yields records).
		return nil, s.st.DeleteAttestRecords(ctx, repo, hint, referrer)
	}
	subject, kind := recs[0].Subject, recs[0].Kind
	// The tag points here now: what it pointed at before is history, and
	// counts toward no cap (cosign's next signature repeats it anyway).
	moved := tagged && subject == hint && recs[0].Format == FormatCosignTag
	// Current records only: superseded ones count toward nothing, and a
	// re-check keeps a superseded signature superseded (PutAttestRecords).
	prev, err := s.st.AttestRecordsBySubject(ctx, repo, subject, s.cfg.maxRecords()+1)
	if err != nil {
		return nil, err
	}
	recs = s.capped(recs, prev, func(p storage.AttestRecord) bool {
		return moved && p.Kind == kind && p.Format == FormatCosignTag
	})
	firstSeen(recs, prev)
	if err := s.st.PutAttestRecords(ctx, repo, subject, referrer, recs); err != nil {
		return nil, err
	}
	if moved {
		if _, err := s.st.SupersedeAttestRecords(ctx, repo, subject, kind, FormatCosignTag, referrer, s.now().UTC()); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// firstSeen gives each record the Recorded time of the same signature
// (same kind, signature bytes and signed payload) already recorded about
// the subject, when that is earlier: cosign's tag schema repeats every
// earlier signature in each new .sig manifest, and a copy recorded anew
// would be judged against the keys valid at the re-sign, so a rotation
// followed by a re-sign made the old signature unverifiable.
func firstSeen(recs, prev []storage.AttestRecord) {
	type sig struct {
		kind, hash string
		payload    digest.Digest
	}
	seen := map[sig]time.Time{}
	for _, p := range prev {
		k := sig{p.Kind, p.SigHash, p.PayloadDigest}
		if t, ok := seen[k]; p.SigHash != "" && (!ok || p.Recorded.Before(t)) {
			seen[k] = p.Recorded
		}
	}
	for i, r := range recs {
		if t, ok := seen[sig{r.Kind, r.SigHash, r.PayloadDigest}]; ok && r.SigHash != "" && t.Before(r.Recorded) {
			recs[i].Recorded = t
		}
	}
}

// capped applies the caps per subject to the records of one referrer,
// given (at most max records + 1 of) the current records of the subject,
// of which those replaced says this referrer supersedes do not count: a
// referrer beyond them is not checked but stands as one failed finding
// that names the limit, so the subject never reads as verified from part
// of what it holds.
func (s *Service) capped(recs, prev []storage.AttestRecord, replaced func(storage.AttestRecord) bool) []storage.AttestRecord {
	referrer := recs[0].Referrer
	others := map[digest.Digest]bool{}
	n := 0
	for _, p := range prev {
		if p.Referrer != referrer && !replaced(p) {
			others[p.Referrer] = true
			n++
		}
	}
	var why string
	switch maxRefs, maxRecs := s.cfg.maxReferrers(), s.cfg.maxRecords(); {
	case len(others) >= maxRefs:
		why = fmt.Sprintf("limit: the subject already has %d referrers with signatures (attest.max_referrers_per_subject is %d); this one was not checked",
			len(others), maxRefs)
	case n+len(recs) > maxRecs:
		why = fmt.Sprintf("limit: %d signatures here and %d already recorded about the subject exceed attest.max_records_per_subject (%d); not checked",
			len(recs), n, maxRecs)
	default:
		return recs
	}
	rec := recs[0]
	rec.Index, rec.KeyID, rec.Algorithm, rec.PredicateType, rec.SigHash, rec.PayloadDigest = 0, "", "", "", "", ""
	failf(&rec, "%s", why)
	return []storage.AttestRecord{rec}
}

// Refresh re-reads every signature about subject in repo (tag-schema tags,
// referrers and what was indexed before) and checks each again: what
// `packreg verify` asks for, and what catches content altered at rest.
func (s *Service) Refresh(ctx context.Context, repo string, subject digest.Digest) error {
	r, err := s.loadRing(ctx)
	if err != nil {
		return err
	}
	type target struct {
		d, hint digest.Digest
		tagged  bool
	}
	seen := map[digest.Digest]bool{}
	var targets []target
	add := func(t target) {
		if !seen[t.d] {
			seen[t.d] = true
			targets = append(targets, t)
		}
	}
	// Tags first: they decide what is superseded.
	for _, kind := range []string{KindSignature, KindAttestation} {
		m, err := s.src.Manifest(ctx, repo, SchemaTag(subject, kind))
		switch {
		case err == nil:
			add(target{m.Digest, subject, true})
		case !errors.Is(err, oci.ErrManifestUnknown):
			return err
		}
	}
	refs, err := s.src.Referrers(ctx, repo, subject, "")
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	// Bounded like indexing: past the cap, index records the limit.
	if max := s.cfg.maxReferrers() + 1; len(refs) > max {
		refs = refs[:max]
	}
	for _, d := range refs {
		add(target{digest.Digest(d.Digest), "", false})
	}
	old, err := s.st.AttestRecordsBySubject(ctx, repo, subject, s.cfg.maxRecords()+1)
	if err != nil {
		return err
	}
	for _, rec := range old {
		add(target{rec.Referrer, subject, false})
	}
	var errs []error
	for _, t := range targets {
		if _, err := s.index(ctx, r, repo, t.d, t.hint, t.tagged); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.d, err))
		}
	}
	return errors.Join(errs...)
}
