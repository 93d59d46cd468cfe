package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage/fs"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// BenchmarkManifestGet: GET of a manifest by tag from 16 clients, through
// the route table and the metadata read.
func BenchmarkManifestGet(b *testing.B) {
	h, repo, cfg := benchRepo(b, teststores.Open)
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[]}`,
		oci.MediaTypeImageManifest, sha(cfg))
	if w := serve(h, "PUT", "/v2/"+repo+"/manifests/1.0.0", m, "Content-Type", oci.MediaTypeImageManifest); w.Code != 201 {
		b.Fatalf("push: %d %s", w.Code, w.Body)
	}
	b.SetParallelism(8) // 16 clients on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// A server's request context can be cancelled (the client may
		// go); httptest's is Background, which would hide what the
		// store's reads pay for a cancellable one.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for pb.Next() {
			if w := serveCtx(ctx, h, "GET", "/v2/"+repo+"/manifests/1.0.0", nil); w.Code != 200 {
				b.Errorf("GET: %d", w.Code)
				return
			}
		}
	})
}

// BenchmarkManifestPut: PUT of a new image manifest (a config and a
// layer) by a new tag from 16 clients, as the HTTP bench's row: its
// validation, reference checks and transaction (SQLite; the Postgres
// sub-benchmark on $PACKREG_TEST_POSTGRES, as on S3 + PostgreSQL). It
// reports the process's CPU per PUT too (the database server's aside),
// which the machine's load moves less than the rate.
func BenchmarkManifestPut(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchManifestPut(b, teststores.Open) })
	b.Run("postgres", func(b *testing.B) { benchManifestPut(b, teststores.OpenPostgres) })
}

func benchManifestPut(b *testing.B, open func(testing.TB) (*fs.Store, *sqlmeta.Store, string)) {
	h, repo, cfg := benchRepo(b, open)
	layer := []byte("layer")
	if w := serve(h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha(layer).String(), layer); w.Code != 201 {
		b.Fatalf("blob: %d %s", w.Code, w.Body)
	}
	var n atomic.Int64
	b.SetParallelism(8) // 16 clients on 2 cores
	b.ReportAllocs()
	defer teststores.ReportCPU(b)()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithCancel(context.Background()) // as a server's
		defer cancel()
		for pb.Next() {
			i := n.Add(1)
			m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},`+
				`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":5}],"annotations":{"seq":"%d"}}`,
				oci.MediaTypeImageManifest, sha(cfg), sha(layer), i)
			if w := serveCtx(ctx, h, "PUT", fmt.Sprintf("/v2/%s/manifests/v%d", repo, i), m, "Content-Type", oci.MediaTypeImageManifest); w.Code != 201 {
				b.Errorf("PUT: %d %s", w.Code, w.Body)
				return
			}
		}
	})
}

// BenchmarkTagsList: GET tags/list of a 1,000-tag repository, the whole
// list in one page, through the route table and the store (SQLite; the
// Postgres sub-benchmark on $PACKREG_TEST_POSTGRES, as on S3 + PostgreSQL).
func BenchmarkTagsList(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchTagsList(b, teststores.Open) })
	b.Run("postgres", func(b *testing.B) { benchTagsList(b, teststores.OpenPostgres) })
}

func benchTagsList(b *testing.B, open func(testing.TB) (*fs.Store, *sqlmeta.Store, string)) {
	h, repo, cfg := benchRepo(b, open)
	for i := range 1000 {
		m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"annotations":{"seq":"%d"}}`,
			oci.MediaTypeImageManifest, sha(cfg), i)
		if w := serve(h, "PUT", fmt.Sprintf("/v2/%s/manifests/v%06d", repo, i), m, "Content-Type", oci.MediaTypeImageManifest); w.Code != 201 {
			b.Fatalf("push: %d %s", w.Code, w.Body)
		}
	}
	ctx, cancel := context.WithCancel(context.Background()) // as a server's
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if w := serveCtx(ctx, h, "GET", "/v2/"+repo+"/tags/list?n=1000", nil); w.Code != 200 || w.Body.Len() < 10_000 {
			b.Fatalf("GET: %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}

// BenchmarkNoRoute: a /v2/ path no route has, tried against every row.
func BenchmarkNoRoute(b *testing.B) {
	blobs, meta, _ := teststores.Open(b)
	h := registry.New(blobs, meta)
	b.ReportAllocs()
	for b.Loop() {
		if w := serve(h, "GET", "/v2/acme/team/rules/nothing/here", nil); w.Code != 404 {
			b.Fatalf("GET: %d", w.Code)
		}
	}
}

// serve is do for benchmarks, which have no *testing.T.
func serve(h *registry.Registry, method, path string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	return serveCtx(context.Background(), h, method, path, body, hdr...)
}

// serveCtx is serve with the request's context.
func serveCtx(ctx context.Context, h *registry.Registry, method, path string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// benchRepo is a registry on the test stores open gives, with one repository holding
// the empty config blob, which the benchmarks' manifests point at.
func benchRepo(b *testing.B, open func(testing.TB) (*fs.Store, *sqlmeta.Store, string)) (h *registry.Registry, repo string, cfg []byte) {
	blobs, meta, _ := open(b)
	h = registry.New(blobs, meta)
	repo = "acme/team/rules"
	cfg = []byte(`{}`)
	if w := serve(h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha(cfg).String(), cfg); w.Code != 201 {
		b.Fatalf("blob: %d %s", w.Code, w.Body)
	}
	return h, repo, cfg
}
