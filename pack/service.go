package pack

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Registry is the part of *registry.Registry packs use: publishing goes
// through the same validation, admission and events as an OCI push.
type Registry interface {
	PushBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader) error
	PushManifest(ctx context.Context, repo, ref, mediaType string, payload []byte, tags ...string) (digest.Digest, error)
	Manifest(ctx context.Context, repo, ref string) (*storage.Manifest, error)
	// ClaimedDigest is what a version tag is bound to for good (not found
	// when nothing is).
	ClaimedDigest(ctx context.Context, repo, tag string) (digest.Digest, error)
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error)
}

// Service is the pack registry: it admits or refuses manifests by
// policy, names the pack index changes of each push and delete (written
// by the registry's own transaction, index.go), gates pulls by lifecycle,
// and publishes, lists and retires packs for the REST API.
type Service struct {
	store      storage.Packs // the pack index; its writes carry their audit records
	reg        Registry
	policy     Policy
	log        *slog.Logger
	spoolDir   string
	maxPublish int64
	now        func() time.Time
	verifier   VerificationReporter // verification.go
}

// Option configures a Service.
type Option func(*Service)

// WithPolicy sets the policy (default: DefaultPolicy()).
func WithPolicy(p Policy) Option { return func(s *Service) { s.policy = p } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithSpoolDir sets where the files of a REST publish wait, beyond a
// small in-memory budget, while they are hashed (default: os.TempDir();
// cmd passes a directory under the data directory).
func WithSpoolDir(dir string) Option { return func(s *Service) { s.spoolDir = dir } }

// WithMaxPublishSize caps one publish request in bytes (default and for
// n <= 0: DefaultMaxPublishSize), whatever the pack size policy says.
func WithMaxPublishSize(n int64) Option {
	return func(s *Service) {
		if n > 0 {
			s.maxPublish = n
		}
	}
}

// New returns a service over the pack index store. It needs its registry (Attach) before
// it serves: the registry is built with the service's hooks, so the two
// are wired in two steps.
func New(store storage.Packs, opts ...Option) *Service {
	s := &Service{store: store, policy: DefaultPolicy(), log: slog.Default(), spoolDir: os.TempDir(),
		maxPublish: DefaultMaxPublishSize,
		now:        func() time.Time { return time.Now().UTC() }}
	for _, o := range opts {
		o(s)
	}
	return s
}

// RegistryOptions are the hooks to build the registry with: the
// admission policy, which also claims version tags and keeps the pack
// index in the registry's own transactions (index.go), the pack config
// handed to it with each push, and the pull gate.
func (s *Service) RegistryOptions() []registry.Option {
	return []registry.Option{
		registry.WithAdmitter(s),
		registry.WithInlineConfig(oci.MediaTypePackConfig),
		registry.WithPullGate(s),
	}
}

// Attach gives the service the registry it publishes through and reads
// manifests from. Call it once, before serving.
func (s *Service) Attach(reg Registry) { s.reg = reg }

// Policy returns the policy in force.
func (s *Service) Policy() Policy { return s.policy }

var errNotAttached = errors.New("pack: service used before Attach")

func (s *Service) attached() (Registry, error) {
	if s.reg == nil {
		return nil, errNotAttached
	}
	return s.reg, nil
}
