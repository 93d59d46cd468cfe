package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// settler lets the page cache's dirty data drain before a push sample, so a
// sample does not pay for the writeback of the one before it. Without it
// the 512 MiB chunked row, run right after four 512 MiB monolithic pushes,
// met a disk a third as fast as at the start (its write limit fell from
// ~1,150 to 190-345 MB/s) and showed a gap to monolithic that was the
// order of the rows, not the upload path.
//
// It waits on a condition (Dirty+Writeback in /proc/meminfo at most
// limit), never a fixed time. sync(2) on Linux returns once the data
// dirty when it was called is written, so the bench's own previous sample
// is gone by then; what is left is other work on a shared machine, which
// may keep the figure above the limit: the wait then ends at deadline and
// the caller notes it (a short deadline: a busy neighbour must not make a
// run wait minutes).
type settler struct {
	sync     func()                // syscall.Sync: start writeback of everything now
	dirty    func() (int64, error) // bytes dirty or under writeback
	limit    int64
	poll     time.Duration
	deadline time.Duration
}

func newSettler() *settler {
	return &settler{sync: syscall.Sync, dirty: dirtyBytes, limit: 64 << 20, poll: 20 * time.Millisecond, deadline: 5 * time.Second}
}

// settle syncs and waits until the dirty and writeback pages are at most
// s.limit. It returns the last figure read and whether it got there.
func (s *settler) settle(ctx context.Context) (int64, bool, error) {
	s.sync()
	end := time.Now().Add(s.deadline)
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		d, err := s.dirty()
		if err != nil {
			return 0, false, err
		}
		if d <= s.limit {
			return d, true, nil
		}
		if time.Now().After(end) {
			return d, false, nil
		}
		select {
		case <-ctx.Done():
			return d, false, ctx.Err()
		case <-t.C:
		}
	}
}

// dirtyBytes is Dirty + Writeback from /proc/meminfo.
func dirtyBytes() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	return parseDirty(b)
}

// parseDirty sums the Dirty and Writeback lines of a /proc/meminfo text
// ("Dirty:  1234 kB"), in bytes; both must be there.
func parseDirty(meminfo []byte) (int64, error) {
	v, err := parseKB(bytes.NewReader(meminfo), "/proc/meminfo", "Dirty", "Writeback")
	return (v[0] + v[1]) << 10, err
}

// settle is the bench's wait before a push sample or a write-limit run; a
// machine that did not settle is noted, not fatal: the figure is still
// taken, and the write limit beside it meets the same disk.
func (b *bench) settle(ctx context.Context) error {
	if b.settler == nil {
		b.settler = newSettler()
	}
	d, ok, err := b.settler.settle(ctx)
	if err != nil {
		return fmt.Errorf("settling dirty pages: %w", err)
	}
	if !ok {
		b.rep.noteOnce(fmt.Sprintf("%s: dirty pages did not drain below %d MiB within %s before a push sample (%d MiB left: other work on the machine writing); "+
			"the sample ran anyway, next to its write limit", b.backend, b.settler.limit>>20, b.settler.deadline, d>>20))
	}
	return nil
}
