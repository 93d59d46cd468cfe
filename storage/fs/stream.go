package fs

import (
	"context"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"
)

// Streaming runs three stages at once: the calling goroutine reads into a
// buffer, one goroutine hashes it and another writes it, so a push costs
// about max(read, hash, write) instead of their sum. On a server the read
// is a socket copy and the hash the slowest stage: giving it a goroutine of
// its own keeps it busy. Buffers are pooled so concurrent pushes do not
// churn the heap, and large enough that syscalls and hash calls are few,
// but no larger: an Append's hasher and writer wait for the first buffer
// to fill, and its end waits for them to finish the last one, once per
// PATCH of a chunked push (the disk idles meanwhile).
const (
	bufSize  = 256 << 10
	inFlight = 16 // buffers queued per stage (4 MiB); bounds memory per Append
	// writebackEvery bytes written, the writer starts their writeback, so
	// the disk works while we hash instead of all at once in the fsync.
	// 1 MiB: a PATCH's fsync waits for what is not yet on disk, and
	// a window as large as the chunk (8 MiB is a common PATCH) would leave
	// all of it to the fsync, one disk write after the chunk's last byte.
	writebackEvery = 1 << 20
)

// castagnoli is the CRC-32C table (SSE 4.2 on amd64: it keeps up with the
// socket where sha256 does not).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// chunk is one buffer shared by the hasher and the writer; whichever
// finishes last returns it to chunkPool (with its buffer: an Append takes
// one per 256 KiB, and allocating the struct each time was 190 of the
// 2,800 allocations of a 64 MiB push).
type chunk struct {
	buf  []byte
	n    int
	refs atomic.Int32
}

var chunkPool = sync.Pool{New: func() any { return &chunk{buf: make([]byte, bufSize)} }}

// chunksInUse counts the chunks taken from chunkPool and not yet given
// back: what streams hold of the heap (tests check its bound).
var chunksInUse atomic.Int64

func getChunk() *chunk {
	chunksInUse.Add(1)
	return chunkPool.Get().(*chunk)
}

func putChunk(c *chunk) {
	chunksInUse.Add(-1)
	chunkPool.Put(c)
}

func (c *chunk) bytes() []byte { return c.buf[:c.n] }

func (c *chunk) release() {
	if c.refs.Add(-1) == 0 {
		putChunk(c)
	}
}

// copyHashed copies r to f (positioned at off), feeding the same bytes to h,
// and returns the number of bytes copied. On error an unknown prefix of the
// bytes may have been written; h is then garbage too, and the caller
// discards both.
func copyHashed(ctx context.Context, f File, off int64, h hash.Hash, r io.Reader) (int64, error) {
	n, run, err := copyBehind(ctx, f, off, r, "", func() (hash.Hash, error) { return h, nil }, nil, nil)
	if err != nil {
		run.cancel()
		return n, err
	}
	_, err = run.result()
	return n, err
}

// copyBehind copies r to f (positioned at off) and returns once every byte
// is written, with the hash of the bytes still running behind: start, on
// the hashing goroutine, gives the hash of the data before off (waiting
// for an earlier run, or reading the data again); run.state is its state
// then, known when copyBehind returns, and run.crc the CRC-32C of the
// bytes copied (the writer computes it, many times faster than the hash).
// prev is the upload's run before this one, whose budget of buffers not
// yet hashed this one shares (nil: a budget of its own). Tests hold the
// hash of the bytes until hold is closed (nil: never). On error an
// unknown prefix of the bytes may have been written and the caller
// cancels run.
func copyBehind(ctx context.Context, f File, off int64, r io.Reader, alg string, start func() (hash.Hash, error), prev *hashRun, hold <-chan struct{}) (int64, *hashRun, error) {
	toWrite := make(chan *chunk, inFlight)
	toHash := make(chan *chunk, inFlight)
	var stopOnce sync.Once
	failed := make(chan struct{}) // closed on the writer's first error, or when start fails
	fail := func() { stopOnce.Do(func() { close(failed) }) }
	run := &hashRun{alg: alg, ready: make(chan struct{}), done: make(chan struct{}), budget: prev.budgetOrNew()}
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		wb := writeback{off: off}
		for c := range toWrite {
			if werr == nil {
				if _, werr = f.Write(c.bytes()); werr != nil {
					fail()
				} else if at, n, ok := wb.wrote(c.n); ok {
					startWriteback(f, at, n)
				}
				run.crc = crc32.Update(run.crc, castagnoli, c.bytes())
			}
			c.release()
		}
	}()
	go run.hash(start, toHash, fail, hold)

	var n int64
	var rerr, cerr error
loop:
	for {
		if cerr = ctx.Err(); cerr != nil {
			break
		}
		c := getChunk()
		c.n, rerr = fill(r, c.buf)
		if c.n == 0 {
			putChunk(c)
		} else {
			c.refs.Store(2)
			size := c.n // once sent, c may go back to the pool and be refilled
			select {
			case run.budget <- struct{}{}: // the hashers free slots as they go
			case <-failed:
				putChunk(c)
				break loop
			}
			select {
			case toWrite <- c:
			case <-failed:
				<-run.budget
				putChunk(c)
				break loop
			}
			toHash <- c // holds no more than the budget: never blocks
			n += int64(size)
		}
		if rerr == io.EOF {
			rerr = nil
			break
		}
		if rerr != nil {
			break
		}
	}
	close(toWrite)
	close(toHash)
	wg.Wait()
	run.end = off + n
	<-run.ready
	switch {
	case werr != nil:
		return n, run, fmt.Errorf("write: %w", werr)
	case run.err != nil:
		return n, run, run.err
	case cerr != nil:
		return n, run, cerr
	case rerr != nil:
		return n, run, fmt.Errorf("read: %w", rerr)
	}
	return n, run, nil
}

// writeback tracks the bytes a stream wrote since it last started their
// writeback, from offset off of the file.
type writeback struct {
	off, written, started int64
}

// wrote records n more bytes written and says which range to start writing
// back now, if any: every writebackEvery bytes.
func (w *writeback) wrote(n int) (off, length int64, ok bool) {
	w.written += int64(n)
	if w.written-w.started < writebackEvery {
		return 0, 0, false
	}
	off, length = w.off+w.started, w.written-w.started
	w.started = w.written
	return off, length, true
}

// fill reads until buf is full or r fails. Unlike io.ReadFull it passes
// io.EOF through as the end of the data and every other error, including a
// source's own io.ErrUnexpectedEOF (an HTTP body cut short), as a failure:
// ReadFull reports a short last buffer with that same error.
func fill(r io.Reader, buf []byte) (n int, err error) {
	for n < len(buf) && err == nil {
		var m int
		m, err = r.Read(buf[n:])
		n += m
	}
	if n == len(buf) && err == io.EOF {
		err = nil // the next fill sees EOF again with nothing read
	}
	return n, err
}
