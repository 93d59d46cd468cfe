package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/metrics"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

// BenchmarkManifestGetServed: a manifest GET by tag from 16 clients
// through everything the server wraps a request in (request log, metrics,
// edge checks, route table) and the SQLite store, as the HTTP bench's row
// without the network: what the server's CPU per GET is made of.
func BenchmarkManifestGetServed(b *testing.B) {
	blobs, meta, _ := teststores.Open(b)
	reg := registry.New(blobs, meta)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ob := &observer{m: metrics.New("bench")}
	h := newHandler(newRouteTable(reg, &stores{blobs: blobs, meta: meta}, nil, log, nil, nil, nil, ob), log, edgeSettings{}, ob)
	cfg := []byte(`{}`)
	cd := digest.FromBytes(digest.SHA256, cfg)
	serve := func(ctx context.Context, method, path string, body []byte, ct string) int {
		req := httptest.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	if c := serve(b.Context(), "POST", "/v2/acme/rules/blobs/uploads/?digest="+cd.String(), cfg, ""); c != 201 {
		b.Fatalf("blob: %d", c)
	}
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[]}`,
		oci.MediaTypeImageManifest, cd)
	if c := serve(b.Context(), "PUT", "/v2/acme/rules/manifests/1.0.0", m, oci.MediaTypeImageManifest); c != 201 {
		b.Fatalf("push: %d", c)
	}
	b.SetParallelism(8) // 16 clients on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithCancel(context.Background()) // as a server's
		defer cancel()
		for pb.Next() {
			if c := serve(ctx, "GET", "/v2/acme/rules/manifests/1.0.0", nil, ""); c != 200 {
				b.Errorf("GET: %d", c)
				return
			}
		}
	})
}
