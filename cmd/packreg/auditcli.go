package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/pack/client"
)

const auditUsage = `Usage:
  packreg audit list [flags]     the audit trail, newest first
      --since RFC3339-TIME   --action ACTION   --target PREFIX   --limit N   --all
  packreg audit verify [flags]   recompute the hash chain; exit 1 and name the first
                                 broken record when a record was edited or deleted

Both take --server URL (default $PACKREG_URL or http://127.0.0.1:5000) and --json.
`

// runAudit is `packreg audit`.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	c := newCLI("packreg audit "+args[0], auditUsage, stdout, stderr)
	switch args[0] {
	case "list":
		return c.auditList(ctx, args[1:])
	case "verify":
		return c.auditVerify(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, auditUsage)
		return 0
	}
	return c.usageError("unknown audit command %q", args[0])
}

func (c *cli) auditList(ctx context.Context, args []string) int {
	var q client.AuditQuery
	c.fs.StringVar(&q.Since, "since", "", "only records at or after `TIME` (RFC 3339)")
	c.fs.StringVar(&q.Action, "action", "", "only `ACTION` (manifest.push, pack.lifecycle...)")
	c.fs.StringVar(&q.Target, "target", "", "only targets starting with `PREFIX`")
	c.fs.IntVar(&q.Limit, "limit", 0, "page size (server default 100)")
	return listing(c, args, &q.Cursor,
		func() ([]audit.Record, string, error) {
			page, err := c.client().Audit(ctx, q)
			if err != nil {
				return nil, "", err
			}
			return page.Items, page.Next, nil
		},
		func(items []audit.Record, next string) any { return audit.List{Items: items, Next: next} },
		"ID\tAT\tACTOR\tACTION\tTARGET\tDIGEST\tDETAILS",
		func(r audit.Record) string {
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s", r.ID, r.At.Format(time.RFC3339), r.Actor, r.Action, r.Target,
				short(r.Digest), pairs(r.Details, " "))
		})
}

func (c *cli) auditVerify(ctx context.Context, args []string) int {
	pos, err := c.parse(args)
	if err != nil {
		return flagError(c.stderr, err)
	}
	if len(pos) > 0 {
		return c.usageError("audit verify takes no arguments, got %q", pos[0])
	}
	v, err := c.client().VerifyAudit(ctx)
	if err != nil {
		return c.fail(err)
	}
	if *c.asJSON {
		c.printJSON(v)
	} else if v.OK {
		fmt.Fprintf(c.stdout, "audit trail intact: %d records, head %d %s\n", v.Records, v.Head.ID, v.Head.Hash)
	} else {
		fmt.Fprintf(c.stdout, "audit trail BROKEN at record %d: %s\n", v.FirstBroken, v.Reason)
	}
	if v.Pending > 0 && !*c.asJSON {
		fmt.Fprintf(c.stdout, "%d changes committed and not recorded yet (queued: they are recorded within seconds)\n", v.Pending)
	}
	if !v.OK {
		return 1
	}
	return 0
}
