package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/packreg/packreg/storage"
)

// unavailableAppends fails the first fails Appends with
// storage.ErrUnavailable, as a lost request to S3 does once the SDK's own
// attempts are spent.
type unavailableAppends struct {
	storage.BlobStore
	fails, calls int
}

func (f *unavailableAppends) Append(ctx context.Context, u *storage.Upload, r io.Reader) error {
	f.calls++
	if f.calls <= f.fails {
		return unavailable{}
	}
	return f.BlobStore.Append(ctx, u, r)
}

// unavailable wraps storage.ErrUnavailable as the backends do.
type unavailable struct{}

func (unavailable) Error() string { return "request send failed: EOF" }
func (unavailable) Unwrap() error { return storage.ErrUnavailable }

func embeddedStores(t *testing.T) (*stores, Config) {
	t.Helper()
	c := DefaultConfig()
	c.Data = t.TempDir()
	if err := c.Resolve(); err != nil {
		t.Fatal(err)
	}
	st, err := openStores(t.Context(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, c
}

// A replica starting while S3 drops a request or two must start: CI saw
// TestS3Faults' replica exit with "cannot start" on one lost PutObject.
func TestStartupCheckOutlastsABriefOutage(t *testing.T) {
	st, c := embeddedStores(t)
	flaky := &unavailableAppends{BlobStore: st.blobs, fails: 2}
	st.blobs = flaky
	if err := st.check(t.Context(), c); err != nil {
		t.Fatalf("check failed through a 2-request outage: %v", err)
	}
	if flaky.calls != 3 {
		t.Errorf("Append called %d times, want 3", flaky.calls)
	}
}

// A store that stays unavailable still fails the check, after a bounded
// number of tries, naming the store and the cause.
func TestStartupCheckFailsOnALastingOutage(t *testing.T) {
	st, c := embeddedStores(t)
	flaky := &unavailableAppends{BlobStore: st.blobs, fails: 1 << 30}
	st.blobs = flaky
	err := st.check(t.Context(), c)
	if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "cannot write") || !strings.Contains(err.Error(), "storage ") {
		t.Fatalf("check = %v, want the storage's unavailable write", err)
	}
	if flaky.calls != checkTries {
		t.Errorf("Append called %d times, want %d", flaky.calls, checkTries)
	}
}

// TestSecondServerOnOneSQLiteDatabaseRefused: a second server on the same
// SQLite file is refused at start, naming the holder, as it would serve
// pulls from a cache the first one's writes never reach; once the first
// closes, the database opens again.
func TestSecondServerOnOneSQLiteDatabaseRefused(t *testing.T) {
	st, c := embeddedStores(t)
	_, err := openStores(t.Context(), c, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "in use by process ") {
		t.Fatalf("a second server on %s: %v, want refused naming the process", c.Database, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := openStores(t.Context(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}
