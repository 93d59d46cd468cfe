package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

const writers = 8

func concurrentCases() []testCase {
	return []testCase{
		{"concurrent/same-content", testConcurrentSame},
		{"concurrent/distinct-content", testConcurrentDistinct},
	}
}

// pushChunks uploads data in three uneven Appends and commits it; it
// returns errors instead of failing so it can run in goroutines.
func pushChunks(ctx context.Context, s storage.BlobStore, data []byte) (digest.Digest, error) {
	u := newUpload(digest.SHA256)
	cuts := []int{0, len(data) / 3, len(data)/3 + 1, len(data)}
	for i := 1; i < len(cuts); i++ {
		if err := s.Append(ctx, u, bytes.NewReader(data[cuts[i-1]:cuts[i]])); err != nil {
			return "", fmt.Errorf("append: %w", err)
		}
	}
	if u.Offset != int64(len(data)) {
		return "", fmt.Errorf("offset %d after %d bytes", u.Offset, len(data))
	}
	d := digest.FromBytes(digest.SHA256, data)
	if err := s.Commit(ctx, u, d); err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	return d, nil
}

// watch polls d until stop is closed and reports any sighting of the blob
// that is not exactly want: a half-written blob must never be visible.
func watch(ctx context.Context, s storage.BlobStore, d digest.Digest, want []byte, stop <-chan struct{}) (seen int, err error) {
	for {
		select {
		case <-stop:
			return seen, nil
		default:
		}
		size, err := s.Stat(ctx, d)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return seen, fmt.Errorf("Stat: %w", err)
		}
		if size != int64(len(want)) {
			return seen, fmt.Errorf("Stat saw %d bytes of %d", size, len(want))
		}
		rc, err := s.Open(ctx, d, 0)
		if err != nil {
			return seen, fmt.Errorf("Open after Stat: %w", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			return seen, fmt.Errorf("read %d bytes (%v) of a %d-byte blob, or other bytes", len(got), err, len(want))
		}
		seen++
	}
}

// testConcurrentSame: eight clients push the same layer at once (a common
// CI fan-out); all succeed, and no one ever sees a partial blob.
func testConcurrentSame(t *testing.T, s storage.BlobStore) {
	data := randomBytes(3*mib+1, 700)
	d := digest.FromBytes(digest.SHA256, data)
	stop := make(chan struct{})
	watched := make(chan error, 1)
	go func() {
		_, err := watch(t.Context(), s, d, data, stop)
		watched <- err
	}()
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := pushChunks(t.Context(), s, data)
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
				return
			}
			if got == d {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-watched; err != nil {
		t.Fatalf("watcher: %v", err)
	}
	if ok.Load() != writers {
		t.Fatalf("%d of %d writers committed", ok.Load(), writers)
	}
	requireBlob(t, s, d, data)
}

// testConcurrentDistinct: concurrent uploads of different blobs each end
// up with exactly their own bytes.
func testConcurrentDistinct(t *testing.T, s storage.BlobStore) {
	blobs := make([][]byte, writers)
	digests := make([]digest.Digest, writers)
	for i := range blobs {
		blobs[i] = randomBytes(mib+i*kib+i, 710+uint64(i))
	}
	var wg sync.WaitGroup
	for i := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := pushChunks(t.Context(), s, blobs[i])
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
			digests[i] = d
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, d := range digests {
		requireBlob(t, s, d, blobs[i])
	}
}
