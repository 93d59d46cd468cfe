package conformance

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Media types used by the raw-HTTP helpers.
const (
	mtOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex    = "application/vnd.oci.image.index.v1+json"
	mtOCIConfig   = "application/vnd.oci.image.config.v1+json"
	mtOCILayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// client is a minimal OCI distribution client over raw net/http, for the
// tests that need exact control (kill -9, replicas) or that check what the
// real clients did.
type client struct {
	t    testing.TB
	base string // http://host:port
	hc   *http.Client
}

func newClient(t testing.TB, base string) *client {
	return &client{t: t, base: base, hc: &http.Client{Timeout: 5 * time.Minute}}
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// do sends a request and returns the response with its body read.
func (c *client) do(method, path string, hdr http.Header, body []byte) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url(path), rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// url resolves a path or a Location header (absolute or relative) against
// this client's base, keeping only path and query: so a Location from one
// replica can be sent to another.
func (c *client) url(pathOrLoc string) string {
	u, err := url.Parse(pathOrLoc)
	if err != nil {
		c.t.Fatalf("bad location %q: %v", pathOrLoc, err)
	}
	return c.base + u.EscapedPath() + func() string {
		if u.RawQuery != "" {
			return "?" + u.RawQuery
		}
		return ""
	}()
}

func expect(t testing.TB, resp *http.Response, body []byte, want int, what string) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d; body: %s", what, resp.StatusCode, want, clip(string(body)))
	}
}

// pushBlob uploads data with POST then PUT ?digest= and returns its digest.
func (c *client) pushBlob(repo string, data []byte) string {
	c.t.Helper()
	d := sha256Digest(data)
	resp, body := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	expect(c.t, resp, body, http.StatusAccepted, "start upload")
	loc := resp.Header.Get("Location")
	resp, body = c.do("PUT", addQuery(loc, "digest", d), http.Header{"Content-Type": {"application/octet-stream"}}, data)
	expect(c.t, resp, body, http.StatusCreated, "finish upload")
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d {
		c.t.Fatalf("upload digest header %s, want %s", got, d)
	}
	return d
}

func addQuery(loc, k, v string) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + url.QueryEscape(k) + "=" + url.QueryEscape(v)
}

// putManifest stores body under ref and returns the manifest digest.
func (c *client) putManifest(repo, ref, mediaType string, body []byte) string {
	c.t.Helper()
	resp, rb := c.do("PUT", "/v2/"+repo+"/manifests/"+ref, http.Header{"Content-Type": {mediaType}}, body)
	expect(c.t, resp, rb, http.StatusCreated, "put manifest "+repo+":"+ref)
	d := sha256Digest(body)
	if got := resp.Header.Get("Docker-Content-Digest"); got != d {
		c.t.Fatalf("put manifest: Docker-Content-Digest %q, want %s", got, d)
	}
	return d
}

// getManifest returns the manifest bytes, its digest header and the status.
func (c *client) getManifest(repo, ref string) ([]byte, string, int) {
	c.t.Helper()
	resp, body := c.do("GET", "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {
		mtOCIManifest + ", " + mtOCIIndex + ", application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
	}}, nil)
	return body, resp.Header.Get("Docker-Content-Digest"), resp.StatusCode
}

// manifestDigest resolves ref to a digest, failing when it is missing.
func (c *client) manifestDigest(repo, ref string) string {
	c.t.Helper()
	body, d, code := c.getManifest(repo, ref)
	if code != http.StatusOK {
		c.t.Fatalf("GET manifest %s:%s: %d %s", repo, ref, code, clip(string(body)))
	}
	if sha256Digest(body) != d {
		c.t.Fatalf("manifest %s:%s: body digest %s but header %s", repo, ref, sha256Digest(body), d)
	}
	return d
}

// blobStatus is the status of HEAD on a blob.
func (c *client) blobStatus(repo, d string) int {
	c.t.Helper()
	resp, _ := c.do("HEAD", "/v2/"+repo+"/blobs/"+d, nil, nil)
	return resp.StatusCode
}

// getBlob returns a blob's bytes, failing unless 200.
func (c *client) getBlob(repo, d string) []byte {
	c.t.Helper()
	resp, body := c.do("GET", "/v2/"+repo+"/blobs/"+d, nil, nil)
	expect(c.t, resp, body, http.StatusOK, "get blob "+d)
	return body
}

// tags lists every tag of repo.
func (c *client) tags(repo string) []string {
	c.t.Helper()
	resp, body := c.do("GET", "/v2/"+repo+"/tags/list", nil, nil)
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	expect(c.t, resp, body, http.StatusOK, "tags list "+repo)
	var tl struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &tl); err != nil {
		c.t.Fatalf("tags list: %v: %s", err, body)
	}
	return tl.Tags
}

// descriptor is an OCI descriptor as the tests read it.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// manifest is the union of image manifest and index fields the tests read.
type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *descriptor       `json:"config,omitempty"`
	Layers        []descriptor      `json:"layers,omitempty"`
	Manifests     []descriptor      `json:"manifests,omitempty"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// referrers returns the referrers index of subject (filtered when
// artifactType is set).
func (c *client) referrers(repo, subject, artifactType string) []descriptor {
	c.t.Helper()
	p := "/v2/" + repo + "/referrers/" + subject
	if artifactType != "" {
		p += "?artifactType=" + url.QueryEscape(artifactType)
	}
	resp, body := c.do("GET", p, nil, nil)
	expect(c.t, resp, body, http.StatusOK, "referrers "+repo+"@"+subject)
	var idx manifest
	if err := json.Unmarshal(body, &idx); err != nil {
		c.t.Fatalf("referrers: %v: %s", err, body)
	}
	if idx.MediaType != mtOCIIndex {
		c.t.Fatalf("referrers: mediaType %q, want %s", idx.MediaType, mtOCIIndex)
	}
	return idx.Manifests
}

// referrerTypes lists the artifactTypes of subject's referrers.
func (c *client) referrerTypes(repo, subject string) []string {
	c.t.Helper()
	var out []string
	for _, d := range c.referrers(repo, subject, "") {
		out = append(out, d.ArtifactType)
	}
	return out
}

// noFallbackTag asserts that no referrers tag-schema tag (sha256-<hex>) was
// written for subject: a client that found the Referrers API does not.
func (c *client) noFallbackTag(repo, subject string) {
	c.t.Helper()
	fallback := strings.Replace(subject, ":", "-", 1)
	if slices.Contains(c.tags(repo), fallback) {
		c.t.Errorf("%s has the referrers fallback tag %s: the client did not detect the Referrers API", repo, fallback)
	}
}

// image is a small but valid single-layer OCI image.
type image struct {
	Manifest       []byte
	Digest         string
	Config, Layer  []byte
	ConfigDigest   string
	LayerDigest    string
	FileName       string
	FileContent    []byte
	UncompressedID string
}

// makeImage builds an image whose layer holds one file with content.
func makeImage(t testing.TB, content string) *image {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	name := "hello.txt"
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	img := &image{Layer: gz.Bytes(), FileName: name, FileContent: []byte(content), UncompressedID: sha256Digest(tarBuf.Bytes())}
	img.LayerDigest = sha256Digest(img.Layer)
	img.Config = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%q]}}`, img.UncompressedID)
	img.ConfigDigest = sha256Digest(img.Config)
	m := manifest{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		Config:        &descriptor{MediaType: mtOCIConfig, Digest: img.ConfigDigest, Size: int64(len(img.Config))},
		Layers:        []descriptor{{MediaType: mtOCILayerGz, Digest: img.LayerDigest, Size: int64(len(img.Layer))}},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	img.Manifest = b
	img.Digest = sha256Digest(b)
	return img
}

// pushImage pushes img to repo:tag over raw HTTP.
func (c *client) pushImage(repo, tag string, img *image) {
	c.t.Helper()
	c.pushBlob(repo, img.Config)
	c.pushBlob(repo, img.Layer)
	if d := c.putManifest(repo, tag, mtOCIManifest, img.Manifest); d != img.Digest {
		c.t.Fatalf("pushed %s, registry says %s", img.Digest, d)
	}
}
