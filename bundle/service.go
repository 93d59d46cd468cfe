package bundle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/storage"
)

// Store is what the bundle package keeps in the metadata store: its
// imports and chains, and the audit trail it reads (an export's history,
// what changed since a cursor) and writes (exports and imports).
type Store interface {
	storage.Bundles
	storage.AuditLog
}

// Service exports bundles of this registry and imports bundles of others.
type Service struct {
	reg       mirror.LocalRegistry
	index     mirror.PackIndex
	store     Store
	lifecycle mirror.LifecycleSetter
	verifier  Verifier
	signer    *Signer
	source    string
	limits    Limits
	spoolDir  string
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	base    context.Context // background imports run under it (Run)
	stopped bool            // Run's ctx ended: no import starts publishing (wg.Add would race wg.Wait)
	wg      sync.WaitGroup
}

// Option configures a Service.
type Option func(*Service)

// WithSigner signs the bundles this registry exports; without one they
// are unsigned (and an import must allow that).
func WithSigner(s *Signer) Option { return func(sv *Service) { sv.signer = s } }

// WithVerifier checks the signatures of the bundles this registry
// imports (attest's key ring); without one every bundle is unsigned.
func WithVerifier(v Verifier) Option { return func(sv *Service) { sv.verifier = v } }

// WithLifecycleSetter applies the lifecycle states a bundle carries
// (the pack service); without one states are not applied.
func WithLifecycleSetter(l mirror.LifecycleSetter) Option {
	return func(sv *Service) { sv.lifecycle = l }
}

// WithSource names this registry in the bundles it exports (default: the
// host name).
func WithSource(name string) Option { return func(sv *Service) { sv.source = name } }

// WithLimits bounds each import (default DefaultLimits).
func WithLimits(l Limits) Option { return func(sv *Service) { sv.limits = l } }

// WithSpoolDir is where imports stage what they receive (default the
// system's temporary directory).
func WithSpoolDir(dir string) Option { return func(sv *Service) { sv.spoolDir = dir } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(sv *Service) { sv.log = l } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(sv *Service) { sv.now = now } }

// New returns the service over the registry (what it exports from and
// imports into, through the copy engine), its pack index and the store.
func New(reg mirror.LocalRegistry, index mirror.PackIndex, store Store, opts ...Option) *Service {
	s := &Service{reg: reg, index: index, store: store, limits: DefaultLimits, spoolDir: os.TempDir(),
		log: slog.Default(), now: func() time.Time { return time.Now().UTC() }, base: context.Background()}
	for _, o := range opts {
		o(s)
	}
	if s.source == "" {
		s.source, _ = os.Hostname()
	}
	return s
}

// Run gives the imports that outlive their request (they publish after
// answering 202) a context that ends with ctx, and returns once ctx has
// ended and they have stopped. An import stopped that way is failed and
// may be sent again.
func (s *Service) Run(ctx context.Context) {
	s.mu.Lock()
	s.base, s.stopped = ctx, false
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.wg.Wait()
}

// background runs fn on a goroutine Run waits for, under Run's context,
// unless Run has stopped: an import whose bundle arrives during shutdown
// (the server drains requests after its background work was told to
// stop) would otherwise publish after Run returned, over stores being
// closed. False when fn was not started.
func (s *Service) background(fn func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	ctx := s.base
	go func() {
		defer s.wg.Done()
		fn(ctx)
	}()
	return true
}

// Wait returns once no import is publishing (tests).
func (s *Service) Wait() { s.wg.Wait() }

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newChain names a new chain of bundles.
func newChain() string { return "c-" + randomID(10) }
