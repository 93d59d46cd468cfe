package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/packreg/packreg/internal/restclient"
	"github.com/packreg/packreg/registry"
)

const scrubUsage = `Usage:
  packreg scrub   re-hash every stored blob now (at the server's scrub.rate) and wait;
                  prints the blobs found bad, which the server refuses to serve from then on

Takes --server URL (default $PACKREG_URL or http://127.0.0.1:5000) and --json.
Exits 0 when nothing new was found bad, 1 when a blob was (or refused), 2 usage, 3 server unreachable.
`

// runScrub is `packreg scrub`.
func runScrub(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, scrubUsage)
		return 0
	}
	c := newCLI("packreg scrub", scrubUsage, stdout, stderr)
	pos, err := c.parse(args)
	if err != nil {
		return flagError(stderr, err)
	}
	if len(pos) > 0 {
		return c.usageError("scrub takes no arguments, got %q", pos[0])
	}
	var rep registry.ScrubReport
	// A scrub reads every stored blob at scrub.rate: wait for it.
	api := restclient.New(*c.server, cliHTTP(*c.server, 24*time.Hour))
	if err := api.Do(ctx, http.MethodPost, scrubPrefix, nil, struct{}{}, &rep); err != nil {
		return c.fail(err)
	}
	if *c.asJSON {
		c.printJSON(rep)
	} else {
		rows := make([]string, 0, len(rep.Bad))
		for _, d := range rep.Bad {
			rows = append(rows, d.String())
		}
		c.output(rep, "BAD BLOB", rows)
		fmt.Fprintf(stdout, "checked %d blobs (%s), %d found bad, %d found sound again, %d skipped (gone)\n",
			rep.Blobs, size(rep.Bytes), len(rep.Bad), len(rep.Repaired), rep.Skipped)
	}
	if len(rep.Bad) > 0 {
		return 1
	}
	return 0
}
