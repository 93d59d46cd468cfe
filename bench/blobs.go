package main

import (
	"context"
	"fmt"
	"sync/atomic"
)

const blobRepo = "bench/blobs"

// Seeds give every pushed blob its own content (a registry that already has
// a blob may skip the write, which would flatter it). They depend only on
// the row, so the S3 column pushes the same bytes as the disk column and
// reuses the digests computed for it.
func blobSeed(sizeIdx, kind, rep int) uint64 {
	return 1_000_000_000 + uint64(sizeIdx)*1_000_000 + uint64(kind)*1_000 + uint64(rep)
}

const (
	kindMonolithic = iota
	kindChunked
)

// reps pushes small blobs several times so one row is not a single
// millisecond-long sample, while keeping each row near 128 MiB of traffic.
func reps(size int64) int { return int(min(max((128<<20)/size, 1), 16)) }

// blobs measures push (monolithic and chunked) and pull throughput for each
// size, and the server's memory during the largest pushes.
func (b *bench) blobs(ctx context.Context) error {
	largest := b.opt.sizes[len(b.opt.sizes)-1]
	buf := make([]byte, 1<<20)
	for si, size := range b.opt.sizes {
		n := reps(size)
		if size == largest && b.backend == "disk" {
			// The disk's speed drifts with what others on the machine do;
			// measurements right before and after the pushes that matter
			// most keep their ratios honest.
			logf("%s: re-measuring sha256 and disk write before the %s pushes", b.backend, fmtSize(size))
			when := "before the " + fmtSize(size) + " pushes"
			if err := b.rep.limits.measure(b.diskData, when, false); err != nil {
				return fmt.Errorf("limits: %w", err)
			}
		}
		monoFailed := false
		for _, kind := range []int{kindMonolithic, kindChunked} {
			name := "monolithic"
			if kind == kindChunked {
				name = fmt.Sprintf("chunked (%s PATCHes)", fmtSize(b.opt.chunk))
			}
			label := fmt.Sprintf("push %s %s", fmtSize(size), name)
			if n > 1 {
				label += fmt.Sprintf(" x%d", n)
			}
			// Digests first, outside the timing: the client must not spend
			// a core hashing while the server hashes.
			dg := make([]string, n)
			for i := range n {
				dg[i] = b.dg.of(blobSeed(si, kind, i), size)
			}
			logf("%s: %s", b.backend, label)
			var rss0 int64
			var sampler *rssSampler
			if size == largest {
				_ = b.srv.resetHWM()
				rss0, _, _ = b.srv.memKB()
				sampler = b.srv.sampleRSS()
			}
			r, err := b.load(ctx, n, 1, func(ctx context.Context, i int) error {
				if kind == kindChunked {
					return b.c.pushChunked(ctx, blobRepo, blobSeed(si, kind, i), size, b.opt.chunk, dg[i])
				}
				return b.c.pushMonolithic(ctx, blobRepo, blobSeed(si, kind, i), size, dg[i])
			})
			if sampler != nil {
				peak, samples := sampler.stop()
				_, hwm, _ := b.srv.memKB()
				what := fmt.Sprintf("%s %s push", fmtSize(size), map[int]string{kindMonolithic: "monolithic", kindChunked: "chunked"}[kind])
				b.set(secMemory, "RSS before the "+what, fmtKB(rss0))
				b.set(secMemory, "peak VmRSS during the "+what, fmt.Sprintf("%s (%d samples)", fmtKB(peak), samples))
				b.set(secMemory, "VmHWM after the "+what, fmtKB(hwm))
			}
			if err != nil {
				if err := b.failed(ctx, secBlobs, label, err); err != nil {
					return err
				}
				if kind == kindMonolithic {
					monoFailed = true
				}
				continue
			}
			r.bytes = int64(n) * size
			b.setCell(secBlobs, label, b.pushCell(r))
		}
		if size == largest && b.backend == "disk" {
			logf("%s: re-measuring sha256 and disk write after the %s pushes", b.backend, fmtSize(size))
			if err := b.rep.limits.measure(b.diskData, "after them", false); err != nil {
				return fmt.Errorf("limits: %w", err)
			}
		}
		if monoFailed {
			continue // nothing to pull
		}

		// Pull what the monolithic pass pushed: it is in the page cache, as
		// a freshly pushed blob is on a real registry.
		label := fmt.Sprintf("pull %s", fmtSize(size))
		if n > 1 {
			label += fmt.Sprintf(" x%d", n)
		}
		logf("%s: %s", b.backend, label)
		var short atomic.Int64
		r, err := b.load(ctx, n, 1, func(ctx context.Context, i int) error {
			got, err := b.c.pull(ctx, blobRepo, b.dg.of(blobSeed(si, kindMonolithic, i), size), buf)
			if got != size && err == nil {
				short.Add(1)
			}
			return err
		})
		if err == nil && short.Load() > 0 {
			err = fmt.Errorf("%d pulls returned the wrong length", short.Load())
		}
		if err != nil {
			if err := b.failed(ctx, secBlobs, label, err); err != nil {
				return err
			}
			continue
		}
		r.bytes = int64(n) * size
		b.setCell(secBlobs, label, b.pullCell(r))
	}
	return nil
}

// smallBlobs measures the single-request upload of 1 KiB blobs, the shape of
// configs, signatures and attestations, where per-request overhead and the
// fsync per blob dominate.
func (b *bench) smallBlobs(ctx context.Context) error {
	for _, workers := range []int{1, 16} {
		n := b.opt.ops
		bodies := make([][]byte, n)
		dg := make([]string, n)
		for i := range n {
			bodies[i] = genBytes(2_000_000_000+uint64(workers)*1_000_000+uint64(i), 1024)
			dg[i] = sha256Digest(bodies[i])
		}
		label := fmt.Sprintf("push 1 KiB, POST ?digest=, %s", clients(workers))
		logf("%s: %s x%d", b.backend, label, n)
		var fellBack atomic.Int64
		r, err := b.load(ctx, n, workers, func(ctx context.Context, i int) error {
			fb, err := b.c.pushSmall(ctx, blobRepo, bodies[i], dg[i])
			if fb {
				fellBack.Add(1)
			}
			return err
		})
		if err != nil {
			if err := b.failed(ctx, secSmall, label, err); err != nil {
				return err
			}
			continue
		}
		b.set(secSmall, label, rateCell(r))
		if fb := fellBack.Load(); fb > 0 {
			b.rep.note(fmt.Sprintf("%s: %d of %d single-request uploads answered 202, finished with a PUT", b.backend, fb, n))
		}
	}
	return nil
}

func clients(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}
