package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

const (
	secGC  = "Online garbage collection (POST /api/v1/gc; unreferenced small blobs, gc.grace 1s)"
	gcRepo = "bench/gc"
	// benchGCGrace is the grace period of the bench's servers: the
	// garbage pushed by the gc suite must be older than it when collected.
	benchGCGrace = time.Second
)

// gcConfig writes the config file the bench's servers start with: a grace
// period short enough for the gc suite (no schedule: only the suite
// collects).
func gcConfig(dir string) (string, error) {
	p := filepath.Join(dir, "bench-gc.yaml")
	return p, os.WriteFile(p, []byte(fmt.Sprintf("gc:\n  grace: %s\n", benchGCGrace)), 0o600)
}

// gcSuite pushes many small blobs nothing references, then times one
// collection of them, and the p99 of concurrent manifest GETs during it
// next to the same GETs without it.
func (b *bench) gcSuite(ctx context.Context) error {
	n := b.opt.gcBlobs
	refs := newImageRefs()
	if err := b.pushRefs(ctx, gcRepo, refs); err != nil {
		return err
	}
	if err := b.c.putManifest(ctx, gcRepo, "kept", refs.manifest(1)); err != nil {
		return err
	}
	logf("%s: gc: pushing %d unreferenced 512 B blobs", b.backend, n)
	push, err := b.load(ctx, n, 16, func(ctx context.Context, i int) error {
		body := genBytes(uint64(7_000_000_000+i), 512)
		_, err := b.c.pushSmall(ctx, gcRepo, body, sha256Digest(body))
		return err
	})
	if err != nil {
		return b.failed(ctx, secGC, "setup", err)
	}
	b.set(secGC, fmt.Sprintf("setup: push %s garbage blobs, 16 clients", fmtCount(n)), fmt.Sprintf("%s (%.0f/s)", fmtDur(push.elapsed), push.rate()))
	time.Sleep(benchGCGrace) // the garbage must be older than the grace period
	get := func(ctx context.Context, _ int) error { return b.c.getManifest(ctx, gcRepo, "kept") }
	quiet, err := b.load(ctx, b.opt.gcGets, 4, get)
	if err != nil {
		return b.failed(ctx, secGC, "manifest GET without GC", err)
	}
	b.set(secGC, "manifest GET, 4 clients, no GC running: p50 / p99", fmt.Sprintf("%s / %s", fmtDur(quiet.pct(50)), fmtDur(quiet.pct(99))))

	var (
		done    atomic.Bool
		elapsed time.Duration
		run     struct {
			Counts struct {
				Links, Blobs int
				Bytes        int64
			} `json:"counts"`
		}
	)
	gcErr := make(chan error, 1)
	go func() {
		defer done.Store(true)
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.c.url("/api/v1/gc"), strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := b.c.hc.Do(req)
		elapsed = time.Since(start)
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("POST /api/v1/gc: status %d", resp.StatusCode)
			} else {
				err = json.NewDecoder(resp.Body).Decode(&run)
			}
		}
		gcErr <- err
	}()
	// GETs for as long as the collection runs (at least one batch).
	var during result
	for !done.Load() {
		r, err := b.load(ctx, 200, 4, get)
		if err != nil {
			return b.failed(ctx, secGC, "manifest GET during GC", err)
		}
		during.lat = append(during.lat, r.lat...)
	}
	if err := <-gcErr; err != nil {
		return b.failed(ctx, secGC, "collection", err)
	}
	if run.Counts.Blobs < n {
		return b.failed(ctx, secGC, "collection", fmt.Errorf("collected %d blobs, pushed %d", run.Counts.Blobs, n))
	}
	// The label counts what this suite pushed, so both backends share the
	// row; the collection also takes what earlier suites left behind.
	b.set(secGC, fmt.Sprintf("GC of %s pushed unreferenced blobs (links + bytes)", fmtCount(n)),
		fmt.Sprintf("%s (%s collected, %.0f blobs/s)", fmtDur(elapsed), fmtCount(run.Counts.Blobs), float64(run.Counts.Blobs)/elapsed.Seconds()))
	slices.Sort(during.lat)
	b.set(secGC, "manifest GET, 4 clients, during that GC: p50 / p99", fmt.Sprintf("%s / %s (%d GETs)", fmtDur(during.pct(50)), fmtDur(during.pct(99)), len(during.lat)))
	return nil
}
