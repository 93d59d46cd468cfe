package blobtest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// RunRepair checks what a push of a blob already stored does under a
// storage.BadCheck (storage.StoredBad): it replaces the stored bytes when
// the check says they are bad, and only then; bytes that fail
// verification replace nothing. corrupt alters the stored bytes of blob
// d behind the store's back (a backend knows where they are), keeping
// their size, as a failing disk would.
func RunRepair(t *testing.T, newStore func(t *testing.T) storage.BlobStore, corrupt func(t *testing.T, s storage.BlobStore, d digest.Digest)) {
	writes := []struct {
		name  string
		write func(ctx context.Context, s storage.BlobStore, d digest.Digest, data []byte) error
	}{
		{"commit", func(ctx context.Context, s storage.BlobStore, d digest.Digest, data []byte) error {
			u := newUpload(digest.SHA256)
			if err := s.Append(ctx, u, bytes.NewReader(data)); err != nil {
				return err
			}
			return s.Commit(ctx, u, d)
		}},
		{"put", func(ctx context.Context, s storage.BlobStore, d digest.Digest, data []byte) error {
			p, ok := s.(storage.BlobPutter)
			if !ok {
				return errSkip
			}
			_, err := p.Put(ctx, d, bytes.NewReader(data))
			return err
		}},
	}
	for _, w := range writes {
		for _, size := range []int{4 * kib, 6*mib + 5} { // one small write; past one S3 part
			data := randomBytes(size, uint64(size))
			d := digest.FromBytes(digest.SHA256, data)
			// pushed stores data, corrupts it and returns its bytes as stored.
			pushed := func(t *testing.T, s storage.BlobStore) []byte {
				if err := w.write(t.Context(), s, d, data); errors.Is(err, errSkip) {
					t.Skip("not a storage.BlobPutter")
				} else if err != nil {
					t.Fatal(err)
				}
				corrupt(t, s, d)
				return readBlob(t, s, d, 0)
			}
			name := w.name + "/" + sizeName(size)
			// The check says bad: the push's bytes replace the stored
			// ones; it says sound: the stored bytes stay. Either way it is
			// asked once, about d (the registry clears a finding only when
			// asked).
			for _, c := range []struct {
				name string
				bad  bool
			}{{"bad-bytes-replaced", true}, {"sound-bytes-kept", false}} {
				t.Run(name+"/"+c.name, func(t *testing.T) {
					s := newStore(t)
					stored := pushed(t, s)
					asked := 0
					ctx := storage.WithBadCheck(t.Context(), func(_ context.Context, got digest.Digest) (bool, error) {
						if got != d {
							t.Errorf("asked about %s, want %s", got, d)
						}
						asked++
						return c.bad, nil
					})
					if err := w.write(ctx, s, d, data); err != nil {
						t.Fatal(err)
					}
					if asked != 1 {
						t.Fatalf("the check was asked %d times, want once", asked)
					}
					if c.bad {
						stored = data
					}
					requireBlob(t, s, d, stored)
				})
			}
			t.Run(name+"/mismatch-replaces-nothing", func(t *testing.T) {
				s := newStore(t)
				stored := pushed(t, s)
				ctx := storage.WithBadCheck(t.Context(), func(context.Context, digest.Digest) (bool, error) { return true, nil })
				other := append(bytes.Clone(data[1:]), 0)
				if err := w.write(ctx, s, d, other); !errors.Is(err, storage.ErrDigestMismatch) {
					t.Fatalf("a write of other bytes: %v, want ErrDigestMismatch", err)
				}
				requireBlob(t, s, d, stored)
			})
		}
	}
	t.Run("new-blob-asks-nothing", func(t *testing.T) {
		s := newStore(t)
		ctx := storage.WithBadCheck(t.Context(), func(context.Context, digest.Digest) (bool, error) {
			t.Error("a write of a new blob asked the check")
			return false, nil
		})
		for _, w := range writes {
			data := randomBytes(4*kib, 7)
			data[100] = byte(len(w.name))
			if err := w.write(ctx, s, digest.FromBytes(digest.SHA256, data), data); err != nil && !errors.Is(err, errSkip) {
				t.Fatal(err)
			}
		}
	})
}

var errSkip = errors.New("skip")

func sizeName(n int) string {
	if n < mib {
		return "small"
	}
	return "large"
}
