package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/packreg/packreg/mirror"
)

// `packreg mirror ...` and `packreg parity` are clients of a running
// server's mirror API, like `packreg pack`.

const mirrorUsage = `Usage:
  packreg mirror add [flags] --name NAME --url URL     add a mirror (--upstream: an upstream)
      --include GLOB --exclude GLOB (repeatable)   --versions RANGE   --states active,deprecated,archived
      --prefix PATH   --schedule 15m   --parity-schedule 1h   --concurrency N   --insecure
      --no-on-publish   --no-pull-through   --no-lifecycle
      --username USER --password-stdin | --token-stdin     credentials, read from stdin
  packreg mirror list [flags]                  mirrors (--upstream: upstreams)
  packreg mirror sync [flags] ID|NAME          start a sync; --wait for it (exit 1 if it fails)
  packreg mirror status [flags] ID|NAME [RUN]  the latest runs, or one run

Every command takes --server URL (default $PACKREG_URL or http://127.0.0.1:5000),
--upstream and --json. Exit status: 0 done, 1 refused or failed, 2 usage, 3 server unreachable.
`

const parityUsage = `Usage:
  packreg parity [flags] [--mirror ID|NAME]   compare a mirror (an upstream, or every mirror)
      --status in_sync|out_of_sync|missing|extra|referrers_incomplete   show only these
Exit status: 0 in parity, 1 out of parity (or refused), 2 usage, 3 server unreachable.
`

// strList collects a repeated flag, or a comma-separated one.
type strList []string

func (l *strList) String() string { return strings.Join(*l, ",") }
func (l *strList) Set(s string) error {
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// runMirror is `packreg mirror`.
func runMirror(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, mirrorUsage)
		return 2 * btoi(len(args) == 0)
	}
	c := newCLI("packreg mirror "+args[0], mirrorUsage, stdout, stderr)
	upstream := c.fs.Bool("upstream", false, "an upstream (pull), not a mirror (push)")
	kind := func() string {
		if *upstream {
			return mirror.KindUpstream
		}
		return mirror.KindMirror
	}
	switch args[0] {
	case "add":
		return c.mirrorAdd(ctx, args[1:], kind, stdin)
	case "list":
		pos, err := c.parse(args[1:])
		if err != nil {
			return flagError(c.stderr, err)
		}
		if len(pos) != 0 {
			return c.usageError("mirror list takes no arguments")
		}
		list, err := c.mirrorClient().List(ctx, kind())
		if err != nil {
			return c.fail(err)
		}
		var rows []string
		for _, v := range list {
			rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", v.ID, v.Name, v.URL, strings.Join(v.Include, ","),
				strings.Join(v.States, ","), time.Duration(v.Schedule), v.Auth))
		}
		c.output(list, "ID\tNAME\tURL\tINCLUDE\tSTATES\tSCHEDULE\tAUTH", rows)
		return 0
	case "sync":
		wait := c.fs.Bool("wait", false, "wait for the run to end; exit 1 when it fails")
		pos, err := c.parse(args[1:])
		if err != nil {
			return flagError(c.stderr, err)
		}
		if len(pos) != 1 {
			return c.usageError("mirror sync takes one ID or NAME")
		}
		return c.mirrorSync(ctx, kind(), pos[0], *wait)
	case "status":
		pos, err := c.parse(args[1:])
		if err != nil {
			return flagError(c.stderr, err)
		}
		if len(pos) < 1 || len(pos) > 2 {
			return c.usageError("mirror status takes an ID or NAME, and a run")
		}
		return c.mirrorStatus(ctx, kind(), pos)
	}
	return c.usageError("unknown mirror command %q", args[0])
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *cli) mirrorClient() *mirror.Client {
	return mirror.NewClient(*c.server, cliHTTP(*c.server, c.timeout))
}

func (c *cli) mirrorAdd(ctx context.Context, args []string, kind func() string, stdin io.Reader) int {
	var (
		s                mirror.Settings
		include, exclude strList
		states           strList
		schedule, parity time.Duration
	)
	fs := c.fs
	fs.StringVar(&s.Name, "name", "", "`NAME` of the remote")
	fs.StringVar(&s.URL, "url", "", "`URL` of the registry: http://host:port or https://host:port")
	fs.Var(&include, "include", "pack name `GLOB` to copy (repeatable; none: every pack)")
	fs.Var(&exclude, "exclude", "pack name `GLOB` to leave out (repeatable)")
	fs.StringVar(&s.Versions, "versions", "", "semver `RANGE` of versions, like '>=1.2.0 <2'")
	fs.Var(&states, "states", "lifecycle `STATES` to copy (default active,deprecated)")
	fs.StringVar(&s.Prefix, "prefix", "", "`PATH` prefixed to pack names on the copy side")
	fs.DurationVar(&schedule, "schedule", 0, "sync this often (0: on publish and on demand only)")
	fs.DurationVar(&parity, "parity-schedule", 0, "check parity this often (0: on demand only)")
	fs.IntVar(&s.Concurrency, "concurrency", 0, "versions and blobs in flight (default 4)")
	fs.BoolVar(&s.Insecure, "insecure", false, "skip TLS certificate verification")
	noPublish := fs.Bool("no-on-publish", false, "do not sync on publish (mirrors)")
	noPull := fs.Bool("no-pull-through", false, "do not fetch missing packs on pull (upstreams)")
	noLifecycle := fs.Bool("no-lifecycle", false, "do not carry lifecycle changes")
	user := fs.String("username", "", "`USER` for basic auth (password from --password-stdin)")
	pwStdin := fs.Bool("password-stdin", false, "read the password from stdin")
	tokStdin := fs.Bool("token-stdin", false, "read a bearer token from stdin")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(c.stderr, err)
	}
	if len(pos) != 0 {
		return c.usageError("mirror add takes flags only")
	}
	s.Kind, s.Include, s.Exclude, s.States = kind(), include, exclude, states
	s.Schedule, s.ParitySchedule = mirror.Duration(schedule), mirror.Duration(parity)
	for _, f := range []struct {
		off bool
		p   **bool
	}{{*noPublish, &s.OnPublish}, {*noPull, &s.PullThrough}, {*noLifecycle, &s.Lifecycle}} {
		if f.off {
			*f.p = new(bool)
		}
	}
	if *pwStdin || *tokStdin {
		if *pwStdin == *tokStdin || (*pwStdin && *user == "") {
			return c.usageError("give --username with --password-stdin, or --token-stdin alone")
		}
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return c.fail(err)
		}
		secret := strings.TrimRight(string(b), "\r\n")
		s.Credentials = &mirror.Credentials{Username: *user, Password: secret}
		if *tokStdin {
			s.Credentials = &mirror.Credentials{Token: secret}
		}
	} else if *user != "" {
		return c.usageError("--username needs --password-stdin")
	}
	v, err := c.mirrorClient().Create(ctx, s)
	if err != nil {
		return c.fail(err)
	}
	if *c.asJSON {
		c.printJSON(v)
		return 0
	}
	fmt.Fprintf(c.stdout, "%s %s added: id %s\n", v.Kind, v.Name, v.ID)
	return 0
}

func (c *cli) mirrorSync(ctx context.Context, kind, ref string, wait bool) int {
	cl := c.mirrorClient()
	v, err := cl.Find(ctx, kind, ref)
	if err != nil {
		return c.fail(err)
	}
	run, err := cl.Sync(ctx, kind, v.ID)
	if err != nil {
		return c.fail(err)
	}
	if !wait {
		if *c.asJSON {
			c.printJSON(map[string]int64{"run": run})
		} else {
			fmt.Fprintf(c.stdout, "sync of %s started: run %d\n", v.Name, run)
		}
		return 0
	}
	for {
		r, err := cl.Run(ctx, kind, v.ID, run)
		if err != nil {
			return c.fail(err)
		}
		if r.State != "running" {
			c.printRun(*r)
			return btoi(r.State != "succeeded")
		}
		select {
		case <-ctx.Done():
			return c.fail(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *cli) mirrorStatus(ctx context.Context, kind string, pos []string) int {
	cl := c.mirrorClient()
	v, err := cl.Find(ctx, kind, pos[0])
	if err != nil {
		return c.fail(err)
	}
	if len(pos) == 2 {
		id, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil {
			return c.usageError("run %q: want a number", pos[1])
		}
		r, err := cl.Run(ctx, kind, v.ID, id)
		if err != nil {
			return c.fail(err)
		}
		c.printRun(*r)
		return 0
	}
	runs, err := cl.Runs(ctx, kind, v.ID, 10)
	if err != nil {
		return c.fail(err)
	}
	var rows []string
	for _, r := range runs {
		rows = append(rows, fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%s\t%d", r.ID, r.Kind, r.Trigger, r.State,
			r.Started.Format(time.RFC3339), r.Counts.VersionsDone, r.Counts.VersionsTotal, r.Counts.ManifestsCopied,
			r.Counts.BlobsCopied, size(r.Counts.BytesCopied), len(r.Errors)))
	}
	c.output(runs, "RUN\tKIND\tTRIGGER\tSTATE\tSTARTED\tVERSIONS\tMANIFESTS\tBLOBS\tBYTES\tERRORS", rows)
	return 0
}

func (c *cli) printRun(r mirror.RunView) {
	if *c.asJSON {
		c.printJSON(r)
		return
	}
	n := r.Counts
	fmt.Fprintf(c.stdout, "run %d (%s, %s): %s\n", r.ID, r.Kind, r.Trigger, r.State)
	fmt.Fprintf(c.stdout, "  versions %d/%d (%d failed), manifests %d copied %d present, referrers %d, blobs %d copied %d mounted %d present, %s, tags %d, lifecycle %d\n",
		n.VersionsDone, n.VersionsTotal, n.VersionsFailed, n.ManifestsCopied, n.ManifestsSkipped, n.ReferrersCopied,
		n.BlobsCopied, n.BlobsMounted, n.BlobsSkipped, size(n.BytesCopied), n.TagsMoved, n.LifecycleChanged)
	for _, e := range r.Errors {
		fmt.Fprintln(c.stdout, "  error:", e)
	}
}

// runParity is `packreg parity`.
func runParity(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("packreg parity", parityUsage, stdout, stderr)
	ref := c.fs.String("mirror", "", "the mirror (or upstream) `ID|NAME`; every mirror when empty")
	status := c.fs.String("status", "", "show only entries with this `STATUS`")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(c.stderr, err)
	}
	if len(pos) != 0 {
		return c.usageError("parity takes flags only")
	}
	if *status != "" && !mirror.ValidParityStatus(*status) {
		return c.usageError("--status %q: "+mirror.ParityStatusWanted, *status)
	}
	cl := c.mirrorClient()
	id := ""
	if *ref != "" {
		v, err := cl.Find(ctx, mirror.KindMirror, *ref)
		if err != nil {
			if v, err = cl.Find(ctx, mirror.KindUpstream, *ref); err != nil {
				return c.fail(err)
			}
		}
		id = v.ID
	}
	res, err := cl.Parity(ctx, id)
	if err != nil {
		return c.fail(err)
	}
	if *c.asJSON {
		if *status != "" {
			// As the text does; the counts stay whole.
			for i := range res.Reports {
				res.Reports[i].Entries = slices.DeleteFunc(res.Reports[i].Entries,
					func(e mirror.ParityEntry) bool { return e.Status != *status })
			}
		}
		c.printJSON(res)
		return btoi(!res.InParity)
	}
	for _, rep := range res.Reports {
		verdict := "in parity"
		if !rep.InParity {
			verdict = "OUT OF PARITY"
		}
		var counts []string
		for k, n := range rep.Counts {
			counts = append(counts, fmt.Sprintf("%s %d", k, n))
		}
		slices.Sort(counts)
		fmt.Fprintf(c.stdout, "%s %s (check %d): %s: %s\n", rep.Kind, rep.Name, rep.ID, verdict, strings.Join(counts, ", "))
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		for _, e := range rep.Entries {
			if (*status == "" && e.Status == mirror.InSync) || (*status != "" && e.Status != *status) {
				continue
			}
			fmt.Fprintf(tw, "  %s:%s\t%s\t%s\t%s\t%s\n", e.Name, e.Version, e.Status, short(e.PrimaryDigest), short(e.MirrorDigest), e.Detail)
		}
		tw.Flush()
	}
	return btoi(!res.InParity)
}
