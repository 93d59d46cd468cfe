package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestOrderInterleavesABBA(t *testing.T) {
	for _, c := range []struct {
		targets, rounds int
		want            []int
	}{
		{2, 2, []int{0, 1, 1, 0}},
		{2, 4, []int{0, 1, 1, 0, 0, 1, 1, 0}},
		{2, 3, []int{0, 1, 1, 0, 0, 1}},
		{2, 1, []int{0, 1}},
		{1, 3, []int{0, 0, 0}},
	} {
		if got := order(c.targets, c.rounds); !slices.Equal(got, c.want) {
			t.Errorf("order(%d, %d) = %v, want %v", c.targets, c.rounds, got, c.want)
		}
	}
}

func TestStatsMedianAndSpread(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want stats
	}{
		{nil, stats{}},
		{[]float64{5}, stats{1, 5, 5, 5}},
		{[]float64{9, 1, 4}, stats{3, 4, 1, 9}},
		{[]float64{10, 2, 4, 8}, stats{4, 6, 2, 10}}, // even: mean of the middle two
	} {
		if got := statsOf(c.in); got != c.want {
			t.Errorf("statsOf(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
	in := []float64{3, 1, 2}
	statsOf(in)
	if !slices.Equal(in, []float64{3, 1, 2}) {
		t.Errorf("statsOf sorted its argument: %v", in)
	}
}

// A ratio above 1 must mean packreg is ahead, whichever way the metric
// points.
func TestRatioAboveOneMeansPackregAhead(t *testing.T) {
	fast, slow := stats{n: 2, median: 300}, stats{n: 2, median: 100}
	if got := metricMBps.ratio(fast, slow); got != 3 {
		t.Errorf("throughput ratio packreg 300 vs 100 = %v, want 3", got)
	}
	quick, sluggish := stats{n: 2, median: 1}, stats{n: 2, median: 7}
	if got := metricP50ms.ratio(quick, sluggish); got != 7 {
		t.Errorf("latency ratio packreg 1 ms vs 7 ms = %v, want 7", got)
	}
	if got := metricCPUPerOp.ratio(sluggish, quick); got != 1.0/7 {
		t.Errorf("cpu ratio packreg 7 ms vs 1 ms = %v, want 1/7", got)
	}
	if got := metricRate.ratio(fast, stats{}); got != 0 || fmtRatio(got) != "-" {
		t.Errorf("ratio with no Distribution samples = %v (%q), want 0 (-)", got, fmtRatio(got))
	}
}

func TestMetricsOfAResult(t *testing.T) {
	r := result{ops: 200, bytes: 400e6, elapsed: 2 * time.Second, cpu: 500 * time.Millisecond,
		lat: []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}}
	for name, c := range map[string]struct {
		m    metric
		want float64
	}{
		"MB/s":    {metricMBps, 200},
		"rate":    {metricRate, 100},
		"p50 ms":  {metricP50ms, 2},
		"cpu/op":  {metricCPUPerOp, 2.5},
		"(cores)": {metric{of: result.cores}, 0.25},
	} {
		if got := c.m.of(r); got != c.want {
			t.Errorf("%s = %v, want %v", name, got, c.want)
		}
	}
}

func TestFmtStats(t *testing.T) {
	for _, c := range []struct {
		s    stats
		want string
	}{
		{stats{}, "-"},
		{stats{1, 75.6, 75.6, 75.6}, "75.6 MB/s"},
		{stats{4, 1234.4, 999.9, 2000}, "1234 MB/s [1000–2000]"},
		{stats{2, 1.234, 0.5, 2}, "1.23 MB/s [0.50–2.00]"},
	} {
		if got := metricMBps.fmtStats(c.s); got != c.want {
			t.Errorf("fmtStats(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestMedianByPicksARealSample(t *testing.T) {
	rs := []result{{ops: 1, elapsed: time.Second}, {ops: 3, elapsed: time.Second}, {ops: 2, elapsed: time.Second}, {ops: 4, elapsed: time.Second}}
	if got := medianBy(rs, result.rate); got.ops != 2 {
		t.Errorf("medianBy of rates 1,3,2,4 picked the sample with rate %v, want the lower middle (2)", got.rate())
	}
	if rs[0].ops != 1 {
		t.Error("medianBy reordered its argument")
	}
}

// testReport is a report with one side-by-side section and a note, the way
// a run leaves it.
func testReport() *report {
	rep := newReport(options{rounds: 2, quick: true}, "/bin/packreg", "packreg v1")
	rep.command, rep.commit, rep.distribution = "go run ./bench -quick", "abc123", "/root/go/bin/registry (v3.1.2)"
	b := &bench{rep: rep, backend: "disk"}
	sec := sideSection("disk")
	rep.setColumns(sec, sideColumns, sideIntro)
	b.setIn(sec, "push 1 KiB | 1 client", colPackreg, "77.2 /s [64.4–89.9]")
	b.setIn(sec, "push 1 KiB | 1 client", colDist, "42.0 /s [32.1–51.8]")
	b.setIn(sec, "push 1 KiB | 1 client", colRatio, "1.84×")
	b.setIn(sec, "pull 16 MiB", colPackreg, "641 MB/s")
	b.set(secMemory, "VmHWM at end of run", "75.6 MiB")
	rep.backends = []string{"disk"}
	rep.note("disk: Distribution: a failure\n    server log: level=ERROR")
	rep.finish()
	return rep
}

func TestMarkdownReport(t *testing.T) {
	var buf bytes.Buffer
	testReport().doc().markdown(&buf, "A subset run.")
	md := buf.String()
	for _, want := range []string{
		"# packreg bench, -quick run, ",
		"\nA subset run.\n",
		"- **command**: go run ./bench -quick\n",
		"- **commit**: abc123\n",
		"- **Distribution**: /root/go/bin/registry (v3.1.2)\n",
		"- **machine**: ",
		"- **load**: load average at start ",
		"## Side by side, disk (Distribution: filesystem driver)\n",
		"| | packreg | Distribution | ratio (&gt;1: packreg ahead) | packreg vs machine limit / server cpu |\n|---|---|---|---|---|\n",
		"| push 1 KiB \\| 1 client | 77.2 /s [64.4–89.9] | 42.0 /s [32.1–51.8] | 1.84× | - |\n",
		"| pull 16 MiB | 641 MB/s | - | - | - |\n",
		"## Server memory",
		"| VmHWM at end of run | 75.6 MiB |\n",
		"## Notes\n\n- disk: Distribution: a failure server log: level=ERROR\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q; got:\n%s", want, md)
		}
	}
	// Every table line has as many cells as its header: an unescaped pipe
	// or a missing cell would shift the columns.
	var want int
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			want = 0
			continue
		}
		n := strings.Count(line, "|") - strings.Count(line, `\|`)
		if want == 0 {
			want = n
		} else if n != want {
			t.Errorf("table line has %d pipes, its header %d: %q", n, want, line)
		}
	}
}

func TestTextReportKeepsSideColumnsInOrder(t *testing.T) {
	var buf bytes.Buffer
	testReport().print(&buf)
	out := buf.String()
	side := strings.Index(out, "Side by side, disk")
	mem := strings.Index(out, "Server memory")
	if side < 0 || mem < 0 || side > mem {
		t.Fatalf("the side-by-side section should print before the fixed sections:\n%s", out)
	}
	var head, row string
	for _, l := range strings.Split(out[side:mem], "\n") {
		switch {
		case strings.Contains(l, colRatio) && head == "":
			head = l
		case strings.Contains(l, "push 1 KiB | 1 client"):
			row = l
		}
	}
	// Aligned columns: each figure starts where its column's title does
	// (in runes: tabwriter counts a "–" as one).
	at := func(s, sub string) int {
		if i := strings.Index(s, sub); i >= 0 {
			return utf8.RuneCountInString(s[:i])
		}
		return -1
	}
	for _, c := range []struct{ col, cell string }{{colPackreg, "77.2"}, {colDist, "42.0"}, {colRatio, "1.84×"}} {
		h, r := at(head, c.col), at(row, c.cell)
		if h < 0 || h != r {
			t.Errorf("%q at byte %d, its column %q at %d:\n%s\n%s", c.cell, r, c.col, h, head, row)
		}
	}
}

// TestScheduleAlternatesWhichRowGoesFirst: two rows measured together
// (monolithic and chunked pushes) keep A-B-B-A between the targets, every
// turn runs one sample of each row, and for each target each row goes
// first in half of its turns, so neither row always pays for the other's
// writeback.
func TestScheduleAlternatesWhichRowGoesFirst(t *testing.T) {
	got := schedule(2, 2, 2)
	want := []slot{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {1, 1}, {0, 1}, {1, 0}, {0, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("schedule(2, 2, 2) = %v, want %v", got, want)
	}
	for _, c := range []struct{ rows, targets, rounds int }{{2, 2, 4}, {2, 1, 4}, {3, 2, 6}} {
		s := schedule(c.rows, c.targets, c.rounds)
		first := map[slot]int{} // {row, target} -> turns it opened
		count := map[slot]int{}
		for i, x := range s {
			count[x]++
			if i%c.rows == 0 {
				first[x]++
			}
		}
		for r := range c.rows {
			for tg := range c.targets {
				k := slot{r, tg}
				if count[k] != c.rounds {
					t.Errorf("schedule%v: row %d on target %d ran %d times, want %d", c, r, tg, count[k], c.rounds)
				}
				if first[k] != c.rounds/c.rows {
					t.Errorf("schedule%v: row %d went first on target %d %d times, want %d", c, r, tg, first[k], c.rounds/c.rows)
				}
			}
		}
	}
	// One row is side's case: exactly order's A-B-B-A.
	var targets []int
	for _, x := range schedule(1, 2, 3) {
		targets = append(targets, x.target)
	}
	if !slices.Equal(targets, order(2, 3)) {
		t.Errorf("one row: targets %v, want order's %v", targets, order(2, 3))
	}
}

// TestSideRowsRunsInScheduleAndKeepsRowsApart: the rows' samples reach
// their own cells, each with its own round count, in the schedule's order.
func TestSideRowsRunsInScheduleAndKeepsRowsApart(t *testing.T) {
	rep := newReport(options{rounds: 2, quick: true}, "/bin/packreg", "packreg v1")
	pk, dist := &target{name: "packreg"}, &target{name: distName}
	b := &bench{rep: rep, backend: "disk", opt: options{rounds: 2}, targets: []*target{pk, dist}}
	var ran []string
	mk := func(label string, mbps float64) sideRow {
		return sideRow{label: label, metric: metricMBps, run: func(_ context.Context, tg *target, round int) (result, error) {
			ran = append(ran, fmt.Sprintf("%s/%s/%d", label, tg.name, round))
			v := mbps
			if tg == dist {
				v /= 2
			}
			return result{ops: 1, bytes: int64(v * 1e6), elapsed: time.Second}, nil
		}}
	}
	if err := b.sideRows(t.Context(), []sideRow{mk("mono", 400), mk("chunked", 300)}); err != nil {
		t.Fatal(err)
	}
	want := []string{"mono/packreg/0", "chunked/packreg/0", "mono/" + distName + "/0", "chunked/" + distName + "/0",
		"chunked/" + distName + "/1", "mono/" + distName + "/1", "chunked/packreg/1", "mono/packreg/1"}
	if !slices.Equal(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	sec := sideSection("disk")
	for label, cellWant := range map[string]string{"mono": "400 MB/s [400–400]", "chunked": "300 MB/s [300–300]"} {
		if got := rep.cells[sec+"\x00"+label][colPackreg](nil); got != cellWant {
			t.Errorf("%s packreg cell %q, want %q", label, got, cellWant)
		}
		if got := rep.cells[sec+"\x00"+label][colRatio](nil); got != "2.00×" {
			t.Errorf("%s ratio %q, want 2.00×", label, got)
		}
	}
}

// TestSideRowsWarmEachTargetOnceBeforeItsFirstSample: a row's warm-up runs
// on each target right before that target's first sample, never again,
// and a failed warm-up fails the row for that target only.
func TestSideRowsWarmEachTargetOnceBeforeItsFirstSample(t *testing.T) {
	rep := newReport(options{rounds: 2, quick: true}, "/bin/packreg", "packreg v1")
	// A live server: a failed sample asks whether its server died.
	live := &server{done: make(chan struct{})}
	pk, dist := &target{name: "packreg", srv: live}, &target{name: distName, srv: live}
	b := &bench{rep: rep, backend: "disk", opt: options{rounds: 2}, targets: []*target{pk, dist}}
	var ran []string
	row := sideRow{label: "put", metric: metricRate,
		warm: func(_ context.Context, tg *target) error {
			ran = append(ran, "warm/"+tg.name)
			if tg == dist {
				return errors.New("refused")
			}
			return nil
		},
		run: func(_ context.Context, tg *target, round int) (result, error) {
			ran = append(ran, fmt.Sprintf("%s/%d", tg.name, round))
			return result{ops: 10, elapsed: time.Second}, nil
		}}
	if err := b.side(t.Context(), row); err != nil {
		t.Fatal(err)
	}
	want := []string{"warm/packreg", "packreg/0", "warm/" + distName, "packreg/1"}
	if !slices.Equal(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	sec := sideSection("disk")
	if got := rep.cells[sec+"\x00put"][colDist](nil); got != failedCell {
		t.Errorf("Distribution cell %q after a failed warm-up, want %q", got, failedCell)
	}
	if got := rep.cells[sec+"\x00put"][colPackreg](nil); !strings.HasPrefix(got, "10.0 /s") {
		t.Errorf("packreg cell %q, want its two samples' 10 /s", got)
	}
}
