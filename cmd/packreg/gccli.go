package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/packreg/packreg/internal/restclient"
)

const gcUsage = `Usage:
  packreg gc [--dry-run]       collect garbage now and wait: untagged manifests, the
                               signatures and attestations of deleted subjects, blobs
                               nothing references, idle upload sessions (all older than
                               the server's gc.grace); --dry-run lists what would go
  packreg gc runs [--limit N]  the recorded runs, newest first

Both take --server URL (default $PACKREG_URL or http://127.0.0.1:5000) and --json.
`

// runGC is `packreg gc`.
func runGC(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "runs" {
		return gcRuns(ctx, newCLI("packreg gc runs", gcUsage, stdout, stderr), args[1:])
	}
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, gcUsage)
		return 0
	}
	c := newCLI("packreg gc", gcUsage, stdout, stderr)
	dry := c.fs.Bool("dry-run", false, "list what would go; change nothing")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(stderr, err)
	}
	if len(pos) > 0 {
		return c.usageError("unknown gc command %q", pos[0])
	}
	var run gcRunView
	// A collection of a large registry takes a while: wait for it.
	api := restclient.New(*c.server, cliHTTP(*c.server, 24*time.Hour))
	if err := api.Do(ctx, http.MethodPost, gcPrefix, nil, gcRequest{DryRun: *dry}, &run); err != nil {
		return c.fail(err)
	}
	if *c.asJSON {
		c.printJSON(run)
		return 0
	}
	rows := make([]string, 0, len(run.Items))
	for _, it := range run.Items {
		what := it.Digest.String()
		if it.Kind == "upload" {
			what = it.ID
		}
		rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%d", it.Kind, it.Repo, what, it.Size))
	}
	c.output(run, "KIND\tREPOSITORY\tDIGEST\tSIZE", rows)
	verb := "collected"
	if run.DryRun {
		verb = "would collect"
	}
	n := run.Counts
	fmt.Fprintf(stdout, "run %d %s %d manifests, %d blob links, %d blobs (%s), %d upload sessions; %d kept by a re-check\n",
		run.ID, verb, n.Manifests, n.Links, n.Blobs, size(n.Bytes), n.Uploads, n.Kept)
	if run.Truncated {
		fmt.Fprintf(stdout, "(the list is cut short; the counts are whole)\n")
	}
	return 0
}

func gcRuns(ctx context.Context, c *cli, args []string) int {
	limit := c.fs.Int("limit", 20, "how many runs")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(c.stderr, err)
	}
	if len(pos) > 0 {
		return c.usageError("gc runs takes no arguments, got %q", pos[0])
	}
	var list gcRunList
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if err := restclient.New(*c.server, cliHTTP(*c.server, time.Minute)).Do(ctx, http.MethodGet, gcPrefix+"/runs", q, nil, &list); err != nil {
		return c.fail(err)
	}
	rows := make([]string, 0, len(list.Items))
	for _, r := range list.Items {
		rows = append(rows, fmt.Sprintf("%d\t%s\t%t\t%s\t%d\t%d\t%d\t%s\t%s", r.ID, r.Started.Format(time.RFC3339), r.DryRun,
			r.Trigger, r.Counts.Manifests, r.Counts.Links, r.Counts.Blobs, size(r.Counts.Bytes), r.Error))
	}
	c.output(list, "ID\tSTARTED\tDRY\tTRIGGER\tMANIFESTS\tLINKS\tBLOBS\tFREED\tERROR", rows)
	return 0
}
