package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/packreg/packreg/internal/filestamp"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Trusted roots are Sigstore trusted_root.json documents (Fulcio CAs,
// Rekor and CT log keys, timestamp authorities, each with its validity
// window): from files named in the config (attest.trusted_roots,
// re-read when a file changes) and added through the API (stored in the
// metadata store). Nothing is fetched: the public-good root is a file
// the operator copies in (`cosign trusted-root create` or the TUF
// repository's trusted_root.json), a private Sigstore's is another.

// RootConfig is a trusted root read from a file.
type RootConfig struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"`
}

// Sources of a trusted root.
const (
	RootFromConfig = "config"
	RootFromAPI    = "api"
)

// Bounds: a public-good trusted_root.json is about 20 KiB; a registry
// trusts a handful of Sigstore deployments.
const (
	maxRootSize  = 4 << 20
	maxAPIRoots  = 32
	maxRootName  = 63
	rootNameText = "1 to 63 of a-z 0-9 . _ -, starting with a letter or digit"
)

// rootNameRE is compiled on first use (a trusted root added), not held
// from the server's start: the bounded repetition makes a ~50 KB program.
var rootNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
})

func checkRootName(n string) error {
	if !rootNameRE().MatchString(n) {
		return fmt.Errorf("%w: trusted root name %q: %s", ErrInvalid, clip(n), rootNameText)
	}
	return nil
}

// trustRoot is one parsed trusted root.
type trustRoot struct {
	name, digest, source, path string
	tm                         *root.TrustedRoot
}

// trustSet is the trusted roots as one check sees them, by name, and a
// digest of them all: the version of trust a record was checked under.
type trustSet struct {
	roots  []*trustRoot
	digest string
}

func newTrustSet(roots []*trustRoot) *trustSet {
	slices.SortFunc(roots, func(a, b *trustRoot) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	h := sha256.New()
	for _, r := range roots {
		fmt.Fprintf(h, "%s\x00%s\n", r.name, r.digest)
	}
	return &trustSet{roots: roots, digest: hex.EncodeToString(h.Sum(nil))}
}

func (ts *trustSet) byName(name string) *trustRoot {
	for _, r := range ts.roots {
		if r.name == name {
			return r
		}
	}
	return nil
}

// ParseTrustedRoot reads a trusted_root.json and returns it with its
// digest (hex SHA-256 of the bytes). Unknown fields are errors, and a
// root without a Fulcio CA verifies no keyless signature.
func ParseTrustedRoot(b []byte) (*root.TrustedRoot, string, error) {
	if len(b) > maxRootSize {
		return nil, "", fmt.Errorf("trusted root of %d bytes, at most %d", len(b), maxRootSize)
	}
	if err := checkJSON(b); err != nil {
		return nil, "", fmt.Errorf("trusted root: %w", err)
	}
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return nil, "", fmt.Errorf("trusted root: %v", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return nil, "", errors.New("trusted root: no certificate authority (Fulcio), so it verifies no keyless signature")
	}
	sum := sha256.Sum256(b)
	return tr, hex.EncodeToString(sum[:]), nil
}

// rootFiles keeps the file roots, re-read when a file changes, and the
// API roots parsed, by digest.
type rootFiles struct {
	mu     sync.Mutex
	files  []*fileRoot
	parsed map[string]*root.TrustedRoot // API roots by digest
}

type fileRoot struct {
	RootConfig
	stamp filestamp.Stamp
	cur   *trustRoot
}

// ReloadTrustedRoots reads the configured root files that changed since
// the last read (all of them the first time) and reports whether any
// root changed. A file that cannot be read or parsed keeps the root it
// had, and is an error; at startup that stops the server.
func (s *Service) ReloadTrustedRoots(ctx context.Context) (changed bool, err error) {
	s.rootFiles.mu.Lock()
	defer s.rootFiles.mu.Unlock()
	if s.rootFiles.files == nil {
		for _, rc := range s.cfg.TrustedRoots {
			s.rootFiles.files = append(s.rootFiles.files, &fileRoot{RootConfig: rc})
		}
	}
	var errs []error
	for _, f := range s.rootFiles.files {
		fi, err := os.Stat(f.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("attest.trusted_roots %s: %w", f.Name, err))
			continue
		}
		if f.cur != nil && f.stamp.Current(fi) {
			continue
		}
		b, err := filestamp.ReadMax(f.Path, maxRootSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("attest.trusted_roots %s: %w", f.Name, err))
			continue
		}
		tm, d, err := ParseTrustedRoot(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("attest.trusted_roots %s (%s): %w", f.Name, f.Path, err))
			continue
		}
		f.stamp.Read(fi, time.Now())
		if f.cur != nil && f.cur.digest == d {
			continue
		}
		if f.cur != nil {
			s.log.InfoContext(ctx, "attest: trusted root file changed", "root", f.Name, "path", f.Path, "digest", d)
		}
		f.cur = &trustRoot{name: f.Name, digest: d, source: RootFromConfig, path: f.Path, tm: tm}
		changed = true
	}
	return changed, errors.Join(errs...)
}

// trust returns the trusted roots now: the files as last read and the
// API's from the store. A name in both is the file's.
func (s *Service) trust(ctx context.Context) (*trustSet, error) {
	stored, err := s.st.ListTrustedRoots(ctx)
	if err != nil {
		return nil, err
	}
	rf := &s.rootFiles
	rf.mu.Lock()
	defer rf.mu.Unlock()
	var roots []*trustRoot
	names := map[string]bool{}
	for _, f := range rf.files {
		if f.cur != nil {
			roots = append(roots, f.cur)
			names[f.Name] = true
		}
	}
	for _, r := range stored {
		if names[r.Name] {
			continue
		}
		tm := rf.parsed[r.Digest]
		if tm == nil {
			if tm, _, err = ParseTrustedRoot(r.JSON); err != nil {
				// Checked on the way in; edited in the database since.
				s.log.ErrorContext(ctx, "attest: unusable trusted root", "root", r.Name, "err", err)
				continue
			}
			if rf.parsed == nil {
				rf.parsed = map[string]*root.TrustedRoot{}
			}
			rf.parsed[r.Digest] = tm
		}
		roots = append(roots, &trustRoot{name: r.Name, digest: r.Digest, source: RootFromAPI, tm: tm})
	}
	return newTrustSet(roots), nil
}

// rootsKnown is what trust would make of stored, by name → digest,
// when every stored root it would use was parsed before (trust keeps
// them by digest); ok is false when one was not: it may not parse, and
// trust, which reads the document, decides.
func (s *Service) rootsKnown(stored []storage.RootRef) (map[string]string, bool) {
	rf := &s.rootFiles
	rf.mu.Lock()
	defer rf.mu.Unlock()
	roots := make(map[string]string, len(rf.files)+len(stored))
	for _, f := range rf.files {
		if f.cur != nil {
			roots[f.Name] = f.cur.digest
		}
	}
	for _, r := range stored {
		if _, file := roots[r.Name]; file {
			continue
		}
		if rf.parsed[r.Digest] == nil {
			return nil, false
		}
		roots[r.Name] = r.Digest
	}
	return roots, true
}

// RootView is a trusted root as the API shows it.
type RootView struct {
	Name   string `json:"name"`
	Source string `json:"source"` // config or api
	Path   string `json:"path,omitempty"`
	Digest string `json:"digest"`
	// What it trusts, counted.
	CertificateAuthorities  int        `json:"certificateAuthorities"`
	TransparencyLogs        int        `json:"transparencyLogs"`
	CTLogs                  int        `json:"ctLogs"`
	TimestampingAuthorities int        `json:"timestampingAuthorities"`
	Created                 *time.Time `json:"createdAt,omitempty"`
}

func viewRoot(r *trustRoot, created time.Time) RootView {
	return RootView{Name: r.name, Source: r.source, Path: r.path, Digest: r.digest,
		CertificateAuthorities: len(r.tm.FulcioCertificateAuthorities()), TransparencyLogs: len(r.tm.RekorLogs()),
		CTLogs: len(r.tm.CTLogs()), TimestampingAuthorities: len(r.tm.TimestampingAuthorities()),
		Created: timePtr(created)}
}

// TrustedRoots lists every trusted root, by name.
func (s *Service) TrustedRoots(ctx context.Context) ([]RootView, error) {
	ts, err := s.trust(ctx)
	if err != nil {
		return nil, err
	}
	created, err := s.rootCreated(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RootView, 0, len(ts.roots))
	for _, r := range ts.roots {
		out = append(out, viewRoot(r, created[r.name]))
	}
	return out, nil
}

// TrustedRoot returns one trusted root and its document.
func (s *Service) TrustedRoot(ctx context.Context, name string) (RootView, []byte, error) {
	ts, err := s.trust(ctx)
	if err != nil {
		return RootView{}, nil, err
	}
	r := ts.byName(name)
	if r == nil {
		return RootView{}, nil, fmt.Errorf("trusted root %q: %w", name, storage.ErrNotFound)
	}
	created, err := s.rootCreated(ctx)
	if err != nil {
		return RootView{}, nil, err
	}
	doc, err := r.tm.MarshalJSON()
	if err != nil {
		return RootView{}, nil, err
	}
	return viewRoot(r, created[name]), doc, nil
}

func (s *Service) rootCreated(ctx context.Context) (map[string]time.Time, error) {
	stored, err := s.st.ListTrustedRoots(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]time.Time, len(stored))
	for _, r := range stored {
		m[r.Name] = r.Created
	}
	return m, nil
}

// Actions of the events (and audit records) of trusted root changes.
const (
	ActionRootAdd    = "trusted_root.add"
	ActionRootDelete = "trusted_root.delete"
)

func (s *Service) configRoot(name string) bool {
	for _, rc := range s.cfg.TrustedRoots {
		if rc.Name == name {
			return true
		}
	}
	return false
}

// AddTrustedRoot stores a trusted root; the worker then re-checks the
// keyless signatures (the trusted_root.add event).
func (s *Service) AddTrustedRoot(ctx context.Context, name string, doc []byte) (RootView, error) {
	if err := checkRootName(name); err != nil {
		return RootView{}, err
	}
	if s.configRoot(name) {
		return RootView{}, fmt.Errorf("trusted root %q is declared in the config file (attest.trusted_roots): %w", name, storage.ErrConflict)
	}
	tm, d, err := ParseTrustedRoot(doc)
	if err != nil {
		return RootView{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	stored, err := s.st.ListTrustedRoots(ctx)
	if err != nil {
		return RootView{}, err
	}
	if len(stored) >= maxAPIRoots {
		return RootView{}, fmt.Errorf("%w: %d trusted roots already, at most %d", ErrInvalid, len(stored), maxAPIRoots)
	}
	r := &storage.TrustedRoot{Name: name, JSON: doc, Digest: d, Created: s.now().UTC()}
	ev := storage.Event{Actor: registry.ActorFrom(ctx), Action: ActionRootAdd, Target: "trusted_root:" + name,
		Details: map[string]string{"digest": d}}
	if err := s.st.CreateTrustedRoot(ctx, r, ev); err != nil {
		return RootView{}, err
	}
	return viewRoot(&trustRoot{name: name, digest: d, source: RootFromAPI, tm: tm}, r.Created), nil
}

// DeleteTrustedRoot removes a trusted root added through the API; what
// it verified is no longer verified (reports say so at once), and the
// worker re-checks it against the roots left.
func (s *Service) DeleteTrustedRoot(ctx context.Context, name string) error {
	if s.configRoot(name) {
		return fmt.Errorf("trusted root %q is declared in the config file (attest.trusted_roots); remove it there: %w", name, storage.ErrConflict)
	}
	ev := storage.Event{Actor: registry.ActorFrom(ctx), Action: ActionRootDelete, Target: "trusted_root:" + name}
	return s.st.DeleteTrustedRoot(ctx, name, ev)
}

// recheckKeyless checks again every keyless record checked under another
// set of trusted roots than the current one: after a root was added,
// removed or changed (an API change, a file re-read, a restart with other
// files). Records already checked under this set are left alone, so a
// restart with the same roots re-checks nothing.
func (s *Service) recheckKeyless(ctx context.Context) error {
	return s.recheck(ctx, func(r *ring, rec storage.AttestRecord) bool {
		p, ok := decodeProof(rec.Keyless)
		return ok && p.RootsChecked != r.trust.digest
	}, storage.SigVerified, storage.SigUnverifiable, storage.SigFailed)
}
