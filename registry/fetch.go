package registry

import (
	"context"
	"errors"
	"net/http"

	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Fetcher fills a miss: when a manifest pull (GET or HEAD) finds nothing,
// the registry asks its fetchers in turn. A fetcher that knows where the
// manifest lives (a pull-through upstream) fetches it and stores it through
// the service methods, then returns nil, and the registry looks again,
// once. A fetcher with nothing to offer returns an error that is
// storage.ErrNotFound or oci.ErrManifestUnknown; the client then gets the original 404. Any other error is the
// answer (wrap storage.ErrUnavailable for an unreachable upstream: 503).
//
// Only pulls over HTTP ask: the service methods never do, so a fetcher
// reading this registry cannot recurse into itself.
type Fetcher interface {
	FetchManifest(ctx context.Context, repo, ref string) error
}

// WithFetcher adds a fetcher for manifest pulls that miss.
func WithFetcher(f Fetcher) Option {
	return func(r *Registry) { r.fetchers = append(r.fetchers, f) }
}

// lookupManifest resolves ref in repo and loads what a pull serves of
// the manifest (manifestBody), asking the fetchers when it is not there.
// A fill is the client's doing: its events name the client
// (WithRequestActor), as any change over /v2/ does.
func (r *Registry) lookupManifest(req *http.Request, repo string, ref reference, raw string) (*storage.Manifest, error) {
	ctx := req.Context()
	m, err := r.manifestBody(ctx, repo, ref)
	if err == nil || !errors.Is(err, oci.ErrManifestUnknown) || len(r.fetchers) == 0 {
		return m, err
	}
	miss := err
	fill := asServer(WithRequestActor(req).Context())
	for _, f := range r.fetchers {
		ferr := f.FetchManifest(fill, repo, raw)
		if ferr == nil {
			return r.manifestBody(ctx, repo, ref)
		}
		if !errors.Is(ferr, storage.ErrNotFound) && !errors.Is(ferr, oci.ErrManifestUnknown) {
			return nil, ferr
		}
	}
	return nil, miss
}
