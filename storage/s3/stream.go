package s3

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/packreg/packreg/storage"
)

// The last whole part of an Append, started at a part boundary with the
// caller's reader announcing it (storage.Remainder), is sent while it is
// received: its UploadPart starts at once and its body follows the part
// buffer as the Append fills it. A chunked push of 8 MiB PATCHes
// otherwise paid each PATCH's receive (about 5 ms) and then its part's
// upload, one after the other, where a monolithic push overlaps the
// receive of a part with the upload of the one before. What it gained on
// a 2-core machine that versitygw's hashing keeps busy: 1.6-4 ms of a
// 36-40 ms PATCH through the registry (interleaved in one process), and
// no whole-part buffer grown from 64 KiB (2 MiB of garbage a PATCH).
//
// The body cannot carry its CRC32 in a header (it is not all there when
// the headers go), so it goes aws-chunked with the CRC32 in a trailer
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER): S3 checks it against the bytes it
// read and refuses the part otherwise, as it refuses a header's. Unsigned
// streaming only where direct sends UNSIGNED-PAYLOAD (a loopback
// server); elsewhere parts keep putPart's SHA-256-signed SDK path.
//
// A streamed body cannot be sent again while it is still arriving: when
// the streamed attempt fails, the part waits until the Append has all
// its bytes and goes through putPart (the SDK and its retryer). When the
// Append stops filling (the client's body broke), the send fails with it
// and the part is not counted: the server refuses a body cut short.

// streamChunk is the data size of the chunks of a streamed body: the send
// lags the receive by at most one chunk, and S3 wants every chunk but
// the last to be at least 8 KiB.
const streamChunk = 64 << 10

// crcTrailer names the trailer that carries a streamed body's CRC32.
const crcTrailer = "x-amz-checksum-crc32"

// errNoReplay refuses to send a streamed body again once some of it went.
var errNoReplay = errors.New("s3: a streamed part body cannot be sent again")

// partFeed is a part buffer an Append is filling while its upload reads
// the bytes there so far.
type partFeed struct {
	b    []byte
	mu   sync.Mutex
	cond sync.Cond
	n    int   // b[:n] is filled
	err  error // why the Append stopped filling b, once it did
}

func newPartFeed(b []byte) *partFeed {
	f := &partFeed{b: b}
	f.cond.L = &f.mu
	return f
}

func (f *partFeed) fed(n int) {
	f.mu.Lock()
	f.n = n
	f.mu.Unlock()
	f.cond.Broadcast()
}

// stop says no more bytes come, for err.
func (f *partFeed) stop(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
	f.cond.Broadcast()
}

// filled reports whether b[:n] is filled.
func (f *partFeed) filled(n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n >= n
}

// await blocks until b[:n] is filled (nil) or the Append stopped short
// of it (its reason).
func (f *partFeed) await(n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.n < n && f.err == nil {
		f.cond.Wait()
	}
	if f.n >= n {
		return nil
	}
	return f.err
}

// streams reports whether an Append at a part boundary sends its next
// part while receiving it: when r announces the Append's last whole part
// (a shorter rest is staged as a tail and sends no part). Only that one:
// the receive of an earlier part already overlaps the upload of the one
// before, and a monolithic push keeps the path it had.
func (s *Store) streams(r io.Reader, ps int64) bool {
	n := storage.Remaining(r)
	return s.direct != nil && s.direct.unsigned && n >= ps && n < 2*ps
}

// fillFeed reads r into f's buffer until it is full. It returns the
// bytes read and, when the buffer is not full, why: the reader's error
// as "read: ...", or io.EOF for a reader that ended early; the feed is
// stopped then, so the send fails. The caller hashes the bytes after:
// S3 takes longer to answer after the last byte than the hash takes,
// while a hash of each read as it came held the receive, and so the
// send, back (8 MiB PATCHes at store level: 9.6 ms to receive instead
// of 5.6).
func fillFeed(r io.Reader, f *partFeed) (int64, error) {
	i := 0
	for i < len(f.b) {
		m, err := r.Read(f.b[i:])
		i += m
		f.fed(i)
		if err != nil && i < len(f.b) {
			if err != io.EOF {
				err = fmt.Errorf("read: %w", err)
			}
			f.stop(err)
			return int64(i), err
		}
	}
	return int64(i), nil
}

// streamPart uploads f's buffer as part n while the Append fills it
// (startPart's flight, its buffer f.b): streamed, and when that attempt
// fails through putPart once the bytes are all there.
func (s *Store) streamPart(ctx context.Context, dir string, st *state, n int, f *partFeed) *flight {
	fl := &flight{done: make(chan struct{}), buf: f.b}
	s.streamed.Add(1)
	go func() {
		defer close(fl.done)
		fl.etag, fl.err = s.sendStreamed(ctx, dir, st, n, f)
		if fl.err != nil && ctx.Err() == nil && f.await(len(f.b)) == nil {
			fl.etag, fl.err = s.putPart(ctx, dir, st, n, f.b)
		}
	}()
	return fl
}

// sendStreamed is one streamed UploadPart of f's buffer as part n,
// creating the multipart upload first if needed.
func (s *Store) sendStreamed(ctx context.Context, dir string, st *state, n int, f *partFeed) (string, error) {
	key := dir + dataName
	if err := s.createUpload(ctx, key, st); err != nil {
		return "", err
	}
	var etag string
	err := s.observed(ctx, "UploadPart", func() error {
		q := url.Values{"partNumber": {strconv.Itoa(n)}, "uploadId": {st.UploadID}}
		body := &chunkedBody{f: f}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.direct.base+key+"?"+q.Encode(), body)
		if err != nil {
			return err
		}
		req.ContentLength = chunkedLen(int64(len(f.b)))
		// The raw client (and net/http) send a body again on a fresh
		// connection when a reused one was closed under them: only
		// before any of it went.
		req.GetBody = func() (io.ReadCloser, error) {
			if body.started.Load() {
				return nil, errNoReplay
			}
			return body, nil
		}
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(f.b)))
		req.Header.Set("X-Amz-Trailer", crcTrailer)
		req.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32")
		resp, err := s.direct.send(req, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		if err != nil {
			return err
		}
		etag = resp.Header.Get("ETag")
		return nil
	})
	if err != nil {
		return "", s.wrap(fmt.Sprintf("upload part %d (streamed)", n), key, err)
	}
	return etag, nil
}

// chunkedBody is the aws-chunked encoding of a partFeed's buffer, read as
// the buffer fills: chunks of streamChunk bytes ("<hex size>\r\n<data>\r\n"),
// then a last empty one and the trailer with the CRC32 of the data.
type chunkedBody struct {
	f       *partFeed
	started atomic.Bool // net/http reads the body in a goroutine of its own
	off     int         // data framed so far
	size    int         // of the chunk being handed out
	phase   int         // what the next slice is: 0 a chunk's head, 1 its data, 2 its end
	crc     uint32      // of f.b[:off]
	pending []byte      // left of the current slice
	end     bool
}

// Read fills p with as much of the encoding as is there without waiting
// once it has some: a chunk's head, data and end in one read, so that
// the send is not many small writes (Go's connections send each at once).
func (c *chunkedBody) Read(p []byte) (int, error) {
	c.started.Store(true)
	n := 0
	for n < len(p) {
		if len(c.pending) == 0 {
			if c.end || n > 0 && c.phase == 0 && !c.f.filled(c.off+min(streamChunk, len(c.f.b)-c.off)) {
				break
			}
			if err := c.next(); err != nil {
				return n, err
			}
			continue
		}
		m := copy(p[n:], c.pending)
		c.pending = c.pending[m:]
		n += m
	}
	if n == 0 && c.end {
		return 0, io.EOF
	}
	return n, nil
}

func (c *chunkedBody) Close() error { return nil }

// next sets pending to the next slice of the encoding.
func (c *chunkedBody) next() error {
	switch c.phase {
	case 0:
		if c.off == len(c.f.b) {
			var sum [4]byte
			binary.BigEndian.PutUint32(sum[:], c.crc)
			c.pending = []byte("0\r\n" + crcTrailer + ":" + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
			c.end = true
			return nil
		}
		c.size = min(streamChunk, len(c.f.b)-c.off)
		if err := c.f.await(c.off + c.size); err != nil {
			return err
		}
		c.crc = crc32.Update(c.crc, crc32.IEEETable, c.f.b[c.off:c.off+c.size])
		c.pending = []byte(strconv.FormatInt(int64(c.size), 16) + "\r\n")
		c.phase = 1
	case 1:
		c.pending = c.f.b[c.off : c.off+c.size]
		c.off += c.size
		c.phase = 2
	case 2:
		c.pending = []byte("\r\n")
		c.phase = 0
	}
	return nil
}

// chunkedLen is the length of chunkedBody's encoding of n bytes.
func chunkedLen(n int64) int64 {
	frame := func(size int64) int64 { return int64(len(strconv.FormatInt(size, 16))) + 2 + size + 2 }
	total := n / streamChunk * frame(streamChunk)
	if r := n % streamChunk; r > 0 {
		total += frame(r)
	}
	// The last chunk and the trailer: a CRC32 is 8 characters of base64.
	return total + int64(len("0\r\n"+crcTrailer+":")) + 8 + 4
}
