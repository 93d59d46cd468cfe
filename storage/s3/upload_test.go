package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/s3/s3fault"
)

const mib = 1 << 20

func smallParts(c *Config) { c.PartSize = 5 * mib }

func decodeState(t testing.TB, u *storage.Upload) state {
	t.Helper()
	var st state
	if err := json.Unmarshal(u.Backend, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// push appends data in chunks of the given sizes (the rest in one last
// chunk), each time on a clone of u, as the registry does across requests.
func push(t testing.TB, s *Store, u *storage.Upload, data []byte, chunks ...int) *storage.Upload {
	t.Helper()
	off := 0
	appendChunk := func(b []byte, r io.Reader) {
		u = clone(u)
		before := u.Offset
		if err := s.Append(context.Background(), u, r); err != nil {
			t.Fatalf("append %d bytes at %d: %v", len(b), before, err)
		}
		if u.Offset != before+int64(len(b)) {
			t.Fatalf("append %d bytes at %d: offset %d", len(b), before, u.Offset)
		}
	}
	for i, n := range chunks {
		b := data[off : off+n]
		var r io.Reader = bytes.NewReader(b)
		switch i % 3 { // readers that return less than asked, as request bodies do
		case 1:
			r = iotest.HalfReader(r)
		case 2:
			r = iotest.DataErrReader(r)
		}
		appendChunk(b, r)
		off += n
	}
	if off < len(data) {
		appendChunk(data[off:], bytes.NewReader(data[off:]))
	}
	return u
}

func commit(t testing.TB, s *Store, u *storage.Upload, data []byte) {
	t.Helper()
	if err := s.Commit(context.Background(), u, digest.FromBytes(digest.SHA256, data)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if left := uploadLeftovers(t, s, u); len(left) > 0 {
		t.Errorf("commit left %v", left)
	}
	checkBlob(t, s, data)
}

func TestLargeUnevenChunks(t *testing.T) {
	s := newTestStore(t, smallParts)
	data := randomBytes(3, 13*mib+12345)
	u := push(t, s, newUpload(), data, 1, 100, 3*mib, 7*mib+5, 1, 0, 2*mib, 1000)
	st := decodeState(t, u)
	if len(st.Parts) != 2 || st.tailSize() != int64(len(data))-10*mib {
		t.Fatalf("state: %d parts and a %d byte tail for %d bytes", len(st.Parts), st.tailSize(), len(data))
	}
	commit(t, s, u, data)
	d := digest.FromBytes(digest.SHA256, data)
	for _, off := range []int{5*mib - 1, 5 * mib, 10*mib + 7, len(data) - 1} {
		if got := readBlob(t, s, d, int64(off)); !bytes.Equal(got, data[off:]) {
			t.Errorf("read from %d: wrong bytes", off)
		}
	}
}

func TestCrossInstance(t *testing.T) {
	s1 := newTestStore(t, smallParts)
	// The other replica is configured with another part size: the upload
	// keeps the one it started with.
	s2 := twin(t, s1, func(c *Config) { c.PartSize = 8 * mib })
	ctx := context.Background()
	data := randomBytes(4, 12*mib+999)
	u := newUpload()
	steps := []struct {
		s *Store
		n int
	}{{s1, 6 * mib}, {s2, 1024}, {s1, 3 * mib}, {s2, 2*mib + 5}}
	off := 0
	for _, step := range steps {
		u = clone(u)
		if err := step.s.Append(ctx, u, bytes.NewReader(data[off:off+step.n])); err != nil {
			t.Fatal(err)
		}
		off += step.n
	}
	u = clone(u)
	if err := s2.Append(ctx, u, bytes.NewReader(data[off:])); err != nil {
		t.Fatal(err)
	}
	if st := decodeState(t, u); st.PartSize != 5*mib || len(st.Parts) != 2 {
		t.Fatalf("state: part size %d, %d parts", st.PartSize, len(st.Parts))
	}
	commit(t, s2, clone(u), data)
	checkBlob(t, s1, data)
}

func TestReplayAppend(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	base := randomBytes(5, 4*mib)
	lost := randomBytes(6, 3*mib) // acknowledged by S3, never recorded
	redo := randomBytes(7, 2*mib+500)
	rest := randomBytes(8, 6*mib)
	u0 := push(t, s, newUpload(), base)
	if err := s.Append(ctx, clone(u0), bytes.NewReader(lost)); err != nil {
		t.Fatal(err)
	}
	// The client retries with other bytes from the recorded offset: part 1
	// is rewritten and nothing of lost may survive.
	u := push(t, s, u0, redo)
	u = push(t, s, u, rest)
	commit(t, s, u, bytes.Join([][]byte{base, redo, rest}, nil))
}

func TestStaleReplayKeepsNewerTail(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	a, b, stale := randomBytes(9, 1000), randomBytes(10, 2000), randomBytes(11, 2000)
	u0 := push(t, s, newUpload(), a)
	u1 := push(t, s, u0, b)
	// A delayed duplicate of the second request, from the old state, loses
	// its compare-and-swap in the metadata store but has already written.
	if err := s.Append(ctx, clone(u0), bytes.NewReader(stale)); err != nil {
		t.Fatal(err)
	}
	commit(t, s, u1, append(bytes.Clone(a), b...))
}

func TestStalePartOverwriteNotPublished(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	base, a, b := randomBytes(12, 6*mib), randomBytes(13, 5*mib), randomBytes(14, 5*mib)
	u0 := push(t, s, newUpload(), base)
	u1 := push(t, s, u0, a)
	// A stale writer rewrites part 2 of the same multipart upload, which
	// u1 refers to.
	if err := s.Append(ctx, clone(u0), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Clone(base), a...)
	err := s.Commit(ctx, u1, digest.FromBytes(digest.SHA256, want))
	if err == nil {
		// Only acceptable if what was published is right.
		checkBlob(t, s, want)
		return
	}
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("commit after a part was overwritten: %v, want ErrConflict", err)
	}
	if _, err := s.Stat(ctx, digest.FromBytes(digest.SHA256, want)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("blob visible after a failed commit: %v", err)
	}
}

func TestReaderError(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	data := randomBytes(15, 9*mib)
	u := push(t, s, newUpload(), data[:3*mib])
	before := clone(u)
	boom := errors.New("client went away")
	// Fails after a full part went out: u must not move.
	r := io.MultiReader(bytes.NewReader(data[3*mib:8*mib]), iotest.ErrReader(boom))
	if err := s.Append(ctx, u, r); !errors.Is(err, boom) {
		t.Fatalf("append with a failing reader: %v", err)
	}
	if !reflect.DeepEqual(u, before) {
		t.Fatal("a failed append changed the upload")
	}
	u = push(t, s, u, data[3*mib:], 4*mib)
	commit(t, s, u, data)
}

func TestTinyAppends(t *testing.T) {
	s := newTestStore(t, smallParts)
	data := randomBytes(16, 6*mib)
	chunks := make([]int, 300)
	for i := range chunks {
		chunks[i] = 1 + i%97
	}
	u := push(t, s, newUpload(), data, chunks...)
	commit(t, s, u, data)

	u = push(t, s, newUpload(), data[:40000], chunks[:200]...)
	if n := len(decodeState(t, u).Tail); n > 12 {
		t.Errorf("%d tail segments after 200 appends, want O(log n)", n)
	}
}

func TestEmptyBlob(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	commit(t, s, newUpload(), nil) // never appended
	u := newUpload()
	if err := s.Append(ctx, u, bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	commit(t, s, u, nil)
	checkBlob(t, s, nil)
}

func TestDigestMismatch(t *testing.T) {
	for _, size := range []int{100, 7 * mib} {
		s := newTestStore(t, smallParts)
		ctx := context.Background()
		data := randomBytes(17, size)
		u := push(t, s, newUpload(), data, size/3)
		wrong := digest.FromBytes(digest.SHA256, []byte("something else"))
		if err := s.Commit(ctx, u, wrong); !errors.Is(err, storage.ErrDigestMismatch) {
			t.Fatalf("%d bytes: commit with a wrong digest: %v", size, err)
		}
		for _, d := range []digest.Digest{wrong, digest.FromBytes(digest.SHA256, data)} {
			if _, err := s.Stat(ctx, d); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%d bytes: %s visible after a mismatch: %v", size, d, err)
			}
		}
		if left := uploadLeftovers(t, s, u); len(left) > 0 {
			t.Errorf("%d bytes: mismatch left %v", size, left)
		}
	}
}

func TestOtherAlgorithm(t *testing.T) {
	for _, size := range []int{100, 7 * mib} {
		for _, algs := range [][2]string{{digest.SHA512, digest.SHA256}, {digest.SHA256, digest.SHA512}} {
			s := newTestStore(t, smallParts)
			ctx := context.Background()
			data := randomBytes(18, size)
			u := newUpload()
			u.Algorithm = algs[0]
			u = push(t, s, u, data, size/2)
			bad := clone(u)
			if err := s.Commit(ctx, u, digest.FromBytes(algs[1], data)); err != nil {
				t.Fatalf("%d bytes hashed as %s, committed as %s: %v", size, algs[0], algs[1], err)
			}
			if got := readBlob(t, s, digest.FromBytes(algs[1], data), 0); !bytes.Equal(got, data) {
				t.Fatalf("%d bytes as %s: wrong bytes", size, algs[1])
			}
			bad.ID += "x"
			bad = push(t, s, &storage.Upload{ID: bad.ID, Algorithm: algs[0]}, data)
			if err := s.Commit(ctx, bad, digest.FromBytes(algs[1], data[1:])); !errors.Is(err, storage.ErrDigestMismatch) {
				t.Fatalf("%d bytes as %s, wrong %s digest: %v", size, algs[0], algs[1], err)
			}
		}
	}
}

func TestCommitExisting(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	for _, size := range []int{10, 6 * mib} {
		data := randomBytes(19, size)
		u := push(t, s, newUpload(), data)
		commit(t, s, clone(u), data)
		// A replayed Commit (crash before the session was deleted) and
		// another upload of the same bytes both succeed and clean up.
		if err := s.Commit(ctx, u, digest.FromBytes(digest.SHA256, data)); err != nil {
			t.Fatalf("replayed commit: %v", err)
		}
		commit(t, s, push(t, s, newUpload(), data), data)
	}
}

func TestMultipartCopy(t *testing.T) {
	s := newTestStore(t, smallParts)
	s.copyLimit = 5 * mib // what happens above 5 GiB, at test scale
	data := randomBytes(20, 12*mib+1)
	commit(t, s, push(t, s, newUpload(), data, 5*mib), data)
}

func TestAbort(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	data, partData := randomBytes(21, 6*mib), randomBytes(24, 5*mib)
	u := push(t, s, newUpload(), data)
	if len(uploadLeftovers(t, s, u)) == 0 {
		t.Fatal("nothing stored for the upload")
	}
	for i := 0; i < 2; i++ { // aborting twice is fine
		if err := s.Abort(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if left := uploadLeftovers(t, s, u); len(left) > 0 {
		t.Fatalf("abort left %v", left)
	}
	// Both shapes of state notice the upload is gone: with a staged tail,
	// and with full parts only.
	partsOnly := push(t, s, newUpload(), partData)
	if n := len(decodeState(t, partsOnly).Tail); n != 0 {
		t.Fatalf("%d tail segments for exactly one part", n)
	}
	if err := s.Abort(ctx, partsOnly); err != nil {
		t.Fatal(err)
	}
	for i, gone := range []*storage.Upload{u, partsOnly} {
		if err := s.Append(ctx, clone(gone), bytes.NewReader([]byte("more"))); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("upload %d: append after abort: %v, want ErrNotFound", i, err)
		}
		d := digest.FromBytes(digest.SHA256, [][]byte{data, partData}[i])
		if err := s.Commit(ctx, clone(gone), d); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("upload %d: commit after abort: %v, want ErrNotFound", i, err)
		}
	}
	if err := s.Abort(ctx, newUpload()); err != nil {
		t.Fatalf("abort of an unknown upload: %v", err)
	}
	if err := s.Abort(ctx, &storage.Upload{ID: "../x"}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("abort of an invalid id: %v", err)
	}
}

func TestPurgeUploads(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	u1 := push(t, s, newUpload(), randomBytes(22, 6*mib))
	u2 := push(t, s, newUpload(), randomBytes(23, 10))
	// An orphan: a multipart upload no session knows (a crashed Append).
	orphan := newUpload()
	dir, _ := s.uploadDir(orphan.ID)
	key := dir + dataName
	if _, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeUploads(ctx, time.Now().Add(-time.Hour)); n != 0 || err != nil {
		t.Fatalf("purge of uploads older than an hour: %d, %v", n, err)
	}
	if len(uploadLeftovers(t, s, u1)) == 0 {
		t.Fatal("purge removed a live upload")
	}
	// S3 times have one-second resolution.
	n, err := s.PurgeUploads(ctx, time.Now().Add(2*time.Second))
	if n != 3 || err != nil {
		t.Fatalf("purge: %d, %v; want 3 uploads", n, err)
	}
	for _, u := range []*storage.Upload{u1, u2, orphan} {
		if left := uploadLeftovers(t, s, u); len(left) > 0 {
			t.Errorf("purge left %v", left)
		}
	}
}

// TestPartBuffersReused: consecutive uploads reuse part buffers instead of
// allocating a part per Append, and idle buffers stay bounded.
func TestPartBuffersReused(t *testing.T) {
	s := newTestStore(t, smallParts)
	data := randomBytes(25, 11*mib)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 3; i++ {
		u := newUpload()
		u = push(t, s, u, data, 2*mib, 5*mib, 3*mib)
		if err := s.Abort(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// 12 Appends and 6 full parts; without reuse that is 12 part buffers.
	// Each upload's last 1 MiB tail is also copied into the tail cache.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*5*mib+3*maxCachedTail {
		t.Errorf("3 uploads of 11 MiB allocated %d MiB, want at most 4 parts and 3 cached tails", alloc/mib)
	}
	if n := len(s.parts); n < 1 || n > idleParts {
		t.Errorf("%d idle part buffers, want 1..%d", n, idleParts)
	}
}

// TestPartBuffersBounded: uploads share at most maxPartBuffers part
// buffers; with one allowed, three concurrent multi-part pushes take turns
// and all commit byte-exact, and every buffer comes back. An Append that
// cannot get one gives up with its context, taking nothing.
func TestPartBuffersBounded(t *testing.T) {
	s := newTestStore(t, smallParts)
	s.partSlots = make(chan struct{}, 1)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := randomBytes(uint64(90+i), 2*5*mib+3)
			u := newUpload()
			ctx := context.Background()
			if err := s.Append(ctx, u, bytes.NewReader(data)); err != nil {
				t.Errorf("push %d: %v", i, err)
				return
			}
			if err := s.Commit(ctx, u, digest.FromBytes(digest.SHA256, data)); err != nil {
				t.Errorf("commit %d: %v", i, err)
				return
			}
			checkBlob(t, s, data)
		}()
	}
	wg.Wait()
	if n := len(s.partSlots); n != 0 {
		t.Fatalf("%d part buffers still held after every upload ended", n)
	}

	s.partSlots <- struct{}{} // someone else's part
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	u := newUpload()
	data := randomBytes(95, 5*mib+1)
	if err := s.Append(ctx, u, bytes.NewReader(data)); !errors.Is(err, context.DeadlineExceeded) || u.Offset != 0 {
		t.Fatalf("append without a part buffer: %v, offset %d; want the context's error and nothing appended", err, u.Offset)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := s.Append(ctx2, u, bytes.NewReader(data)); err == nil || !strings.Contains(err.Error(), "append "+u.ID+": waiting for a part buffer: ") {
		t.Fatalf("append without a part buffer: %q, want it to say it waited for a part buffer (not a read error)", err)
	}
	<-s.partSlots
	if n := len(s.partSlots); n != 0 {
		t.Fatalf("%d part buffers held after a failed append", n)
	}
	commit(t, s, push(t, s, u, data), data)
}

// opCounter counts a Store's S3 calls by operation.
type opCounter struct {
	mu  sync.Mutex
	ops map[string]int
}

func countOps(s *Store) *opCounter {
	c := &opCounter{ops: map[string]int{}}
	s.ObserveOps(func(op string, _ time.Duration, _ error) {
		c.mu.Lock()
		c.ops[op]++
		c.mu.Unlock()
	})
	return c
}

func (c *opCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = map[string]int{}
	return ops
}

// TestWholePartPatchesOneRequest: a chunked push whose PATCHes are whole
// parts, alternating between two replicas, costs one S3 request per
// PATCH (the UploadPart, which also proves the upload alive) where a
// ListParts came before it; a PATCH that only stages a tail still checks
// first. The blob commits byte-exact. With bodies that announce their
// length, as the registry's do, each part is streamed (stream.go), the
// streamed UploadPart the only one.
func TestWholePartPatchesOneRequest(t *testing.T) {
	for _, announced := range []bool{false, true} {
		t.Run(fmt.Sprintf("announced=%v", announced), func(t *testing.T) {
			wholePartPatches(t, announced)
		})
	}
}

func wholePartPatches(t *testing.T, announced bool) {
	s1 := newTestStore(t, smallParts)
	s2 := twin(t, s1)
	c1, c2 := countOps(s1), countOps(s2)
	ctx := context.Background()
	data := randomBytes(31, 4*5*mib+100)
	body := func(b []byte) io.Reader {
		if announced {
			return announce(b)
		}
		return bytes.NewReader(b)
	}
	u := newUpload()
	for i := 0; i < 4; i++ {
		s, c := s1, c1
		if i%2 == 1 {
			s, c = s2, c2
		}
		u = clone(u)
		if err := s.Append(ctx, u, body(data[i*5*mib:(i+1)*5*mib])); err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"UploadPart": 1}
		if i == 0 {
			want["CreateMultipartUpload"] = 1
		}
		if got := c.take(); !maps.Equal(got, want) {
			t.Fatalf("PATCH %d: S3 calls %v, want %v", i, got, want)
		}
	}
	u = clone(u)
	if err := s1.Append(ctx, u, body(data[4*5*mib:])); err != nil {
		t.Fatal(err)
	}
	if got := c1.take(); got["ListParts"] != 1 || got["PutObject"] != 1 {
		t.Fatalf("tail PATCH: S3 calls %v, want a ListParts and a PutObject", got)
	}
	want := int64(0)
	if announced {
		want = 4
	}
	if got := s1.streamed.Load() + s2.streamed.Load(); got != want {
		t.Fatalf("%d parts streamed, want %d", got, want)
	}
	commit(t, s2, clone(u), data)
}

// finishedUploads pushes data into two uploads, then aborts the first
// and commits the second.
func finishedUploads(t *testing.T, s *Store, data []byte) (aborted, committed *storage.Upload) {
	t.Helper()
	ctx := context.Background()
	aborted = push(t, s, newUpload(), data)
	if err := s.Abort(ctx, aborted); err != nil {
		t.Fatal(err)
	}
	committed = push(t, s, newUpload(), data)
	if err := s.Commit(ctx, clone(committed), digest.FromBytes(digest.SHA256, data)); err != nil {
		t.Fatal(err)
	}
	return aborted, committed
}

// TestPartAppendToFinishedUpload: an Append that fills a part (and so
// skips checkAlive) into an upload aborted or committed under it fails
// with ErrNotFound (BLOB_UPLOAD_UNKNOWN), its state unchanged.
func TestPartAppendToFinishedUpload(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	first, more := randomBytes(32, 5*mib), randomBytes(33, 5*mib)
	aborted, committed := finishedUploads(t, s, first)
	for name, u := range map[string]*storage.Upload{"aborted": aborted, "committed": committed} {
		v := clone(u)
		if err := s.Append(ctx, v, bytes.NewReader(more)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: append of a whole part: %v, want ErrNotFound", name, err)
		}
		if v.Offset != u.Offset || !bytes.Equal(v.Backend, u.Backend) {
			t.Errorf("%s: failed append changed the upload: offset %d, want %d", name, v.Offset, u.Offset)
		}
	}
}

// TestPartCutIntoFinishedUploadIsNotFound: when every UploadPart's
// connection breaks (as versitygw may drop one into a finished upload),
// an Append into a committed or aborted upload still answers ErrNotFound,
// and into a live one ErrUnavailable. The first failed before partFailed
// (ErrUnavailable after the retries).
func TestPartCutIntoFinishedUploadIsNotFound(t *testing.T) {
	direct := newTestStore(t, smallParts)
	isPart := func(r *http.Request) bool {
		return r.Method == http.MethodPut && r.URL.Query().Has("partNumber")
	}
	faulty, _ := faultyStore(t, direct, s3fault.Faults{CutRequest: 1, Match: isPart})
	ctx := context.Background()
	first, more := randomBytes(34, 5*mib), randomBytes(35, 5*mib)
	aborted, committed := finishedUploads(t, direct, first)
	live := push(t, direct, newUpload(), first)
	t.Cleanup(func() { direct.Abort(context.Background(), live) })
	for name, c := range map[string]struct {
		u    *storage.Upload
		want error
	}{
		"aborted":   {aborted, storage.ErrNotFound},
		"committed": {committed, storage.ErrNotFound},
		"live":      {live, storage.ErrUnavailable},
	} {
		v := clone(c.u)
		if err := faulty.Append(ctx, v, bytes.NewReader(more)); !errors.Is(err, c.want) {
			t.Errorf("%s: append of a whole part with every part cut: %v, want %v", name, err, c.want)
		}
		if v.Offset != c.u.Offset || !bytes.Equal(v.Backend, c.u.Backend) {
			t.Errorf("%s: failed append changed the upload: offset %d, want %d", name, v.Offset, c.u.Offset)
		}
	}
}

// progressReader reports, once, when more than at bytes were read.
type progressReader struct {
	r       io.Reader
	n, at   int64
	reached chan struct{}
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n > p.at && p.reached != nil {
		close(p.reached)
		p.reached = nil
	}
	return n, err
}

// proxied is a twin of direct behind a reverse proxy that hands each
// request to before on its way.
func proxied(t *testing.T, direct *Store, before func(*http.Request)) *Store {
	t.Helper()
	target, err := url.Parse(direct.cfg.Endpoint)
	if err != nil || direct.cfg.Endpoint == "" {
		t.Skip("no endpoint to put a proxy in front of")
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before(r)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return twin(t, direct, func(c *Config) { c.Endpoint = srv.URL })
}

// TestPartUploadOverlapsReceive: while part 1 of a multi-part Append is
// being uploaded, the body is read on into part 2: a proxy holds the
// first UploadPart until the reader is past part 2's first MiB (or 10 s
// go by, which the test reports). The blob commits byte-exact.
func TestPartUploadOverlapsReceive(t *testing.T) {
	direct := newTestStore(t, smallParts)
	data := randomBytes(34, 3*5*mib)
	body := &progressReader{r: bytes.NewReader(data), at: 6 * mib, reached: make(chan struct{})}
	reached := body.reached
	var overlapped atomic.Bool
	s := proxied(t, direct, func(r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "1" {
			select {
			case <-reached:
				overlapped.Store(true)
			case <-time.After(10 * time.Second):
			}
		}
	})
	u := newUpload()
	if err := s.Append(context.Background(), u, body); err != nil {
		t.Fatal(err)
	}
	if !overlapped.Load() {
		t.Fatal("the body was not read past part 1 while part 1 was being uploaded")
	}
	commit(t, direct, u, data)
}

// TestSmallSessionCalls: a small blob pushed through a session (one
// Append, as a PUT with the bytes or a PATCH brings them, then Commit on
// the same replica) costs 4 S3 calls: the Append's PutObject of the
// tail, the Commit's conditional PutObject of the blob from the tail it
// remembers, and the listing and delete of the upload's objects. It cost
// 7 (a HeadObject of the blob before, a GetObject of the tail and a
// ListMultipartUploads more), 5 for a blob already there, which now
// costs 4 too (its PutObject refused) and keeps its bytes. On another
// replica the Commit reads the tail back (a GetObject more).
func TestSmallSessionCalls(t *testing.T) {
	s := newTestStore(t)
	c := countOps(s)
	ctx := context.Background()
	other := twin(t, s)
	co := countOps(other)
	want := map[string]int{"PutObject": 2, "ListObjectsV2": 1, "DeleteObjects": 1}
	for _, n := range []int{1024, mib} {
		data := randomBytes(uint64(40+n), n)
		for _, again := range []bool{false, true} {
			u := newUpload()
			if err := s.Append(ctx, u, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(ctx, u, digest.FromBytes(digest.SHA256, data)); err != nil {
				t.Fatal(err)
			}
			if got := c.take(); !maps.Equal(got, want) {
				t.Errorf("%d bytes (again: %v): S3 calls %v, want %v", n, again, got, want)
			}
			if left := uploadLeftovers(t, s, u); len(left) > 0 {
				t.Errorf("%d bytes (again: %v): commit left %v", n, again, left)
			}
			checkBlob(t, s, data)
			c.take()
		}
		u := newUpload()
		if err := s.Append(ctx, u, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		c.take()
		if err := other.Commit(ctx, u, digest.FromBytes(digest.SHA256, data)); err != nil {
			t.Fatal(err)
		}
		if got, want := co.take(), map[string]int{"GetObject": 1, "PutObject": 1, "ListObjectsV2": 1, "DeleteObjects": 1}; !maps.Equal(got, want) {
			t.Errorf("%d bytes committed on another replica: S3 calls %v, want %v", n, got, want)
		}
	}
}
