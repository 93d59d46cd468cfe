package registry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
)

// TestGCWhilePushing: collections back to back while clients push
// images, with everything older than the grace period the moment it is
// written (the clock is skewed past it): a blob may be collected before
// the manifest that needs it (or while its push links it: 503, push
// again), and then that manifest is refused (MANIFEST_BLOB_UNKNOWN), but
// every manifest acknowledged keeps all its bytes, readable once the
// collections stop.
func TestGCWhilePushing(t *testing.T) {
	w := newGCWorld(t)
	w.skew = registry.DefaultGCGrace + time.Hour
	h := w.reg
	type pushed struct {
		repo, tag string
		manifest  []byte
		blobs     map[digest.Digest][]byte
	}
	var mu sync.Mutex
	var acked []pushed
	var refused, retried atomic.Int64
	var stop atomic.Bool
	var gc sync.WaitGroup
	var runs atomic.Int64
	gc.Go(func() {
		for !stop.Load() || runs.Load() == 0 {
			if _, err := w.reg.CollectGarbage(t.Context(), registry.GCOptions{Grace: time.Second}); err != nil {
				t.Errorf("collection: %v", err)
				return
			}
			runs.Add(1)
		}
	})
	var pushers sync.WaitGroup
	for p := range 4 {
		pushers.Go(func() {
			repo := fmt.Sprint("gcrace/app", p%2)
			for i := range 6 {
				blobs := map[digest.Digest][]byte{}
				push := func(b []byte) oci.Descriptor {
					d := sha(b)
					blobs[d] = b
					r := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b)
					switch {
					case r.Code == http.StatusCreated:
					case r.Code == http.StatusServiceUnavailable && errCode(t, r) == "UNAVAILABLE":
						// Collected while the push linked it: the client is told
						// to push again, and the manifest may then be refused.
						retried.Add(1)
					default:
						t.Errorf("blob push: %d %s", r.Code, r.Body)
					}
					return desc("application/octet-stream", d, int64(len(b)))
				}
				shared := push([]byte("a layer every image has"))
				own := push(fmt.Appendf(nil, "layer %d of pusher %d", i, p))
				cfg := push(fmt.Appendf(nil, `{"pusher":%d,"i":%d}`, p, i))
				cfg.MediaType = "application/vnd.oci.image.config.v1+json"
				m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
					"config": cfg, "layers": []oci.Descriptor{shared, own}})
				tag := fmt.Sprintf("p%d-%d", p, i)
				r := putManifest(t, h, repo, tag, m, oci.MediaTypeImageManifest)
				switch {
				case r.Code == http.StatusCreated:
					mu.Lock()
					acked = append(acked, pushed{repo, tag, m, blobs})
					mu.Unlock()
				case r.Code == http.StatusBadRequest && errCode(t, r) == "MANIFEST_BLOB_UNKNOWN":
					refused.Add(1)
				default:
					t.Errorf("manifest %s:%s: %d %s", repo, tag, r.Code, r.Body)
				}
			}
		})
	}
	pushers.Wait()
	stop.Store(true)
	gc.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, a := range acked {
		r := do(t, h, "GET", "/v2/"+a.repo+"/manifests/"+a.tag, nil)
		if r.Code != http.StatusOK || !bytes.Equal(r.Body.Bytes(), a.manifest) {
			t.Errorf("acknowledged %s:%s: %d", a.repo, a.tag, r.Code)
		}
		for d, b := range a.blobs {
			if r := do(t, h, "GET", "/v2/"+a.repo+"/blobs/"+d.String(), nil); r.Code != http.StatusOK || !bytes.Equal(r.Body.Bytes(), b) {
				t.Errorf("blob %s of acknowledged %s:%s: %d", d, a.repo, a.tag, r.Code)
			}
		}
	}
	t.Logf("%d manifests acknowledged, %d refused, %d blob pushes to retry, %d collections", len(acked), refused.Load(), retried.Load(), runs.Load())
}
