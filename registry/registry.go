package registry

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/packreg/packreg/storage"
)

// Registry serves the OCI distribution API over a blob store and a metadata store.
type Registry struct {
	blobs storage.BlobStore
	meta  storage.Metadata
	log   *slog.Logger

	deleteEnabled bool
	maxBlobSize   int64
	uploadTTL     time.Duration
	maxPage       int
	now           func() time.Time // stamps manifest pushes

	subscribers []Subscriber
	admitters   []Admitter
	gates       []PullGate
	fetchers    []Fetcher
	// inlineConfig: config media types whose bytes candidates carry.
	inlineConfig []string
	locks        [64]sync.Mutex // upload-id stripes: one writer per session per process

	// Observers of finished collections and scrubs (metrics).
	gcObservers    []func(*GCReport)
	scrubObservers []func(*ScrubReport, time.Duration, error)

	// copyBufs holds the buffers of blob bodies that are not files (copyBlob).
	copyBufs sync.Pool

	handlerOnce sync.Once
	handler     http.Handler // ServeHTTP's router of Routes
}

// Option configures a Registry.
type Option func(*Registry)

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.log = l } }

// WithDeleteEnabled turns blob, manifest and tag deletion on or off (default on).
// When off, DELETE routes answer 405 UNSUPPORTED.
func WithDeleteEnabled(on bool) Option { return func(r *Registry) { r.deleteEnabled = on } }

// WithMaxBlobSize caps a single blob; 0 means no cap.
func WithMaxBlobSize(n int64) Option { return func(r *Registry) { r.maxBlobSize = n } }

// WithUploadTTL sets how long an idle upload session lives (default 24h).
func WithUploadTTL(d time.Duration) Option { return func(r *Registry) { r.uploadTTL = d } }

// WithMaxPageSize clamps n on tag and catalog listings (default 1000).
func WithMaxPageSize(n int) Option { return func(r *Registry) { r.maxPage = n } }

// WithClock replaces time.Now as the time manifest pushes are stamped with
// (the first push of a digest is when signing windows start) and as the
// janitor's now, against which idle uploads expire, for tests.
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// WithGCObserver calls f with every finished collection (its record: dry
// or not, times, counts, error): a metrics package counts runs with it.
func WithGCObserver(f func(*GCReport)) Option {
	return func(r *Registry) { r.gcObservers = append(r.gcObservers, f) }
}

// WithScrubObserver calls f with every finished scrub, how long it took
// and its error.
func WithScrubObserver(f func(*ScrubReport, time.Duration, error)) Option {
	return func(r *Registry) { r.scrubObservers = append(r.scrubObservers, f) }
}

// New returns a registry over blobs and meta.
func New(blobs storage.BlobStore, meta storage.Metadata, opts ...Option) *Registry {
	r := &Registry{
		blobs:         blobs,
		meta:          meta,
		log:           slog.Default(),
		deleteEnabled: true,
		uploadTTL:     24 * time.Hour,
		maxPage:       1000,
		now:           time.Now,
	}
	for _, o := range opts {
		o(r)
	}

	return r
}
