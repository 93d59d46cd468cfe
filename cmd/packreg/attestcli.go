package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/internal/restclient"
)

// `packreg keys ...` and `packreg verify ...` are clients of a running
// server's API (/api/v1/keys, /api/v1/packs/.../verification): the server
// owns the key ring and the records, and with several replicas there is no
// single database file a command could open instead.

const keysUsage = `Usage:
  packreg keys add [--server URL] --name NAME [--usage signatures|bundles]... [--not-before T] [--not-after T] FILE.pub   (FILE - reads stdin)
  packreg keys list [--server URL] [--json]
  packreg keys retire [--server URL] ID    stop trusting new signatures by the key (rotation)
  packreg keys revoke [--server URL] ID    withdraw trust from everything the key signed
  packreg keys signed [--server URL] ID    what the key vouches for
`

const verifyUsage = `Usage: packreg verify [--server URL] [--json] [--cached] NAME:VERSION

Re-checks every signature and attestation of the version on the server,
prints the findings, and exits 0 when the version meets its repository's
policy, 1 when it does not (an invalid signature never does), 2 on usage
errors and 3 when the server cannot answer.
`

// defaultServer is where the CLI finds the API: $PACKREG_URL, else the
// serve default.
func defaultServer() string {
	if u := os.Getenv("PACKREG_URL"); u != "" {
		return u
	}
	return "http://127.0.0.1:5000"
}

func newAPIFlags(name string, stderr io.Writer, usage string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	server := fs.String("server", defaultServer(), "packreg server `URL` ($PACKREG_URL)")
	return fs, server
}

// runKeys is `packreg keys`.
func runKeys(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	fs, server := newAPIFlags("packreg keys "+args[0], stderr, keysUsage)
	name := fs.String("name", "", "key `NAME` (add)")
	notBefore := fs.String("not-before", "", "RFC 3339 `TIME` before which signatures do not count (add)")
	notAfter := fs.String("not-after", "", "RFC 3339 `TIME` from which signatures do not count (add)")
	asJSON := fs.Bool("json", false, "print JSON (list)")
	var usage strList
	fs.Var(&usage, "usage", "what the key is trusted for: `signatures` (default) or bundles; repeat or comma-separate for both (add)")
	if err := fs.Parse(args[1:]); err != nil {
		return flagError(stderr, err)
	}
	c := restclient.New(*server, cliHTTP(*server, time.Minute))
	one := func() (string, bool) {
		if fs.NArg() != 1 {
			fmt.Fprint(stderr, keysUsage)
			return "", false
		}
		return url.PathEscape(fs.Arg(0)), true
	}
	var err error
	switch args[0] {
	case "add":
		if fs.NArg() != 1 || *name == "" {
			fmt.Fprint(stderr, keysUsage)
			return 2
		}
		err = keysAdd(ctx, c, stdin, stdout, fs.Arg(0), *name, *notBefore, *notAfter, usage)
	case "list":
		err = keysList(ctx, c, stdout, *asJSON)
	case "retire", "revoke":
		id, ok := one()
		if !ok {
			return 2
		}
		var k attest.KeyView
		if err = c.Do(ctx, "POST", "/api/v1/keys/"+id+"/"+args[0], nil, nil, &k); err == nil {
			fmt.Fprintf(stdout, "%s %s (%s)\n", k.State, k.ID, k.Name)
		}
	case "signed":
		id, ok := one()
		if !ok {
			return 2
		}
		err = keysSigned(ctx, c, stdout, id)
	default:
		fmt.Fprintf(stderr, "packreg keys: unknown command %q\n\n%s", args[0], keysUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "packreg keys:", err)
		return 1
	}
	return 0
}

func keysAdd(ctx context.Context, c *restclient.Client, stdin io.Reader, stdout io.Writer, file, name, notBefore, notAfter string, usage []string) error {
	var (
		pem []byte
		err error
	)
	if file == "-" {
		pem, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		pem, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	body := map[string]any{"name": name, "pem": string(pem)}
	if len(usage) > 0 {
		body["usage"] = usage
	}
	for _, f := range []struct{ field, flag, v string }{{"notBefore", "not-before", notBefore}, {"notAfter", "not-after", notAfter}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, f.v)
		if err != nil {
			return fmt.Errorf("--%s: %w", f.flag, err)
		}
		body[f.field] = t
	}
	var k attest.KeyView
	if err := c.Do(ctx, "POST", "/api/v1/keys", nil, body, &k); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s (%s, %s, for %s)\n", k.ID, k.Name, k.Algorithm, strings.Join(k.Usage, " and "))
	return nil
}

func keysList(ctx context.Context, c *restclient.Client, stdout io.Writer, asJSON bool) error {
	var out struct {
		Keys []attest.KeyView `json:"keys"`
	}
	if err := c.Do(ctx, "GET", "/api/v1/keys", nil, nil, &out); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out.Keys)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tALGORITHM\tSTATE\tUSAGE\tNOT BEFORE\tNOT AFTER")
	for _, k := range out.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Algorithm, k.State, strings.Join(k.Usage, ","), when(k.NotBefore), when(k.NotAfter))
	}
	return tw.Flush()
}

func keysSigned(ctx context.Context, c *restclient.Client, stdout io.Writer, id string) error {
	var out struct {
		Signed []struct {
			Repository string `json:"repository"`
			Digest     string `json:"digest"`
			attest.Finding
		} `json:"signed"`
	}
	if err := c.Do(ctx, "GET", "/api/v1/keys/"+id+"/signed", nil, nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tDIGEST\tKIND\tSTATUS\tCURRENT")
	for _, s := range out.Signed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", s.Repository, s.Digest, s.Kind, s.Status, s.Superseded == nil)
	}
	return tw.Flush()
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// runVerify is `packreg verify NAME:VERSION`.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, server := newAPIFlags("packreg verify", stderr, verifyUsage)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	cached := fs.Bool("cached", false, "report the stored findings without re-checking them")
	// Flags anywhere, as pack publish takes them (`verify x:1.0.0 --json`).
	pos, err := parseAnywhere(fs, args)
	if err != nil {
		return flagError(stderr, err)
	}
	ref := strings.Join(pos, " ")
	i := strings.LastIndex(ref, ":")
	if len(pos) != 1 || i <= 0 || i == len(ref)-1 {
		fmt.Fprint(stderr, verifyUsage)
		return 2
	}
	name, version := ref[:i], ref[i+1:]
	method := "POST"
	if *cached {
		method = "GET"
	}
	c := restclient.New(*server, cliHTTP(*server, 5*time.Minute))
	var rep attest.Report
	path := "/api/v1/packs/" + escapeName(name) + "/versions/" + url.PathEscape(version) + "/verification"
	if err := c.Do(ctx, method, path, nil, nil, &rep); err != nil {
		fmt.Fprintln(stderr, "packreg verify:", err)
		return 3
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printReport(stdout, name, version, &rep)
	}
	if !rep.Policy.Satisfied {
		return 1
	}
	return 0
}

// escapeName escapes each segment of a pack name, keeping its slashes.
func escapeName(n string) string {
	segs := strings.Split(n, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func printReport(w io.Writer, name, version string, rep *attest.Report) {
	fmt.Fprintf(w, "%s:%s %s\nverification: %s\n", name, version, rep.Digest, rep.Verification)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSTATUS\tKEY\tALGORITHM\tPREDICATE\tFORMAT\tREFERRER\tREASON")
	var keyless []attest.Finding
	for _, f := range append(append([]attest.Finding{}, rep.Signatures...), rep.Attestations...) {
		status := f.Status
		if f.Superseded != nil {
			status += " (superseded)"
		}
		key := "-"
		switch {
		case f.KeyID != "":
			key = f.KeyID[:min(12, len(f.KeyID))]
			if f.KeyName != "" {
				key += " " + f.KeyName + "/" + f.KeyState
			}
		case f.Identity != nil:
			key = fmt.Sprintf("keyless #%d", len(keyless)+1)
			keyless = append(keyless, f)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Kind, status, key, dash(f.Algorithm),
			dash(f.PredicateType), dash(f.Format), dash(string(f.Referrer)), dash(f.Reason))
	}
	tw.Flush()
	printSigners(w, keyless)
	switch {
	case !rep.Policy.Matched && rep.Policy.Satisfied:
		fmt.Fprintln(w, "policy: none for this repository (permissive)")
	case rep.Policy.Satisfied:
		fmt.Fprintln(w, "policy: satisfied")
	default:
		fmt.Fprintln(w, "policy: NOT satisfied:")
		for _, p := range rep.Policy.Problems {
			fmt.Fprintln(w, "  -", p)
		}
	}
}

// printSigners lists who signed the keyless findings, numbered as the
// table's KEY column numbers them.
func printSigners(w io.Writer, fs []attest.Finding) {
	if len(fs) > 0 {
		fmt.Fprintln(w, "keyless signers:")
	}
	for i, f := range fs {
		id := f.Identity
		fmt.Fprintf(w, "  #%d %s\n     issuer %s\n", i+1, id.Subject, id.Issuer)
		if id.SourceRepositoryURI != "" || id.SourceRepositoryRef != "" {
			fmt.Fprintf(w, "     source %s %s\n", dash(id.SourceRepositoryURI), id.SourceRepositoryRef)
		}
		if id.BuildTrigger != "" {
			fmt.Fprintf(w, "     trigger %s\n", id.BuildTrigger)
		}
		if id.SignedAt != nil {
			fmt.Fprintf(w, "     signed %s (%s), trusted root %s\n", id.SignedAt.UTC().Format(time.RFC3339), id.TimeSource, dash(id.TrustedRoot))
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
