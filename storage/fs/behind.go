package fs

import (
	"context"
	"errors"
	"fmt"
	"hash"
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

// finished is a run that is over: the hash h of the first end bytes.
func finished(alg string, end int64, h hash.Hash) *hashRun {
	return &hashRun{alg: alg, end: end, h: h, ready: closedChan, done: closedChan}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

var _ storage.HashFinisher = (*Store)(nil)

// FinishHash implements storage.HashFinisher: it waits for the hash
// running behind u's last Append here (or hashes again the bytes its
// recorded state does not cover) and sets u.HashState and the mark to all
// u.Offset bytes. The hash stays for the Commit that follows.
func (s *Store) FinishHash(ctx context.Context, u *storage.Upload) (changed bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("fs: finish hash %s: %w", u.ID, err)
	}
	if err := checkID(u.ID); err != nil {
		return false, err
	}
	if hashedUpTo(u) == u.Offset && (len(u.HashState) > 0 || u.Offset == 0) {
		return false, nil
	}
	alg := algorithm(u)
	h, err := s.finishedHash(u, alg)
	var state []byte
	if err == nil {
		state, err = digest.MarshalHash(h)
	}
	if err != nil {
		return false, fmt.Errorf("fs: finish hash %s: %w", u.ID, err)
	}
	s.runs.keep(u.ID, finished(alg, u.Offset, h))
	u.HashState = state
	if m, ok := parseMark(u.Backend); ok {
		m.hashed, m.crc = u.Offset, 0
		u.Backend = m.encode()
	}
	return true, nil
}

// finishedHash is the hash of all u's bytes: the run of its last Append
// here, else its state and the bytes after it read back (the data file
// opened as Append would, so a restart of the machine is noticed).
func (s *Store) finishedHash(u *storage.Upload, alg string) (hash.Hash, error) {
	run := s.runs.take(u.ID)
	if run != nil && run.alg == alg && run.end == u.Offset {
		return run.result()
	}
	run.cancel()
	f, _, _, err := s.openDurable(u, false)
	if err != nil {
		return nil, err
	}
	h, err := resumeHash(f, u, alg)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.keep(u.ID, f)
	return h, nil
}

// proveCommitted is storage.ProveCommitted for a session whose data is
// gone. Its state proves the blob only when it covers all u's bytes:
// the registry finishes the hash (FinishHash) and records it before a
// Commit, so a replay finds it so.
func (s *Store) proveCommitted(ctx context.Context, u *storage.Upload, d digest.Digest) error {
	if n := hashedUpTo(u); n < u.Offset {
		return fmt.Errorf("upload %s: data gone, and its hash state covers %d of its %d bytes: %w", u.ID, n, u.Offset, storage.ErrNotFound)
	}
	return storage.ProveCommitted(ctx, s, u, d)
}
