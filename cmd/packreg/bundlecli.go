package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/packreg/packreg/bundle"
	"github.com/packreg/packreg/internal/restclient"
	"github.com/packreg/packreg/storage"
)

// `packreg export` and `packreg import` are clients of a running server's
// bundle API: the bundle goes through files, from one server to another
// that may have no network path to it.

const exportUsage = `Usage:
  packreg export [flags] -o FILE.tar|DIR/
      --include GLOB --exclude GLOB (repeatable)   --versions RANGE   --states active,deprecated,archived
      --since PREVIOUS.tar|PREVIOUS-DIR/|CURSOR    only what changed after the previous bundle of the chain

-o DIR/ (a trailing slash, or an existing directory) writes the directory
form: an OCI image layout that oras (--oci-layout) and regctl (ocidir://)
read. Every command takes --server URL (default $PACKREG_URL or
http://127.0.0.1:5000) and --json. Exit status: 0 done, 1 refused, 2 usage,
3 server unreachable or the bundle cut short.
`

const importUsage = `Usage:
  packreg import [flags] FILE.tar|DIR
      --allow-unsigned   take a bundle no key trusted for bundles vouches for (the audit trail says so)
      --no-wait          return once the bundle is checked, while it publishes

Exit status: 0 imported (or applied before), 1 refused or failed or a
version in conflict, 2 usage, 3 server unreachable.
`

// runExport is `packreg export`.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("packreg export", exportUsage, stdout, stderr)
	var req bundle.ExportRequest
	var include, exclude, states strList
	c.fs.Var(&include, "include", "name `GLOB` of the packs to carry (repeatable)")
	c.fs.Var(&exclude, "exclude", "name `GLOB` of the packs to leave out (repeatable)")
	c.fs.StringVar(&req.Versions, "versions", "", "semver `RANGE` of the versions to carry")
	c.fs.Var(&states, "states", "lifecycle `STATES` to carry (default active,deprecated)")
	since := c.fs.String("since", "", "the previous bundle of the chain (`FILE.tar`, DIR/ or its cursor)")
	out := c.fs.String("o", "", "where to write the bundle: `FILE.tar` or DIR/")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(stderr, err)
	}
	if len(pos) != 0 || *out == "" {
		return c.usageError("export takes no arguments, and -o")
	}
	req.Include, req.Exclude, req.States = include, exclude, states
	if *since != "" {
		if req.Since, err = sinceCursor(ctx, *since); err != nil {
			fmt.Fprintln(stderr, "packreg: --since:", err)
			return 2
		}
	}
	asDir := strings.HasSuffix(*out, "/") || strings.HasSuffix(*out, string(filepath.Separator))
	if fi, err := os.Stat(*out); err == nil && fi.IsDir() {
		asDir = true
	}
	if asDir {
		// Checked before anything is asked of the server: a failed export
		// removes what it wrote, so it must own the whole directory.
		if entries, err := os.ReadDir(*out); err == nil && len(entries) > 0 {
			return c.usageError("-o %s is a directory that is not empty: a bundle is written to a new or empty one", *out)
		}
	}

	api := restclient.New(*c.server, nil)
	hreq, err := api.NewRequest(ctx, http.MethodPost, bundle.ExportPath, nil, jsonBody(req))
	if err != nil {
		return c.fail(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	// No timeout: a bundle streams for as long as it is big.
	resp, err := cliHTTP(*c.server, 0).Do(hreq)
	if err != nil {
		return c.fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.fail(restclient.Refusal(resp, restclient.DefaultMaxAnswer))
	}
	h := resp.Header
	items, _ := strconv.Atoi(h.Get(bundle.HeaderItems))
	bar := newProgressBar(stderr, "export", resp.ContentLength, items)
	body := &countingReader{r: resp.Body, tick: bar.bytes}
	if asDir {
		err = bundle.WriteDir(ctx, body, *out, func(w bundle.Written) { bar.items(w.Items) })
	} else {
		err = writeFileAtomic(*out, body)
	}
	bar.done()
	if err == nil && resp.ContentLength >= 0 && body.n != resp.ContentLength {
		err = fmt.Errorf("the bundle was cut short: %d of %d bytes", body.n, resp.ContentLength)
	}
	if err != nil {
		if asDir {
			_ = os.RemoveAll(*out)
		}
		fmt.Fprintln(stderr, "packreg: export:", err)
		return 3
	}
	summary := map[string]any{"digest": h.Get(bundle.HeaderDigest), "chain": h.Get(bundle.HeaderChain),
		"sequence": h.Get(bundle.HeaderSequence), "cursor": h.Get(bundle.HeaderCursor), "items": items, "bytes": body.n, "path": *out}
	if *c.asJSON {
		c.printJSON(summary)
		return 0
	}
	fmt.Fprintf(stdout, "bundle %s (chain %s, sequence %s): %d items, %d bytes written to %s\ncursor: %s\n",
		summary["digest"], summary["chain"], summary["sequence"], items, body.n, *out, summary["cursor"])
	return 0
}

// sinceCursor is the cursor --since names: a previous bundle's (its file
// or directory), or a cursor as given.
func sinceCursor(ctx context.Context, since string) (string, error) {
	if _, err := os.Stat(since); err != nil {
		if _, perr := bundle.ParseCursor(since); perr != nil {
			return "", fmt.Errorf("%q is neither a bundle nor a cursor (%v)", since, perr)
		}
		return since, nil
	}
	h, err := bundle.ReadHeader(ctx, since)
	if err != nil {
		return "", err
	}
	return bundle.CursorOf(h.Doc, h.Digest).String(), nil
}

// writeFileAtomic writes r to path through a temporary file beside it,
// renamed once r ended cleanly: a cut stream leaves no file to mistake
// for a bundle.
func writeFileAtomic(path string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.Copy(w, r); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// runImport is `packreg import`.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("packreg import", importUsage, stdout, stderr)
	allowUnsigned := c.fs.Bool("allow-unsigned", false, "take a bundle no key trusted for bundles vouches for")
	noWait := c.fs.Bool("no-wait", false, "return once the bundle is checked")
	pos, err := c.parse(args)
	if err != nil {
		return flagError(stderr, err)
	}
	if len(pos) != 1 {
		return c.usageError("import takes one bundle: FILE.tar or DIR")
	}
	body, size, err := openBundle(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "packreg: import:", err)
		return 2
	}
	defer body.Close()
	q := url.Values{}
	if *allowUnsigned {
		q.Set("allowUnsigned", "true")
	}
	bar := newProgressBar(stderr, "import", size, 0)
	api := restclient.New(*c.server, cliHTTP(*c.server, 0)) // no timeout: the upload is as long as the bundle
	hreq, err := api.NewRequest(ctx, http.MethodPost, bundle.ImportPath, q, &countingReader{r: body, tick: bar.bytes})
	if err != nil {
		return c.fail(err)
	}
	hreq.ContentLength = size
	hreq.Header.Set("Content-Type", "application/x-tar")
	var rep bundle.Report
	_, err = api.Send(hreq, &rep)
	bar.done()
	if err != nil {
		return c.fail(err)
	}
	if !*noWait {
		poll := restclient.New(*c.server, cliHTTP(*c.server, time.Minute))
		bar = newProgressBar(stderr, "publish", 0, rep.Progress.VersionsTotal)
		for rep.State == storage.ImportPublishing || rep.State == storage.ImportReceiving {
			select {
			case <-ctx.Done():
				return c.fail(ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
			if err := poll.Do(ctx, http.MethodGet, bundle.ImportsPath+"/"+url.PathEscape(rep.ID), nil, nil, &rep); err != nil {
				return c.fail(err)
			}
			bar.bytes(rep.Progress.BytesCopied)
			bar.items(rep.Progress.VersionsDone)
		}
		bar.done()
	}
	return c.importReport(&rep)
}

// openBundle opens a bundle archive, or the archive of a directory form.
func openBundle(path string) (io.ReadCloser, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() {
		return bundle.DirArchive(path)
	}
	f, err := os.Open(path)
	return f, fi.Size(), err
}

// importReport prints an import's outcome and returns the exit status.
func (c *cli) importReport(rep *bundle.Report) int {
	status := 0
	switch rep.State {
	case storage.ImportFailed, storage.ImportRefused:
		status = 1
	}
	for _, v := range rep.Versions {
		if v.Result == bundle.ResultConflict || v.Result == bundle.ResultFailed {
			status = 1
		}
	}
	if *c.asJSON {
		c.printJSON(rep)
		return status
	}
	if b := rep.Bundle; b != nil {
		signed := "unsigned (allowed)"
		if b.SignedBy != nil {
			signed = "signed by " + b.SignedBy.Name + " (" + b.SignedBy.ID + ")"
		}
		fmt.Fprintf(c.stdout, "import %s: %s\nbundle %s from %s, chain %s sequence %d, %s\n",
			rep.ID, rep.State, b.Digest, b.Source, b.Chain, b.Sequence, signed)
	} else {
		fmt.Fprintf(c.stdout, "import %s: %s\n", rep.ID, rep.State)
	}
	if rep.State == storage.ImportAlreadyApplied && rep.AppliedAt != nil {
		fmt.Fprintf(c.stdout, "applied here before, at %s: nothing changed\n", rep.AppliedAt.Format(time.RFC3339))
	}
	var rows []string
	for _, v := range rep.Versions {
		rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", v.Name, v.Version, v.Content, v.Status, v.Result, v.Error))
	}
	if len(rows) > 0 {
		c.output(nil, "NAME\tVERSION\tCONTENT\tSTATE\tRESULT\tERROR", rows)
	}
	if rep.Error != nil {
		fmt.Fprintf(c.stderr, "packreg: %s (%s)\n", rep.Error.Message, rep.Error.Code)
	}
	return status
}

// countingReader counts what goes through it, telling tick.
type countingReader struct {
	r    io.Reader
	n    int64
	tick func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.tick != nil && n > 0 {
		c.tick(c.n)
	}
	return n, err
}

// progressBar draws bytes and items on a terminal, at most a few times a
// second; it draws nothing when stderr is not a terminal.
type progressBar struct {
	mu         sync.Mutex
	w          io.Writer
	on         bool
	label      string
	total      int64
	totalItems int
	n          int64
	nItems     int
	last       time.Time
}

func newProgressBar(w io.Writer, label string, total int64, totalItems int) *progressBar {
	f, ok := w.(*os.File)
	on := false
	if ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progressBar{w: w, on: on, label: label, total: total, totalItems: totalItems}
}

func (b *progressBar) bytes(n int64) { b.update(func() { b.n = n }) }
func (b *progressBar) items(n int)   { b.update(func() { b.nItems = n }) }

func (b *progressBar) update(set func()) {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	set()
	if time.Since(b.last) < 200*time.Millisecond {
		return
	}
	b.last = time.Now()
	b.draw()
}

func (b *progressBar) draw() {
	line := fmt.Sprintf("%s: %s", b.label, humanBytes(b.n))
	if b.total > 0 {
		line += fmt.Sprintf(" / %s (%d%%)", humanBytes(b.total), b.n*100/b.total)
	}
	if b.nItems > 0 || b.totalItems > 0 {
		line += fmt.Sprintf(", %d", b.nItems)
		if b.totalItems > 0 {
			line += fmt.Sprintf(" / %d", b.totalItems)
		}
		line += " items"
	}
	fmt.Fprintf(b.w, "\r\033[K%s", line)
}

func (b *progressBar) done() {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw()
	fmt.Fprintln(b.w)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// jsonBody is v as a JSON request body.
func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v) // an ExportRequest always marshals
	return bytes.NewReader(b)
}
