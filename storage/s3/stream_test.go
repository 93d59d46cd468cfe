package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/s3/s3fault"
)

// announcedBody is a request body that says how much of it is still to
// come (storage.Remainder), as the registry's do: its Content-Length.
type announcedBody struct {
	r    io.Reader
	left int64
}

func announce(b []byte) *announcedBody {
	return &announcedBody{r: iotest.HalfReader(bytes.NewReader(b)), left: int64(len(b))}
}

func (a *announcedBody) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	a.left -= int64(n)
	return n, err
}

func (a *announcedBody) Remaining() int64 { return a.left }

var _ storage.Remainder = (*announcedBody)(nil)

// TestStreamedBodyBreaks: a PATCH announcing a whole part whose body
// breaks halfway (the client went away) fails; the upload is unchanged,
// S3 holds no part from it, and the PATCH sent again goes through.
func TestStreamedBodyBreaks(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	data := randomBytes(52, 2*5*mib+10)
	u := newUpload()
	if err := s.Append(ctx, u, announce(data[:5*mib])); err != nil {
		t.Fatal(err)
	}
	gone := errors.New("client gone")
	v := clone(u)
	broken := &announcedBody{r: io.MultiReader(bytes.NewReader(data[5*mib:7*mib]), iotest.ErrReader(gone)), left: 5 * mib}
	if err := s.Append(ctx, v, broken); !errors.Is(err, gone) {
		t.Fatalf("append of a broken body: %v, want %v", err, gone)
	}
	if v.Offset != u.Offset || !bytes.Equal(v.Backend, u.Backend) || !bytes.Equal(v.HashState, u.HashState) {
		t.Fatalf("failed append changed the upload: offset %d, want %d", v.Offset, u.Offset)
	}
	if n := partsInS3(t, s, u); n != 1 {
		t.Fatalf("S3 holds %d parts after the broken PATCH, want 1", n)
	}
	v = clone(u)
	if err := s.Append(ctx, v, announce(data[5*mib:])); err != nil {
		t.Fatal(err)
	}
	if got := s.streamed.Load(); got != 3 {
		t.Fatalf("%d parts streamed, want 3", got)
	}
	commit(t, s, v, data)
}

// partsInS3 is the number of parts S3 holds in u's multipart upload.
func partsInS3(t *testing.T, s *Store, u *storage.Upload) int {
	t.Helper()
	dir, err := s.uploadDir(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	key := dir + dataName
	out, err := s.client.ListParts(context.Background(), &s3.ListPartsInput{
		Bucket: &s.cfg.Bucket, Key: &key, UploadId: aws.String(decodeState(t, u).UploadID),
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Parts)
}

// TestStreamedBodyEndsEarly: a body that ends (EOF) before the part it
// announced is taken as what it is: its bytes are staged as a tail, as
// any short Append's, and the upload goes on.
func TestStreamedBodyEndsEarly(t *testing.T) {
	s := newTestStore(t, smallParts)
	data := randomBytes(53, 8*mib)
	u := newUpload()
	if err := s.Append(context.Background(), u, &announcedBody{r: bytes.NewReader(data[:3*mib]), left: 5 * mib}); err != nil {
		t.Fatal(err)
	}
	if st := decodeState(t, u); u.Offset != 3*mib || len(st.Parts) != 0 || st.tailSize() != 3*mib {
		t.Fatalf("offset %d, %d parts, tail %d after a 3 MiB body announcing 5", u.Offset, len(st.Parts), st.tailSize())
	}
	u = clone(u)
	if err := s.Append(context.Background(), u, announce(data[3*mib:])); err != nil {
		t.Fatal(err)
	}
	commit(t, s, u, data)
}

func isStreamedPart(r *http.Request) bool {
	return r.Method == http.MethodPut && r.Header.Get("Content-Encoding") == "aws-chunked"
}

// TestStreamedPartCutFallsBack: when every streamed UploadPart's body is
// cut on its way, each part goes again from its buffer once the Append
// has it all (putPart), and the blob commits byte-exact.
func TestStreamedPartCutFallsBack(t *testing.T) {
	direct := newTestStore(t, smallParts)
	faulty, proxy := faultyStore(t, direct, s3fault.Faults{CutRequest: 1, Match: isStreamedPart})
	ctx := context.Background()
	data := randomBytes(54, 2*5*mib+77)
	u := newUpload()
	for off := 0; off < len(data); off += 5 * mib {
		u = clone(u)
		if err := faulty.Append(ctx, u, announce(data[off:min(off+5*mib, len(data))])); err != nil {
			t.Fatalf("append at %d: %v", off, err)
		}
	}
	if got := faulty.streamed.Load(); got != 2 {
		t.Fatalf("%d parts streamed, want 2", got)
	}
	if st := proxy.Stats(); st.CutRequests != 2 {
		t.Fatalf("proxy cut %d streamed parts, want 2: %+v", st.CutRequests, st)
	}
	commit(t, direct, u, data)
}

// flipByte flips the bits of the byte at offset at of r.
type flipByte struct {
	io.ReadCloser
	off, at int64
}

func (f *flipByte) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if i := f.at - f.off; i >= 0 && i < int64(n) {
		p[i] ^= 0xff
	}
	f.off += int64(n)
	return n, err
}

// TestStreamedPartDamagedRefused: a streamed part whose body is damaged
// on its way (a proxy flips a data byte of the first one) is refused by
// S3 for its trailing CRC32, sent again through putPart, and the blob
// commits byte-exact: the trailer keeps the guarantee of putPart's
// CRC32 header.
func TestStreamedPartDamagedRefused(t *testing.T) {
	direct := newTestStore(t, smallParts)
	var streamed atomic.Int32
	s := proxied(t, direct, func(r *http.Request) {
		if isStreamedPart(r) && streamed.Add(1) == 1 {
			// In the data of the second 64 KiB chunk.
			r.Body = &flipByte{ReadCloser: r.Body, at: 100_000}
		}
	})
	var mu sync.Mutex
	var refused []error
	s.ObserveOps(func(op string, _ time.Duration, err error) {
		if op == "UploadPart" && err != nil {
			mu.Lock()
			refused = append(refused, err)
			mu.Unlock()
		}
	})
	data := randomBytes(55, 5*mib+5)
	u := newUpload()
	if err := s.Append(context.Background(), u, announce(data[:5*mib])); err != nil {
		t.Fatal(err)
	}
	u = clone(u)
	if err := s.Append(context.Background(), u, announce(data[5*mib:])); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	t.Logf("refused: %v", refused)
	if streamed.Load() != 1 || len(refused) != 1 {
		t.Fatalf("%d streamed parts, %d refused, want 1 and 1", streamed.Load(), len(refused))
	}
	mu.Unlock()
	commit(t, direct, u, data)
}

// TestStreamedPartToFinishedUpload: a streamed part into an upload
// aborted or committed under it fails with ErrNotFound, the upload
// unchanged, as putPart's does (TestPartAppendToFinishedUpload).
func TestStreamedPartToFinishedUpload(t *testing.T) {
	s := newTestStore(t, smallParts)
	first, more := randomBytes(56, 5*mib), randomBytes(57, 5*mib)
	aborted, committed := finishedUploads(t, s, first)
	for name, u := range map[string]*storage.Upload{"aborted": aborted, "committed": committed} {
		v := clone(u)
		if err := s.Append(context.Background(), v, announce(more)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: streamed append of a whole part: %v, want ErrNotFound", name, err)
		}
		if v.Offset != u.Offset || !bytes.Equal(v.Backend, u.Backend) {
			t.Errorf("%s: failed append changed the upload: offset %d, want %d", name, v.Offset, u.Offset)
		}
	}
	if got := s.streamed.Load(); got != 2 {
		t.Fatalf("%d parts streamed, want 2", got)
	}
}
