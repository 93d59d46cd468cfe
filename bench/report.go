package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Sections of the table, in print order.
const (
	secBlobs     = "Blob push and pull (one client, sequential)"
	secSmall     = "Small blobs"
	secManifests = "Manifests (small OCI image manifests, one config + one layer, a new tag each)"
	secTags      = "Tags"
	secMemory    = "Server memory (/proc/PID/status; VmHWM reset before each large push)"
)

var sectionOrder = []string{secBlobs, secSmall, secManifests, secTags, secBundles, secAuth, secGC, secMemory}

// report collects cells as the suites produce them and prints one table at
// the end: rows in first-measured order, one column per backend.
type report struct {
	mu       sync.Mutex
	opt      options
	binary   string
	version  string
	start    time.Time
	load0    string
	load1    string
	limits   limits
	backends []string
	rows     map[string][]string        // section -> row labels in order
	cells    map[string]map[string]cell // section+"\x00"+label -> backend -> cell
	notes    []string
}

func newReport(o options, binary, version string) *report {
	return &report{
		opt: o, binary: binary, version: version, start: time.Now(), load0: loadAvg(),
		rows: map[string][]string{}, cells: map[string]map[string]cell{},
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

// cell renders one figure at print time, when the limits are final: a
// push measured early in the run is compared with the best limit of the
// whole run.
type cell func(*limits) string

func (b *bench) set(section, label, text string) {
	b.setCell(section, label, func(*limits) string { return text })
}

func (b *bench) setCell(section, label string, c cell) {
	r := b.rep
	r.mu.Lock()
	defer r.mu.Unlock()
	key := section + "\x00" + label
	if r.cells[key] == nil {
		r.cells[key] = map[string]cell{}
		r.rows[section] = append(r.rows[section], label)
	}
	r.cells[key][b.backend] = c
}

func (r *report) print(w io.Writer) {
	mode := "full run"
	if r.opt.quick {
		mode = "-quick run"
	}
	fmt.Fprintf(w, "\npackreg bench, %s, %s, %s\n", mode, r.start.UTC().Format("2006-01-02 15:04 UTC"), time.Since(r.start).Round(time.Second))
	fmt.Fprintf(w, "binary:   %s (%s)\n", r.binary, r.version)
	fmt.Fprintf(w, "machine:  %s/%s, %d CPUs, %s; load average at start %s, at end %s\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), r.load0, r.load1)
	fmt.Fprintf(w, "data dir: %s (%s)\n", r.limits.dir, fsType(r.limits.dir))
	fmt.Fprintln(w, "units:    MB = 10^6 bytes, MiB = 2^20 bytes; p50/p99 per request; cpu = server CPU cores busy on average")

	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	l := &r.limits
	if len(l.shaRuns) > 0 {
		fmt.Fprint(tw, "\nPhysical limits (this machine, this run)")
		for _, name := range l.runNames {
			fmt.Fprint(tw, "\t"+name)
		}
		fmt.Fprintln(tw)
		row := func(label string, f func(i int) float64) {
			fmt.Fprint(tw, "  "+label)
			for i := range l.runNames {
				fmt.Fprint(tw, "\t"+fmtMBps(f(i)))
			}
			fmt.Fprintln(tw)
		}
		row(fmt.Sprintf("sha256, one core, %s in memory", fmtSize(shaBytes)), func(i int) float64 { return l.shaRuns[i] })
		row(fmt.Sprintf("disk write, %s in 1 MiB blocks + fsync, in the data dir, best of 2", fmtSize(writeBytes)), func(i int) float64 { return l.writeRuns[i] })
		row("push limit, serial: 1/(1/write + 1/sha256)", l.serial)
		row("push limit, overlapped on two cores: min(write, sha256)", l.overlapped)
		fmt.Fprintf(tw, "  pull limit: that file over loopback HTTP (net/http, sendfile), best of 3\t%s\n", fmtMBps(l.loopback))
		if len(l.runNames) > 1 {
			fmt.Fprintln(tw, "  (each push is compared with the better of the two runs around it in time)")
		}
	}
	head := "  "
	for _, be := range r.backends {
		head += "\t" + be
	}
	for _, sec := range sectionOrder {
		labels := r.rows[sec]
		if len(labels) == 0 {
			continue
		}
		fmt.Fprintf(tw, "\n%s\t\n", sec)
		if sec == secBlobs {
			fmt.Fprintln(tw, "  (push: MB/s, % of the serial and of the overlapped push limit, server cpu; pull: MB/s, % of the pull limit)\t")
		}
		fmt.Fprintln(tw, head)
		for _, label := range labels {
			line := "  " + label
			for _, be := range r.backends {
				text := "-"
				if c := r.cells[sec+"\x00"+label][be]; c != nil {
					text = c(l)
				}
				line += "\t" + text
			}
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
	if len(r.notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range r.notes {
			fmt.Fprintln(w, "  - "+n)
		}
	}
}

func (b *bench) pushCell(r result) cell {
	rep, run := b.rep, b.rep.limits.latest()
	return func(l *limits) string {
		ser, ovl := l.bracket(run, l.serial), l.bracket(run, l.overlapped)
		if r.mbps() > ser {
			rep.noteOnce("A push ratio above 100% means the disk was faster during that push than in both limit runs around it: " +
				"on a shared machine fsync'd write speed swings several-fold within a minute (compare the runs above), " +
				"and a blob much smaller than " + fmtSize(writeBytes) + " also costs less per byte to flush from the page cache.")
		}
		return fmt.Sprintf("%s %4.0f%% ser %4.0f%% ovl  cpu %.2f",
			fmtMBps(r.mbps()), 100*r.mbps()/ser, 100*r.mbps()/ovl, r.cores())
	}
}

func (b *bench) pullCell(r result) cell {
	rep := b.rep
	return func(l *limits) string {
		if r.mbps() > l.loopback {
			rep.noteOnce("A pull ratio above 100%: the pull limit is one " + fmtSize(writeBytes) +
				" transfer measured at the start; smaller transfers and a quieter moment can beat it.")
		}
		return fmt.Sprintf("%s %4.0f%% of pull limit  cpu %.2f", fmtMBps(r.mbps()), 100*r.mbps()/l.loopback, r.cores())
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
