package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/packreg/packreg/digest"
)

// ProveCommitted is how a BlobStore's Commit recognises a replay. The
// registry publishes a blob (Commit) before it records it in the metadata
// store and drops the session; a crash in between leaves a session whose
// data the first Commit consumed. Commit calls ProveCommitted when it finds
// u's data gone: it returns nil when blob d exists and provably holds u's
// bytes, so the session can be finished again.
//
// The proof is u.HashState, the running hash of u's Offset bytes: compared
// with d directly when d uses u's algorithm, otherwise by hashing the blob
// under both algorithms. (A store whose state may lag behind Append,
// HashLagger, proves a lagging state itself and calls ProveCommitted only
// with a state of all the bytes.) The blob's size alone would prove
// nothing: any blob of that size would pass.
//
// It returns ErrDigestMismatch when u's bytes are provably not d (the
// client claims another digest than it sent), and ErrNotFound when the
// data cannot be found published as d: the upload was aborted, or u
// carries no hash state to prove anything with.
func ProveCommitted(ctx context.Context, b BlobStore, u *Upload, d digest.Digest) error {
	alg := u.Algorithm
	if alg == "" {
		alg = digest.SHA256
	}
	if len(u.HashState) == 0 && u.Offset > 0 {
		return fmt.Errorf("upload %s: data gone and no hash state to prove it was committed: %w", u.ID, ErrNotFound)
	}
	h, err := digest.RestoreHash(alg, u.HashState)
	if err != nil {
		return err
	}
	mine := digest.FromHash(alg, h)
	if d.Algorithm() == alg {
		if d != mine {
			return fmt.Errorf("upload %s holds %s, not %s: %w", u.ID, mine, d, ErrDigestMismatch)
		}
		if _, err := b.Stat(ctx, d); err != nil {
			return fmt.Errorf("upload %s: data gone, blob %s: %w", u.ID, d, err)
		}
		return nil
	}
	// Another algorithm: the bytes may be published as d (the earlier
	// Commit was for d) or as mine (the same bytes pushed under the
	// session's algorithm). Either blob, re-hashed, tells whether they are d.
	for _, cand := range []digest.Digest{d, mine} {
		size, err := b.Stat(ctx, cand)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("upload %s: data gone, blob %s: %w", u.ID, cand, err)
		}
		if size != u.Offset {
			return fmt.Errorf("upload %s holds %d bytes, blob %s has %d: %w", u.ID, u.Offset, cand, size, ErrDigestMismatch)
		}
		own, asD, err := rehash(ctx, b, cand, alg, d.Algorithm())
		switch {
		case err != nil:
			return fmt.Errorf("upload %s: reading blob %s back: %w", u.ID, cand, err)
		case own != mine || asD != d:
			return fmt.Errorf("upload %s holds %s, blob %s holds other bytes than %s: %w", u.ID, mine, cand, d, ErrDigestMismatch)
		case cand == d:
			return nil
		}
		return fmt.Errorf("upload %s: its bytes are %s but were published as %s only: %w", u.ID, d, mine, ErrNotFound)
	}
	return fmt.Errorf("upload %s: data gone and not published as %s: %w", u.ID, d, ErrNotFound)
}

// rehash reads blob d once and returns its digests under algorithms a and b.
func rehash(ctx context.Context, bs BlobStore, d digest.Digest, a, b string) (digest.Digest, digest.Digest, error) {
	rc, err := bs.Open(ctx, d, 0)
	if err != nil {
		return "", "", err
	}
	defer rc.Close()
	ha, hb := digest.NewHash(a), digest.NewHash(b)
	if _, err := io.Copy(io.MultiWriter(ha, hb), rc); err != nil {
		return "", "", err
	}
	return digest.FromHash(a, ha), digest.FromHash(b, hb), nil
}
