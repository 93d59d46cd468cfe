package main

import (
	"context"
	"fmt"
	"io"
	"time"
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
		return retentionRuns(ctx, args[1:], stdout, stderr)
	}
	var run retentionRunView
	c, code := postRun(ctx, "retention", retentionUsage, retentionPrefix, "list what would change; change nothing", args, stdout, stderr, &run)
	if c == nil {
		if code == 0 && run.Error != "" {
			return 1 // --json of a run whose changes partly failed
		}
		return code
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

func retentionRuns(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var list retentionRunList
	c, code, ok := listRuns(ctx, "retention", retentionUsage, retentionPrefix, args, stdout, stderr, &list)
	if !ok {
		return code
	}
	rows := make([]string, 0, len(list.Items))
	for _, r := range list.Items {
		rows = append(rows, fmt.Sprintf("%d\t%s\t%t\t%s\t%d\t%d\t%d\t%d\t%s", r.ID, r.Started.Format(time.RFC3339), r.DryRun,
			r.Trigger, r.Counts.Deprecated, r.Counts.Archived, r.Counts.Deleted, r.Counts.Failed, r.Error))
	}
	c.output(list, "ID\tSTARTED\tDRY\tTRIGGER\tDEPRECATED\tARCHIVED\tDELETED\tFAILED\tERROR", rows)
	return 0
}
