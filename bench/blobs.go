package main

import (
	"context"
	"fmt"
	"sync/atomic"
)

const blobRepo = "bench/blobs"

// Seeds give every pushed blob its own content (a registry that already has
// a blob may skip the write, which would flatter it). They depend only on
// the row and the sample, so Distribution and the S3 column push the same
// bytes as packreg on disk and reuse the digests computed for it. rep is
// sample*32 + the blob's index in the sample (reps is at most 16).
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
// size on packreg and Distribution side by side, and packreg's memory
// during the largest pushes.
func (b *bench) blobs(ctx context.Context) error {
	largest := b.opt.sizes[len(b.opt.sizes)-1]
	buf := make([]byte, 1<<20)
	for si, size := range b.opt.sizes {
		n := reps(size)
		times := ""
		if n > 1 {
			times = fmt.Sprintf(" x%d", n)
		}
		if size == largest && b.backend == "disk" {
			// The disk's speed drifts with what others on the machine do;
			// measurements right before and after the pushes that matter
			// most keep their ratios honest.
			logf("%s: re-measuring sha256 and disk write before the %s pushes", b.backend, fmtSize(size))
			when := "before the " + fmtSize(size) + " pushes"
			if err := b.settle(ctx); err != nil {
				return err
			}
			if err := b.rep.limits.measure(b.diskData, when, false); err != nil {
				return fmt.Errorf("limits: %w", err)
			}
		}
		// Monolithic and chunked run in one interleaved schedule, each push
		// sample after its own write limit, with dirty pages drained before
		// both: a row run after the other would pay for its writeback.
		var rows []sideRow
		for _, kind := range []int{kindMonolithic, kindChunked} {
			name := "monolithic"
			if kind == kindChunked {
				name = fmt.Sprintf("chunked (%s PATCHes)", fmtSize(b.opt.chunk))
			}
			label := fmt.Sprintf("push %s %s%s", fmtSize(size), name, times)
			wb := b.startWriteBeside(label, size, n)
			rows = append(rows, sideRow{
				label:  label,
				metric: metricMBps,
				extra:  func(pk []result) cell { return b.pushCell(label, medianBy(pk, result.mbps)) },
				run: func(ctx context.Context, t *target, round int) (result, error) {
					if err := b.settle(ctx); err != nil {
						return result{}, err
					}
					if err := wb.sample(); err != nil {
						return result{}, err
					}
					if err := b.settle(ctx); err != nil {
						return result{}, err
					}
					return b.pushRow(ctx, t, round, si, kind, size, size == largest)
				},
			})
		}
		if err := b.sideRows(ctx, rows); err != nil {
			return err
		}
		if size == largest && b.backend == "disk" {
			logf("%s: re-measuring sha256 and disk write after the %s pushes", b.backend, fmtSize(size))
			if err := b.settle(ctx); err != nil {
				return err
			}
			if err := b.rep.limits.measure(b.diskData, "after them", false); err != nil {
				return fmt.Errorf("limits: %w", err)
			}
		}

		// Pull what the monolithic pushes of the same sample pushed: it is
		// in the page cache, as a freshly pushed blob is on a real registry.
		label := fmt.Sprintf("pull %s%s", fmtSize(size), times)
		beside, err := b.startPullBeside(label, size, n)
		if err != nil {
			return fmt.Errorf("pull limit: %w", err)
		}
		row := sideRow{
			label:  label,
			metric: metricMBps,
			// Both ends of a pull are on this machine: a way of sending
			// that saves the server CPU may cost the receiver more
			// (README, Benchmarks: pulls on loopback), so both show.
			derived: []derivedRow{
				{label: label + ": server CPU per pull", metric: metricCPUPerOp},
				{label: label + ": bench client CPU per pull", metric: metricClientCPUPerOp},
			},
			extra: func(pk []result) cell { return b.pullCell(label, medianBy(pk, result.mbps)) },
			run: func(ctx context.Context, t *target, round int) (result, error) {
				if err := beside.sample(ctx); err != nil {
					return result{}, err
				}
				var short atomic.Int64
				r, err := b.load(ctx, n, 1, func(ctx context.Context, i int) error {
					got, err := t.c.pull(ctx, blobRepo, b.dg.of(blobSeed(si, kindMonolithic, round*32+i), size), buf)
					if got != size && err == nil {
						short.Add(1)
					}
					return err
				})
				if err == nil && short.Load() > 0 {
					err = fmt.Errorf("%d pulls returned the wrong length", short.Load())
				}
				r.bytes = int64(n) * size
				return r, err
			},
		}
		err = b.side(ctx, row)
		beside.close()
		if err != nil {
			return err
		}
	}
	return nil
}

// pushRow is one sample of a push row: n blobs of size pushed one after
// the other. On packreg's first sample of the largest size it also records
// the server's memory during the push.
func (b *bench) pushRow(ctx context.Context, t *target, round, si, kind int, size int64, largest bool) (result, error) {
	n := reps(size)
	// Digests first, outside the timing: the client must not spend a core
	// hashing while the server hashes.
	dg := make([]string, n)
	for i := range n {
		dg[i] = b.dg.of(blobSeed(si, kind, round*32+i), size)
	}
	var rss0 int64
	var sampler *rssSampler
	memory := largest && round == 0 && t == b.targets[0]
	if memory {
		_ = t.srv.resetHWM()
		rss0, _, _ = t.srv.memKB()
		sampler = t.srv.sampleRSS()
	}
	r, err := b.load(ctx, n, 1, func(ctx context.Context, i int) error {
		if kind == kindChunked {
			return t.c.pushChunked(ctx, blobRepo, blobSeed(si, kind, round*32+i), size, b.opt.chunk, dg[i])
		}
		return t.c.pushMonolithic(ctx, blobRepo, blobSeed(si, kind, round*32+i), size, dg[i])
	})
	if sampler != nil {
		peak, samples := sampler.stop()
		_, hwm, _ := t.srv.memKB()
		what := fmt.Sprintf("%s %s push", fmtSize(size), map[int]string{kindMonolithic: "monolithic", kindChunked: "chunked"}[kind])
		b.set(secMemory, "RSS before the "+what, fmtKB(rss0))
		b.set(secMemory, "peak VmRSS during the "+what, fmt.Sprintf("%s (%s)", fmtKB(peak), plural(samples, "sample")))
		b.set(secMemory, "VmHWM after the "+what, fmtKB(hwm))
	}
	r.bytes = int64(n) * size
	return r, err
}

// smallBlobs measures the single-request upload of 1 KiB blobs, the shape of
// configs, signatures and attestations, where per-request overhead and the
// fsync per blob dominate, and the server CPU each costs.
func (b *bench) smallBlobs(ctx context.Context) error {
	for _, workers := range []int{1, 16} {
		n := b.opt.ops
		label := fmt.Sprintf("push 1 KiB, POST ?digest=, %s", clients(workers))
		row := sideRow{
			label:  label,
			metric: metricRate,
			extra:  rateExtra,
			derived: []derivedRow{
				{label: label + ": server CPU per push", metric: metricCPUPerOp},
				{label: label + ": server context switches per push", metric: metricSwitchesPerOp},
			},
			warm: b.warmUp(workers, func(ctx context.Context, t *target, i int) error {
				body := genBytes(2_900_000_000+uint64(workers)*10_000_000+uint64(i), 1024)
				_, err := t.c.pushSmall(ctx, blobRepo, body, sha256Digest(body))
				return err
			}),
			run: func(ctx context.Context, t *target, round int) (result, error) {
				bodies := make([][]byte, n)
				dg := make([]string, n)
				for i := range n {
					bodies[i] = genBytes(2_000_000_000+uint64(workers)*10_000_000+uint64(round*n+i), 1024)
					dg[i] = sha256Digest(bodies[i])
				}
				var fellBack atomic.Int64
				r, err := b.load(ctx, n, workers, func(ctx context.Context, i int) error {
					fb, err := t.c.pushSmall(ctx, blobRepo, bodies[i], dg[i])
					if fb {
						fellBack.Add(1)
					}
					return err
				})
				if fb := fellBack.Load(); fb > 0 && err == nil {
					b.rep.noteOnce(fmt.Sprintf("%s: %s answers a single-request upload (POST ?digest= with the body) with 202, and the client finishes with a PUT: "+
						"its 1 KiB rows cost two round trips, as they do for a real client", b.backend, t.name))
				}
				return r, err
			},
		}
		if err := b.side(ctx, row); err != nil {
			return err
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
