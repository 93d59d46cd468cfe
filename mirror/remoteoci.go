package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/netguard"
	"github.com/packreg/packreg/oci"
)

// The OCI distribution side of Remote.

var (
	_ Sink             = (*Remote)(nil)
	_ Mounter          = (*Remote)(nil)
	_ ReferrersIndexer = (*Remote)(nil)
	_ Cataloger        = (*Remote)(nil)
)

// acceptManifests are the manifest media types the engine asks for and understands.
var acceptManifests = strings.Join(oci.ManifestMediaTypes(), ", ")

func manifestPath(repo, ref string) string { return "/v2/" + repo + "/manifests/" + ref }

// checkDigest refuses a digest the remote may have made up (a referrers
// index or a child manifest names it) before it goes into a request path
// or picks a hash: an unsupported algorithm has no hash to check the
// bytes with.
func checkDigest(d digest.Digest) error {
	if _, err := digest.Parse(d.String()); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}
func blobPath(repo string, d digest.Digest) string {
	return "/v2/" + repo + "/blobs/" + d.String()
}

// Resolve HEADs the manifest. A registry that sends no digest header is
// asked for the bytes, and they are hashed.
func (r *Remote) Resolve(ctx context.Context, repo, ref string) (oci.Descriptor, error) {
	resp, err := r.do(ctx, request{method: http.MethodHead, path: manifestPath(repo, ref), repo: repo,
		header: http.Header{"Accept": {acceptManifests}}})
	if err != nil {
		return oci.Descriptor{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return oci.Descriptor{}, statusError(resp)
	}
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		if d, err = digest.Parse(ref); err != nil {
			payload, got, err := r.getManifest(ctx, repo, ref)
			if err != nil {
				return oci.Descriptor{}, err
			}
			return oci.NewDescriptor(got.MediaType, digest.FromBytes(digest.SHA256, payload), got.Size), nil
		}
	}
	return oci.NewDescriptor(mediaType(resp.Header.Get("Content-Type")), d, resp.ContentLength), nil
}

// Manifest GETs manifest d and checks that the bytes hash to d: what we
// copy on is what the digest names, whatever the remote says.
func (r *Remote) Manifest(ctx context.Context, repo string, d digest.Digest) ([]byte, oci.Descriptor, error) {
	if err := checkDigest(d); err != nil {
		return nil, oci.Descriptor{}, err
	}
	payload, desc, err := r.getManifest(ctx, repo, d.String())
	if err != nil {
		return nil, oci.Descriptor{}, err
	}
	if got := digest.FromBytes(d.Algorithm(), payload); got != d {
		return nil, oci.Descriptor{}, fmt.Errorf("%w: manifest %s of %s hashes to %s", ErrInvalid, d, repo, got)
	}
	return payload, oci.NewDescriptor(desc.MediaType, d, desc.Size), nil
}

func (r *Remote) getManifest(ctx context.Context, repo, ref string) ([]byte, oci.Descriptor, error) {
	resp, err := r.do(ctx, request{method: http.MethodGet, path: manifestPath(repo, ref), repo: repo,
		header: http.Header{"Accept": {acceptManifests}}})
	if err != nil {
		return nil, oci.Descriptor{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, oci.Descriptor{}, statusError(resp)
	}
	payload, err := readCapped(resp.Body, maxManifestBytes)
	if err != nil {
		return nil, oci.Descriptor{}, err
	}
	mt := mediaType(resp.Header.Get("Content-Type"))
	if !oci.IsManifest(mt) {
		// Some registries answer application/json: the document says.
		var doc struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(payload, &doc) == nil && doc.MediaType != "" {
			mt = doc.MediaType
		}
	}
	return payload, oci.Descriptor{MediaType: mt, Size: int64(len(payload))}, nil
}

func mediaType(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return ct
}

// Blob GETs blob d, following a redirect to a blob store without the
// credentials.
func (r *Remote) Blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	resp, err := r.do(ctx, request{method: http.MethodGet, path: blobPath(repo, d), repo: repo, long: true})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	return resp.Body, nil
}

// HasBlob HEADs blob d.
func (r *Remote) HasBlob(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	resp, err := r.do(ctx, request{method: http.MethodHead, path: blobPath(repo, d), repo: repo, push: true})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, statusError(resp)
}

// MountBlob asks for a cross-repository mount. A registry that declines
// opens an upload session instead (202); it is cancelled, since the
// engine sends the blob through PutBlob.
func (r *Remote) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (bool, error) {
	tr := netguard.NewTrail()
	resp, err := r.do(ctx, request{method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/", repo: repo, push: true,
		query: url.Values{"mount": {d.String()}, "from": {from}}, body: []byte{}, trail: tr})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		if loc := resp.Header.Get("Location"); loc != "" {
			if c, err := r.do(ctx, request{method: http.MethodDelete, path: loc, repo: repo, push: true, trail: tr.Fork()}); err == nil {
				c.Body.Close()
			}
		}
		return false, nil
	}
	return false, statusError(resp)
}

// PutBlob opens an upload session and sends the whole blob in one PUT,
// streaming: the remote verifies the digest before the blob exists there.
// The PUT goes wherever the upload Location says, as a hop of the POST's
// trail (netguard): not from a public address to a private one, not from
// https to http, and with credentials only on the remote's origin.
func (r *Remote) PutBlob(ctx context.Context, repo string, desc oci.Descriptor, body io.Reader) error {
	tr := netguard.NewTrail()
	resp, err := r.do(ctx, request{method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/", repo: repo, push: true, body: []byte{}, trail: tr})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return statusError(resp)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return fmt.Errorf("%w: upload of %s to %s: no Location", ErrInvalid, desc.Digest, repo)
	}
	resp, err = r.do(ctx, request{method: http.MethodPut, path: loc, repo: repo, push: true, long: true, trail: tr.Fork(),
		query:  url.Values{"digest": {desc.Digest.String()}},
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		stream: body, size: desc.Size})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return statusError(resp)
	}
	return nil
}

// PutManifest PUTs the exact bytes and checks the digest the remote
// computed, when it says: a registry that rewrote them broke the copy.
func (r *Remote) PutManifest(ctx context.Context, repo, ref string, desc oci.Descriptor, payload []byte) error {
	resp, err := r.do(ctx, request{method: http.MethodPut, path: manifestPath(repo, ref), repo: repo, push: true,
		header: http.Header{"Content-Type": {desc.MediaType}}, body: payload})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != desc.Digest.String() {
		return fmt.Errorf("%w: %s stored manifest %s as %s", ErrInvalid, r.base.Host, desc.Digest, got)
	}
	return nil
}

// Referrers asks the referrers API; a registry without it (404) is read
// through the tag-schema index instead, and remembered as such.
func (r *Remote) Referrers(ctx context.Context, repo string, d digest.Digest) ([]oci.Descriptor, error) {
	r.mu.Lock()
	api := r.referrers
	r.mu.Unlock()
	if api == nil || *api {
		resp, err := r.do(ctx, request{method: http.MethodGet, path: "/v2/" + repo + "/referrers/" + d.String(), repo: repo,
			header: http.Header{"Accept": {oci.MediaTypeImageIndex}}})
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			defer resp.Body.Close()
			var idx oci.Index
			if err := readJSON(resp.Body, maxManifestBytes, &idx); err != nil {
				return nil, err
			}
			r.setReferrersAPI(true)
			return idx.Manifests, nil
		}
		if resp.StatusCode != http.StatusNotFound {
			return nil, statusError(resp)
		}
		resp.Body.Close()
		if api != nil {
			return nil, nil // the API is there: the repository is not
		}
		r.setReferrersAPI(false)
	}
	return tagSchemaReferrers(ctx, r, repo, d)
}

func (r *Remote) setReferrersAPI(on bool) {
	r.mu.Lock()
	r.referrers = &on
	r.mu.Unlock()
}

// IndexesReferrers probes the referrers API once. The spec forbids a
// registry with the API to answer 404, so a 404 means there is none.
func (r *Remote) IndexesReferrers(ctx context.Context) (bool, error) {
	r.mu.Lock()
	api := r.referrers
	r.mu.Unlock()
	if api != nil {
		return *api, nil
	}
	probe := digest.FromBytes(digest.SHA256, nil)
	resp, err := r.do(ctx, request{method: http.MethodGet, path: "/v2/packreg-probe/referrers/" + probe.String(),
		header: http.Header{"Accept": {oci.MediaTypeImageIndex}}})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		r.setReferrersAPI(true)
		return true, nil
	case http.StatusNotFound:
		r.setReferrersAPI(false)
		return false, nil
	}
	return false, statusError(resp)
}

// tagSchemaReferrers reads the index tagged oci.ReferrersTag.
func tagSchemaReferrers(ctx context.Context, src Source, repo string, d digest.Digest) ([]oci.Descriptor, error) {
	desc, err := src.Resolve(ctx, repo, oci.ReferrersTag(d))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	payload, _, err := src.Manifest(ctx, repo, digest.Digest(desc.Digest))
	if err != nil {
		return nil, err
	}
	var idx oci.Index
	if err := json.Unmarshal(payload, &idx); err != nil {
		return nil, fmt.Errorf("%w: referrers index of %s: %v", ErrInvalid, d, err)
	}
	return idx.Manifests, nil
}

// Tags walks the tag list pages (Link headers). An unknown repository has
// no tags.
func (r *Remote) Tags(ctx context.Context, repo string) ([]string, error) {
	var all []string
	err := r.pages(ctx, "/v2/"+repo+"/tags/list", repo, func(body io.Reader) (int, error) {
		var page struct {
			Tags []string `json:"tags"`
		}
		err := readJSON(body, maxListingBytes, &page)
		all = append(all, page.Tags...)
		return len(page.Tags), err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return all, err
}

// Repositories walks the catalog pages.
func (r *Remote) Repositories(ctx context.Context) ([]string, error) {
	var all []string
	err := r.pages(ctx, "/v2/_catalog", "", func(body io.Reader) (int, error) {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		err := readJSON(body, maxListingBytes, &page)
		all = append(all, page.Repositories...)
		return len(page.Repositories), err
	})
	return all, err
}

// maxPages bounds one listing: 1000 pages of 1000 is more than any pack
// registry holds, and a remote that links to itself forever stops here.
// Limits bound all listings of a run together.
const maxPages = 1000

// pages reads a listing page by page; read decodes one and says how many
// names it held.
func (r *Remote) pages(ctx context.Context, path, repo string, read func(io.Reader) (int, error)) error {
	next, query := path, url.Values{"n": {"1000"}}
	for i := 0; next != ""; i++ {
		if i == maxPages {
			return fmt.Errorf("%w: %s has more than %d pages", ErrLimit, path, maxPages)
		}
		resp, err := r.do(ctx, request{method: http.MethodGet, path: next, query: query, repo: repo})
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return statusError(resp)
		}
		n, err := read(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if err := r.listed(n); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		next, query = linkNext(resp.Header.Get("Link")), nil
		if next != "" {
			if u, err := r.base.Parse(next); err != nil || !r.binding.Home(u) {
				return fmt.Errorf("%w: %s links to another origin", ErrInvalid, path)
			}
		}
	}
	return nil
}

// listed counts one listing page of n names against the run's limits.
func (r *Remote) listed(n int) error {
	if p := r.listedPages.Add(1); p > int64(r.limits.ListPages) {
		return fmt.Errorf("%w: more than %d listing pages in one run (limit: listing pages)", ErrLimit, r.limits.ListPages)
	}
	if e := r.listedEntries.Add(int64(n)); e > int64(r.limits.ListEntries) {
		return fmt.Errorf("%w: more than %d names listed in one run (limit: listed names)", ErrLimit, r.limits.ListEntries)
	}
	return nil
}
