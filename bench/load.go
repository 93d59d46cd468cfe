package main

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result is one measured batch of operations.
type result struct {
	ops     int
	bytes   int64           // payload moved, for throughput rows
	elapsed time.Duration   // wall clock for the whole batch
	lat     []time.Duration // per-operation latency, sorted
	cpu     time.Duration   // server CPU time spent during the batch
	// clientCPU is the bench's own CPU time during the batch: its
	// clients' (nothing else of the bench runs while a batch is timed).
	clientCPU time.Duration
	// switches are the server's context switches during the batch.
	switches int64
	note     string // anything a reader must know to trust the row
}

func (r result) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// mbps is throughput in MB/s (10^6 bytes), the unit disks are sold in.
func (r result) mbps() float64 { return float64(r.bytes) / 1e6 / r.elapsed.Seconds() }

// cores is how many CPUs the server kept busy on average.
func (r result) cores() float64 { return r.cpu.Seconds() / r.elapsed.Seconds() }

// pct is the nearest-rank percentile p (0..100) of the latencies.
func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p/100+0.999999) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

// load runs op for i in [0, n) on workers goroutines, each taking the next
// index, and times every call. The first error stops the batch: a figure
// computed over failed requests would be a lie.
func (b *bench) load(ctx context.Context, n, workers int, op func(ctx context.Context, i int) error) (result, error) {
	return b.loadChecked(ctx, n, workers, func(ctx context.Context, i int) (func() error, error) {
		return nil, op(ctx, i)
	})
}

// loadChecked is load whose op may return a check of its answer, run
// after the op's time is taken and before its worker's next op (a walk's
// next request may depend on it): what the rows time is the registry's
// answer, not the bench reading it. The batch's wall clock, and so its
// rate, includes the checks.
func (b *bench) loadChecked(ctx context.Context, n, workers int, op func(ctx context.Context, i int) (check func() error, err error)) (result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0, self0, sw0 := b.srv.cpu(), procCPU(os.Getpid()), b.srv.switches()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t := time.Now()
				check, err := op(ctx, i)
				lat[i] = time.Since(t)
				if err == nil && check != nil {
					err = check()
				}
				if err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r := result{ops: n, elapsed: time.Since(start), cpu: b.srv.cpu() - cpu0, clientCPU: procCPU(os.Getpid()) - self0,
		switches: b.srv.switches() - sw0}
	if err := context.Cause(ctx); err != nil {
		if aerr := b.srv.alive(); aerr != nil {
			return r, aerr
		}
		return r, err
	}
	slices.Sort(lat)
	r.lat = lat
	return r, nil
}
