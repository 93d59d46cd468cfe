package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/restclient"
)

// The shape `packreg gc` and `packreg retention` share: NAME [--dry-run]
// posts {"dryRun"} to the route and waits for the run; NAME runs
// [--limit N] lists the recorded runs.

// runRequest is the body of POST /api/v1/gc and /api/v1/retention
// (optional: {} is a real run).
type runRequest struct {
	DryRun bool `json:"dryRun"`
}

// decodeRunRequest reads a run POST: no query, an optional capped body.
func decodeRunRequest(req *http.Request) (runRequest, error) {
	var in runRequest
	if _, err := apierr.Query(req.URL.RawQuery); err != nil {
		return in, err
	}
	_, err := apierr.DecodeOptionalJSON(req.Body, &in, 4<<10)
	return in, err
}

// postRun handles `packreg NAME [--dry-run]` up to the run's answer,
// decoded into out. It returns the cli to print a table with, or the exit
// code when it is done (help, a usage error, a failure, --json).
func postRun(ctx context.Context, name, usage, prefix, dryHelp string, args []string, stdout, stderr io.Writer, out any) (*cli, int) {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, usage)
		return nil, 0
	}
	c := newCLI("packreg "+name, usage, stdout, stderr)
	dry := c.fs.Bool("dry-run", false, dryHelp)
	pos, err := c.parse(args)
	if err != nil {
		return nil, flagError(stderr, err)
	}
	if len(pos) > 0 {
		return nil, c.usageError("unknown %s command %q", name, pos[0])
	}
	// A run over a large registry takes a while: wait for it.
	api := restclient.New(*c.server, cliHTTP(*c.server, 24*time.Hour))
	if err := api.Do(ctx, http.MethodPost, prefix, nil, runRequest{DryRun: *dry}, out); err != nil {
		return nil, c.fail(err)
	}
	if *c.asJSON {
		c.printJSON(out)
		return nil, 0
	}
	return c, -1
}

// listRuns handles `packreg NAME runs [--limit N]`, decoding the page into
// list; ok false means it is done with code.
func listRuns(ctx context.Context, name, usage, prefix string, args []string, stdout, stderr io.Writer, list any) (c *cli, code int, ok bool) {
	c = newCLI("packreg "+name+" runs", usage, stdout, stderr)
	limit := c.fs.Int("limit", 20, "how many runs")
	pos, err := c.parse(args)
	if err != nil {
		return nil, flagError(stderr, err), false
	}
	if len(pos) > 0 {
		return nil, c.usageError("%s runs takes no arguments, got %q", name, pos[0]), false
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if err := restclient.New(*c.server, cliHTTP(*c.server, time.Minute)).Do(ctx, http.MethodGet, prefix+"/runs", q, nil, list); err != nil {
		return nil, c.fail(err), false
	}
	return c, 0, true
}
