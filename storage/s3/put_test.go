package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// leftovers lists every object under uploads/: a Put keeps none.
func leftovers(t *testing.T, s *Store) []string {
	t.Helper()
	var left []string
	if err := s.listObjects(context.Background(), s.key("uploads")+"/", func(o types.Object) error { left = append(left, *o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return left
}

// TestPut: every size around the small-blob seam stores the same bytes;
// a wrong digest or a failing reader keeps nothing, on either side of it.
func TestPut(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx := context.Background()
	for _, n := range []int{0, 1024, putSmall, putSmall + 1, 6<<20 + 3} {
		data := randomBytes(uint64(n), n)
		d := digest.FromBytes(digest.SHA256, data)
		if got, err := s.Put(ctx, d, bytes.NewReader(data)); err != nil || got != int64(n) {
			t.Fatalf("Put of %d bytes = %d, %v", n, got, err)
		}
		checkBlob(t, s, data)
		// Again: the same blob, still whole.
		if _, err := s.Put(ctx, d, bytes.NewReader(data)); err != nil {
			t.Fatalf("second Put of %d bytes: %v", n, err)
		}
		checkBlob(t, s, data)
		wrong := digest.FromBytes(digest.SHA256, append([]byte("x"), data...))
		if _, err := s.Put(ctx, wrong, bytes.NewReader(data)); !errors.Is(err, storage.ErrDigestMismatch) {
			t.Fatalf("Put of %d bytes under another digest = %v, want ErrDigestMismatch", n, err)
		}
		if _, err := s.Stat(ctx, wrong); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a mismatched Put of %d bytes left its blob: %v", n, err)
		}
		hangUp := errors.New("client hung up")
		if _, err := s.Put(ctx, wrong, &failAfter{r: bytes.NewReader(data), n: n - 1, err: hangUp}); !errors.Is(err, hangUp) && n > 0 {
			t.Fatalf("Put of %d bytes from a failing reader = %v, want its error", n, err)
		}
		if _, err := s.Stat(ctx, wrong); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a failed Put of %d bytes left a blob: %v", n, err)
		}
	}
	if left := leftovers(t, s); len(left) != 0 {
		t.Fatalf("uploads/ after the Puts: %v", left)
	}
}

// TestPutSmallIsOneCall: a 1 KiB blob costs one S3 call (PutObject); a
// single-request push through a session cost six. Pushed again it costs
// the same one, refused (If-None-Match) and observed as ok; only bytes
// known bad cost a second, unconditional PutObject.
func TestPutSmallIsOneCall(t *testing.T) {
	sdk := newTestStore(t)
	sdk.direct = nil // the same calls through the SDK (an AWS endpoint's)
	for name, s := range map[string]*Store{"direct": newTestStore(t), "sdk": sdk} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var calls []string
			s.ObserveOps(func(op string, _ time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					op += " " + err.Error()
				}
				calls = append(calls, op)
			})
			data := randomBytes(9, 1024)
			data[0] = name[0]
			d := digest.FromBytes(digest.SHA256, data)
			for _, c := range []struct {
				name string
				bad  bool
				want []string
			}{
				{"new", false, []string{"PutObject"}},
				{"existing", false, []string{"PutObject"}},
				{"existing-bad", true, []string{"PutObject", "PutObject"}},
			} {
				ctx := storage.WithBadCheck(context.Background(), func(context.Context, digest.Digest) (bool, error) { return c.bad, nil })
				if _, err := s.Put(ctx, d, bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				got := calls
				calls = nil
				mu.Unlock()
				if !slices.Equal(got, c.want) {
					t.Fatalf("S3 calls of a 1 KiB Put of a %s blob: %v, want %v", c.name, got, c.want)
				}
			}
		})
	}
}
