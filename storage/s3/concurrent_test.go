package s3

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
)

// TestConcurrentSmallUploads pushes 1 KiB blobs, each in one Append and one
// Commit as a monolithic push does, from many clients at once. versitygw's
// posix backend prunes an upload's directory after its last object is
// deleted, then uploads/ too if that looks empty, and a PutObject creating
// another upload's directory at that moment gets a 409: a burst of 32
// uploads rarely hits it (uploads/ is never empty), while a few clients
// pushing back to back hit it about once in 100 uploads (6 of 600 before
// the store retried it). Every upload must succeed.
func TestConcurrentSmallUploads(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	for _, tc := range []struct{ clients, each int }{{32, 2}, {3, 200}} {
		t.Run(fmt.Sprintf("%dx%d", tc.clients, tc.each), func(t *testing.T) {
			n := tc.clients * tc.each
			errs := make([]error, n)
			data := make([][]byte, n)
			var wg sync.WaitGroup
			for c := range tc.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := c * tc.each; i < (c+1)*tc.each; i++ {
						data[i] = randomBytes(uint64(tc.clients<<20+i), 1024)
						u := newUpload()
						if errs[i] = s.Append(ctx, u, bytes.NewReader(data[i])); errs[i] != nil {
							continue
						}
						errs[i] = s.Commit(ctx, u, digest.FromBytes(digest.SHA256, data[i]))
					}
				}()
			}
			wg.Wait()
			failed := 0
			for i, err := range errs {
				if err != nil {
					if failed++; failed <= 5 {
						t.Errorf("upload %d: %v", i, err)
					}
					continue
				}
				checkBlob(t, s, data[i])
			}
			if failed > 0 {
				t.Errorf("%d of %d uploads failed", failed, n)
			}
		})
	}
}
