package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

var _ storage.BlobPutter = (*Store)(nil)

// putSmall is the largest blob Put writes with one PutObject from memory:
// a config, a signature, an attestation. A session's path costs a 1 KiB
// push four S3 calls (stage the tail, write the blob, list and delete
// the staging objects), each but the blob's through the SDK's
// middleware stack.
const putSmall = 64 << 10

// Put is storage.BlobPutter. A blob of up to putSmall bytes is read into
// memory, verified and written to its key by one PutObject, which S3
// makes visible whole or not at all; the PutObject is conditional
// (If-None-Match: *), so an existing blob is found without a look first
// and kept as it is, unless storage.StoredBad says its bytes are bad:
// then a second, unconditional PutObject replaces them. A larger one
// goes through an upload session of its own (Append, Commit), dropped on
// failure.
func (s *Store) Put(ctx context.Context, d digest.Digest, r io.Reader) (int64, error) {
	final, err := s.blobKey(d)
	if err != nil {
		return 0, fmt.Errorf("s3: put %s: %w", d, err)
	}
	// A buffer that grows with what comes: a 1 KiB blob takes about that.
	var head bytes.Buffer
	switch _, rerr := io.CopyN(&head, r, putSmall+1); rerr {
	case io.EOF:
		return s.putSmall(ctx, d, final, head.Bytes())
	case nil:
	default:
		return 0, fmt.Errorf("s3: put %s: read: %w", d, rerr)
	}
	now := time.Now().UTC()
	u := &storage.Upload{ID: "put-" + rand.Text(), Algorithm: d.Algorithm(), Created: now, Updated: now}
	if err := s.Append(ctx, u, io.MultiReader(&head, r)); err != nil {
		_ = s.Abort(context.WithoutCancel(ctx), u)
		return 0, fmt.Errorf("s3: put %s: %w", d, err)
	}
	if err := s.Commit(ctx, u, d); err != nil {
		_ = s.Abort(context.WithoutCancel(ctx), u)
		return 0, fmt.Errorf("s3: put %s: %w", d, err)
	}
	return u.Offset, nil
}

func (s *Store) putSmall(ctx context.Context, d digest.Digest, final string, b []byte) (int64, error) {
	if got := digest.FromBytes(d.Algorithm(), b); got != d {
		return 0, fmt.Errorf("s3: put %s: %w: data is %s", d, storage.ErrDigestMismatch, got)
	}
	if err := s.putVerified(ctx, "put", d, final, b); err != nil {
		return 0, err
	}
	return int64(len(b)), nil
}

// putVerified writes b, verified as blob d, to its key final with a
// conditional PutObject: an existing blob is kept as it is, unless
// storage.StoredBad says its bytes are bad; then a second, unconditional
// PutObject replaces them. op names the caller in errors.
func (s *Store) putVerified(ctx context.Context, op string, d digest.Digest, final string, b []byte) error {
	existed, err := s.putObject(ctx, final, b, true)
	if existed {
		bad, berr := storage.StoredBad(ctx, d)
		if berr != nil {
			return fmt.Errorf("s3: %s %s: %w", op, d, berr)
		}
		if !bad {
			return nil
		}
		_, err = s.putObject(ctx, final, b, false)
	}
	if err != nil && !s.landed(context.WithoutCancel(ctx), d, final, int64(len(b))) {
		return s.wrap(op, final, err)
	}
	return nil
}
