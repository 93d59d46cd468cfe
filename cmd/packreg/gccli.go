package main

import (
	"context"
	"fmt"
	"io"
	"time"
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
		return gcRuns(ctx, args[1:], stdout, stderr)
	}
	var run gcRunView
	c, code := postRun(ctx, "gc", gcUsage, gcPrefix, "list what would go; change nothing", args, stdout, stderr, &run)
	if c == nil {
		return code
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

func gcRuns(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var list gcRunList
	c, code, ok := listRuns(ctx, "gc", gcUsage, gcPrefix, args, stdout, stderr, &list)
	if !ok {
		return code
	}
	rows := make([]string, 0, len(list.Items))
	for _, r := range list.Items {
		rows = append(rows, fmt.Sprintf("%d\t%s\t%t\t%s\t%d\t%d\t%d\t%s\t%s", r.ID, r.Started.Format(time.RFC3339), r.DryRun,
			r.Trigger, r.Counts.Manifests, r.Counts.Links, r.Counts.Blobs, size(r.Counts.Bytes), r.Error))
	}
	c.output(list, "ID\tSTARTED\tDRY\tTRIGGER\tMANIFESTS\tLINKS\tBLOBS\tFREED\tERROR", rows)
	return 0
}
