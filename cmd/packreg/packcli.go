package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/pack/client"
)

// `packreg pack ...` and `packreg audit ...` are clients of a running
// server's REST API, like `packreg keys`: the server owns the index and
// the trail, and with several replicas there is no one database to open.

const packUsage = `Usage:
  packreg pack publish [flags] NAME:VERSION FILE[:MEDIATYPE]...   publish files as a pack version
      --description TEXT   --label KEY=VALUE (repeatable)
  packreg pack list [flags]              pack versions, newest first
      --status active|deprecated|archived|deleted|all   --name PREFIX   --label KEY=VALUE   --limit N   --all
  packreg pack show [flags] NAME         every version of a pack, in semver order
  packreg pack show [flags] NAME:VERSION one version: files and lifecycle history
  packreg pack deprecate [flags] NAME[:VERSION] --reason TEXT   (no version: every version)
  packreg pack archive [flags] NAME[:VERSION] --reason TEXT     (pulls are refused from then on)
  packreg pack restore [flags] NAME[:VERSION] [--force]         back to active (archived needs --force)

Every command takes --server URL (default $PACKREG_URL or http://127.0.0.1:5000)
and --json. Exit status: 0 done, 1 refused by the server, 2 usage, 3 server unreachable.
`

// cli is one invocation of a pack or audit command.
type cli struct {
	fs      *flag.FlagSet
	server  *string
	asJSON  *bool
	stdout  io.Writer
	stderr  io.Writer
	usage   string
	timeout time.Duration
}

func newCLI(name, usage string, stdout, stderr io.Writer) *cli {
	fs, server := newAPIFlags(name, stderr, usage)
	return &cli{fs: fs, server: server, asJSON: fs.Bool("json", false, "print JSON"),
		stdout: stdout, stderr: stderr, usage: usage, timeout: 10 * time.Minute}
}

// parse reads flags anywhere among the arguments (`pack publish x:1.0.0
// f --json` works), and returns the positional ones.
func (c *cli) parse(args []string) ([]string, error) { return parseAnywhere(c.fs, args) }

func parseAnywhere(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (c *cli) client() *client.Client {
	return client.New(*c.server, cliHTTP(*c.server, c.timeout))
}

// fail reports err and returns the exit status: 1 when the server refused,
// 3 when it could not be asked.
func (c *cli) fail(err error) int {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		fmt.Fprintf(c.stderr, "packreg: %s (%d %s)\n", ae.Message, ae.Status, ae.Code)
		if ae.Details != nil {
			d, _ := json.Marshal(ae.Details)
			fmt.Fprintf(c.stderr, "  details: %s\n", d)
		}
		return 1
	}
	fmt.Fprintln(c.stderr, "packreg:", err)
	return 3
}

func (c *cli) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "packreg: "+format+"\n\n", args...)
	fmt.Fprint(c.stderr, c.usage)
	return 2
}

func (c *cli) printJSON(v any) {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// output prints v as JSON under --json, else a table: the tab-separated
// header, then one tab-separated line per row.
func (c *cli) output(v any, header string, rows []string) {
	if *c.asJSON {
		c.printJSON(v)
		return
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	tw.Flush()
}

// labelsFlag collects repeated --label KEY=VALUE.
type labelsFlag map[string]string

func (l labelsFlag) String() string { return "" }

func (l labelsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	l[k] = v
	return nil
}

// runPack is `packreg pack`.
func runPack(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, packUsage)
		return 2
	}
	c := newCLI("packreg pack "+args[0], packUsage, stdout, stderr)
	switch args[0] {
	case "publish":
		return c.publish(ctx, args[1:])
	case "list":
		return c.list(ctx, args[1:])
	case "show":
		return c.show(ctx, args[1:])
	case "deprecate", "archive", "restore":
		return c.lifecycle(ctx, args[0], args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, packUsage)
		return 0
	}
	return c.usageError("unknown pack command %q", args[0])
}

// splitRef cuts NAME[:VERSION]; a pack name has no colon.
func splitRef(ref string) (name, version string) {
	name, version, _ = strings.Cut(ref, ":")
	return name, version
}

func (c *cli) publish(ctx context.Context, args []string) int {
	desc := c.fs.String("description", "", "pack `TEXT`")
	labels := labelsFlag{}
	c.fs.Var(labels, "label", "`KEY=VALUE` label (repeatable)")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(c.stderr, err)
	}
	if len(pos) < 2 {
		return c.usageError("publish needs NAME:VERSION and at least one file")
	}
	name, version := splitRef(pos[0])
	if version == "" {
		return c.usageError("publish needs NAME:VERSION, got %q", pos[0])
	}
	var files []client.File
	for _, arg := range pos[1:] {
		f := client.File{Path: arg}
		// FILE:MEDIATYPE, as oras writes it; a media type always has a "/".
		if i := strings.LastIndexByte(arg, ':'); i > 0 && strings.Contains(arg[i+1:], "/") {
			f.Path, f.MediaType = arg[:i], arg[i+1:]
		}
		files = append(files, f)
	}
	md := pack.Metadata{Name: name, Version: version, Description: *desc}
	if len(labels) > 0 {
		md.Labels = labels
	}
	v, created, err := c.client().Publish(ctx, md, files)
	if err != nil {
		return c.fail(err)
	}
	if *c.asJSON {
		c.printJSON(v)
		return 0
	}
	verb := "published"
	if !created {
		verb = "already published, same content:"
	}
	fmt.Fprintf(c.stdout, "%s %s:%s %s (%d files, %s)\n", verb, v.Name, v.Version, v.Digest, len(v.Files), size(v.TotalSize))
	return 0
}

func (c *cli) list(ctx context.Context, args []string) int {
	var q client.ListQuery
	c.fs.StringVar(&q.Status, "status", "", "`STATE`: active (default), deprecated, archived, deleted or all")
	c.fs.StringVar(&q.Name, "name", "", "name `PREFIX`")
	c.fs.StringVar(&q.Label, "label", "", "`KEY=VALUE` label")
	c.fs.IntVar(&q.Limit, "limit", 0, "page size (server default 100)")
	return listing(c, args, &q.Cursor,
		func() ([]pack.Version, string, error) {
			page, err := c.client().List(ctx, q)
			if err != nil {
				return nil, "", err
			}
			return page.Items, page.Next, nil
		},
		func(items []pack.Version, next string) any { return pack.VersionList{Items: items, Next: next} },
		"NAME\tVERSION\tSTATUS\tFILES\tSIZE\tCREATED\tDIGEST",
		func(v pack.Version) string {
			return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s\t%s", v.Name, v.Version, v.Status, len(v.Files), size(v.TotalSize),
				v.CreatedAt.Time().Format(time.DateTime), short(v.Digest))
		})
}

// listing is `pack list` and `audit list` after their own flags: fetch a
// page (every page with --all), then print JSON or a table, and say when
// there is more.
func listing[T any](c *cli, args []string, cursor *string, fetch func() ([]T, string, error),
	asJSON func(items []T, next string) any, header string, row func(T) string) int {
	all := c.fs.Bool("all", false, "follow the pages to the end")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(c.stderr, err)
	}
	if len(pos) > 0 {
		return c.usageError("%s takes no arguments, got %q", c.fs.Name(), pos[0])
	}
	var items []T
	for {
		page, next, err := fetch()
		if err != nil {
			return c.fail(err)
		}
		items = append(items, page...)
		*cursor = next
		if !*all || next == "" {
			break
		}
	}
	rows := make([]string, len(items))
	for i, it := range items {
		rows[i] = row(it)
	}
	c.output(asJSON(items, *cursor), header, rows)
	if *cursor != "" && !*c.asJSON {
		fmt.Fprintf(c.stdout, "more: --all, or the API with cursor=%s\n", *cursor)
	}
	return 0
}

func (c *cli) show(ctx context.Context, args []string) int {
	pos, err := c.parse(args)
	if err != nil {
		return flagError(c.stderr, err)
	}
	if len(pos) != 1 {
		return c.usageError("show needs NAME or NAME:VERSION")
	}
	name, version := splitRef(pos[0])
	cl := c.client()
	if version == "" {
		vs, err := cl.Versions(ctx, name)
		if err != nil {
			return c.fail(err)
		}
		var rows []string
		for _, v := range vs.Versions {
			rows = append(rows, fmt.Sprintf("%s\t%s\t%d\t%s\t%s\t%s\t%s", v.Version, v.Status, len(v.Files), size(v.TotalSize),
				v.CreatedAt.Time().Format(time.DateTime), short(v.Digest), v.StatusReason))
		}
		c.output(vs, "VERSION\tSTATUS\tFILES\tSIZE\tCREATED\tDIGEST\tREASON", rows)
		return 0
	}
	v, err := cl.Version(ctx, name, version)
	if err != nil {
		return c.fail(err)
	}
	hist, err := cl.History(ctx, name, version)
	if err != nil {
		return c.fail(err)
	}
	if *c.asJSON {
		c.printJSON(struct {
			*pack.Version
			History []pack.LifecycleEntry `json:"history"`
		}{v, hist.History})
		return 0
	}
	status := v.Status
	if v.StatusReason != "" {
		status += " (" + v.StatusReason + ")"
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{{"Name", v.Name}, {"Version", v.Version}, {"Status", status},
		{"Digest", v.Digest}, {"Artifact type", v.ArtifactType}, {"Size", size(v.TotalSize)},
		{"Created", v.CreatedAt.Time().Format(time.RFC3339)}, {"Description", v.Description}, {"Labels", pairs(v.Labels, ", ")}} {
		if kv[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
	}
	fmt.Fprintln(tw, "\nFILE\tSIZE\tMEDIA TYPE\tDIGEST")
	for _, f := range v.Files {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, size(f.Size), f.MediaType, f.Digest)
	}
	fmt.Fprintln(tw, "\nAT\tFROM\tTO\tACTOR\tREASON")
	for _, h := range hist.History {
		from := h.From
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.At.Format(time.DateTime), from, h.To, h.Actor, h.Reason)
	}
	tw.Flush()
	return 0
}

func (c *cli) lifecycle(ctx context.Context, verb string, args []string) int {
	reason := c.fs.String("reason", "", "why, shown to clients (deprecated pulls carry it in a Warning)")
	force := c.fs.Bool("force", false, "restore archived versions too")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(c.stderr, err)
	}
	if len(pos) != 1 {
		return c.usageError("%s needs NAME or NAME:VERSION", verb)
	}
	state := map[string]string{"deprecate": "deprecated", "archive": "archived", "restore": "active"}[verb]
	name, version := splitRef(pos[0])
	vs, err := c.client().SetLifecycle(ctx, name, version, pack.LifecycleRequest{State: state, Reason: *reason, Force: *force})
	if err != nil {
		return c.fail(err)
	}
	if *c.asJSON {
		c.printJSON(vs)
		return 0
	}
	for _, v := range vs {
		line := fmt.Sprintf("%s:%s %s", v.Name, v.Version, v.Status)
		if v.StatusReason != "" {
			line += ": " + v.StatusReason
		}
		fmt.Fprintln(c.stdout, line)
	}
	return 0
}

// pairs prints a map as sorted KEY=VALUE pairs.
func pairs(m map[string]string, sep string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, sep)
}

// short is the start of a digest, enough to tell versions apart in a table.
func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// size prints bytes for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
