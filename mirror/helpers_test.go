package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// testReg is an in-process registry on the embedded defaults (disk and
// SQLite in t.TempDir()), served over HTTP by httptest.
type testReg struct {
	t    testing.TB
	Reg  *registry.Registry
	Meta storage.Store
	Srv  *httptest.Server
	// Packs is the pack service of a newPackReg.
	Packs *pack.Service
	blobs storage.BlobStore
	// Handler wraps the registry when set before the first request (a
	// registry without the referrers API, a failing one).
	Handler func(http.Handler) http.Handler
}

func newTestReg(t testing.TB, opts ...registry.Option) *testReg {
	t.Helper()
	r := openTestReg(t)
	r.Reg = registry.New(r.blobs, r.Meta, opts...)
	return r
}

// newPackReg is a test registry with the pack service wired in, as cmd
// does: the pack index follows pushes, and /api/v1/packs is served.
func newPackReg(t testing.TB, pol pack.Policy, opts ...registry.Option) *testReg {
	t.Helper()
	r := openTestReg(t)
	r.Packs = pack.New(r.Meta, pack.WithPolicy(pol))
	r.Reg = registry.New(r.blobs, r.Meta, append(r.Packs.RegistryOptions(), opts...)...)
	r.Packs.Attach(r.Reg)
	api := r.Packs.Handler()
	r.Handler = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.HasPrefix(req.URL.Path, pack.Prefix) {
				api.ServeHTTP(w, req)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	return r
}

// openTestReg opens the stores and the HTTP server; the caller builds Reg.
func openTestReg(t testing.TB) *testReg {
	t.Helper()
	blobs, meta, _ := teststores.Open(t)
	r := &testReg{t: t, Meta: meta, blobs: blobs}
	r.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var h http.Handler = r.Reg
		if r.Handler != nil {
			h = r.Handler(h)
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(func() {
		r.Srv.Close()
		meta.Close()
	})
	return r
}

// remote is a mirror.Remote talking to r with fast retries.
func (r *testReg) remote() *mirror.Remote {
	r.t.Helper()
	rm, err := mirror.NewRemote(mirror.RemoteConfig{URL: r.Srv.URL})
	if err != nil {
		r.t.Fatal(err)
	}
	return rm
}

func (r *testReg) local() *mirror.Local { return mirror.NewLocal(r.Reg, "mirror:test") }

func sha(b []byte) digest.Digest { return digest.FromBytes(digest.SHA256, b) }

// dg is the digest of d in packreg's type.
func dg(d desc) digest.Digest { return digest.Digest(d.Digest) }

type desc = oci.Descriptor

func (r *testReg) blob(repo string, b []byte) desc {
	r.t.Helper()
	if err := r.Reg.PushBlob(context.Background(), repo, sha(b), bytes.NewReader(b)); err != nil {
		r.t.Fatal(err)
	}
	return oci.NewDescriptor("application/octet-stream", sha(b), int64(len(b)))
}

func (r *testReg) manifest(repo, ref string, m any) desc {
	r.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	mt := oci.MediaTypeImageManifest
	if _, ok := m.(map[string]any)["manifests"]; ok {
		mt = oci.MediaTypeImageIndex
	}
	if ref == "" {
		ref = sha(b).String()
	}
	if _, err := r.Reg.PushManifest(context.Background(), repo, ref, mt, b); err != nil {
		r.t.Fatalf("push %s:%s: %v", repo, ref, err)
	}
	return oci.NewDescriptor(mt, sha(b), int64(len(b)))
}

const packType = "application/vnd.packreg.pack.v1"

// pack publishes a pack version the way oras does: empty config, one
// titled layer, the pack artifact type.
func (r *testReg) pack(repo, version string, content []byte) desc {
	r.t.Helper()
	cfg := r.blob(repo, []byte("{}"))
	cfg.MediaType = "application/vnd.oci.empty.v1+json"
	layer := r.blob(repo, content)
	layer.MediaType = "application/vnd.packreg.pack.file.v1"
	layer.Annotations = map[string]string{"org.opencontainers.image.title": "rules.yaml"}
	return r.manifest(repo, version, map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest, "artifactType": packType,
		"config": cfg, "layers": []desc{layer},
		"annotations": map[string]string{"org.opencontainers.image.version": version},
	})
}

// referrer attaches an OCI 1.1 referrer of artifactType to subject.
func (r *testReg) referrer(repo string, subject desc, artifactType string, content []byte) desc {
	r.t.Helper()
	cfg := r.blob(repo, []byte("{}"))
	cfg.MediaType = "application/vnd.oci.empty.v1+json"
	layer := r.blob(repo, content)
	layer.MediaType = "application/json"
	return r.manifest(repo, "", map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest, "artifactType": artifactType,
		"config": cfg, "layers": []desc{layer}, "subject": subject,
	})
}

// cosignSig attaches a signature the way cosign's tag mode does: a
// manifest without subject, tagged sha256-<hex>.sig.
func (r *testReg) cosignSig(repo string, subject desc) desc {
	r.t.Helper()
	payload := []byte(fmt.Sprintf(`{"critical":{"image":{"docker-manifest-digest":%q}}}`, subject.Digest))
	cfg := r.blob(repo, []byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`))
	cfg.MediaType = "application/vnd.oci.image.config.v1+json"
	layer := r.blob(repo, payload)
	layer.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	layer.Annotations = map[string]string{"dev.cosignproject.cosign/signature": "MEUCIQDfake" + subject.Digest.Encoded()[:8]}
	return r.manifest(repo, "sha256-"+subject.Digest.Encoded()+".sig", map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest, "config": cfg, "layers": []desc{layer},
	})
}

// resolve returns the digest of repo:ref in r, or "".
func (r *testReg) resolve(repo, ref string) digest.Digest {
	m, err := r.Reg.Manifest(context.Background(), repo, ref)
	if err != nil {
		return ""
	}
	return m.Digest
}

// noReferrersAPI makes r answer referrers requests like CNCF Distribution
// 3: 404 text/plain.
func noReferrersAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/referrers/") {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, req)
	})
}
