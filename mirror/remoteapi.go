package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/packreg/packreg/digest"
)

// The packreg side of Remote: a remote that is itself a packreg has a
// pack index with lifecycle, which plain registries lack. Lifecycle
// travels through it, and upstream listings read it instead of the tags.

// packsPath is the pack REST API on every packreg.
const packsPath = "/api/v1/packs"

// IsPackreg reports whether the remote serves packreg's pack API. The
// answer is remembered; a failure to ask is not.
func (r *Remote) IsPackreg(ctx context.Context) (bool, error) {
	r.mu.Lock()
	known := r.packreg
	r.mu.Unlock()
	if known != nil {
		return *known, nil
	}
	resp, err := r.do(ctx, request{method: http.MethodGet, path: packsPath, query: url.Values{"limit": {"1"}, "status": {"all"}},
		header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	is := false
	switch {
	case resp.StatusCode == http.StatusOK:
		var page struct {
			Items json.RawMessage `json:"items"`
		}
		is = readJSON(resp.Body, maxListingBytes, &page) == nil && len(page.Items) > 0
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return false, statusError(resp)
	}
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
	resp, err := r.do(ctx, request{method: http.MethodGet, path: packsPath + "/" + name + "/versions"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	var doc struct {
		Versions []apiVersion `json:"versions"`
	}
	if err := readJSON(resp.Body, maxListingBytes, &doc); err != nil {
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
		resp, err := r.do(ctx, request{method: http.MethodGet, path: packsPath, query: q})
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, statusError(resp)
		}
		var page struct {
			Items []apiVersion `json:"items"`
			Next  string       `json:"next"`
		}
		err = readJSON(resp.Body, maxListingBytes, &page)
		resp.Body.Close()
		if err != nil {
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
	body, err := json.Marshal(map[string]any{"state": state, "reason": reason, "force": force})
	if err != nil {
		return err
	}
	resp, err := r.do(ctx, request{method: http.MethodPost, path: packsPath + "/" + name + "/versions/" + version + "/lifecycle",
		header: http.Header{"Content-Type": {"application/json"}}, body: body})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(resp)
	}
	return nil
}

// parseDigestOrEmpty keeps a digest a remote listed only when it is one.
func parseDigestOrEmpty(s string) digest.Digest {
	d, err := digest.Parse(s)
	if err != nil {
		return ""
	}
	return d
}
