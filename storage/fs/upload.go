package fs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// algorithm is the hash streamed for u; sessions created without one hash sha256.
func algorithm(u *storage.Upload) string {
	if u.Algorithm == "" {
		return digest.SHA256
	}
	return u.Algorithm
}

// Append implements storage.BlobStore: truncate the data file to u.Offset,
// resume the hash, stream r into both, then advance u. The bytes become
// durable in Commit (see durable.go), or here on an FS without a boot
// identity. Where there is one, the chunk's hash may still run when Append
// returns (behind.go): u.HashState is then the state at the chunk's start.
func (s *Store) Append(ctx context.Context, u *storage.Upload, r io.Reader) (err error) {
	defer s.observe("append", time.Now(), &err)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fs: append %s: %w", u.ID, err)
	}
	if err := checkID(u.ID); err != nil {
		return err
	}
	alg := algorithm(u)
	if !digest.Supported(alg) || u.Offset < 0 {
		return fmt.Errorf("fs: append %s: algorithm %q, offset %d: %w", u.ID, alg, u.Offset, digest.ErrInvalid)
	}
	prev := s.runs.take(u.ID)
	f, _, synced, err := s.openDurable(u, u.Offset == 0)
	if err != nil {
		prev.cancel()
		return fmt.Errorf("fs: append %s: %w", u.ID, err)
	}
	run, hashed, err := s.appendTo(ctx, f, u, alg, prev, r)
	if err != nil {
		// Give the file back the length u records; a retry then rewrites
		// the bytes rather than trusting a second fsync (after a failed one
		// the kernel may have dropped them). Should the truncate fail too,
		// the next Append or Commit truncates anyway.
		_ = f.Truncate(u.Offset)
		f.Close()
		return fmt.Errorf("fs: append %s: %w", u.ID, err)
	}
	s.keep(u.ID, f) // for the next chunk or the Commit (kept.go)
	if s.boot != "" {
		u.Backend = s.mark(synced, hashed, run.crc)
		s.runs.keep(u.ID, run)
	}
	u.Offset = run.end
	u.HashState = run.state
	return nil
}

// appendTo streams r into f after u.Offset, with the hash resumed from
// prev when it is this session's, and returns the run hashing the bytes
// and how many bytes run.state covers. Without a boot identity it syncs
// the bytes and waits for the hash: no mark then says the state lags.
func (s *Store) appendTo(ctx context.Context, f File, u *storage.Upload, alg string, prev *hashRun, r io.Reader) (*hashRun, int64, error) {
	if _, err := f.Seek(u.Offset, io.SeekStart); err != nil {
		prev.cancel()
		return nil, 0, err
	}
	start := s.resumer(f, u, alg, prev)
	_, run, err := copyBehind(ctx, f, u.Offset, r, alg, start, prev, s.holdHash)
	if err != nil || s.boot != "" {
		if err != nil {
			run.cancel()
		}
		return run, u.Offset, err
	}
	// No way to tell a restart of the machine afterwards: make the bytes
	// durable now, and the file's name if it is new.
	err = f.Sync()
	if err == nil && u.Offset == 0 {
		err = s.fs.SyncDir(s.uploads)
	}
	var h hash.Hash
	if err == nil {
		h, err = run.result()
	}
	if err == nil {
		run.state, err = digest.MarshalHash(h)
	}
	if err != nil {
		run.cancel()
		return nil, 0, err
	}
	return run, run.end, nil
}

// resumer returns how the hash of u's recorded bytes in f is had: from
// prev, the run of this session's last Append here, when it ends at
// u.Offset; else restored from u.HashState and the bytes it does not
// cover read again (resumeHash). A run that does not fit is cancelled.
func (s *Store) resumer(f File, u *storage.Upload, alg string, prev *hashRun) func() (hash.Hash, error) {
	if prev != nil && prev.alg == alg && prev.end == u.Offset {
		return prev.result
	}
	prev.cancel()
	return func() (hash.Hash, error) { return resumeHash(f, u, alg) }
}

// resumeHash restores the running hash of the first u.Offset bytes: the
// state recorded, then the bytes after those it covers (hashedUpTo) read
// again; all of them when the session carries no state.
func resumeHash(f File, u *storage.Upload, alg string) (hash.Hash, error) {
	h, err := digest.RestoreHash(alg, u.HashState)
	if err != nil {
		return nil, err
	}
	from := hashedUpTo(u)
	if len(u.HashState) == 0 {
		from = 0
	}
	return h, hashRange(f, h, from, u.Offset)
}

// hashRange feeds bytes from to to of f to h.
func hashRange(f File, h hash.Hash, from, to int64) error {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	got, err := io.CopyBuffer(h, io.NewSectionReader(f, from, to-from), *buf)
	if err == nil && got != to-from {
		err = fmt.Errorf("%w: upload data ends at %d, state says %d", storage.ErrConflict, from+got, to)
	}
	return err
}

// openUpload opens u's data file at exactly u.Offset bytes, dropping bytes a
// crashed or replayed Append left past it (truncated reports that).
func (s *Store) openUpload(u *storage.Upload, create bool) (f File, truncated bool, err error) {
	path := s.uploadPath(u.ID)
	f, fi := s.reopen(u.ID, path)
	if f == nil {
		flag := os.O_RDWR
		if create {
			flag |= os.O_CREATE
		}
		if f, err = s.fs.OpenFile(path, flag, 0o644); err != nil {
			return nil, false, notFound(err)
		}
		fi, err = f.Stat()
	}
	switch {
	case err != nil:
	case fi.Size() < u.Offset:
		// Another copy of the session rewound the data under this one.
		err = fmt.Errorf("%w: upload data is %d bytes, state says %d", storage.ErrConflict, fi.Size(), u.Offset)
	case fi.Size() > u.Offset:
		truncated = true
		err = f.Truncate(u.Offset)
	}
	if err != nil {
		f.Close()
		return nil, false, err
	}
	return f, truncated, nil
}

// Commit implements storage.BlobStore.
func (s *Store) Commit(ctx context.Context, u *storage.Upload, d digest.Digest) (err error) {
	defer s.observe("commit", time.Now(), &err)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fs: commit %s: %w", u.ID, err)
	}
	if err := checkID(u.ID); err != nil {
		return err
	}
	if _, err := digest.Parse(string(d)); err != nil {
		return fmt.Errorf("fs: commit %s: %w", u.ID, err)
	}
	src := s.uploadPath(u.ID)
	run, own := s.runs.take(u.ID), s.done.take(u.ID)
	f, truncated, synced, err := s.openDurable(u, false)
	if err != nil {
		run.cancel()
	}
	if errors.Is(err, iofs.ErrNotExist) {
		if u.Offset == 0 {
			return s.commitEmpty(ctx, u, d) // nothing was ever appended
		}
		// An earlier Commit of this session may have published it and
		// died before the registry dropped the session.
		if err := s.proveCommitted(ctx, u, d, own); err != nil {
			s.keepPublished(u, own, nil) // for the next claim
			if s.unsyncedAtRestart(u) {
				err = fmt.Errorf("%w: %w", storage.ErrUploadLost, err)
			}
			return fmt.Errorf("fs: commit %s: %w", u.ID, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("fs: commit %s: %w", u.ID, err)
	}
	// Verify first: the fsyncs below serve a blob about to be published,
	// and data that fails verification, or whose blob exists, is removed.
	got, h, err := s.sum(f, u, d.Algorithm(), run)
	replace := false
	if err == nil && got == d {
		if _, serr := s.fs.Stat(s.blobPath(d)); serr == nil {
			if replace, err = storage.StoredBad(ctx, d); err == nil && !replace {
				f.Close()
				return s.keepPublished(u, h, s.commitExisting(u, src, d))
			}
		}
		if err == nil {
			err = s.makeDurable(f, u, truncated, synced)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fs: commit %s: %w", u.ID, err) // data kept: not the client's fault
	}
	if got != d {
		_ = s.fs.Remove(src) // the contract discards data that failed verification
		return fmt.Errorf("fs: commit %s: %w: data is %s, not %s", u.ID, storage.ErrDigestMismatch, got, d)
	}
	if replace {
		err = s.replace(src, d)
	} else {
		err = s.publish(ctx, src, d)
	}
	if err != nil {
		return fmt.Errorf("fs: commit %s: %w", u.ID, err)
	}
	return s.keepPublished(u, h, nil)
}

// makeDurable syncs what a Commit about to publish f needs on disk first.
func (s *Store) makeDurable(f File, u *storage.Upload, truncated bool, synced int64) error {
	if truncated || synced < u.Offset {
		// The bytes Append left unsynced, or a truncation of what a
		// replayed Append wrote (the blob must not regain those bytes
		// after a crash), become durable before the blob is published.
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if synced == 0 && u.Offset > 0 {
		// Nothing synced uploads/ since the data file was created: a
		// crash before the rename must not lose the file's name, so a
		// retry finds the data this Commit made durable.
		return s.fs.SyncDir(s.uploads)
	}
	return nil
}

// commitExisting ends a verified upload of a blob the store already holds:
// its data is dropped unsynced (a duplicate push paid a data fsync for a
// file it then removed), as publish drops a copy that lost the race.
func (s *Store) commitExisting(u *storage.Upload, src string, d digest.Digest) error {
	if err := s.dropCopy(src, filepath.Dir(s.blobPath(d))); err != nil {
		return fmt.Errorf("fs: commit %s: %w", u.ID, err)
	}
	return nil
}

// sum is the digest of the first u.Offset bytes of f under alg: from the
// session's hash (its run here, or its state and the bytes after it) when
// it is for alg, else by reading the data again. own is the session's
// hash of them, when sum had it.
func (s *Store) sum(f File, u *storage.Upload, alg string, run *hashRun) (_ digest.Digest, own hash.Hash, err error) {
	if alg == algorithm(u) {
		h, err := s.resumer(f, u, alg, run)()
		if err != nil {
			return "", nil, err
		}
		return digest.FromHash(alg, h), h, nil
	}
	run.cancel()
	h := digest.NewHash(alg)
	if err := hashRange(f, h, 0, u.Offset); err != nil {
		return "", nil, err
	}
	return digest.FromHash(alg, h), nil, nil
}

// commitEmpty publishes the empty blob for an upload that never appended.
func (s *Store) commitEmpty(ctx context.Context, u *storage.Upload, d digest.Digest) error {
	if want := digest.FromBytes(d.Algorithm(), nil); d != want {
		return fmt.Errorf("fs: commit %s: %w: data is %s, not %s", u.ID, storage.ErrDigestMismatch, want, d)
	}
	name := filepath.Join(s.tmp, "empty-"+rand.Text())
	f, err := s.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		err = f.Close() // no bytes, so nothing to fsync; the dir fsync covers the name
	}
	if err == nil {
		err = s.publish(ctx, name, d)
	}
	if err != nil {
		_ = s.fs.Remove(name)
		return fmt.Errorf("fs: commit %s: %w", u.ID, err)
	}
	return nil
}

// publish makes the verified, durable file src visible as blob d: one
// atomic rename, then an fsync of the directory so the name survives a
// crash. A blob d already there is kept, unless its bytes are bad
// (storage.StoredBad, asked with ctx).
func (s *Store) publish(ctx context.Context, src string, d digest.Digest) error {
	dst := s.blobPath(d)
	dir := filepath.Dir(dst)
	err := s.place(src, dst)
	if errors.Is(err, iofs.ErrNotExist) {
		// First blob under this prefix (or src vanished: then the retry fails too).
		if err = s.mkdir(dir); err == nil {
			err = s.place(src, dst)
		}
	}
	if errors.Is(err, iofs.ErrExist) {
		bad, err := storage.StoredBad(ctx, d)
		switch {
		case err != nil:
			return err
		case bad:
			return s.replace(src, d)
		}
		return s.dropCopy(src, dir) // same digest, same bytes
	}
	if err != nil {
		return notFound(err)
	}
	return s.fs.SyncDir(dir)
}

// replace makes src, verified and durable, blob d in place of bytes
// found bad: rename(2) swaps the name to the new file atomically, so a
// reader sees the old bytes or the new, and one that has the old file
// open reads it to its end.
func (s *Store) replace(src string, d digest.Digest) error {
	dst := s.blobPath(d)
	if err := s.fs.Rename(src, dst); err != nil {
		return err
	}
	return s.fs.SyncDir(filepath.Dir(dst))
}

// dropCopy removes src, a verified copy of a blob already published in
// dir, and leaves the published file alone. That file's name may not be
// durable yet (its publisher syncs dir after its rename, or failed to),
// and this caller must not report a blob a crash could still take away:
// dir is synced before answering.
func (s *Store) dropCopy(src, dir string) error {
	if err := s.fs.Remove(src); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	return s.fs.SyncDir(dir)
}

// place renames src to dst unless dst exists (an error that is
// iofs.ErrExist): in one call where the FS can (NoReplaceRenamer), else
// a stat, then a rename.
func (s *Store) place(src, dst string) error {
	if r, ok := s.fs.(NoReplaceRenamer); ok {
		if err := r.RenameNoReplace(src, dst); !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	if _, err := s.fs.Stat(dst); err == nil {
		return &iofs.PathError{Op: "rename", Path: dst, Err: iofs.ErrExist}
	}
	return s.fs.Rename(src, dst)
}

// mkdir creates a fan-out directory and makes its name durable. It syncs the
// parent even when another commit created the directory first, because that
// commit may not have synced it yet.
func (s *Store) mkdir(dir string) error {
	if err := s.fs.Mkdir(dir, 0o755); err != nil && !errors.Is(err, iofs.ErrExist) {
		return err
	}
	return s.fs.SyncDir(filepath.Dir(dir))
}

// Abort implements storage.BlobStore. It ignores ctx on purpose: aborting is
// how a cancelled request cleans up, and the removal cannot block for long.
func (s *Store) Abort(_ context.Context, u *storage.Upload) (err error) {
	defer s.observe("abort", time.Now(), &err)
	if err := checkID(u.ID); err != nil {
		return err
	}
	s.runs.drop(u.ID)
	s.done.drop(u.ID)
	s.kept.drop(u.ID)
	if err := s.fs.Remove(s.uploadPath(u.ID)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("fs: abort %s: %w", u.ID, err)
	}
	return nil
}
