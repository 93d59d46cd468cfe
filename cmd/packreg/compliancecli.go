package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/packreg/packreg/compliance"
)

const complianceUsage = `Usage:
  packreg compliance [flags]   the registry's compliance: the summary, then the
                               failing versions with their reasons; exit 1 when
                               any version in scope fails
      --failing          list only the failing versions (the default lists them too)
      --all              list every version, compliant ones included
      --name PREFIX      only packs whose name starts with PREFIX
      --json | --csv     the summary and the versions as JSON, or the versions as CSV

It takes --server URL (default $PACKREG_URL or http://127.0.0.1:5000).
`

// maxCLIPages bounds the pages the CLI follows (1000 versions each).
const maxCLIPages = 1000

// runCompliance is `packreg compliance`.
func runCompliance(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("packreg compliance", complianceUsage, stdout, stderr)
	c.fs.Bool("failing", true, "list only the failing versions")
	all := c.fs.Bool("all", false, "list every version")
	name := c.fs.String("name", "", "only packs whose name starts with `PREFIX`")
	asCSV := c.fs.Bool("csv", false, "print the versions as CSV")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(stderr, err)
	}
	if len(pos) > 0 {
		return c.usageError("compliance takes no arguments, got %q", pos[0])
	}
	if *asCSV && *c.asJSON {
		return c.usageError("--json and --csv exclude each other")
	}
	cl := compliance.NewClient(*c.server, &http.Client{Timeout: c.timeout})
	sum, err := cl.Summary(ctx, "")
	if err != nil {
		return c.fail(err)
	}
	status := "failing"
	if *all {
		status = ""
	}
	var items []compliance.Item
	cursor := ""
	for range maxCLIPages {
		page, err := cl.Packs(ctx, status, *name, cursor, compliance.MaxLimit)
		if err != nil {
			return c.fail(err)
		}
		items = append(items, page.Items...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	failing := 0
	for _, it := range items {
		if !it.Compliant {
			failing++
		}
	}
	switch {
	case *c.asJSON:
		c.printJSON(struct {
			Summary  *compliance.Summary `json:"summary"`
			Versions []compliance.Item   `json:"versions"`
		}{sum, items})
	case *asCSV:
		if err := compliance.WriteCSV(stdout, items); err != nil {
			return c.fail(err)
		}
	default:
		fmt.Fprintf(stdout, "%d versions: %d compliant, %d failing; verified %d, unsigned %d, untrusted %d, invalid %d; attested %d\n",
			sum.Versions, sum.Compliant, sum.Failing, sum.Verification.Verified, sum.Verification.Unsigned,
			sum.Verification.Untrusted, sum.Verification.Invalid, sum.Attested)
		rows := make([]string, 0, len(items))
		for _, it := range items {
			var why []string
			for _, f := range it.Findings {
				if f.Status == compliance.Fail {
					why = append(why, f.Rule+": "+f.Reason)
				}
			}
			verdict := "compliant"
			if !it.Compliant {
				verdict = "FAILING"
			}
			rows = append(rows, fmt.Sprintf("%s:%s\t%s\t%s\t%s", it.Name, it.Version, verdict, it.Verification, strings.Join(why, "; ")))
		}
		if len(rows) > 0 {
			c.output(nil, "VERSION\tVERDICT\tVERIFICATION\tREASONS", rows)
		}
	}
	if failing > 0 {
		return 1
	}
	return 0
}
