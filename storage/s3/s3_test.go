package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/blobtest"
)

// testConfig is PACKREG_TEST_S3 with a fresh random prefix, so tests and
// subtests never see each other's keys. Without a server the tests skip,
// except in CI, where a missing server is a failure.
func testConfig(t testing.TB) Config {
	t.Helper()
	raw := os.Getenv("PACKREG_TEST_S3")
	if raw == "" {
		if os.Getenv("CI") != "" {
			t.Fatal(`PACKREG_TEST_S3 is empty in CI: run eval "$(.ci/s3.sh)" first`)
		}
		t.Skip(`PACKREG_TEST_S3 not set; eval "$(.ci/s3.sh)" to run against versitygw`)
	}
	cfg, err := ParseURL(raw)
	if err != nil {
		t.Fatalf("PACKREG_TEST_S3: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	cfg.Prefix = path.Join(cfg.Prefix, "t-"+hex.EncodeToString(b[:]))
	return cfg
}

var bucketOnce sync.Once

// newTestStore returns a Store on its own prefix, emptied when the test ends.
func newTestStore(t testing.TB, edit ...func(*Config)) *Store {
	t.Helper()
	cfg := testConfig(t)
	for _, e := range edit {
		e(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	bucketOnce.Do(func() {
		// .ci/s3.sh creates it; this covers a server started by hand.
		s.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &cfg.Bucket})
	})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("bucket %s: %v", cfg.Bucket, err)
	}
	t.Cleanup(func() {
		if err := s.purgeDir(context.Background(), cfg.Prefix+"/", true); err != nil {
			t.Errorf("cleanup of %s: %v", cfg.Prefix, err)
		}
	})
	return s
}

// twin is a second Store over the same bucket and prefix: another replica.
func twin(t testing.TB, s *Store, edit ...func(*Config)) *Store {
	t.Helper()
	cfg := s.Config()
	for _, e := range edit {
		e(&cfg)
	}
	s2, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s2.copyLimit = s.copyLimit
	return s2
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	r.Read(b)
	return b
}

func newUpload() *storage.Upload {
	var b [8]byte
	rand.Read(b[:])
	return &storage.Upload{ID: "u-" + hex.EncodeToString(b[:]), Repo: "test/repo", Algorithm: digest.SHA256}
}

// clone is what a metadata round trip gives another replica.
func clone(u *storage.Upload) *storage.Upload {
	c := *u
	c.HashState = bytes.Clone(u.HashState)
	c.Backend = bytes.Clone(u.Backend)
	return &c
}

func readBlob(t testing.TB, s *Store, d digest.Digest, off int64) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), d, off)
	if err != nil {
		t.Fatalf("open %s at %d: %v", d, off, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", d, err)
	}
	return b
}

func checkBlob(t testing.TB, s *Store, want []byte) {
	t.Helper()
	d := digest.FromBytes(digest.SHA256, want)
	if n, err := s.Stat(context.Background(), d); err != nil || n != int64(len(want)) {
		t.Fatalf("stat %s: %d, %v; want %d", d, n, err, len(want))
	}
	if got := readBlob(t, s, d, 0); !bytes.Equal(got, want) {
		t.Fatalf("blob %s: read %d bytes that differ from the %d pushed", d, len(got), len(want))
	}
}

// uploadLeftovers lists what is left of an upload in S3.
func uploadLeftovers(t testing.TB, s *Store, u *storage.Upload) []string {
	t.Helper()
	dir, _ := s.uploadDir(u.ID)
	var left []string
	ctx := context.Background()
	if err := s.listObjects(ctx, dir, func(o types.Object) error { left = append(left, *o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.listUploads(ctx, dir, func(m types.MultipartUpload) { left = append(left, "multipart "+*m.UploadId) }); err != nil {
		t.Fatal(err)
	}
	return left
}

// TestBlobStore runs the shared suite with the smallest part size, so its
// multi-MiB blobs cross part boundaries.
func TestBlobStore(t *testing.T) {
	testConfig(t) // skip or fail before any subtest when there is no server
	blobtest.Run(t, func(t *testing.T) storage.BlobStore { return newTestStore(t, smallParts) })
}

func TestBlobStoreRepair(t *testing.T) {
	testConfig(t)
	blobtest.RunRepair(t, func(t *testing.T) storage.BlobStore { return newTestStore(t, smallParts) },
		func(t *testing.T, bs storage.BlobStore, d digest.Digest) {
			s := bs.(*Store)
			key, err := s.blobKey(d)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := s.Open(t.Context(), d, 0)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err == nil {
				b[0] ^= 0xff
				_, err = s.putObject(t.Context(), key, b, false)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
}

func TestStatOpenDelete(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	data := randomBytes(1, 3000)
	d := digest.FromBytes(digest.SHA256, data)
	if _, err := s.Stat(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat of a missing blob: %v, want ErrNotFound", err)
	}
	if _, err := s.Open(ctx, d, 0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("open of a missing blob: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delete of a missing blob: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "sha256:nothex"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat of an invalid digest: %v, want ErrNotFound", err)
	}
	u := newUpload()
	if err := s.Append(ctx, u, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, u, d); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, s, data)
	for _, off := range []int64{1, 1000, 2999, 3000} {
		if got := readBlob(t, s, d, off); !bytes.Equal(got, data[off:]) {
			t.Errorf("open at %d: %d bytes, want %d", off, len(got), len(data)-int(off))
		}
	}
	if _, err := s.Open(ctx, d, 3001); err == nil {
		t.Error("open past the end: no error")
	}
	if _, err := s.Open(ctx, d, -1); err == nil {
		t.Error("open at -1: no error")
	}
	if err := s.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat after delete: %v, want ErrNotFound", err)
	}
}

func TestPresign(t *testing.T) {
	ctx := context.Background()
	plain := newTestStore(t)
	if _, ok, err := plain.RedirectURL(ctx, digest.FromBytes(digest.SHA256, nil)); ok || err != nil {
		t.Fatalf("presign off: ok=%v err=%v, want declined", ok, err)
	}
	s := newTestStore(t, func(c *Config) { c.Presign = true })
	data := randomBytes(2, 100<<10)
	d := digest.FromBytes(digest.SHA256, data)
	u := newUpload()
	if err := s.Append(ctx, u, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, u, d); err != nil {
		t.Fatal(err)
	}
	url, ok, err := s.RedirectURL(ctx, d)
	if err != nil || !ok {
		t.Fatalf("redirect: ok=%v err=%v", ok, err)
	}
	resp, err := http.Get(url) // no credentials: the signature in the URL is the grant
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("GET presigned: %s, %d bytes, %v", resp.Status, len(got), err)
	}
}

func TestUnavailable(t *testing.T) {
	// A port nobody listens on: connection refused on every attempt.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "y")
	s, err := New(context.Background(), Config{Bucket: "nobucket", Endpoint: "http://" + addr, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Stat(context.Background(), digest.FromBytes(digest.SHA256, nil))
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("stat against a dead endpoint: %v, want ErrUnavailable", err)
	}
	// The readiness probe says so too.
	if err := s.Ping(context.Background()); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("ping against a dead endpoint: %v, want ErrUnavailable", err)
	}
}
