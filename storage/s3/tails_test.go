package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// TestTailCacheBounded: the cache keeps at most tailCacheBytes and
// tailCacheEntries, evicting the oldest, skips segments over
// maxCachedTail, and a segment is taken once, only with its ETag.
func TestTailCacheBounded(t *testing.T) {
	var c tailCache
	c.put("big", "e", make([]byte, maxCachedTail+1))
	if _, ok := c.take("big", "e"); ok {
		t.Fatal("a segment over maxCachedTail was cached")
	}
	for i := range 3 * tailCacheEntries {
		c.put(fmt.Sprint(i), "e", []byte{byte(i)})
		if len(c.m) > tailCacheEntries || len(c.order) > 2*tailCacheEntries {
			t.Fatalf("after %d puts: %d entries, %d keys in order", i+1, len(c.m), len(c.order))
		}
	}
	if _, ok := c.take("0", "e"); ok {
		t.Fatal("the oldest entry was not evicted")
	}
	last := fmt.Sprint(3*tailCacheEntries - 1)
	if _, ok := c.take(last, "other"); ok {
		t.Fatal("taken with another ETag")
	}
	if b, ok := c.take(last, "e"); !ok || len(b) != 1 {
		t.Fatalf("newest entry: %v %v", b, ok)
	}
	if _, ok := c.take(last, "e"); ok {
		t.Fatal("taken twice")
	}
	for i := range tailCacheBytes / maxCachedTail * 2 {
		c.put(fmt.Sprint("m", i), "e", make([]byte, maxCachedTail))
		if c.size > tailCacheBytes {
			t.Fatalf("cache holds %d bytes, more than %d", c.size, tailCacheBytes)
		}
	}
}

// TestCommitAfterAbortOfCachedTail: an upload aborted on the replica
// that staged its tail cannot be committed from the cached bytes.
func TestCommitAfterAbortOfCachedTail(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	data := randomBytes(50, 1000)
	u := newUpload()
	if err := s.Append(ctx, u, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(ctx, u); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(digest.SHA256, data)
	if err := s.Commit(ctx, u, d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("commit after abort: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("blob of an aborted upload: %v", err)
	}
}
