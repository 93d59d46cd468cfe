package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// target is one registry under test on one backend: packreg, or
// Distribution started next to it on the same storage.
type target struct {
	name string // "packreg" or distName
	srv  *server
	c    *client
}

// asTarget wraps a server that startServer or startDistribution has just
// started (or failed to start) with a client of its own.
func asTarget(name string, srv *server, err error) (*target, error) {
	if err != nil {
		return nil, err
	}
	c, err := newClient(srv.base)
	if err != nil {
		srv.stop()
		return nil, err
	}
	return &target{name: name, srv: srv, c: c}, nil
}

func (t *target) stop() {
	t.c.close()
	t.srv.stop()
}

// metric turns one run of a row into the figure the table compares.
type metric struct {
	unit string
	// lowerBetter: latencies. The ratio is then Distribution/packreg, so
	// that in every row a ratio above 1 means packreg is ahead.
	lowerBetter bool
	of          func(result) float64
}

var (
	metricMBps  = metric{unit: "MB/s", of: result.mbps}
	metricRate  = metric{unit: "/s", of: result.rate}
	metricP50ms = metric{unit: "ms p50", lowerBetter: true, of: func(r result) float64 { return r.pct(50).Seconds() * 1000 }}
	// metricCPUPerOp is the server's CPU time per operation, in ms.
	metricCPUPerOp = metric{unit: "ms cpu/op", lowerBetter: true, of: func(r result) float64 {
		return r.cpu.Seconds() * 1000 / float64(max(r.ops, 1))
	}}
	// metricSwitchesPerOp is the server's context switches per operation.
	metricSwitchesPerOp = metric{unit: "switches/op", lowerBetter: true, of: func(r result) float64 {
		return float64(r.switches) / float64(max(r.ops, 1))
	}}
	// metricClientCPUPerOp is the bench client's CPU time per operation,
	// in ms: on loopback the receiver's copy of a pull is on this machine
	// too, and what a server's way of sending costs it shows here.
	metricClientCPUPerOp = metric{unit: "ms client cpu/op", lowerBetter: true, of: func(r result) float64 {
		return r.clientCPU.Seconds() * 1000 / float64(max(r.ops, 1))
	}}
)

// order is the interleaving of samples for two targets: A B B A, repeated,
// so a drift of the machine's speed during the row (other work starting,
// the disk's cache filling) costs both sides alike. rounds is samples per
// target; an odd count ends with A B. With one target it is A rounds times.
func order(targets, rounds int) []int {
	var out []int
	for i := 0; len(out) < targets*rounds; i++ {
		if targets == 1 {
			out = append(out, 0)
			continue
		}
		if i%2 == 0 {
			out = append(out, 0, 1)
		} else {
			out = append(out, 1, 0)
		}
	}
	return out
}

// stats are the median and the spread (min, max) of one side's samples.
type stats struct {
	n                int
	median, min, max float64
}

func statsOf(v []float64) stats {
	if len(v) == 0 {
		return stats{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{n: len(s), median: m, min: s[0], max: s[len(s)-1]}
}

// ratio is packreg's advantage: packreg/Distribution for rates and
// throughputs, Distribution/packreg for latencies and costs; above 1 means
// packreg is ahead. 0 when either side has no figure.
func (m metric) ratio(pk, dist stats) float64 {
	if pk.n == 0 || dist.n == 0 || pk.median == 0 || dist.median == 0 {
		return 0
	}
	if m.lowerBetter {
		return dist.median / pk.median
	}
	return pk.median / dist.median
}

// fmtStats prints "median unit [min–max]", with as many decimals as a
// figure of that size needs.
func (m metric) fmtStats(s stats) string {
	if s.n == 0 {
		return "-"
	}
	if s.n == 1 {
		return fmtNum(s.median) + " " + m.unit
	}
	return fmt.Sprintf("%s %s [%s–%s]", fmtNum(s.median), m.unit, fmtNum(s.min), fmtNum(s.max))
}

func fmtRatio(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", r)
}

func fmtNum(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// Columns of a side-by-side section.
const (
	colPackreg = "packreg"
	colDist    = distName // its version is in the report's header
	colRatio   = "ratio (>1: packreg ahead)"
	colExtra   = "packreg vs machine limit / server cpu"
)

var sideColumns = []string{colPackreg, colDist, colRatio, colExtra}

const sideIntro = "blob push and pull: one client, sequential; last column, from packreg's median sample (the lower middle one of an even count): " +
	"push as % of the same bytes written and fsynced into new files in the data dir right before each of the row's samples (median) and of the serial limit with sha256, " +
	"pull as % of the same transfers of a file of that size in the data dir sent by net/http's ServeFile (sendfile), sampled right before each of the row's samples (median), latency and server CPU of the other rows; " +
	"the monolithic and chunked push rows of a size run interleaved, each registry's samples alternating which kind goes first, with dirty pages drained before each push sample"

func sideSection(backend string) string {
	if backend == "disk" {
		return "Side by side, disk (Distribution: filesystem driver)"
	}
	return "Side by side, " + backend + " (Distribution: s3 driver on the same S3 server, redirects off)"
}

// sideRow is one row measured on every target.
type sideRow struct {
	label  string
	metric metric
	// run measures one sample on t; round counts that target's samples
	// from 0, so a row that pushes can give every sample its own content.
	run func(ctx context.Context, t *target, round int) (result, error)
	// warm, optional, runs untimed on each target before its first
	// sample: ops of the row's kind at its concurrency, so a sample does
	// not pay for what any long-running server has done long before (a
	// pool's new connections, PostgreSQL planning a statement afresh on
	// each for its first executions). A -quick sample is only 200 ops.
	warm func(ctx context.Context, t *target) error
	// extra, optional, adds what packreg's samples mean next to the
	// machine's limits (or its CPU), in the last column.
	extra func(pk []result) cell
	// section, columns and targets, when set, compare something else
	// than packreg with Distribution (two replicas with one): columns
	// name the two targets, and the ratio is targets[0] over targets[1].
	section string
	columns []string
	intro   string
	targets []*target
	// derived are more rows computed from the same samples (a row's CPU
	// cost per operation next to its rate), so they cost no extra run.
	derived []derivedRow
}

type derivedRow struct {
	label  string
	metric metric
}

// side runs row on every target, interleaved, and sets its cells: the
// median and spread of each side and the ratio. A failed sample fails the
// row for that side only: the other side's figures still print.
func (b *bench) side(ctx context.Context, row sideRow) error {
	return b.sideRows(ctx, []sideRow{row})
}

// slot is one sample of a schedule: row rows[row] on targets[target].
type slot struct{ row, target int }

// schedule interleaves several rows that share the targets (the monolithic
// and chunked pushes of one size): the targets take turns A-B-B-A as in
// order, and at each turn the target runs one sample of every row, the
// first row of the turn rotating with that target's sample count. A row
// run after another pays for what that one left behind (dirty pages, a
// full page cache); run one whole row after another, the second row
// always paid, and the first never. Here each row goes first as often as
// the others for each target (with rounds a multiple of the row count).
func schedule(rows, targets, rounds int) []slot {
	var out []slot
	seen := make([]int, targets)
	for _, t := range order(targets, rounds) {
		for i := range rows {
			out = append(out, slot{row: (seen[t] + i) % rows, target: t})
		}
		seen[t]++
	}
	return out
}

// sideRows runs rows on every target in one interleaved schedule, then
// sets each row's cells as side does. The rows must share their section.
func (b *bench) sideRows(ctx context.Context, rows []sideRow) error {
	row0 := rows[0]
	sec, cols, targets, intro := sideSection(b.backend), sideColumns, b.targets, sideIntro
	if row0.section != "" {
		sec, cols, targets, intro = row0.section, row0.columns, row0.targets, row0.intro
	}
	b.rep.setColumns(sec, cols, intro)
	samples := make([][][]result, len(rows))
	failed := make([][]error, len(rows))
	for i := range rows {
		samples[i], failed[i] = make([][]result, len(targets)), make([]error, len(targets))
	}
	for _, s := range schedule(len(rows), len(targets), b.opt.rounds) {
		row, ti, t := rows[s.row], s.target, targets[s.target]
		if failed[s.row][ti] != nil {
			continue
		}
		round := len(samples[s.row][ti])
		logf("%s: %s: %s (sample %d)", b.backend, t.name, row.label, round+1)
		r, err := b.on(t, func() (result, error) {
			if round == 0 && row.warm != nil {
				if err := row.warm(ctx, t); err != nil {
					return result{}, fmt.Errorf("warm-up: %w", err)
				}
			}
			return row.run(ctx, t, round)
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if aerr := t.srv.alive(); aerr != nil {
				return fmt.Errorf("%s: %w", t.name, aerr)
			}
			failed[s.row][ti] = err
			b.rep.note(fmt.Sprintf("%s: %s: %s: %s", b.backend, t.name, row.label, firstLine(err.Error())))
			b.errs = append(b.errs, fmt.Errorf("%s: %s: %w", t.name, row.label, err))
			continue
		}
		samples[s.row][ti] = append(samples[s.row][ti], r)
	}
	for i, row := range rows {
		b.sideCells(sec, cols, targets, row, samples[i], failed[i])
	}
	return nil
}

// sideCells sets the cells of one row from its samples on each target.
func (b *bench) sideCells(sec string, cols []string, targets []*target, row sideRow, samples [][]result, failed []error) {
	for _, d := range append([]derivedRow{{row.label, row.metric}}, row.derived...) {
		st := make([]stats, 2)
		for i, col := range cols[:2] {
			switch {
			case i >= len(targets):
				b.setIn(sec, d.label, col, "not run (see notes)")
			case failed[i] != nil:
				b.setIn(sec, d.label, col, failedCell)
			default:
				vals := make([]float64, len(samples[i]))
				for j, r := range samples[i] {
					vals[j] = d.metric.of(r)
				}
				st[i] = statsOf(vals)
				b.setIn(sec, d.label, col, d.metric.fmtStats(st[i]))
			}
		}
		b.setIn(sec, d.label, cols[2], fmtRatio(d.metric.ratio(st[0], st[1])))
	}
	if row.extra != nil && len(samples[0]) > 0 {
		b.setCellIn(sec, row.label, cols[3], row.extra(samples[0]))
	}
}

// peakRSS sets the row of each server's peak RSS over the side-by-side
// rows on this backend (VmHWM, across the bench's resets of it).
func (b *bench) peakRSS() {
	if len(b.rep.rows[sideSection(b.backend)]) == 0 {
		return // no side-by-side rows ran: a memory row alone says nothing
	}
	m := metric{unit: "MiB", lowerBetter: true}
	label := "peak RSS over the rows above (VmHWM)"
	sec := sideSection(b.backend)
	b.rep.setColumns(sec, sideColumns, sideIntro)
	st := make([]stats, 2)
	for i, t := range b.targets {
		kb, err := t.srv.peakKB()
		if err != nil {
			continue
		}
		st[i] = statsOf([]float64{float64(kb) / 1024})
		b.setIn(sec, label, []string{colPackreg, colDist}[i], m.fmtStats(st[i]))
	}
	b.setIn(sec, label, colRatio, fmtRatio(m.ratio(st[0], st[1])))
}

// warmUp is a sideRow.warm that runs op untimed at workers clients,
// eight times per client (64 at least): more than the five executions
// PostgreSQL plans afresh on each new connection before it caches a plan.
func (b *bench) warmUp(workers int, op func(ctx context.Context, t *target, i int) error) func(context.Context, *target) error {
	return func(ctx context.Context, t *target) error {
		_, err := b.load(ctx, max(64, 8*workers), workers, func(ctx context.Context, i int) error { return op(ctx, t, i) })
		return err
	}
}

// on points the bench's server and client at t for one sample (load reads
// the server's CPU and liveness through b.srv).
func (b *bench) on(t *target, fn func() (result, error)) (result, error) {
	srv, c := b.srv, b.c
	b.srv, b.c = t.srv, t.c
	defer func() { b.srv, b.c = srv, c }()
	return fn()
}

// medianBy returns the sample whose figure is the median by f (the lower
// middle one for an even count), so a cell derived from it (a ratio to a
// limit) describes a run that happened.
func medianBy(rs []result, f func(result) float64) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int {
		switch x, y := f(a), f(b); {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return s[(len(s)-1)/2]
}

// rateExtra is the extra column of rate rows, from packreg's median
// sample: its latency percentiles, the server's CPU per operation and how
// many cores it kept busy.
func rateExtra(pk []result) cell {
	r := medianBy(pk, result.rate)
	text := fmt.Sprintf("p50 %s p99 %s, cpu %.2f ms/op, %.2f cores", strings.TrimSpace(fmtDur(r.pct(50))), strings.TrimSpace(fmtDur(r.pct(99))),
		r.cpu.Seconds()*1000/float64(max(r.ops, 1)), r.cores())
	return func(*limits) string { return text }
}
