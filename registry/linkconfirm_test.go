package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// deletingCounter counts the tombstone reads a push makes after its link
// committed, and passes the store's LinkConfirmer ability through.
type deletingCounter struct {
	storage.Store
	reads atomic.Int32
}

func (c *deletingCounter) BlobDeleting(ctx context.Context, d digest.Digest) (bool, error) {
	c.reads.Add(1)
	return c.Store.BlobDeleting(ctx, d)
}

func (c *deletingCounter) LinkBlobConfirmed(ctx context.Context, repo string, d digest.Digest, size int64, within time.Duration, evs ...storage.Event) (storage.LinkCheck, error) {
	return c.Store.(storage.LinkConfirmer).LinkBlobConfirmed(ctx, repo, d, size, within, evs...)
}

// bothStores runs test on SQLite (serial writes: the tombstones are read
// in the link's transaction) and PostgreSQL (after it); both keep ended
// tombstones (storage.DeleteHistory).
func bothStores(t *testing.T, test func(t *testing.T, blobs storage.BlobStore, meta storage.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		blobs, meta, _ := teststores.Open(t)
		test(t, blobs, meta)
	})
	t.Run("postgres", func(t *testing.T) {
		blobs, meta, _ := teststores.OpenPostgres(t)
		test(t, blobs, meta)
	})
}

// TestPushReadsNoTombstoneAfterASerialLink: on SQLite, whose writes are
// serial, a single-request blob push learns in its link's transaction
// that no collection is deleting the blob, and reads no tombstone after
// the commit (one read transaction per push fewer); on a store whose
// transactions overlap it still reads one.
func TestPushReadsNoTombstoneAfterASerialLink(t *testing.T) {
	bothStores(t, func(t *testing.T, blobs storage.BlobStore, meta storage.Store) {
		c := &deletingCounter{Store: meta}
		h := registry.New(blobs, c)
		probe, err := meta.(storage.LinkConfirmer).LinkBlobConfirmed(t.Context(), "probe/serial", sha([]byte("probe")), 5, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := []byte("linked and confirmed in one transaction")
		pushBlob(t, h, "link/confirm", b)
		want := int32(1)
		if probe.Serial {
			want = 0
		}
		if got := c.reads.Load(); got != want {
			t.Fatalf("serial %v: %d tombstone reads after the link, want %d", probe.Serial, got, want)
		}
		expect(t, do(t, h, "GET", "/v2/link/confirm/blobs/"+sha(b).String(), nil), 200, "")
	})
}

// statCounter counts the looks at one digest's bytes, and passes Put on.
type statCounter struct {
	storage.BlobStore
	d     digest.Digest
	stats atomic.Int32
	// put, when set, runs after Put stored the bytes.
	put func(ctx context.Context)
}

func (s *statCounter) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	if d == s.d {
		s.stats.Add(1)
	}
	return s.BlobStore.Stat(ctx, d)
}

func (s *statCounter) Put(ctx context.Context, d digest.Digest, r io.Reader) (int64, error) {
	n, err := s.BlobStore.(storage.BlobPutter).Put(ctx, d, r)
	if err == nil && s.put != nil {
		s.put(ctx)
	}
	return n, err
}

// Commit is the BlobStore's, then put, for the session path.
func (s *statCounter) Commit(ctx context.Context, u *storage.Upload, d digest.Digest) error {
	err := s.BlobStore.Commit(ctx, u, d)
	if err == nil && s.put != nil {
		s.put(ctx)
	}
	return err
}

// sessionPush pushes b through an upload session: POST, then the bytes
// in a PATCH and a PUT without them, or in the PUT.
func sessionPush(t *testing.T, h http.Handler, repo string, b []byte, patch bool) *httptest.ResponseRecorder {
	t.Helper()
	w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	expect(t, w, http.StatusAccepted, "")
	loc := w.Header().Get("Location")
	last := b
	if patch {
		w = do(t, h, "PATCH", loc, b)
		expect(t, w, http.StatusAccepted, "")
		loc, last = w.Header().Get("Location"), nil
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return do(t, h, "PUT", loc+sep+"digest="+sha(b).String(), last)
}

// TestSessionPushLooksNotAtBytesNoDeleteCouldReach: a push through an
// upload session confirms its link as a single-request push does, from
// when its Commit wrote or found the bytes: with no tombstone since, no
// look at them (a HeadObject on S3, the 8th S3 call of a small session
// push); before, every session push looked. A collection that took the
// bytes between the Commit and the link still makes the push look, and
// answer 503.
func TestSessionPushLooksNotAtBytesNoDeleteCouldReach(t *testing.T) {
	bothStores(t, func(t *testing.T, blobs storage.BlobStore, meta storage.Store) {
		for _, patch := range []bool{false, true} {
			b := []byte(fmt.Sprintf("session push, patch %v", patch))
			c := &statCounter{BlobStore: blobs, d: sha(b)}
			h := registry.New(c, meta)
			expect(t, sessionPush(t, h, "link/session", b, patch), http.StatusCreated, "")
			if n := c.stats.Load(); n != 0 {
				t.Fatalf("patch %v: %d looks at the bytes after the link, want none", patch, n)
			}
			expect(t, do(t, h, "GET", "/v2/link/session/blobs/"+sha(b).String(), nil), 200, "")

			b = []byte(fmt.Sprintf("session push taken before the link, patch %v", patch))
			d := sha(b)
			c = &statCounter{BlobStore: blobs, d: d, put: func(ctx context.Context) {
				if _, err := meta.BeginBlobDelete(ctx, []digest.Digest{d}); err != nil {
					t.Error(err)
				}
				if err := blobs.Delete(ctx, d); err != nil {
					t.Error(err)
				}
				if err := meta.EndBlobDelete(ctx, []digest.Digest{d}); err != nil {
					t.Error(err)
				}
			}}
			h = registry.New(c, meta)
			expect(t, sessionPush(t, h, "link/sessiongone", b, patch), http.StatusServiceUnavailable, "")
			if _, err := meta.BlobSize(t.Context(), "link/sessiongone", d); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("patch %v: the link stayed without its bytes: %v", patch, err)
			}
		}
	})
}

// TestPushLooksNotAtBytesNoDeleteCouldReach: a single-request push that
// finds no tombstone put up since it wrote the bytes does not look at
// them (a stat on disk, a HeadObject on S3). Before, every push on
// PostgreSQL looked, and on SQLite still did.
func TestPushLooksNotAtBytesNoDeleteCouldReach(t *testing.T) {
	bothStores(t, func(t *testing.T, blobs storage.BlobStore, meta storage.Store) {
		b := []byte("no collection since")
		c := &statCounter{BlobStore: blobs, d: sha(b)}
		h := registry.New(c, meta)
		pushBlob(t, h, "link/quiet", b)
		if n := c.stats.Load(); n != 0 {
			t.Fatalf("%d looks at the bytes after the link, want none", n)
		}
		expect(t, do(t, h, "GET", "/v2/link/quiet/blobs/"+sha(b).String(), nil), 200, "")
	})
}

// TestPushWhoseBytesACollectionTookBeforeTheLink: a collection that read
// the links before the push linked, deleted the bytes and took its
// tombstone down, all between the push's Put and its link: its ended
// tombstone makes the push look at the bytes; gone, it answers 503 and
// the link goes. So also when the pushing replica's clock is ten minutes
// off the collecting one's: the tombstone's age is the database's to
// tell (before, a pusher ahead by more than TombstoneTTL took the ended
// tombstone for an older one, did not look, and kept a link to nothing).
// Only a collection deletes bytes, always under a tombstone.
func TestPushWhoseBytesACollectionTookBeforeTheLink(t *testing.T) {
	bothStores(t, func(t *testing.T, blobs storage.BlobStore, meta storage.Store) {
		for name, skew := range map[string]time.Duration{"same clock": 0, "pusher ahead": 10 * time.Minute, "pusher behind": -10 * time.Minute} {
			t.Run(name, func(t *testing.T) {
				b := []byte("taken before the link, " + name)
				d := sha(b)
				c := &statCounter{BlobStore: blobs, d: d, put: func(ctx context.Context) {
					free, err := meta.BeginBlobDelete(ctx, []digest.Digest{d})
					if err != nil || !free[0] {
						t.Errorf("BeginBlobDelete = %v, %v", free, err)
					}
					if err := blobs.Delete(ctx, d); err != nil {
						t.Error(err)
					}
					if err := meta.EndBlobDelete(ctx, []digest.Digest{d}); err != nil {
						t.Error(err)
					}
				}}
				h := registry.New(c, meta, registry.WithClock(func() time.Time { return time.Now().Add(skew) }))
				r := do(t, h, "POST", "/v2/link/gone/blobs/uploads/?digest="+d.String(), b)
				if r.Code != http.StatusServiceUnavailable {
					t.Fatalf("push answered %d, want 503", r.Code)
				}
				if _, err := meta.BlobSize(t.Context(), "link/gone", d); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("the link stayed without its bytes: %v", err)
				}
				if n := c.stats.Load(); n == 0 {
					t.Fatal("the push did not look at the bytes")
				}
			})
		}
	})
}
