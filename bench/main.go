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
	"strings"
	"syscall"
	"time"
)

// allSuites are the suites -suites chooses from, in run order.
var allSuites = []string{"blobs", "small", "manifests", "tags", "bundles", "auth", "gc"}

// options are the flags plus the sizes and counts they imply.
type options struct {
	binary  string
	quick   bool
	backend string // disk, s3 or all
	dir     string // parent of the run's temp dir
	keep    bool
	suites  map[string]bool // the steps to run

	sizes    []int64 // blob sizes for push and pull
	chunk    int64   // PATCH size for chunked pushes
	ops      int     // manifest PUT/GET and 1 KiB blob pushes per row
	tags     int     // tags in the repository whose listing is timed
	bigTags  int     // tags in the repository for the "PUT cost at scale" row; 0 skips it
	tagPuts  int     // timed manifest PUTs at each repository size
	listReqs int     // timed tags/list requests

	bundleSize int64 // bytes of packs in the offline bundle exported and imported
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.binary, "binary", "", "packreg `binary` to measure (default: go build ./cmd/packreg into a temp dir)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: 1 MiB/16 MiB blobs, 200 ops, 1,000 tags, no 100,000-tag repository")
	fs.StringVar(&o.backend, "backend", "all", "`backend`s to measure: disk, s3 (S3 + PostgreSQL from PACKREG_TEST_S3 and PACKREG_TEST_POSTGRES) or all")
	fs.StringVar(&o.dir, "dir", "", "parent `dir` of the run's data (default $TMPDIR); the disk write limit is measured there")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's data dir and server logs")
	bigTags := fs.Int("big-tags", 100_000, "tags in the large repository for the manifest PUT cost row (0 skips; -quick skips)")
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
	o.chunk = 8 << 20
	if o.quick {
		o.sizes = []int64{1 << 20, 16 << 20}
		o.ops, o.tags, o.bigTags, o.tagPuts, o.listReqs = 200, 1_000, 0, 200, 100
		o.bundleSize = 64 << 20
	} else {
		o.bundleSize = 1 << 30
		o.sizes = []int64{1 << 20, 64 << 20, 512 << 20}
		o.ops, o.tags, o.bigTags, o.tagPuts, o.listReqs = 2_000, 10_000, *bigTags, 500, 200
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
	rep := newReport(o, bin, binaryVersion(bin))

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
		specs = append(specs, backendSpec{name: "disk", args: []string{"--data", diskData, "--config", gcCfg}})
	}
	if o.backend != "disk" {
		s, note, err := s3Backend(ctx)
		switch {
		case err != nil:
			return err
		case note != "":
			rep.note(note)
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
	return errors.Join(errs...)
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
	bin      string // the binary, for the bundle suite's second server
	work     string // the run's temp dir
	srv      *server
	c        *client
	errs     []error // rows that failed; the run exits non-zero
}

// backendSpec says how to start the server for one column of the table.
type backendSpec struct {
	name    string
	args    []string
	cleanup func()
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
	b.srv, b.c = srv, c

	steps := []struct {
		name string
		fn   func(context.Context) error
		disk bool // only on the disk backend (issue 3 asks for push/pull/manifests on S3)
	}{
		{"blobs", b.blobs, false},
		{"small", b.smallBlobs, false},
		{"manifests", b.manifests, false},
		{"tags", b.tagsSuite, true},
		{"bundles", b.bundles, true},
		{"auth", b.authSuite, true},
		{"gc", b.gcSuite, false},
	}
	var errs []error
	for _, st := range steps {
		if st.disk && s.name != "disk" || !b.opt.suites[st.name] {
			continue
		}
		if err := st.fn(ctx); err != nil {
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
	if _, hwm, err := srv.memKB(); err == nil {
		b.set(secMemory, "VmHWM at end of run (since the chunked push)", fmtKB(hwm))
	}
	return errors.Join(append(errs, b.errs...)...)
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
	b.set(section, label, "FAILED, see notes")
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
