package s3

import (
	"context"
	"fmt"
)

// Part buffers: each Append fills one part in memory before it goes out,
// so the Store pools them, bounded (maxPartBuffers in use) and reused
// (idleParts kept free).

// partBuffer returns a buffer of n bytes. When n is the configured part
// size (uploads started elsewhere may use another), it waits until fewer
// than maxPartBuffers are in use, so concurrent uploads cannot take more
// than maxPartBuffers parts of memory between them, and reuses a free one
// if there is one. Every such buffer goes back through releasePart.
func (s *Store) partBuffer(ctx context.Context, n int64) ([]byte, error) {
	if n != s.cfg.PartSize {
		return make([]byte, n), nil
	}
	select {
	case s.partSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a part buffer: %w", ctx.Err())
	}
	select {
	case b := <-s.parts:
		return b, nil
	default:
		return make([]byte, n), nil
	}
}

// tryPartBuffer is partBuffer without the wait: ok is false when
// maxPartBuffers are in use.
func (s *Store) tryPartBuffer(n int64) ([]byte, bool) {
	if n != s.cfg.PartSize {
		return make([]byte, n), true
	}
	select {
	case s.partSlots <- struct{}{}:
	default:
		return nil, false
	}
	select {
	case b := <-s.parts:
		return b, true
	default:
		return make([]byte, n), true
	}
}

// scratch returns a buffer of n bytes for a tail: a part buffer when n
// is large (a tail is shorter than a part), a fresh one otherwise.
func (s *Store) scratch(ctx context.Context, n int64) ([]byte, error) {
	if n >= 1<<20 && n <= s.cfg.PartSize {
		b, err := s.partBuffer(ctx, s.cfg.PartSize)
		if err != nil {
			return nil, fmt.Errorf("s3: %w", err)
		}
		return b[:n], nil
	}
	return make([]byte, n), nil
}

// releasePart gives back b's place among the maxPartBuffers if it is a
// part buffer (a slice of one, from scratch, counts: no other buffer has
// that capacity), and keeps it for reuse if fewer than idleParts are
// free; otherwise the GC has it. Callers must hold no other reference:
// the SDK is done with a body when its call returns.
func (s *Store) releasePart(b []byte) {
	if int64(cap(b)) != s.cfg.PartSize {
		return
	}
	select {
	case s.parts <- b[:cap(b)]:
	default:
	}
	<-s.partSlots
}
