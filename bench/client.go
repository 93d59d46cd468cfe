package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// client speaks plain OCI distribution v1.1 to one server.
type client struct {
	base *url.URL
	hc   *http.Client
	// authz, when set, is the Authorization header of every request
	// through do (the auth suite's Basic and Bearer rows).
	authz string
}

func newClient(base string) (*client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy: nil, // loopback, never through a proxy from the environment
		// Enough idle connections for 16 workers, so every request reuses a
		// connection and handshakes stay out of the latency figures.
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// No gzip: blobs are incompressible and the figure must be the
		// registry's, not the codec's.
		DisableCompression: true,
		WriteBufferSize:    256 << 10,
		ReadBufferSize:     256 << 10,
	}
	return &client{base: u, hc: &http.Client{Transport: tr}}, nil
}

func (c *client) close() { c.hc.CloseIdleConnections() }

func (c *client) url(path string) string { return c.base.String() + path }

// resolve turns a Location header (usually a path) into an absolute URL.
func (c *client) resolve(loc string) (*url.URL, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("bad Location %q: %w", loc, err)
	}
	return c.base.ResolveReference(u), nil
}

// do sends req and checks the status; the body is drained and closed so the
// connection goes back to the pool.
func (c *client) do(req *http.Request, want ...int) (*http.Response, error) {
	if c.authz != "" {
		req.Header.Set("Authorization", c.authz)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	for _, w := range want {
		if resp.StatusCode == w {
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp, nil
		}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return nil, fmt.Errorf("%s %s: status %d, want %v: %s", req.Method, req.URL.Path, resp.StatusCode, want, strings.TrimSpace(string(b)))
}

// startUpload opens an upload session and returns its location.
func (c *client) startUpload(ctx context.Context, repo string) (*url.URL, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/v2/"+repo+"/blobs/uploads/"), nil)
	resp, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	return c.resolve(resp.Header.Get("Location"))
}

func withDigest(u *url.URL, dgst string) string {
	q := u.Query()
	q.Set("digest", dgst)
	v := *u
	v.RawQuery = q.Encode()
	return v.String()
}

// pushMonolithic is POST then one PUT carrying the whole body, streamed from
// the generator with a known Content-Length.
func (c *client) pushMonolithic(ctx context.Context, repo string, seed uint64, size int64, dgst string) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, withDigest(loc, dgst), newGen(seed, size))
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	_, err = c.do(req, http.StatusCreated)
	return err
}

// pushChunked is POST, PATCHes of chunk bytes with Content-Range, then a
// closing PUT with ?digest= and no body.
func (c *client) pushChunked(ctx context.Context, repo string, seed uint64, size, chunk int64, dgst string) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	g := newGen(seed, size)
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), io.LimitReader(g, n))
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		resp, err := c.do(req, http.StatusAccepted)
		if err != nil {
			return err
		}
		if loc, err = c.resolve(resp.Header.Get("Location")); err != nil {
			return err
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, withDigest(loc, dgst), nil)
	req.ContentLength = 0
	_, err = c.do(req, http.StatusCreated)
	return err
}

// pushSmall is the single-request upload (POST ?digest= with the body). A
// registry may answer 202 instead and expect the client to PUT; that
// fallback is followed and counted, because it doubles the round trips.
func (c *client) pushSmall(ctx context.Context, repo string, body []byte, dgst string) (fellBack bool, err error) {
	u := c.url("/v2/" + repo + "/blobs/uploads/?digest=" + url.QueryEscape(dgst))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req, http.StatusCreated, http.StatusAccepted)
	if err != nil || resp.StatusCode == http.StatusCreated {
		return false, err
	}
	loc, err := c.resolve(resp.Header.Get("Location"))
	if err != nil {
		return true, err
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, withDigest(loc, dgst), bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	_, err = c.do(req, http.StatusCreated)
	return true, err
}

// pull GETs a blob and discards it through a 1 MiB buffer (large reads, so
// the client's syscalls are not the limit), returning the bytes read.
func (c *client) pull(ctx context.Context, repo, dgst string, buf []byte) (int64, error) {
	return c.getDiscard(ctx, "/v2/"+repo+"/blobs/"+dgst, buf)
}

// getDiscard GETs path and reads the body into buf over and over.
func (c *client) getDiscard(ctx context.Context, path string, buf []byte) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("GET %s: status %d: %s", path, resp.StatusCode, b)
	}
	var n int64
	for {
		m, err := resp.Body.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (c *client) putManifest(ctx context.Context, repo, ref string, body []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, c.url("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	_, err := c.do(req, http.StatusCreated)
	return err
}

func (c *client) getManifest(ctx context.Context, repo, ref string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v2/"+repo+"/manifests/"+ref), nil)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	_, err := c.do(req, http.StatusOK)
	return err
}

// tagsAnswer is one GET tags/list answer, read to its last byte and not
// yet parsed: the rows time the registry's answer, and decoding 1,000
// tags with encoding/json costs the bench 0.2–0.3 ms, a quarter of the
// figure, so the answer is checked after its time is taken.
type tagsAnswer struct {
	body []byte
	// next is the last= of the answer's Link to a next page, "" when
	// there is none: a walk follows it, as clients do.
	next string
}

// fetchTags reads one page of tags.
func (c *client) fetchTags(ctx context.Context, repo string, n int, last string) (tagsAnswer, error) {
	u := c.url("/v2/" + repo + "/tags/list?n=" + strconv.Itoa(n))
	if last != "" {
		u += "&last=" + url.QueryEscape(last)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return tagsAnswer{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return tagsAnswer{}, fmt.Errorf("tags list: status %d: %s", resp.StatusCode, b)
	}
	a := tagsAnswer{}
	if a.body, err = io.ReadAll(resp.Body); err != nil {
		return tagsAnswer{}, fmt.Errorf("tags list: %w", err)
	}
	if link := resp.Header.Get("Link"); link != "" {
		if a.next, err = linkLast(link); err != nil {
			return tagsAnswer{}, fmt.Errorf("tags list: Link %q: %w", link, err)
		}
	}
	return a, nil
}

// tags parses the answer: its tags, and that a next page's last= is the
// page's last tag.
func (a tagsAnswer) tags() ([]string, error) {
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(a.body, &body); err != nil {
		return nil, fmt.Errorf("tags list: %w", err)
	}
	if a.next != "" && (len(body.Tags) == 0 || body.Tags[len(body.Tags)-1] != a.next) {
		return nil, fmt.Errorf("tags list: Link's last=%q is not the page's last tag", a.next)
	}
	return body.Tags, nil
}

// linkLast is the last= of a Link header's <URL>; rel="next".
func linkLast(link string) (string, error) {
	ref, _, ok := strings.Cut(strings.TrimPrefix(link, "<"), ">")
	if !ok || !strings.HasPrefix(link, "<") {
		return "", fmt.Errorf("not <URL>")
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	last := u.Query().Get("last")
	if last == "" {
		return "", fmt.Errorf("no last= in it")
	}
	return last, nil
}
