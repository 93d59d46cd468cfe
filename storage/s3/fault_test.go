package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/s3/s3fault"
)

// faultyStore puts an s3fault proxy between a twin of s and the server.
func faultyStore(t *testing.T, s *Store, f s3fault.Faults) (*Store, *s3fault.Proxy) {
	t.Helper()
	if s.cfg.Endpoint == "" {
		t.Skip("PACKREG_TEST_S3 has no endpoint to put a proxy in front of")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PACKREG_S3FAULT_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("fault seed %d (PACKREG_S3FAULT_SEED replays it)", seed)
	p, err := s3fault.New(s.cfg.Endpoint, f, seed)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return twin(t, s, func(c *Config) {
		c.Endpoint = srv.URL
		c.MaxAttempts = 8
		c.MaxBackoff = 20 * time.Millisecond
	}), p
}

type outcome struct {
	data      []byte
	d         digest.Digest
	committed bool
	err       error
}

// TestFaultsNeverPublishWrongData pushes blobs of every shape through a
// proxy that fails requests, loses answers and cuts connections. Whatever
// Append and Commit answer, a blob whose Commit returned nil reads back
// byte-exact, and a blob whose Commit failed is not visible.
func TestFaultsNeverPublishWrongData(t *testing.T) {
	direct := newTestStore(t, smallParts)
	faulty, proxy := faultyStore(t, direct, s3fault.Faults{Reject: 0.06, Lose: 0.04, Cut: 0.04, CutRequest: 0.03})
	ctx := context.Background()
	sizes := []int{0, 1, 1000, 300 << 10, 5 * mib, 5*mib + 1, 11*mib + 7}
	const uploads = 21
	results := make([]outcome, uploads)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i] = pushFaulty(ctx, faulty, direct, i, sizes[i%len(sizes)])
			}
		}()
	}
	for i := 0; i < uploads; i++ {
		work <- i
	}
	close(work)
	wg.Wait()

	st := proxy.Stats()
	t.Logf("proxy: %+v", st)
	if st.Injected() == 0 {
		t.Fatal("no fault was injected; the test proved nothing")
	}
	proxy.SetFaults(s3fault.Faults{Cut: 0.05, Methods: []string{"GET"}})
	ok := 0
	published := map[digest.Digest]bool{} // the empty blob, say, comes twice
	for _, r := range results {
		published[r.d] = published[r.d] || r.committed
	}
	for i, r := range results {
		switch {
		case r.committed:
			ok++
			checkBlob(t, direct, r.data)
			// Reads through cut connections resume and stay exact.
			if got := readBlob(t, faulty, r.d, 0); !bytes.Equal(got, r.data) {
				t.Errorf("upload %d: read through the faulty proxy differs", i)
			}
		default:
			t.Logf("upload %d (%d bytes) failed: %v", i, len(r.data), r.err)
			if _, err := direct.Stat(ctx, r.d); !published[r.d] && !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("upload %d: Commit failed (%v) but the blob is visible: %v", i, r.err, err)
			}
		}
	}
	t.Logf("%d of %d uploads committed", ok, uploads)
	if ok < uploads/2 {
		t.Errorf("only %d of %d uploads got through retries", ok, uploads)
	}

	// Whatever the faults left behind, the janitor removes.
	if _, err := direct.PurgeUploads(ctx, time.Now().Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	root := direct.key("uploads") + "/"
	var left []string
	direct.listObjects(ctx, root, func(o types.Object) error { left = append(left, *o.Key); return nil })
	direct.listUploads(ctx, root, func(m types.MultipartUpload) { left = append(left, "multipart "+*m.Key) })
	if len(left) > 0 {
		t.Errorf("after purge: %v", left)
	}
}

// pushFaulty is a client that retries each chunk a few times from the
// unchanged Upload, then Commits once (every third upload with a wrong
// digest). The direct store aborts uploads the faulty one gave up on.
func pushFaulty(ctx context.Context, faulty, direct *Store, i, size int) outcome {
	data := randomBytes(uint64(1000+i), size)
	out := outcome{data: data, d: digest.FromBytes(digest.SHA256, data)}
	rng := mrand.New(mrand.NewPCG(uint64(i), 7))
	u := newUpload()
	for off := 0; off < size; {
		n := min(size-off, 1+rng.IntN(4*mib))
		var err error
		for try := 0; try < 4; try++ {
			next := clone(u)
			if err = faulty.Append(ctx, next, bytes.NewReader(data[off:off+n])); err == nil {
				u = next
				break
			}
		}
		if err != nil {
			direct.Abort(ctx, u)
			out.err = fmt.Errorf("append at %d: %w", off, err)
			return out
		}
		off += n
	}
	claim := out.d
	if i%3 == 2 {
		claim = digest.FromBytes(digest.SHA256, append(bytes.Clone(data), 'x'))
	}
	out.err = faulty.Commit(ctx, u, claim)
	if i%3 == 2 {
		if out.err == nil {
			out.err = errors.New("commit with a wrong digest succeeded")
		}
		return out
	}
	out.committed = out.err == nil
	if !out.committed {
		direct.Abort(ctx, u)
	}
	return out
}

func isCopy(r *http.Request) bool { return r.Header.Get("X-Amz-Copy-Source") != "" }

// TestCommitRetriedAfterCopyFailed: a Commit that completed the multipart
// upload but could not copy it to the blob key fails, publishes nothing,
// and the registry's retry of the same Commit (on another replica) succeeds.
func TestCommitRetriedAfterCopyFailed(t *testing.T) {
	direct := newTestStore(t, smallParts)
	faulty, _ := faultyStore(t, direct, s3fault.Faults{Reject: 1, Match: isCopy})
	ctx := context.Background()
	for _, size := range []int{5 * mib, 7*mib + 3} { // without and with a tail
		data := randomBytes(uint64(30+size), size)
		d := digest.FromBytes(digest.SHA256, data)
		u := push(t, direct, newUpload(), data)
		err := faulty.Commit(ctx, clone(u), d)
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("%d bytes: commit with copies failing: %v, want ErrUnavailable", size, err)
		}
		if _, err := direct.Stat(ctx, d); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%d bytes: blob visible after a failed commit: %v", size, err)
		}
		commit(t, direct, u, data)
	}
}

// TestCopyAnswerLost: when the copy to the blob key happened but its
// answer was lost on every attempt, S3 has the blob and Commit says so.
func TestCopyAnswerLost(t *testing.T) {
	direct := newTestStore(t, smallParts)
	faulty, proxy := faultyStore(t, direct, s3fault.Faults{Lose: 1, Match: isCopy})
	data := randomBytes(40, 6*mib)
	commit(t, faulty, push(t, faulty, newUpload(), data), data)
	if proxy.Stats().Lost == 0 {
		t.Fatal("no copy answer was lost")
	}
}
