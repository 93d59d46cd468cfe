package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// allSuites are the suites -suites chooses from, in run order.
var allSuites = []string{"blobs", "small", "manifests", "tags", "packs", "mirror", "replicas", "bundles", "auth", "gc"}

// options are the flags plus the sizes and counts they imply.
type options struct {
	binary string
	quick  bool
	// smoke: every suite at tiny sizes, to find a broken bench or server
	// in CI; its figures mean nothing, and a skipped part fails the run.
	smoke   bool
	backend string // disk, s3 or all
	dir     string // parent of the run's temp dir
	keep    bool
	suites  map[string]bool // the steps to run

	distribution string // Distribution's `registry` binary; "" when not found or -distribution off
	distOff      bool   // -distribution off: the note must not blame a missing install
	rounds       int    // samples per registry in each side-by-side row
	markdown     string // file the report is also written to as markdown
	mdNote       string // a line under BENCH.md's title (why a subset, the machine's state)

	sizes    []int64 // blob sizes for push and pull
	chunk    int64   // PATCH size for chunked pushes
	ops      int     // manifest PUT/GET and 1 KiB blob pushes per row
	tags     int     // tags in the repository whose listing is timed
	bigTags  int     // tags in the repository for the "PUT cost at scale" row; 0 skips it
	tagPuts  int     // timed manifest PUTs at each repository size
	listReqs int     // timed tags/list requests
	listTags int     // tags in the repository of the side-by-side listing row

	gcBlobs int // unreferenced blobs the gc suite collects
	gcGets  int // manifest GETs timed without a collection running

	// shaBytes and writeBytes are how much each limits run hashes and writes.
	shaBytes, writeBytes int64

	bundleSize int64 // bytes of packs in the offline bundle exported and imported

	packVersions   int // versions in the registry whose first packs page is timed
	mirrorVersions int // signed versions copied by the mirror rows
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.binary, "binary", "", "packreg `binary` to measure (default: go build ./cmd/packreg into a temp dir)")
	fs.BoolVar(&o.quick, "quick", false, "short run: 1 MiB/16 MiB blobs, 200 ops, 1,000 tags, no 100,000-tag repository")
	fs.BoolVar(&o.smoke, "smoke", false, "CI check, figures meaningless: tiny sizes and counts (1 MiB blobs, 20 ops, 2 rounds); exits 1 when a row FAILED or a backend, Distribution or a client tool was skipped")
	fs.StringVar(&o.backend, "backend", "all", "`backend`s to measure: disk, s3 (S3 + PostgreSQL from PACKREG_TEST_S3 and PACKREG_TEST_POSTGRES) or all")
	fs.StringVar(&o.dir, "dir", "", "parent `dir` of the run's data (default $TMPDIR); the disk write limit is measured there")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's data dir and server logs")
	sizes := fs.String("sizes", "", "blob `sizes` in MiB for push and pull, comma-separated (default 1,64,512; -quick 1,16)")
	packVersions := fs.Int("pack-versions", 0, "pack versions in the registry whose first /api/v1/packs page is timed (default 10,000; -quick 1,000)")
	mirrorVersions := fs.Int("mirror-versions", 0, "signed pack versions the mirror rows copy (default 1,000; -quick 100)")
	bigTags := fs.Int("big-tags", 100_000, "tags in the large repository for the manifest PUT cost row (0 skips; -quick skips unless given)")
	dist := fs.String("distribution", "", "CNCF Distribution `registry` binary to compare with (default: registry on PATH, else $GOPATH/bin, ~/go/bin, /root/go/bin); off: packreg only")
	rounds := fs.Int("rounds", 0, "samples per registry in each side-by-side row, interleaved A-B-B-A (default 4, -quick 2)")
	fs.StringVar(&o.markdown, "markdown", "", "also write the report as markdown to `file` (BENCH.md)")
	fs.StringVar(&o.mdNote, "markdown-note", "", "a `line` under the markdown report's title (e.g. why the run was a subset)")
	suites := fs.String("suites", strings.Join(allSuites, ","), "comma-separated `suites` to run, of "+strings.Join(allSuites, ","))
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.suites = map[string]bool{}
	for s := range strings.SplitSeq(*suites, ",") {
		if !slices.Contains(allSuites, s) {
			return o, fmt.Errorf("-suites: %q is not one of %s", s, strings.Join(allSuites, ","))
		}
		o.suites[s] = true
	}
	switch o.backend {
	case "disk", "s3", "all":
	default:
		return o, fmt.Errorf("-backend %q: want disk, s3 or all", o.backend)
	}
	if o.distOff = *dist == "off"; !o.distOff {
		o.distribution = findDistribution(*dist)
	}
	o.rounds = *rounds
	if o.rounds == 0 {
		o.rounds = 4
		if o.quick || o.smoke {
			// Two, so a smoke run goes through a second sample's code too.
			o.rounds = 2
		}
	}
	// Blob seeds leave room for 32 samples per row (blobSeed).
	if o.rounds < 1 || o.rounds > 32 {
		return o, fmt.Errorf("-rounds %d: want 1 to 32", o.rounds)
	}
	o.chunk = 8 << 20
	o.listTags, o.gcGets, o.shaBytes, o.writeBytes = 1_000, 2_000, 256<<20, 512<<20
	switch {
	case o.smoke:
		// The least that still runs every request each row makes: the
		// packs row checks a full first page of 100, the bundle has 8
		// packs, the tags suite grows its repository a second time.
		o.sizes = []int64{1 << 20}
		o.ops, o.tags, o.bigTags, o.tagPuts, o.listReqs, o.listTags = 20, 100, 200, 20, 10, 100
		o.bundleSize, o.packVersions, o.mirrorVersions = 8<<20, 200, 16
		o.gcBlobs, o.gcGets, o.shaBytes, o.writeBytes = 100, 100, 16<<20, 32<<20
	case o.quick:
		o.sizes = []int64{1 << 20, 16 << 20}
		o.ops, o.tags, o.bigTags, o.tagPuts, o.listReqs = 200, 1_000, 0, 200, 100
		o.bundleSize, o.packVersions, o.mirrorVersions, o.gcBlobs = 64<<20, 1_000, 100, 2_000
	default:
		o.sizes = []int64{1 << 20, 64 << 20, 512 << 20}
		o.ops, o.tags, o.bigTags, o.tagPuts, o.listReqs = 2_000, 10_000, *bigTags, 500, 200
		o.bundleSize, o.packVersions, o.mirrorVersions, o.gcBlobs = 1<<30, 10_000, 1_000, 100_000
	}
	if o.quick || o.smoke {
		// Given, the flat-cost row runs in a -quick run too: it is the
		// issue's "at scale" figure, and a few minutes of fills.
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "big-tags" {
				o.bigTags = *bigTags
			}
		})
	}
	for _, f := range []struct {
		name string
		v    int
		dst  *int
	}{{"-pack-versions", *packVersions, &o.packVersions}, {"-mirror-versions", *mirrorVersions, &o.mirrorVersions}} {
		switch {
		case f.v < 0 || f.v > 1_000_000:
			return o, fmt.Errorf("%s %d: want 1 to 1,000,000", f.name, f.v)
		case f.v > 0:
			*f.dst = f.v
		}
	}
	if *sizes != "" {
		o.sizes = nil
		for f := range strings.SplitSeq(*sizes, ",") {
			mib, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || mib < 1 || mib > 16<<10 {
				return o, fmt.Errorf("-sizes: %q is not a size in MiB from 1 to 16384", f)
			}
			o.sizes = append(o.sizes, int64(mib)<<20)
		}
		slices.Sort(o.sizes) // the last one is the largest, measured with the limits around it
	}
	if o.bigTags != 0 && o.bigTags <= o.tags {
		return o, fmt.Errorf("-big-tags %d: want 0 or more than %d", o.bigTags, o.tags)
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// logf reports progress on stderr, so stdout carries only the table.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options) (err error) {
	work, err := os.MkdirTemp(o.dir, "packreg-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("data and server logs kept in %s", work)
	} else {
		defer os.RemoveAll(work)
	}

	bin := o.binary
	if bin == "" {
		logf("building ./cmd/packreg")
		if bin, err = buildBinary(ctx, work); err != nil {
			return err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	for _, b := range []string{bin, o.distribution} {
		if b == "" {
			continue
		}
		if err := evictBinary(b); err != nil {
			return fmt.Errorf("evict %s from the page cache: %w", b, err)
		}
	}
	rep := newReport(o, bin, binaryVersion(bin))
	rep.note("the servers' binaries were written out and dropped from the page cache before the run, so they start from pages read back from disk, as a deployed binary does (freshly written by go build, the kernel maps more of a binary per touch, and VmHWM read ~5 MiB higher)")
	rep.command, rep.commit = command(), gitCommit(ctx)
	if o.distribution != "" {
		rep.distribution = o.distribution + " (" + distVersion(ctx, o.distribution) + ")"
	} else if o.distOff {
		rep.note(noDistributionNote(o))
	} else {
		rep.skip(noDistributionNote(o))
	}

	// The disk backend's data dir exists before the server starts, so the
	// write limit is measured on the very filesystem the server writes to.
	diskData := filepath.Join(work, "disk")
	if err := os.MkdirAll(diskData, 0o750); err != nil {
		return err
	}
	logf("measuring physical limits (sha256 in memory, fsync'd writes in %s)", diskData)
	if err = rep.limits.measure(diskData, "at start", true); err != nil {
		return fmt.Errorf("limits: %w", err)
	}

	gcCfg, err := gcConfig(work)
	if err != nil {
		return err
	}
	var specs []backendSpec
	if o.backend != "s3" {
		specs = append(specs, backendSpec{name: "disk", args: []string{"--data", diskData, "--config", gcCfg},
			dist: distStorage{rootDir: filepath.Join(work, "distribution-disk")}})
	}
	if o.backend != "disk" {
		s, note, err := s3Backend(ctx)
		switch {
		case err != nil:
			return err
		case note != "":
			rep.skip(note)
			if o.backend == "s3" {
				rep.print(os.Stdout)
				return errors.New(note)
			}
		default:
			s.args = append(s.args, "--config", gcCfg)
			specs = append(specs, s)
		}
	}

	dg := &digests{}
	var errs []error
	for _, s := range specs {
		rep.backends = append(rep.backends, s.name)
		b := &bench{opt: o, rep: rep, dg: dg, backend: s.name, diskData: diskData, bin: bin, work: work}
		if err := b.runBackend(ctx, bin, s, work); err != nil {
			// Print what was measured: a partial table still says something,
			// and the error names the failing step.
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
		if s.cleanup != nil {
			s.cleanup()
		}
		if ctx.Err() != nil {
			break
		}
	}
	rep.finish()
	rep.print(os.Stdout)
	if err := rep.verdict(); err != nil {
		errs = append(errs, err)
	}
	if o.markdown != "" {
		if err := rep.writeMarkdown(o.markdown); err != nil {
			errs = append(errs, fmt.Errorf("-markdown: %w", err))
		} else {
			logf("markdown report written to %s", o.markdown)
		}
	}
	return errors.Join(errs...)
}

// writeMarkdown writes the report to path, through a temp file so an
// interrupted write never leaves half a BENCH.md.
func (r *report) writeMarkdown(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bench-md-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	preface := "Written by `go run ./bench -markdown` (see README, Benchmarks); figures from a shared machine move with its load, shown at start and end."
	if r.opt.mdNote != "" {
		preface = r.opt.mdNote + "\n\n" + preface
	}
	r.doc().markdown(tmp, preface)
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// command is how the bench was started, for the report.
func command() string {
	args := make([]string, len(os.Args)-1)
	for i, a := range os.Args[1:] {
		args[i] = a
		if strings.ContainsAny(a, " \t\"'") {
			args[i] = fmt.Sprintf("%q", a)
		}
	}
	return strings.TrimSpace("go run ./bench " + strings.Join(args, " "))
}

// gitCommit names the tree the bench runs in (the module root): the commit,
// and "+dirty" when files differ from it.
func gitCommit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "+dirty"
	}
	return c
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// binaryVersion asks the binary what it is, for the table header.
func binaryVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// bench runs the suites against one backend and fills its column.
type bench struct {
	opt     options
	rep     *report
	dg      *digests
	backend string
	// diskData is where the disk limits are re-measured before the
	// largest pushes.
	diskData string
	bin      string      // the binary, for the bundle suite's second server
	work     string      // the run's temp dir
	spec     backendSpec // how the packreg under test was started, for its replicas
	srv      *server
	c        *client
	// targets are packreg (first, the same as srv and c) and, when it
	// started, Distribution on the same storage: the side-by-side rows run
	// on each.
	targets []*target
	errs    []error // rows that failed; the run exits non-zero
	// settler drains dirty pages before push samples (settle.go); nil
	// until the first use.
	settler *settler
}

// backendSpec says how to start the server for one column of the table.
type backendSpec struct {
	name    string
	args    []string
	cleanup func()
	// dist is Distribution's storage for this backend; distErr says why
	// Distribution cannot run on it.
	dist    distStorage
	distErr error
}

func (b *bench) runBackend(ctx context.Context, bin string, s backendSpec, work string) error {
	logf("%s: starting %s serve %s", s.name, bin, strings.Join(redactArgs(s.args), " "))
	srv, err := startServer(ctx, bin, s.args, filepath.Join(work, "server-"+strings.ReplaceAll(s.name, "+", "-")+".log"))
	if err != nil {
		b.rep.note(fmt.Sprintf("%s: server did not start: %s", s.name, firstLine(err.Error())))
		return err
	}
	defer srv.stop()
	c, err := newClient(srv.base)
	if err != nil {
		return err
	}
	defer c.close()
	b.srv, b.c, b.spec = srv, c, s
	b.targets = []*target{{name: "packreg", srv: srv, c: c}}
	// Distribution runs only for the suites that compare with it.
	if b.opt.suites["blobs"] || b.opt.suites["small"] || b.opt.suites["manifests"] {
		dt, err := b.startDistribution(ctx, s, work)
		switch {
		case err != nil:
			b.rep.skip(fmt.Sprintf("%s: %s not run: %s", s.name, distName, firstLine(err.Error())))
		case dt != nil:
			defer dt.stop()
			b.targets = append(b.targets, dt)
		}
	}

	steps := []struct {
		name string
		fn   func(context.Context) error
		disk bool // only on the disk backend (issue 3 asks for push/pull/manifests on S3)
		s3   bool // only on S3 + PostgreSQL (replicas share a store and a database)
	}{
		{"blobs", b.blobs, false, false},
		{"small", b.smallBlobs, false, false},
		{"manifests", b.manifests, false, false},
		{"tags", b.tagsSuite, true, false},
		{"packs", b.packsSuite, false, false},
		{"mirror", b.mirrorSuite, true, false},
		{"replicas", b.replicasSuite, false, true},
		{"bundles", b.bundles, true, false},
		{"auth", b.authSuite, true, false},
		{"gc", b.gcSuite, false, false},
	}
	var errs []error
	sideDone := false
	// The side-by-side suites come first; once they are over, both
	// servers' peak RSS is read (packreg's later suites, which Distribution
	// does not run, must not count against it) and Distribution stops.
	endSide := func() {
		if !sideDone {
			sideDone = true
			b.peakRSS()
			for _, t := range b.targets[1:] {
				t.stop()
			}
			b.targets = b.targets[:1]
		}
	}
	for _, st := range steps {
		if st.disk && s.name != "disk" || st.s3 && s.name == "disk" || !b.opt.suites[st.name] {
			continue
		}
		if !slices.Contains([]string{"blobs", "small", "manifests"}, st.name) {
			endSide()
		}
		_ = srv.startWindow()
		err := st.fn(ctx)
		if kb, merr := srv.windowPeakKB(); merr == nil {
			// Which suite sets the run's peak RSS: a reset per suite.
			b.set(secMemory, "VmHWM during the "+st.name+" suite", fmtKB(kb))
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", st.name, err)
			if ctx.Err() != nil || srv.alive() != nil {
				b.rep.note(fmt.Sprintf("%s: stopped early: %s", s.name, firstLine(err.Error())))
				return errors.Join(append(errs, err)...)
			}
			// One broken step (a server bug, usually) should not hide the
			// figures of the others.
			b.rep.note(fmt.Sprintf("%s: %s", s.name, firstLine(err.Error())))
			errs = append(errs, err)
		}
	}
	if kb, err := srv.peakKB(); err == nil {
		b.set(secMemory, "VmHWM over the whole run", fmtKB(kb))
	}
	// VmHWM counts the binary's mapped pages, and how many of them a
	// touch maps depends on the page cache (Linux 6.18 maps a whole large
	// folio: a binary just written by the linker showed ~6 MiB more at
	// idle than the same file read back from disk), so the split says how
	// much of the peak is the process's own memory.
	if kb, err := statusKB(srv.pid(), "RssAnon", "RssFile"); err == nil {
		b.set(secMemory, "VmRSS at the end: anonymous, file-backed (the binary)", fmtKB(kb[0])+", "+fmtKB(kb[1]))
	}
	endSide()
	return errors.Join(append(errs, b.errs...)...)
}

// startDistribution starts Distribution on s's storage, or returns nil
// when there is none to start.
func (b *bench) startDistribution(ctx context.Context, s backendSpec, work string) (*target, error) {
	if b.opt.distribution == "" {
		return nil, nil
	}
	if s.distErr != nil {
		return nil, s.distErr
	}
	slug := strings.ReplaceAll(s.name, "+", "-")
	logf("%s: starting %s serve (%s)", s.name, b.opt.distribution, distName)
	srv, err := startDistribution(ctx, b.opt.distribution, filepath.Join(work, "distribution-"+slug+"-config"), s.dist,
		filepath.Join(work, "server-distribution-"+slug+".log"))
	return asTarget(distName, srv, err)
}

// requestID finds the id a registry 5xx carries in its message.
var requestID = regexp.MustCompile(`request ([0-9A-Za-z_.-]{6,64})\)`)

// failed records a failed row: the cell says so and the error goes to the
// notes, and the suite goes on with its next row. It returns the error
// when going on is pointless (server gone, run interrupted).
func (b *bench) failed(ctx context.Context, section, label string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if aerr := b.srv.alive(); aerr != nil {
		return aerr
	}
	b.set(section, label, failedCell)
	msg := fmt.Sprintf("%s: %s: %s", b.backend, label, firstLine(err.Error()))
	if m := requestID.FindStringSubmatch(err.Error()); m != nil {
		if line := b.srv.logFor(m[1]); line != "" {
			msg += "\n    server log: " + line
		}
	}
	b.rep.note(msg)
	b.errs = append(b.errs, fmt.Errorf("%s: %w", label, err))
	return nil
}

// redactArgs hides credentials in URLs before they reach the terminal.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = redactURL(a)
	}
	return out
}

// noDistributionNote says why the side-by-side rows are packreg's alone.
func noDistributionNote(o options) string {
	if o.distOff {
		return "Distribution: not run (-distribution off): the side-by-side rows show packreg only"
	}
	return "Distribution: not run (no `registry` binary on PATH or in ~/go/bin; install it with .ci/tools.sh or pass -distribution PATH): the side-by-side rows show packreg only"
}
