package fs

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sync/atomic"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// The hash of a chunk runs behind the 202. sha256 on one core is slower
// than a loopback socket and the disk's writeback, so at the end of an
// 8 MiB PATCH the hash is still a few MiB behind the last byte written
// (about 2.4 ms on the bench's machine): waiting for it before answering
// was most of what a chunked push lost per PATCH against a monolithic one.
// So Append returns once the chunk is written and leaves its hash running
// (a hashRun, kept per upload in Store.runs); the next Append of the
// session on this process hashes on from it, and Commit waits for it.
//
// What Append records is the hash's state at the start of its chunk, with
// how many bytes that state covers and the CRC-32C of the chunk in
// u.Backend (the mark, durable.go): a process that finds no run (another
// replica, a restart) restores that state and hashes the rest of the data
// file again; after a restart of the machine the CRC tells whether the
// chunk's unsynced bytes are intact, the state the bytes before it. A
// blob is published only when the hash of the bytes in the file, all of
// them read back or streamed, equals the client's digest, so bytes the
// hash did not see when they were recorded cannot slip into a blob
// unverified.

// hashRun is the hash of one upload's data up to end, still running on
// its own goroutine after the Append that streamed the bytes returned.
type hashRun struct {
	alg   string
	end   int64         // bytes the hash covers when done
	ready chan struct{} // closed when state (or err) is set
	state []byte        // the hash's state at the start of the Append's bytes
	crc   uint32        // CRC-32C of the Append's bytes, which state does not cover
	done  chan struct{} // closed when h (or err) covers end bytes
	h     hash.Hash
	err   error
	stop  atomic.Bool // nobody will read h: skip the bytes still queued
	// budget has a slot for each buffer handed to the hash and not yet
	// hashed, shared by the upload's runs: the next Append's reader fills
	// buffers while this run still hashes, and without one budget an
	// upload held the queues of both (2 × inFlight buffers, +6 MiB of
	// peak RSS on the bench).
	budget chan struct{}
}

// budgetOrNew is the budget the next run of run's upload shares; a nil
// run's is a new one.
func (run *hashRun) budgetOrNew() chan struct{} {
	if run == nil || run.budget == nil {
		return make(chan struct{}, inFlight)
	}
	return run.budget
}

// hash is the run's goroutine: the hash of the data before the Append's
// bytes (start), its state, then the Append's bytes as they are read.
// It always drains in, so the reader never blocks on it for good; fail
// stops the reader when start failed.
func (run *hashRun) hash(start func() (hash.Hash, error), in <-chan *chunk, fail func(), hold <-chan struct{}) {
	defer close(run.done)
	h, err := start()
	if err == nil {
		run.state, err = digest.MarshalHash(h)
	}
	run.err = err
	close(run.ready)
	if err != nil {
		fail()
	}
	if hold != nil {
		<-hold
	}
	for c := range in {
		if err == nil && !run.stop.Load() {
			h.Write(c.bytes())
		}
		c.release()
		<-run.budget
	}
	run.h = h
}

// result waits for the run and returns its hash of the first end bytes.
func (run *hashRun) result() (hash.Hash, error) {
	<-run.done
	if run.err == nil && run.stop.Load() {
		return nil, errCancelled
	}
	return run.h, run.err
}

// cancel makes the run drop the bytes it has not hashed yet and waits for
// its goroutine to end: no run outlives the request, or the store, that
// gives it up. A nil run is nothing to cancel.
func (run *hashRun) cancel() {
	if run == nil {
		return
	}
	run.stop.Store(true)
	<-run.done
}

var errCancelled = errors.New("fs: hash of the upload was cancelled")

var _ storage.HashLagger = (*Store)(nil)

// HashedUpTo implements storage.HashLagger: how many of u's bytes
// u.HashState covers (the mark says; all of them without one).
func (s *Store) HashedUpTo(u *storage.Upload) int64 { return hashedUpTo(u) }

// proveCommitted is storage.ProveCommitted for a session whose data is
// gone, also when its state lags: the registry records the last Append
// as it returned, the hash of its chunk still running, and writes nothing
// more before Commit (a closing PUT without a body writes nothing at all
// before it), so a replay finds the state of the bytes before the last
// chunk (hashed of them) and the chunk's CRC-32C in the mark.
//
// Why that proves the blob, and links nothing a client did not send:
// the blob d is read back once. Its bytes after hashed, hashed on from
// the state, must give the hash of all its bytes: sha256(state ∥ tail)
// = sha256(blob) pins the blob's first hashed bytes to the session's own
// (a collision otherwise), and the hash of all its bytes under d's
// algorithm must be d, so a published file changed on disk proves
// nothing. That leaves the tail, which only the CRC ties to the chunk the
// client sent. A client after a blob it may not read (DESIGN.md: a mount
// needs pull access to the source) would need a session of its own that
// published something, then lost its record, then the CRC of bytes it
// does not know: one chance in 2^32 per claim. What it knows of the tail
// it could as well hash against d offline, and a tail it knows whole it
// could push. A wrong claim answers ErrDigestMismatch, a blob that is not
// there ErrNotFound, as ProveCommitted does.
//
// own, the hash of all u's bytes that this process published (see
// keepPublished), proves the blob as a state of all of them would.
func (s *Store) proveCommitted(ctx context.Context, u *storage.Upload, d digest.Digest, own hash.Hash) error {
	hashed := hashedUpTo(u)
	m, lags := parseMark(u.Backend)
	if own != nil {
		state, err := digest.MarshalHash(own)
		if err != nil {
			return err
		}
		whole := *u
		whole.HashState = state
		return storage.ProveCommitted(ctx, s, &whole, d)
	}
	if !lags || hashed >= u.Offset {
		return storage.ProveCommitted(ctx, s, u, d)
	}
	alg := algorithm(u)
	h, err := digest.RestoreHash(alg, u.HashState)
	if err != nil {
		return err
	}
	size, err := s.Stat(ctx, d)
	if err != nil {
		return fmt.Errorf("upload %s: data gone, blob %s: %w", u.ID, d, err)
	}
	if size != u.Offset {
		return fmt.Errorf("upload %s holds %d bytes, blob %s has %d: %w", u.ID, u.Offset, d, size, storage.ErrDigestMismatch)
	}
	rc, err := s.Open(ctx, d, 0)
	if err != nil {
		return fmt.Errorf("upload %s: data gone, blob %s: %w", u.ID, d, err)
	}
	defer rc.Close()
	whole := digest.NewHash(alg)
	asD, all := whole, io.Writer(whole)
	if d.Algorithm() != alg {
		asD = digest.NewHash(d.Algorithm())
		all = io.MultiWriter(whole, asD)
	}
	crc := crc32.New(castagnoli)
	_, err = io.CopyN(all, rc, hashed)
	if err == nil {
		_, err = io.Copy(io.MultiWriter(all, h, crc), rc)
	}
	switch {
	case err != nil:
		return fmt.Errorf("upload %s: reading blob %s back: %w", u.ID, d, err)
	case digest.FromHash(d.Algorithm(), asD) != d:
		return fmt.Errorf("upload %s: blob %s holds other bytes than its name: %w", u.ID, d, storage.ErrDigestMismatch)
	case digest.FromHash(alg, h) != digest.FromHash(alg, whole):
		return fmt.Errorf("upload %s: its first %d bytes are not blob %s's: %w", u.ID, hashed, d, storage.ErrDigestMismatch)
	case crc.Sum32() != m.crc:
		return fmt.Errorf("upload %s: its last chunk is not blob %s's tail (CRC-32C): %w", u.ID, d, storage.ErrDigestMismatch)
	}
	return nil
}

// keepPublished keeps, once Commit published u's bytes (err nil), the
// hash of all of them, own, when u's recorded state lags: a replay of the
// Commit in this process (the registry failed to record the blob, and
// the client puts again) then proves a claim of other bytes wrong from
// the session's own digest, as a state of all the bytes would. After a
// crash it is gone, and proveCommitted proves the blob with the CRC.
func (s *Store) keepPublished(u *storage.Upload, own hash.Hash, err error) error {
	if err == nil && own != nil && hashedUpTo(u) < u.Offset {
		s.done.keep(u.ID, own)
	}
	return err
}
