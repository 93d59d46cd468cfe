package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Read-ahead: one GET streams at the speed of one connection and of the
// server's one reader behind it, while the client waits between socket
// writes. A blob reader therefore streams its first part straight from
// the first GET and meanwhile fetches the next parts with concurrent
// ranged GETs (pinned to the first answer's ETag) into buffers, which it
// hands out in order.
//
// Memory is bounded per Store, not per reader: a part buffer is taken
// from the Store's pool without waiting, and when none is free the reader
// streams its next part directly, as a plain GET would. So many pulls at
// once cost at most maxReadParts parts, and a pull is never stalled by
// another pull's buffers.
const (
	// readPartSize is the size of one read-ahead GET: large enough that
	// the request's overhead is noise, small enough that a few in flight
	// per pull stay cheap.
	readPartSize = 4 << 20
	// maxReadParts is how many read-ahead parts all readers of a Store
	// may hold at once (32 MiB); idleReadParts of them stay allocated.
	maxReadParts  = 8
	idleReadParts = 2
)

// readPart is one prefetched range [off, off+len(data)).
type readPart struct {
	done chan struct{} // closed when data and err are set
	buf  []byte        // from the Store's pool; released by the reader
	data []byte        // the unread rest of buf's bytes
	err  error
}

// aheadReader streams an object from pos with read-ahead. Not safe for
// concurrent use, like any io.Reader.
type aheadReader struct {
	s      *Store
	ctx    context.Context // the parts' context, cancelled by Close
	cancel context.CancelFunc
	key    string
	etag   string
	ahead  int   // parts to keep in flight
	next   int64 // first byte not yet scheduled
	end    int64 // object size
	cur    io.Reader
	curOf  *readPart // the part cur reads, released when it is used up
	queue  []*readPart
	direct *objectReader // a part streamed without a buffer
	err    error         // sticky
}

// openAhead opens key at offset with read-ahead of ahead parts. The first
// part is an ordinary streamed GET, so a small object costs one request.
func (s *Store) openAhead(ctx context.Context, key string, offset int64, ahead int) (io.ReadCloser, error) {
	if ahead <= 0 {
		return s.openObject(ctx, key, offset, "")
	}
	first, err := s.openRange(ctx, key, offset, offset+readPartSize, "")
	if err != nil || first.end >= first.size {
		return first, err
	}
	pctx, cancel := context.WithCancel(ctx)
	r := &aheadReader{s: s, ctx: pctx, cancel: cancel, key: key, etag: first.etag, ahead: ahead,
		next: first.end, end: first.size, cur: first, direct: first}
	r.schedule()
	return r, nil
}

// schedule starts fetches until ahead parts are in flight, the object is
// all scheduled, or the Store has no free buffer.
func (r *aheadReader) schedule() {
	for len(r.queue) < r.ahead && r.next < r.end {
		buf := r.s.takeReadBuf()
		if buf == nil {
			return
		}
		a, b := r.next, min(r.next+readPartSize, r.end)
		p := &readPart{done: make(chan struct{}), buf: buf}
		r.queue = append(r.queue, p)
		r.next = b
		go r.fetch(p, a, b)
	}
}

func (r *aheadReader) fetch(p *readPart, a, b int64) {
	defer close(p.done)
	or, err := r.s.openRange(r.ctx, r.key, a, b, r.etag)
	if err != nil {
		p.err = r.s.wrap("read", r.key, err)
		return
	}
	defer or.Close()
	n, err := io.ReadFull(or, p.buf[:b-a])
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = r.s.wrap("read", r.key, fmt.Errorf("bytes %d-%d: %d bytes, the object shrank: %w", a, b-1, n, io.ErrUnexpectedEOF))
	}
	p.data, p.err = p.buf[:n], err
}

func (r *aheadReader) Read(p []byte) (int, error) {
	for r.err == nil {
		if r.cur != nil {
			n, err := r.cur.Read(p)
			if err == io.EOF {
				r.dropCurrent()
				err = nil
			}
			r.err = err
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		if err := r.ctx.Err(); err != nil { // the client left: stop at a part's end
			r.err = err
			break
		}
		r.schedule()
		if len(r.queue) == 0 {
			if r.next >= r.end {
				r.err = io.EOF
				break
			}
			// Every buffer is taken: stream the next part directly.
			a, b := r.next, min(r.next+readPartSize, r.end)
			r.next = b
			r.direct = &objectReader{s: r.s, ctx: r.ctx, key: r.key, etag: r.etag, pos: a, end: b, size: r.end}
			r.cur = r.direct
			continue
		}
		part := r.queue[0]
		select {
		case <-part.done:
		case <-r.ctx.Done():
			r.err = r.ctx.Err()
			continue
		}
		r.queue = r.queue[1:]
		r.curOf = part
		if part.err != nil {
			r.err = part.err
			break
		}
		r.cur = (*partReader)(part)
	}
	return 0, r.err
}

// dropCurrent ends the part cur was reading and gives back its buffer.
func (r *aheadReader) dropCurrent() {
	if r.direct != nil {
		r.direct.Close()
		r.direct = nil
	}
	if r.curOf != nil {
		r.s.putReadBuf(r.curOf.buf)
		r.curOf = nil
	}
	r.cur = nil
}

// Close stops the fetches in flight and returns every buffer once its
// fetch has let go of it.
func (r *aheadReader) Close() error {
	r.cancel()
	r.dropCurrent()
	for _, p := range r.queue {
		<-p.done
		r.s.putReadBuf(p.buf)
	}
	r.queue = nil
	if r.err == nil {
		r.err = errors.New("s3: read after close")
	}
	return nil
}

// partReader reads a part's data.
type partReader readPart

func (p *partReader) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.data)
	p.data = p.data[n:]
	return n, nil
}

// takeReadBuf returns a part buffer when fewer than maxReadParts are
// taken, else nil.
func (s *Store) takeReadBuf() []byte {
	select {
	case s.readSlots <- struct{}{}:
	default:
		return nil
	}
	select {
	case b := <-s.readIdle:
		return b
	default:
		return make([]byte, readPartSize)
	}
}

func (s *Store) putReadBuf(b []byte) {
	select {
	case s.readIdle <- b:
	default: // enough idle buffers: let this one go
	}
	<-s.readSlots
}
