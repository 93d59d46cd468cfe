package s3

import (
	"context"
	"fmt"
	"time"
)

// Part buffers: each Append fills one part in memory before it goes out,
// so the Store pools them, bounded (maxPartBuffers in use) and reused
// (idleParts kept free) while pushes come, and dropped when they stop.

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
	if len(s.partSlots) == 0 {
		s.partsIdle()
	}
}

// partIdle is how long idle part buffers outlive the last part in use.
// Kept, they stay resident, and the heap the GC let grow around them
// during the pushes stays with the process too: the S3 server's peak RSS
// in the bench's packs suite was 91-92 MiB right after the blobs suite's
// pushes and 58.8 MiB in a run of the packs suite alone. Between the
// PATCHes of a push, milliseconds apart, they stay.
const partIdle = 2 * time.Second

// partsIdle (re)arms the timer that drops the idle part buffers once no
// part has been in use for partIdle.
func (s *Store) partsIdle() {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	if s.trimTimer == nil {
		s.trimTimer = time.AfterFunc(partIdle, s.trimParts)
		return
	}
	s.trimTimer.Reset(partIdle)
}

// trimParts drops the idle part buffers and hands the freed memory back
// to the kernel, unless a part is in use again (its release rearms the
// timer). Without FreeOSMemory the runtime returned it slowly: the packs
// suite's peak was still 77.8 MiB. It runs once per pause after big
// pushes, a GC cycle over a small heap, and not at all when there was no
// buffer to drop (a pause after pushes that reused none, or a second
// trim).
func (s *Store) trimParts() {
	if len(s.partSlots) > 0 {
		return
	}
	dropped := 0
	for {
		select {
		case <-s.parts:
			dropped++
		default:
			if dropped > 0 {
				s.freeMemory()
			}
			return
		}
	}
}
