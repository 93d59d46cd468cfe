package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
)

const (
	secPresign = "Pull with presign=true (packreg answers 307, the client follows to S3) next to the pull through packreg (same blobs, same S3 server)"
	// presignRepo holds the blobs the presign rows pull.
	presignRepo  = "bench/presign"
	secReplicas  = "Two packreg replicas on the same S3 + PostgreSQL next to one (manifest GET by tag, 16 clients)"
	replicasRepo = "bench/replicas"
)

// replicasSuite starts a second packreg process on the same storage and
// database as the first (a replica; on S3 + PostgreSQL only) and measures
// what a second replica and presigned pulls change. The second process
// runs with presign=true for the presign rows, then without for the
// replica rows, so each row compares like with like.
func (b *bench) replicasSuite(ctx context.Context) error {
	size := b.opt.sizes[len(b.opt.sizes)-1]
	if err := b.presignRows(ctx, size); err != nil {
		return err
	}
	return b.replicaRows(ctx)
}

// startReplica runs another `packreg serve` with the first one's flags,
// its --storage URL changed by storage.
func (b *bench) startReplica(ctx context.Context, name string, storage func(string) string) (*target, error) {
	args := slices.Clone(b.spec.args)
	i := slices.Index(args, "--storage")
	if i < 0 || i+1 >= len(args) {
		return nil, errors.New("the backend has no --storage: replicas need S3")
	}
	args[i+1] = storage(args[i+1])
	logf("%s: starting a second packreg (%s)", b.backend, name)
	srv, err := startServer(ctx, b.bin, args, filepath.Join(b.work, "server-"+name+".log"))
	return asTarget(name, srv, err)
}

func (b *bench) presignRows(ctx context.Context, size int64) error {
	pre, err := b.startReplica(ctx, "presign", func(s string) string {
		u, err := url.Parse(s)
		if err != nil {
			return s // startServer then fails on it and says why
		}
		q := u.Query()
		q.Set("presign", "true")
		u.RawQuery = q.Encode()
		return u.String()
	})
	if err != nil {
		return b.failed(ctx, secPresign, "start a packreg with presign=true", err)
	}
	defer pre.stop()
	plain := b.targets[0]
	n := reps(size)
	dg := make([]string, n)
	for i := range n {
		seed := 5_000_000_000 + uint64(i)
		dg[i] = b.dg.of(seed, size)
		if err := plain.c.pushMonolithic(ctx, presignRepo, seed, size, dg[i]); err != nil {
			return b.failed(ctx, secPresign, "setup", err)
		}
	}
	buf := make([]byte, 1<<20)
	times := ""
	if n > 1 {
		times = fmt.Sprintf(" x%d", n)
	}
	label := fmt.Sprintf("pull %s%s", fmtSize(size), times)
	row := sideRow{
		label:   label,
		metric:  metricMBps,
		section: secPresign,
		columns: []string{"presign=true", "through packreg", "ratio (presign / through)", "notes"},
		intro:   "one client, sequential; CPU is packreg's alone (the S3 server's is not counted), read from /proc in 10 ms ticks, so a presigned pull's few ms show as 0 or 10",
		targets: []*target{pre, plain},
		derived: []derivedRow{{label: label + ": packreg CPU per pull", metric: metricCPUPerOp}},
		run: func(ctx context.Context, t *target, _ int) (result, error) {
			redirected := 0
			t.c.hc.CheckRedirect = func(*http.Request, []*http.Request) error {
				redirected++
				return nil
			}
			defer func() { t.c.hc.CheckRedirect = nil }()
			r, err := b.load(ctx, n, 1, func(ctx context.Context, i int) error {
				got, err := t.c.pull(ctx, presignRepo, dg[i], buf)
				if err == nil && got != size {
					err = fmt.Errorf("pulled %d bytes, want %d", got, size)
				}
				return err
			})
			if err == nil && t == pre && redirected != n {
				err = fmt.Errorf("%d of %d pulls were redirected: presign=true should redirect every one", redirected, n)
			}
			r.bytes = int64(n) * size
			return r, err
		},
		extra: func([]result) cell {
			return func(*limits) string { return "presign: time to the last byte, redirect followed; cpu: packreg's only" }
		},
	}
	return b.side(ctx, row)
}

func (b *bench) replicaRows(ctx context.Context) error {
	second, err := b.startReplica(ctx, "replica", func(s string) string { return s })
	if err != nil {
		return b.failed(ctx, secReplicas, "start a second replica", err)
	}
	defer second.stop()
	first := b.targets[0]
	refs := newImageRefs()
	if err := b.pushRefs(ctx, replicasRepo, refs); err != nil {
		return b.failed(ctx, secReplicas, "setup", err)
	}
	if err := first.c.putManifest(ctx, replicasRepo, "r", refs.manifest(60_000_000)); err != nil {
		return b.failed(ctx, secReplicas, "setup", err)
	}
	// Warm both: 16 connections each and the manifest in each one's
	// caches, so the first sample does not pay for the second's start.
	for _, t := range []*target{first, second} {
		if _, err := b.load(ctx, 200, 16, func(ctx context.Context, _ int) error { return t.c.getManifest(ctx, replicasRepo, "r") }); err != nil {
			return b.failed(ctx, secReplicas, t.name+" serves the first replica's manifest", err)
		}
	}
	// Both rows run through the first replica's target (its CPU, its
	// liveness); the two-replica row adds the second one's CPU and sends
	// every other request to it.
	two := &target{name: "two replicas", srv: first.srv, c: first.c}
	one := &target{name: "one replica", srv: first.srv, c: first.c}
	n := 2 * b.opt.ops
	row := sideRow{
		label:   fmt.Sprintf("manifest GET by tag, 16 clients, x%d", n),
		metric:  metricRate,
		section: secReplicas,
		columns: []string{"two replicas", "one replica", "ratio (two / one)", "two replicas: latency, server cpu (both)"},
		intro:   "the same 16 clients, all on one replica or every other request on the second",
		targets: []*target{two, one},
		extra:   rateExtra,
		run: func(ctx context.Context, t *target, _ int) (result, error) {
			cpu0 := second.srv.cpu()
			r, err := b.load(ctx, n, 16, func(ctx context.Context, i int) error {
				c := first.c
				if t == two && i%2 == 1 {
					c = second.c
				}
				return c.getManifest(ctx, replicasRepo, "r")
			})
			if t == two {
				r.cpu += second.srv.cpu() - cpu0
			}
			if err == nil {
				err = second.srv.alive()
			}
			return r, err
		},
	}
	if err := b.side(ctx, row); err != nil {
		return err
	}
	b.rep.noteOnce(fmt.Sprintf("%s: two replicas share this machine's %d cores with the bench's 16 clients and with PostgreSQL and the S3 server: "+
		"the second replica adds no core, so its ratio shows what is left when one process does not use them all (compare the cores column)", b.backend, runtime.NumCPU()))
	return nil
}
