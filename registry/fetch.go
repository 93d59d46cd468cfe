package registry

import (
	"context"
	"net/http"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// Fetcher fills a miss: when a manifest pull (GET or HEAD) finds nothing,
// the registry asks its fetchers in turn. A fetcher that knows where the
// manifest lives (a pull-through upstream) fetches it and stores it through
// the service methods, then returns nil, and the registry looks again,
// once. A fetcher with nothing to offer returns an error IsNotFound
// accepts; the client then gets the original 404. Any other error is the
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

// lookupManifest resolves ref in repo and loads the manifest, asking the
// fetchers when it is not there.
func (r *Registry) lookupManifest(req *http.Request, repo string, ref reference, raw string) (digest.Digest, *storage.Manifest, error) {
	d, m, err := r.findManifest(req, repo, ref)
	if err == nil || !IsNotFound(err) || len(r.fetchers) == 0 {
		return d, m, err
	}
	miss := err
	for _, f := range r.fetchers {
		ferr := f.FetchManifest(req.Context(), repo, raw)
		if ferr == nil {
			return r.findManifest(req, repo, ref)
		}
		if !IsNotFound(ferr) {
			return "", nil, ferr
		}
	}
	return "", nil, miss
}

func (r *Registry) findManifest(req *http.Request, repo string, ref reference) (digest.Digest, *storage.Manifest, error) {
	d, err := r.resolve(req, repo, ref)
	if err != nil {
		return "", nil, err
	}
	m, err := r.meta.GetManifest(req.Context(), repo, d)
	if err != nil {
		if IsNotFound(err) {
			return "", nil, ociErr(http.StatusNotFound, codeManifestUnknown, "manifest %s not found in repository %s", d, repo)
		}
		return "", nil, err
	}
	return d, m, nil
}
