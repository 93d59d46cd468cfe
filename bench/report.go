package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Sections of the table, in print order.
const (
	secTags   = "Tags"
	secMemory = "Server memory (/proc/PID/status; VmHWM reset before each suite and each large push)"
)

var sectionOrder = []string{secTags, secPacks, secMirror, secBundles, secAuth, secGC, secMemory}

// report collects cells as the suites produce them and prints one table at
// the end: rows in first-measured order, one column per backend, or the
// columns a section sets (the side-by-side sections).
type report struct {
	mu      sync.Mutex
	opt     options
	binary  string
	version string
	commit  string
	command string
	// distribution is the Distribution binary and the version it reports.
	distribution string
	start        time.Time
	load0        string
	load1        string
	limits       limits
	backends     []string
	rows         map[string][]string        // section -> row labels in order
	cells        map[string]map[string]cell // section+"\x00"+label -> column -> cell
	columns      map[string][]string        // section -> its own columns
	intros       map[string]string          // section -> the line under its title
	dynamic      []string                   // sections with their own columns, in first-set order
	notes        []string
	skipped      []string // notes of parts left out (skip)
}

func newReport(o options, binary, version string) *report {
	return &report{
		opt: o, binary: binary, version: version, start: time.Now(), load0: loadAvg(),
		rows: map[string][]string{}, cells: map[string]map[string]cell{}, columns: map[string][]string{}, intros: map[string]string{},
		limits: limits{shaBytes: o.shaBytes, writeBytes: o.writeBytes},
	}
}

func (r *report) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, s)
}

func (r *report) noteOnce(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.notes, s) {
		r.notes = append(r.notes, s)
	}
}

func (r *report) finish() { r.load1 = loadAvg() }

// setColumns gives section its own columns instead of one per backend,
// and a line under its title; its table prints before the fixed sections,
// in the order they were set.
func (r *report) setColumns(section string, cols []string, intro string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.columns[section]; !ok {
		r.dynamic = append(r.dynamic, section)
	}
	r.columns[section], r.intros[section] = cols, intro
}

// cell renders one figure at print time, when the limits are final: a
// push measured early in the run is compared with the best limit of the
// whole run.
type cell func(*limits) string

func (b *bench) set(section, label, text string) {
	b.setCell(section, label, func(*limits) string { return text })
}

func (b *bench) setCell(section, label string, c cell) { b.setCellIn(section, label, b.backend, c) }

func (b *bench) setIn(section, label, column, text string) {
	b.setCellIn(section, label, column, func(*limits) string { return text })
}

// setCellIn sets the cell of row label in column of section.
func (b *bench) setCellIn(section, label, column string, c cell) {
	r := b.rep
	r.mu.Lock()
	defer r.mu.Unlock()
	key := section + "\x00" + label
	if r.cells[key] == nil {
		r.cells[key] = map[string]cell{}
		r.rows[section] = append(r.rows[section], label)
	}
	r.cells[key][column] = c
}

// table is one block of the report, rendered as text or markdown.
type table struct {
	title string
	intro string // a line under the title
	head  []string
	rows  [][]string // first cell: the row label
}

// doc is the whole report, before it is rendered.
type doc struct {
	title   string
	header  [][2]string // key, value lines
	tables  []table
	notes   []string
	summary string // a line after the limits table
}

func (r *report) doc() doc {
	mode := "full run"
	switch {
	case r.opt.smoke:
		mode = "-smoke run (figures meaningless)"
	case r.opt.quick:
		mode = "-quick run"
	}
	d := doc{title: fmt.Sprintf("packreg bench, %s, %s, %s", mode, r.start.UTC().Format("2006-01-02 15:04 UTC"), time.Since(r.start).Round(time.Second))}
	d.header = [][2]string{
		{"command", r.command},
		{"binary", fmt.Sprintf("%s (%s)", r.binary, r.version)},
		{"commit", r.commit},
		{"Distribution", r.distribution},
		{"machine", fmt.Sprintf("%s/%s, %d CPUs, %s, %s RAM, kernel %s, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), memTotal(), kernel(), runtime.Version())},
		{"load", fmt.Sprintf("load average at start %s, at end %s (other work on the machine)", r.load0, r.load1)},
		{"data dir", fmt.Sprintf("%s (%s)", r.limits.dir, fsType(r.limits.dir))},
		{"units", "MB = 10^6 bytes, MiB = 2^20 bytes; p50/p99 per request; cpu = server CPU cores busy on average"},
	}
	if len(r.dynamic) > 0 {
		d.header = append(d.header, [2]string{"side by side", fmt.Sprintf("each row runs against both registries interleaved A-B-B-A (%s each); "+
			"cells are median [min–max]; the ratio is packreg/Distribution for rates, Distribution/packreg for latencies and CPU costs, "+
			"so above 1 means packreg is ahead", plural(r.opt.rounds, "sample"))})
	}
	l := &r.limits
	if len(l.shaRuns) > 0 {
		t := table{title: "Physical limits (this machine, this run)", head: l.runNames}
		row := func(label string, f func(i int) float64) {
			cells := []string{label}
			for i := range l.runNames {
				cells = append(cells, fmtMBps(f(i)))
			}
			t.rows = append(t.rows, cells)
		}
		row(fmt.Sprintf("sha256, one core, %s in memory", fmtSize(l.shaBytes)), func(i int) float64 { return l.shaRuns[i] })
		row(fmt.Sprintf("disk write, %s in 1 MiB blocks + fsync, in the data dir, into fresh pages as a push", fmtSize(l.writeBytes)), func(i int) float64 { return l.writeRuns[i] })
		row("  (reference, not a limit) the same again at once, reusing the pages the first file freed", func(i int) float64 { return l.writeReuse[i] })
		row("push limit, serial: 1/(1/write + 1/sha256)", l.serial)
		row("push limit, overlapped on two cores: min(write, sha256)", l.overlapped)
		row("pull limit: that file over loopback HTTP (net/http, sendfile), best of 3", func(i int) float64 { return l.loopback })
		if slices.ContainsFunc(l.reportedKiB, func(n int64) bool { return n >= 0 }) {
			cells := []string{"free memory the kernel gave back to the host during the first write (page reporting)"}
			for _, n := range l.reportedKiB {
				cells = append(cells, fmt.Sprintf("%d MiB", n>>10))
			}
			t.rows = append(t.rows, cells)
		}
		if len(l.runNames) > 1 {
			t.intro = "these runs are for reference: each blob push row is compared with the same bytes written and fsynced right before each of its samples, each pull row with the same transfers through ServeFile sampled beside it (the pull limit here is measured once, at the start)"
		}
		d.tables = append(d.tables, t)
	}
	for _, sec := range append(slices.Clone(r.dynamic), sectionOrder...) {
		labels := r.rows[sec]
		if len(labels) == 0 {
			continue
		}
		cols := r.columns[sec]
		if cols == nil {
			cols = r.backends
		}
		t := table{title: sec, head: cols, intro: r.intros[sec]}
		for _, label := range labels {
			cells := []string{label}
			for _, col := range cols {
				text := "-"
				if c := r.cells[sec+"\x00"+label][col]; c != nil {
					text = c(l)
				}
				cells = append(cells, text)
			}
			t.rows = append(t.rows, cells)
		}
		d.tables = append(d.tables, t)
	}
	d.notes = slices.Clone(r.notes)
	return d
}

// print writes the report as aligned text (the terminal).
func (r *report) print(w io.Writer) { r.doc().text(w) }

func (d doc) text(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", d.title)
	for _, kv := range d.header {
		if kv[1] != "" {
			fmt.Fprintf(w, "%-9s %s\n", kv[0]+":", kv[1])
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, t := range d.tables {
		// No tab after the title and intro: a line's last cell does not
		// widen the column, and these are longer than any label.
		fmt.Fprintf(tw, "\n%s\n", t.title)
		if t.intro != "" {
			fmt.Fprintf(tw, "  (%s)\n", t.intro)
		}
		fmt.Fprintln(tw, "  \t"+strings.Join(t.head, "\t"))
		for _, row := range t.rows {
			fmt.Fprintln(tw, "  "+strings.Join(row, "\t"))
		}
	}
	tw.Flush()
	if len(d.notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range d.notes {
			fmt.Fprintln(w, "  - "+n)
		}
	}
}

// markdown writes the report as a markdown document (BENCH.md): preface
// (what the file is, or why the run was a subset) under the title.
func (d doc) markdown(w io.Writer, preface string) {
	fmt.Fprintf(w, "# %s\n\n", d.title)
	if preface != "" {
		fmt.Fprintf(w, "%s\n\n", preface)
	}
	for _, kv := range d.header {
		if kv[1] != "" {
			fmt.Fprintf(w, "- **%s**: %s\n", kv[0], mdEscape(kv[1]))
		}
	}
	for _, t := range d.tables {
		fmt.Fprintf(w, "\n## %s\n\n", mdEscape(t.title))
		if t.intro != "" {
			fmt.Fprintf(w, "%s\n\n", mdEscape(t.intro))
		}
		fmt.Fprintf(w, "| |%s|\n", mdRow(t.head))
		fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---|", len(t.head)))
		for _, row := range t.rows {
			fmt.Fprintf(w, "|%s|\n", mdRow(row))
		}
	}
	if len(d.notes) > 0 {
		fmt.Fprintf(w, "\n## Notes\n\n")
		for _, n := range d.notes {
			// A note may carry a server log line on its own indented line.
			fmt.Fprintf(w, "- %s\n", mdEscape(strings.Join(strings.Fields(n), " ")))
		}
	}
}

func mdRow(cells []string) string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = " " + mdEscape(strings.Join(strings.Fields(c), " ")) + " "
	}
	return strings.Join(out, "|")
}

// mdEscape keeps a cell's pipes and angle brackets from being read as
// markdown table or HTML syntax.
func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;").Replace(s)
}

// pushCell compares a push row's median sample with the write limit
// sampled beside the row's samples (its median), and with the serial push
// limit made of it and the best sha256 run (hashing is CPU alone: a slower
// run only met other work on the core); a row without samples beside
// it (none taken) falls back to the limit runs bracketing it in time.
func (b *bench) pushCell(label string, r result) cell {
	rep, run := b.rep, b.rep.limits.latest()
	return func(l *limits) string {
		if w := l.writeLimit(label); w > 0 {
			ser := 1 / (1/w + 1/slices.Max(l.shaRuns))
			if r.mbps() > w {
				rep.noteOnce("A push above 100% of the write beside it: the registry's median push was faster than the median of the same bytes " +
					"written and fsynced by the bench right before each sample; both move with the machine's load.")
			}
			return fmt.Sprintf("%s %4.0f%% of write beside it %4.0f%% ser  cpu %.2f", fmtMBps(r.mbps()), 100*r.mbps()/w, 100*r.mbps()/ser, r.cores())
		}
		ser, ovl := l.bracket(run, l.serial), l.bracket(run, l.overlapped)
		if r.mbps() > ser {
			rep.noteOnce("A push ratio above 100% means the disk was faster during that push than in both limit runs around it: " +
				"on a shared machine fsync'd write speed swings several-fold within a minute (compare the runs above), " +
				"and a blob much smaller than " + fmtSize(l.writeBytes) + " also costs less per byte to flush from the page cache.")
		}
		return fmt.Sprintf("%s %4.0f%% ser %4.0f%% ovl  cpu %.2f",
			fmtMBps(r.mbps()), 100*r.mbps()/ser, 100*r.mbps()/ovl, r.cores())
	}
}

func (b *bench) pullCell(label string, r result) cell {
	rep := b.rep
	return func(l *limits) string {
		limit, what := l.pullLimit(label)
		if r.mbps() > limit {
			rep.noteOnce("A pull ratio above 100%: the registry's median pull was faster than the median of the same transfers " +
				"sent by net/http's ServeFile (sendfile) from the bench right before each sample; both move with the machine's load.")
		}
		return fmt.Sprintf("%s %4.0f%% %s  cpu %.2f", fmtMBps(r.mbps()), 100*r.mbps()/limit, what, r.cores())
	}
}

func rateCell(r result) string {
	return fmt.Sprintf("%7.0f/s  p50 %s  p99 %s  cpu %.2f", r.rate(), fmtDur(r.pct(50)), fmtDur(r.pct(99)), r.cores())
}

func fmtMBps(v float64) string { return fmt.Sprintf("%7.1f MB/s", v) }

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%6.2f ms", float64(d)/float64(time.Millisecond))
}

func fmtKB(kb int64) string { return fmt.Sprintf("%6.1f MiB", float64(kb)/1024) }

func fmtSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// fmtCount writes 100000 as 100,000.
func fmtCount(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// plural writes n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmtCount(n) + " " + noun + "s"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// memTotal is the machine's RAM from /proc/meminfo.
func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return "?"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// fsType names the filesystem holding dir (longest mount point prefix in
// /proc/mounts): fsync costs differ wildly between ext4, xfs, overlay, tmpfs.
func fsType(dir string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "filesystem unknown"
	}
	best, typ := "", "filesystem unknown"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, typ = mp, f[2]+" on "+f[0]
		}
	}
	return typ
}
