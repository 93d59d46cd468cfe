package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/restclient"
)

// The packreg side of Remote: a remote that is itself a packreg has a
// pack index with lifecycle, which plain registries lack. Lifecycle
// travels through it, and upstream listings read it instead of the tags.

// packsPath is the pack REST API on every packreg.
const packsPath = "/api/v1/packs"

// api is the remote's REST API through internal/restclient, sent by do:
// the remote's timeout, its credentials (bound to its origin), the token
// flow and the guarded transport. Refusals are HTTPErrors, as those of
// its OCI API, so retries judge them alike.
func (r *Remote) api() *restclient.Client {
	return restclient.New(r.base.String(), apiDoer{r}, restclient.WithMaxAnswer(maxListingBytes), restclient.WithRefusal(statusError))
}

type apiDoer struct{ r *Remote }

func (d apiDoer) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := readCapped(req.Body, maxListingBytes) // our own JSON: a few bytes
		if err != nil {
			return nil, err
		}
		body = b
	}
	return d.r.do(req.Context(), request{method: req.Method, path: req.URL.String(), header: req.Header, body: body})
}

// IsPackreg reports whether the remote serves packreg's pack API. The
// answer is remembered; a failure to ask is not.
func (r *Remote) IsPackreg(ctx context.Context) (bool, error) {
	r.mu.Lock()
	known := r.packreg
	r.mu.Unlock()
	if known != nil {
		return *known, nil
	}
	var page struct {
		Items json.RawMessage `json:"items"`
	}
	err := r.api().Do(ctx, http.MethodGet, packsPath, url.Values{"limit": {"1"}, "status": {"all"}}, nil, &page)
	var he *HTTPError
	switch {
	case errors.As(err, &he) && he.Temporary():
		return false, err
	case err != nil && !errors.As(err, &he) && !errors.Is(err, restclient.ErrAnswer):
		return false, err // the remote could not be asked
	}
	// Any other refusal, or an answer that is not the pack API's: a
	// registry without it.
	is := err == nil && len(page.Items) > 0
	r.mu.Lock()
	r.packreg = &is
	r.mu.Unlock()
	return is, nil
}

// apiVersion is a version as packreg's pack API shows it.
type apiVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
	Status  string `json:"status"`
}

func (v apiVersion) version() Version {
	return Version{Name: v.Name, Version: v.Version, Digest: parseDigestOrEmpty(v.Digest), Status: v.Status}
}

// PackVersions lists the versions of one pack on a packreg remote, with
// their lifecycle; none when the pack is unknown there.
func (r *Remote) PackVersions(ctx context.Context, name string) ([]Version, error) {
	var doc struct {
		Versions []apiVersion `json:"versions"`
	}
	err := r.api().Do(ctx, http.MethodGet, packsPath+"/"+name+"/versions", nil, nil, &doc)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	if err := r.listed(len(doc.Versions)); err != nil {
		return nil, fmt.Errorf("versions of %s: %w", name, err)
	}
	out := make([]Version, 0, len(doc.Versions))
	for _, v := range doc.Versions {
		v.Name = name
		out = append(out, v.version())
	}
	return out, nil
}

// ListPacks walks every version of every pack on a packreg remote, in
// every state, following the API's cursor.
func (r *Remote) ListPacks(ctx context.Context) ([]Version, error) {
	var out []Version
	cursor := ""
	for range maxPages {
		q := url.Values{"limit": {"1000"}, "status": {"all"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items []apiVersion `json:"items"`
			Next  string       `json:"next"`
		}
		if err := r.api().Do(ctx, http.MethodGet, packsPath, q, nil, &page); err != nil {
			return nil, err
		}
		if err := r.listed(len(page.Items)); err != nil {
			return nil, fmt.Errorf("pack listing: %w", err)
		}
		for _, v := range page.Items {
			out = append(out, v.version())
		}
		if page.Next == "" {
			return out, nil
		}
		cursor = page.Next
	}
	return nil, fmt.Errorf("%w: pack listing has more than %d pages", ErrLimit, maxPages)
}

// SetLifecycle moves one version of a packreg remote to state.
func (r *Remote) SetLifecycle(ctx context.Context, name, version, state, reason string, force bool) error {
	return r.api().Do(ctx, http.MethodPost, packsPath+"/"+name+"/versions/"+version+"/lifecycle", nil,
		map[string]any{"state": state, "reason": reason, "force": force}, nil)
}

// parseDigestOrEmpty keeps a digest a remote listed only when it is one.
func parseDigestOrEmpty(s string) digest.Digest {
	d, err := digest.Parse(s)
	if err != nil {
		return ""
	}
	return d
}
