package s3

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage/s3/s3fault"
)

// TestCheapIntegrityOnTheWire: the SDK spends no hash of every byte
// beyond a CRC32 of what it sends. A GET asking for the stored checksum
// (x-amz-checksum-mode) makes it compute a CRC64 of every byte read, and a
// signed payload a SHA-256 of every byte sent; the blob's digest, checked
// by Commit and by the client, covers both. Seen through a proxy that
// injects no fault and notes the headers.
func TestCheapIntegrityOnTheWire(t *testing.T) {
	direct := newTestStore(t, smallParts)
	var mu sync.Mutex
	var bad []string
	sent := 0
	note := func(r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		line := r.Method + " " + r.URL.Path + ": "
		if v := r.Header.Get("X-Amz-Checksum-Mode"); v != "" {
			bad = append(bad, line+"X-Amz-Checksum-Mode: "+v)
		}
		for k, vs := range r.Header {
			if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-checksum-") && lk != "x-amz-checksum-mode" && lk != "x-amz-checksum-crc32" {
				bad = append(bad, line+k+": "+strings.Join(vs, ","))
			}
		}
		if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "" {
			sent++
			if v := r.Header.Get("X-Amz-Content-Sha256"); v != "UNSIGNED-PAYLOAD" {
				bad = append(bad, line+"X-Amz-Content-Sha256: "+v)
			}
		}
		return false
	}
	s, _ := faultyStore(t, direct, s3fault.Faults{Match: note})
	for _, size := range []int{1000, 7*mib + 3} { // one PutObject; parts, a tail and a copy
		data := randomBytes(uint64(70+size), size)
		commit(t, s, push(t, s, newUpload(), data), data)
		if got := readBlob(t, s, digest.FromBytes(digest.SHA256, data), 0); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back %d bytes that differ", size, len(got))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if sent == 0 || len(bad) > 0 {
		t.Fatalf("%d bodies sent; requests that hash every byte:\n%s", sent, strings.Join(bad, "\n"))
	}
}
