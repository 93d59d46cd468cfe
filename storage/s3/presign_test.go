package s3

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
)

// TestPresignReused: a blob's presigned URL is signed once and handed out
// again for the first tenth of its validity, then signed afresh; each
// blob has its own.
func TestPresignReused(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, func(c *Config) { c.Presign = true; c.PresignTTL = 10 * time.Minute })
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return clock }
	var signed atomic.Int64
	s.ObserveOps(func(op string, _ time.Duration, _ error) {
		if op == "GetObject" {
			signed.Add(1)
		}
	})
	a, b := digest.FromBytes(digest.SHA256, []byte("a")), digest.FromBytes(digest.SHA256, []byte("b"))
	first, ok, err := s.RedirectURL(ctx, a)
	if err != nil || !ok {
		t.Fatalf("redirect: ok=%v err=%v", ok, err)
	}
	if signed.Load() != 1 {
		t.Fatalf("%d signatures seen for one URL: the test cannot count them", signed.Load())
	}
	clock = clock.Add(59 * time.Second)
	for range 3 {
		if u, _, _ := s.RedirectURL(ctx, a); u != first {
			t.Fatalf("URL within a tenth of its validity signed again:\n%s\n%s", u, first)
		}
	}
	if n := signed.Load(); n != 1 {
		t.Fatalf("4 redirects of one blob signed %d URLs, want 1", n)
	}
	if u, _, _ := s.RedirectURL(ctx, b); u == first || signed.Load() != 2 {
		t.Fatalf("another blob: %d signatures, same URL: %v", signed.Load(), u == first)
	}
	clock = clock.Add(2 * time.Second) // 61 s: past a tenth of 10 minutes
	if _, _, _ = s.RedirectURL(ctx, a); signed.Load() != 3 {
		t.Fatalf("URL past a tenth of its validity not signed again (%d signatures)", signed.Load())
	}
}
