package registry_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
)

// TestRepushRepairsBadBlob: a blob a scrub found bad is repaired by
// pushing its bytes again, on every upload path that brings bytes: the
// stored bytes are replaced, the finding goes with a blob.repaired
// event, and the blob serves again. HEAD answers 404 for the bad blob so
// that clients, which ask it before they push, push it. A mount brings
// no bytes: it is answered as a new upload (202), which then repairs.
// Bytes that do not match repair nothing.
func TestRepushRepairsBadBlob(t *testing.T) {
	content := bytes.Repeat([]byte("bytes to rot and push again "), 3000) // past one small write
	d := sha(content)
	pushes := []struct {
		name string
		push func(t *testing.T, h *registry.Registry, repo string)
	}{
		{"post-digest", func(t *testing.T, h *registry.Registry, repo string) {
			pushBlob(t, h, repo, content)
		}},
		{"post-then-put", func(t *testing.T, h *registry.Registry, repo string) {
			loc := startSession(t, h, repo)
			expect(t, do(t, h, "PUT", loc+"?digest="+d.String(), content), 201, "")
		}},
		{"chunked", func(t *testing.T, h *registry.Registry, repo string) {
			loc := startSession(t, h, repo)
			half := len(content) / 2
			expect(t, do(t, h, "PATCH", loc, content[:half]), 202, "")
			expect(t, do(t, h, "PATCH", loc, content[half:]), 202, "")
			expect(t, do(t, h, "PUT", loc+"?digest="+d.String(), nil), 201, "")
		}},
		{"mount-then-upload", func(t *testing.T, h *registry.Registry, repo string) {
			var loc string
			for _, from := range []string{"", "&from=scrub/other"} {
				w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?mount="+d.String()+from, nil)
				expect(t, w, 202, "")
				loc = w.Header().Get("Location")
			}
			expect(t, do(t, h, "PUT", loc+"?digest="+d.String(), content), 201, "")
		}},
	}
	for _, p := range pushes {
		t.Run(p.name, func(t *testing.T) {
			blobs, meta, dir := teststores.Open(t)
			var (
				mu       sync.Mutex
				repaired []digest.Digest
			)
			h := registry.New(blobs, meta, registry.WithSubscriber(func(_ context.Context, e registry.Event) {
				if e.Action == registry.ActionBlobRepaired {
					mu.Lock()
					repaired = append(repaired, e.Digest)
					mu.Unlock()
				}
			}))
			const repo = "scrub/app"
			pushBlob(t, h, repo, content)
			pushBlob(t, h, "scrub/other", content)
			rot(t, blobFile(dir, d))
			ctx := context.Background()
			if rep, err := h.Scrub(ctx, 1<<30); err != nil || len(rep.Bad) != 1 {
				t.Fatalf("scrub: %+v, %v", rep, err)
			}
			expect(t, do(t, h, "HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil), 404, "")
			// Wrong bytes under its digest repair nothing.
			w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), []byte("other bytes"))
			expect(t, w, 400, "DIGEST_INVALID")
			expect(t, do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil), 500, "UNKNOWN")

			p.push(t, h, repo)
			w = do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil)
			expect(t, w, 200, "")
			if !bytes.Equal(w.Body.Bytes(), content) {
				t.Fatal("the repaired blob serves other bytes")
			}
			if _, bad, err := meta.BlobBad(ctx, d); err != nil || bad {
				t.Fatalf("finding after the push: %v, %v", bad, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(repaired) != 1 || repaired[0] != d {
				t.Fatalf("blob.repaired events: %v, want one for %s", repaired, d)
			}
			if rep, err := h.Scrub(ctx, 1<<30); err != nil || len(rep.Bad) != 0 || len(rep.Repaired) != 0 {
				t.Fatalf("scrub after the repair: %+v, %v", rep, err)
			}
		})
	}
}

// startSession opens an upload session in repo and returns its location.
func startSession(t *testing.T, h *registry.Registry, repo string) string {
	t.Helper()
	w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	expect(t, w, 202, "")
	return w.Header().Get("Location")
}

// blobFile is where the stores of teststores.Open in dir keep blob d.
func blobFile(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", "blobs", d.Algorithm(), d.Hex()[:2], d.Hex())
}

// rot flips the first byte of the file at p, as a failing disk would,
// and returns the file's bytes as they are now.
func rot(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}
