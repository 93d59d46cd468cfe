package s3

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/s3/s3fault"
)

// aheadSize spans five read parts, the last one short.
const aheadSize = 4*readPartSize + 12345

// ahead4 turns read-ahead on, four parts deep.
func ahead4(c *Config) { c.ReadAhead = 4 }

// putBlob commits data as a blob of s and returns its digest.
func putBlob(t *testing.T, s *Store, data []byte) digest.Digest {
	t.Helper()
	commit(t, s, push(t, s, newUpload(), data), data)
	return digest.FromBytes(digest.SHA256, data)
}

// getCounter is a fault-free proxy's Match that counts blob GETs and
// notes their Range headers.
type getCounter struct {
	mu     sync.Mutex
	ranges []string
}

func (g *getCounter) match(r *http.Request) bool {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		g.mu.Lock()
		g.ranges = append(g.ranges, r.Header.Get("Range"))
		g.mu.Unlock()
	}
	return false
}

func (g *getCounter) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.ranges)
}

// checkReleased: once every reader is closed, no read buffer is held.
func checkReleased(t *testing.T, s *Store) {
	t.Helper()
	if n := len(s.readSlots); n != 0 {
		t.Fatalf("%d read buffers still held after every reader closed", n)
	}
}

// TestReadAheadOrdered: from any offset, the parts come back in order and
// byte-exact, whatever order their GETs finish in.
func TestReadAheadOrdered(t *testing.T) {
	s := newTestStore(t, ahead4)
	data := randomBytes(80, aheadSize)
	d := putBlob(t, s, data)
	for _, off := range []int{0, 1, readPartSize - 1, readPartSize, 2*readPartSize + 7, aheadSize - readPartSize, aheadSize - 1, aheadSize} {
		if got := readBlob(t, s, d, int64(off)); !bytes.Equal(got, data[off:]) {
			t.Fatalf("from %d: read %d bytes, want the %d after it", off, len(got), len(data)-off)
		}
	}
	checkReleased(t, s)
}

// TestReadAheadFetchesAhead: after one byte is read, the rest of the blob
// is being fetched, with ranged GETs of readPartSize; a blob of one part
// costs one GET.
func TestReadAheadFetchesAhead(t *testing.T) {
	direct := newTestStore(t, ahead4)
	var g getCounter
	s, _ := faultyStore(t, direct, s3fault.Faults{Match: g.match})
	ctx := context.Background()
	small := randomBytes(81, 1000)
	if got := readBlob(t, s, putBlob(t, direct, small), 0); !bytes.Equal(got, small) || g.count() != 1 {
		t.Fatalf("small blob: %d bytes in %d GETs %q, want %d in 1", len(got), g.count(), g.ranges, len(small))
	}
	data := randomBytes(82, aheadSize)
	r, err := s.Open(ctx, putBlob(t, direct, data), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// The first GET and 4 more, without reading further.
	deadline := time.Now().Add(10 * time.Second)
	for g.count() < 1+1+4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	g.mu.Lock()
	got := append([]string(nil), g.ranges[1:]...)
	g.mu.Unlock()
	want := []string{fmt.Sprintf("bytes=0-%d", readPartSize-1)}
	for a := int64(readPartSize); a < aheadSize; a += readPartSize {
		want = append(want, fmt.Sprintf("bytes=%d-%d", a, min(a+readPartSize, aheadSize)-1))
	}
	slices.SortFunc(got[1:], func(a, b string) int { return cmp.Compare(rangeStart(a), rangeStart(b)) })
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("GETs after reading one byte:\n got %q\nwant %q", got, want)
	}
}

// rangeStart is a of "bytes=a-b": the prefetches start in any order.
func rangeStart(r string) int64 {
	var a, b int64
	fmt.Sscanf(r, "bytes=%d-%d", &a, &b)
	return a
}

// TestReadAheadOff: without read-ahead (the default), a blob read is one
// GET without a Range, the fastest on a server next door.
func TestReadAheadOff(t *testing.T) {
	direct := newTestStore(t)
	var g getCounter
	s, _ := faultyStore(t, direct, s3fault.Faults{Match: g.match})
	data := randomBytes(87, aheadSize)
	if got := readBlob(t, s, putBlob(t, direct, data), 0); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes that differ from the %d stored", len(got), len(data))
	}
	if len(g.ranges) != 1 || g.ranges[0] != "" {
		t.Fatalf("GETs %q, want one without a range", g.ranges)
	}
}

// TestReadAheadBounded: readers that find every buffer taken stream their
// parts directly; all of them read byte-exact, and all buffers come back.
func TestReadAheadBounded(t *testing.T) {
	s := newTestStore(t, ahead4)
	s.readSlots = make(chan struct{}, 1)
	data := randomBytes(83, aheadSize)
	d := putBlob(t, s, data)
	ctx := context.Background()
	var readers []io.ReadCloser
	got := make([]bytes.Buffer, 3)
	for range got {
		r, err := s.Open(ctx, d, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		readers = append(readers, r)
	}
	// Interleaved, so that each reader asks while the others hold the buffer.
	buf := make([]byte, 1<<20)
	for done := 0; done < len(readers); {
		done = 0
		for i, r := range readers {
			n, err := r.Read(buf)
			got[i].Write(buf[:n])
			if len(s.readSlots) > 1 {
				t.Fatalf("%d read buffers held, the store allows 1", len(s.readSlots))
			}
			if err == io.EOF {
				done++
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range got {
		if !bytes.Equal(got[i].Bytes(), data) {
			t.Fatalf("reader %d: %d bytes that differ from the %d stored", i, got[i].Len(), len(data))
		}
		readers[i].Close()
	}
	checkReleased(t, s)
}

// TestReadAheadCancel: a cancelled request's reader fails with the
// context's error and, closed, gives back every buffer, including those of
// fetches still in flight; so does a reader closed half way.
func TestReadAheadCancel(t *testing.T) {
	s := newTestStore(t, ahead4)
	d := putBlob(t, s, randomBytes(84, aheadSize))
	ctx, cancel := context.WithCancel(context.Background())
	r, err := s.Open(ctx, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, readPartSize+10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	r.Close()
	checkReleased(t, s)

	r, err = s.Open(context.Background(), d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	checkReleased(t, s)
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after close succeeded")
	}
}

// TestReadAheadFailingPart: when one part's GET keeps failing, the reader
// returns every byte before that part, then storage.ErrUnavailable;
// never a later part's bytes in its place.
func TestReadAheadFailingPart(t *testing.T) {
	direct := newTestStore(t, ahead4)
	data := randomBytes(85, aheadSize)
	d := putBlob(t, direct, data)
	third := fmt.Sprintf("bytes=%d-", 2*readPartSize)
	s, proxy := faultyStore(t, direct, s3fault.Faults{Reject: 1, Match: func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.HasPrefix(r.Header.Get("Range"), third)
	}})
	r, err := s.Open(context.Background(), d, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if !errors.Is(err, storage.ErrUnavailable) || !bytes.Equal(got, data[:2*readPartSize]) {
		t.Fatalf("read %d bytes (a prefix: %v), then %v; want the %d before the third part, then ErrUnavailable",
			len(got), bytes.HasPrefix(data, got), err, 2*readPartSize)
	}
	if proxy.Stats().Rejected == 0 {
		t.Fatal("no GET of the third part was rejected")
	}
	checkReleased(t, s)
}

// TestReadAheadCutParts: parts whose bodies are cut mid-way resume, and
// the blob reads back byte-exact.
func TestReadAheadCutParts(t *testing.T) {
	direct := newTestStore(t, ahead4)
	data := randomBytes(86, aheadSize)
	d := putBlob(t, direct, data)
	s, proxy := faultyStore(t, direct, s3fault.Faults{Cut: 0.3, Methods: []string{http.MethodGet}})
	// Three reads, then more until a GET was cut: a seed may spare the
	// first fifteen or so GETs (0.7^15, about 1 run in 200).
	for i := 0; i < 3 || proxy.Stats().Cut == 0 && i < 30; i++ {
		off := (i % 3) * 1000
		if got := readBlob(t, s, d, int64(off)); !bytes.Equal(got, data[off:]) {
			t.Fatalf("read %d from %d bytes that differ", len(got), off)
		}
	}
	if proxy.Stats().Cut == 0 {
		t.Fatal("no GET was cut")
	}
	checkReleased(t, s)
}
