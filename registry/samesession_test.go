package registry_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// TestChunkRaceOnOneSession: clients that retry a chunk (a timeout, a
// proxy that resent it) send the same PATCH to one session at once, while
// another asks where the session is. Exactly one PATCH of each chunk
// lands; the others answer 416; no answer shows a range the session did
// not have; the blob is the bytes sent once.
func TestChunkRaceOnOneSession(t *testing.T) {
	h := newRegistry(t)
	const repo, senders = "race/session", 6
	w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	expect(t, w, http.StatusAccepted, "")
	loc := w.Header().Get("Location")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<10)
	chunks := [][]byte{data[:10000], data[10000:30000], data[30000:50001], data[50001:]}
	ranges := map[string]bool{"0-0": true} // the session's ranges so far ("0-0" before any byte too)
	off := 0
	for i, c := range chunks {
		var won atomic.Int32
		statuses := make(chan string, senders+1) // the Range headers answered
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() {
				w := do(t, h, "PATCH", loc, c, "Content-Range", fmt.Sprintf("%d-%d", off, off+len(c)-1))
				switch w.Code {
				case http.StatusAccepted:
					won.Add(1)
				case http.StatusRequestedRangeNotSatisfiable:
					statuses <- w.Header().Get("Range")
				default:
					t.Errorf("chunk %d: %d %s", i, w.Code, w.Body)
				}
			})
		}
		wg.Go(func() {
			w := do(t, h, "GET", loc, nil)
			if w.Code != http.StatusNoContent {
				t.Errorf("status during chunk %d: %d %s", i, w.Code, w.Body)
			}
			statuses <- w.Header().Get("Range")
		})
		wg.Wait()
		off += len(c)
		ranges[fmt.Sprintf("0-%d", off-1)] = true
		close(statuses)
		for got := range statuses {
			if !ranges[got] {
				t.Errorf("during chunk %d: Range %q, not one the session had", i, got)
			}
		}
		if won.Load() != 1 {
			t.Fatalf("chunk %d: %d PATCHes landed, want 1", i, won.Load())
		}
	}
	d := sha(data)
	expect(t, do(t, h, "PUT", loc+"?digest="+d.String(), nil), http.StatusCreated, "")
	w = do(t, h, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil)
	expect(t, w, http.StatusOK, "")
	if !bytes.Equal(w.Body.Bytes(), data) {
		t.Fatalf("blob of %d bytes, want the %d sent", w.Body.Len(), len(data))
	}
}
