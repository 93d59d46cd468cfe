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

// TestNoChecksumPerByte: blob bytes cross the wire without the SDK's CRCs.
// A GET asking for the stored checksum (x-amz-checksum-mode) makes the SDK
// hash every byte it reads, and a part sent with one hashes every byte it
// sends; the digest, checked by Commit and by the client, already covers
// them. Seen through a proxy that injects no fault and notes the headers.
func TestNoChecksumPerByte(t *testing.T) {
	direct := newTestStore(t, smallParts)
	var mu sync.Mutex
	var seen []string
	note := func(r *http.Request) bool {
		if r.URL.Query().Has("delete") {
			return false // DeleteObjects: S3 requires a checksum of its small XML body
		}
		mu.Lock()
		defer mu.Unlock()
		for k, vs := range r.Header {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "x-amz-checksum") || strings.HasPrefix(lk, "x-amz-sdk-checksum") ||
				lk == "x-amz-trailer" || lk == "content-encoding" && strings.Contains(strings.Join(vs, ","), "aws-chunked") {
				seen = append(seen, r.Method+" "+r.URL.Path+": "+k+": "+strings.Join(vs, ","))
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
	if len(seen) > 0 {
		t.Fatalf("requests asked for per-byte checksums:\n%s", strings.Join(seen, "\n"))
	}
}
