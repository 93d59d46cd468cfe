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

const retentionUsage = `Usage:
  packreg retention [--dry-run]       apply the server's retention.rules now and wait:
                                      deprecate, archive and delete pack versions as the
                                      rules say; --dry-run lists what a run would do
  packreg retention runs [--limit N]  the recorded runs, newest first

Both take --server URL (default $PACKREG_URL or http://127.0.0.1:5000) and --json.
`

// runRetention is `packreg retention`.
func runRetention(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "runs" {
		return retentionRuns(ctx, newCLI("packreg retention runs", retentionUsage, stdout, stderr), args[1:])
	}
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, retentionUsage)
		return 0
	}
	c := newCLI("packreg retention", retentionUsage, stdout, stderr)
	dry := c.fs.Bool("dry-run", false, "list what would change; change nothing")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(stderr, err)
	}
	if len(pos) > 0 {
		return c.usageError("unknown retention command %q", pos[0])
	}
	var run retentionRunView
	api := restclient.New(*c.server, cliHTTP(*c.server, 24*time.Hour))
	if err := api.Do(ctx, http.MethodPost, retentionPrefix, nil, retentionRequest{DryRun: *dry}, &run); err != nil {
		return c.fail(err)
	}
	if *c.asJSON {
		c.printJSON(run)
		return 0
	}
	rows := make([]string, 0, len(run.Items))
	for _, it := range run.Items {
		rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s%s", it.Name, it.Version, it.Status, it.Action, it.Reason, errNote(it.Error)))
	}
	c.output(run, "PACK\tVERSION\tSTATUS\tACTION\tREASON", rows)
	verb := "made"
	if run.DryRun {
		verb = "would make"
	}
	n := run.Counts
	fmt.Fprintf(stdout, "run %d %s %d deprecations, %d archivals, %d deletions over %d versions; %d kept, %d failed\n",
		run.ID, verb, n.Deprecated, n.Archived, n.Deleted, n.Versions, n.Kept, n.Failed)
	if run.Error != "" {
		return 1
	}
	return 0
}

func errNote(e string) string {
	if e == "" {
		return ""
	}
	return " (failed: " + e + ")"
}

func retentionRuns(ctx context.Context, c *cli, args []string) int {
	limit := c.fs.Int("limit", 20, "how many runs")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(c.stderr, err)
	}
	if len(pos) > 0 {
		return c.usageError("retention runs takes no arguments, got %q", pos[0])
	}
	var list retentionRunList
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if err := restclient.New(*c.server, cliHTTP(*c.server, time.Minute)).Do(ctx, http.MethodGet, retentionPrefix+"/runs", q, nil, &list); err != nil {
		return c.fail(err)
	}
	rows := make([]string, 0, len(list.Items))
	for _, r := range list.Items {
		rows = append(rows, fmt.Sprintf("%d\t%s\t%t\t%s\t%d\t%d\t%d\t%d\t%s", r.ID, r.Started.Format(time.RFC3339), r.DryRun,
			r.Trigger, r.Counts.Deprecated, r.Counts.Archived, r.Counts.Deleted, r.Counts.Failed, r.Error))
	}
	c.output(list, "ID\tSTARTED\tDRY\tTRIGGER\tDEPRECATED\tARCHIVED\tDELETED\tFAILED\tERROR", rows)
	return 0
}
