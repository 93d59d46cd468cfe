package registry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

// newRegistry returns a registry on the real embedded defaults (disk + SQLite).
func newRegistry(t *testing.T, opts ...registry.Option) *registry.Registry {
	t.Helper()
	blobs, meta, _ := teststores.Open(t)
	return registry.New(blobs, meta, opts...)
}

// do sends one request straight to the handler. Paths are used raw (no
// cleaning), which the NAME_INVALID rows need.
func do(t *testing.T, h http.Handler, method, path string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body == nil {
		req.ContentLength = 0
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// errCode returns the first OCI error code of an answer, or "".
func errCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var env struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Code
}

func expect(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	if code != "" {
		if got := errCode(t, w); got != code {
			t.Fatalf("error code = %q, want %q; body %s", got, code, w.Body.String())
		}
	}
}

func sha(b []byte) digest.Digest { return digest.FromBytes(digest.SHA256, b) }

// pushBlob uploads b monolithically into repo.
func pushBlob(t *testing.T, h http.Handler, repo string, b []byte) digest.Digest {
	t.Helper()
	d := sha(b)
	w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b)
	expect(t, w, http.StatusCreated, "")
	return d
}

// desc describes content for the manifests tests build, with an
// artifactType when one is given.
func desc(mediaType string, d digest.Digest, size int64, artifactType ...string) oci.Descriptor {
	out := oci.NewDescriptor(mediaType, d, size)
	if len(artifactType) > 0 {
		out.ArtifactType = artifactType[0]
	}
	return out
}

// imageManifest builds an OCI image manifest over pushed config and layer blobs.
func imageManifest(t *testing.T, h http.Handler, repo string, layers ...[]byte) []byte {
	t.Helper()
	cfg := []byte(`{}`)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     oci.MediaTypeImageManifest,
		"config":        desc("application/vnd.oci.empty.v1+json", pushBlob(t, h, repo, cfg), int64(len(cfg))),
	}
	ls := []oci.Descriptor{}
	for _, l := range layers {
		ls = append(ls, desc("application/vnd.oci.image.layer.v1.tar", pushBlob(t, h, repo, l), int64(len(l))))
	}
	m["layers"] = ls
	b, _ := json.Marshal(m)
	return b
}

func putManifest(t *testing.T, h http.Handler, repo, ref string, b []byte, mt string) *httptest.ResponseRecorder {
	t.Helper()
	return do(t, h, "PUT", "/v2/"+repo+"/manifests/"+ref, b, "Content-Type", mt)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func registryDigest512(b []byte) string { return digest.FromBytes(digest.SHA512, b).String() }
