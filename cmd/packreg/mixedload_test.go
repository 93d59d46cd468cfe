package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/digest"
)

// TestMixedLoad: the whole server (packs, attest, compliance, the
// dashboard, GC, retention and scrub on short schedules, the audit
// recorder) serving publications, pushes and every kind of read at once.
// Every request gets an answer it may get, and once the workers caught up
// the compliance summary counts every version published.
func TestMixedLoad(t *testing.T) {
	a := testApp(t, func(c *Config) { c.GC.Grace = time.Second })
	ctx, stop := context.WithCancel(t.Context())
	var bg sync.WaitGroup
	a.packs.start(ctx, &bg)
	a.att.start(ctx, &bg)
	a.comp.start(ctx, &bg)
	a.gc.start(ctx, &bg, 5*time.Millisecond)
	a.ret.start(ctx, &bg, 5*time.Millisecond)
	a.scrub.start(ctx, &bg, 5*time.Millisecond)
	t.Cleanup(func() { stop(); bg.Wait() })
	h := a.handler
	const clients, each = 4, 2
	var wg sync.WaitGroup
	for g := range clients {
		wg.Go(func() {
			name := fmt.Sprint("load/p", g%2)
			for i := range each {
				version := fmt.Sprintf("1.%d.%d", g, i)
				body, ct := publishForm(name, version, fmt.Appendf(nil, "data %d %d", g, i))
				if w := send(h, "POST", "/api/v1/packs", body, "Content-Type", ct); w.Code != http.StatusCreated {
					t.Errorf("publish %s:%s: %d %s", name, version, w.Code, w.Body)
				}
				img := fmt.Sprint("load/img", g)
				cfg := fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i)
				d := digest.FromBytes(digest.SHA256, cfg)
				if w := send(h, "POST", "/v2/"+img+"/blobs/uploads/?digest="+d.String(), cfg); w.Code != http.StatusCreated {
					t.Errorf("blob push: %d %s", w.Code, w.Body)
				}
				m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
					`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, d, len(cfg))
				if w := send(h, "PUT", "/v2/"+img+"/manifests/"+version, m, "Content-Type", "application/vnd.oci.image.manifest.v1+json"); w.Code != http.StatusCreated {
					t.Errorf("manifest push: %d %s", w.Code, w.Body)
				}
				for _, p := range []string{"/api/v1/packs", "/v2/" + img + "/manifests/" + version, "/api/v1/packs/" + name + "/versions", "/v2/" + name + "/manifests/" + version,
					"/v2/" + name + "/tags/list", "/v2/_catalog", "/api/v1/compliance/summary", "/api/v1/compliance/packs",
					"/ui/", "/ui/packs/" + name, "/api/v1/audit", "/api/v1/gc/runs", "/metrics",
					"/api/v1/packs/" + name + "/versions/" + version + "/verification"} {
					w := send(h, "GET", p, nil)
					// One scrape at a time: the others are told to come back.
					busy := p == "/metrics" && w.Code == http.StatusServiceUnavailable
					if w.Code != http.StatusOK && !busy {
						t.Errorf("GET %s: %d %s", p, w.Code, w.Body)
					}
				}
			}
		})
	}
	wg.Wait()
	wctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := a.att.svc.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	if err := a.comp.svc.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	w := send(h, "GET", "/api/v1/compliance/summary", nil)
	var sum compliance.Summary
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &sum) != nil || sum.Versions != clients*each {
		t.Fatalf("summary after the load: %d %s, want %d versions", w.Code, w.Body, clients*each)
	}
}
