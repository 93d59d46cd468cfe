package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	godigest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const secBundles = "Offline bundles (packreg's REST API: POST /api/v1/export to a file, POST /api/v1/import into a second server)"

// bundleParts is how many packs the bundle carries: its size in a few
// large files, as a bundle of real packs would be.
const bundleParts = 8

// bundles measures an offline bundle of o.bundleSize bytes of packs: its
// export, streamed into a file (written and fsync'd, as `packreg export
// -o` does), and its import into a second, empty server on the same disk,
// until the import has published everything; each as MB/s next to the
// disk's write limit measured just before, with the peak RSS of the
// server doing the work. An import writes every byte twice (staging, then
// the blob store) and hashes it twice.
func (b *bench) bundles(ctx context.Context) error {
	size := b.opt.bundleSize / bundleParts
	logf("%s: pushing %d packs of %s for the bundle", b.backend, bundleParts, fmtSize(size))
	for i := range bundleParts {
		if err := b.pushPack(ctx, fmt.Sprintf("bench/bundle-%d", i), uint64(2_000_000_000+i), size); err != nil {
			return b.failed(ctx, secBundles, "push the packs", err)
		}
	}
	if err := b.awaitPacks(ctx, "bench/bundle-", bundleParts); err != nil {
		return b.failed(ctx, secBundles, "push the packs", err)
	}
	logf("%s: re-measuring sha256 and disk write before the bundle", b.backend)
	if err := b.rep.limits.measure(b.diskData, "before the bundle", false); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	file := filepath.Join(b.work, "bundle.tar")
	defer os.Remove(file)

	label := fmt.Sprintf("export %s (%d packs) to a file", fmtSize(b.opt.bundleSize), bundleParts)
	logf("%s: %s", b.backend, label)
	var n int64
	r, peak, hwm, err := b.measured(ctx, b.srv, func(ctx context.Context) error {
		var err error
		n, err = b.export(ctx, file)
		return err
	})
	if err != nil {
		return b.failed(ctx, secBundles, label, err)
	}
	r.bytes = n
	b.setCell(secBundles, label, b.diskCell(r))
	b.set(secBundles, "  exporting server: peak VmRSS, VmHWM", fmt.Sprintf("%s, %s", fmtKB(peak), fmtKB(hwm)))

	dir := filepath.Join(b.work, "import-data")
	imp, err := startServer(ctx, b.bin, []string{"--data", dir}, filepath.Join(b.work, "server-import.log"))
	if err != nil {
		return b.failed(ctx, secBundles, "start the importing server", err)
	}
	defer os.RemoveAll(dir)
	defer imp.stop()
	ic, err := newClient(imp.base)
	if err != nil {
		return err
	}
	defer ic.close()
	label = fmt.Sprintf("import it (%.1f MB) into an empty server, until published", float64(n)/1e6)
	logf("%s: %s", b.backend, label)
	var checked time.Duration
	r, peak, hwm, err = b.measured(ctx, imp, func(ctx context.Context) error {
		var err error
		checked, err = importBundle(ctx, ic, file, n)
		return err
	})
	if err != nil {
		return b.failed(ctx, secBundles, label, err)
	}
	r.bytes = n
	b.setCell(secBundles, label, b.diskCell(r))
	b.set(secBundles, "  of which received and checked (answered 202)", fmt.Sprintf("%s in %s", fmtMBps(float64(n)/1e6/checked.Seconds()), checked.Round(time.Millisecond)))
	b.set(secBundles, "  importing server: peak VmRSS, VmHWM", fmt.Sprintf("%s, %s", fmtKB(peak), fmtKB(hwm)))
	return nil
}

// diskCell is a bundle's MB/s next to the disk write limit around it.
func (b *bench) diskCell(r result) cell {
	run := b.rep.limits.latest()
	return func(l *limits) string {
		w := l.bracket(run, func(i int) float64 { return l.writeRuns[i] })
		return fmt.Sprintf("%s %4.0f%% of disk write  in %s  cpu %.2f", fmtMBps(r.mbps()), 100*r.mbps()/w, r.elapsed.Round(time.Millisecond), r.cores())
	}
}

// measured times fn, the CPU srv spends on it and its memory: the peak of
// VmRSS sampled every 50 ms, and VmHWM (reset before).
func (b *bench) measured(ctx context.Context, srv *server, fn func(context.Context) error) (r result, peak, hwm int64, err error) {
	_ = srv.resetHWM()
	sampler := srv.sampleRSS()
	cpu0, start := srv.cpu(), time.Now()
	err = fn(ctx)
	r = result{ops: 1, elapsed: time.Since(start), cpu: srv.cpu() - cpu0}
	peak, _ = sampler.stop()
	_, hwm, _ = srv.memKB()
	return r, peak, hwm, err
}

// pushPack pushes a pack of one file of size bytes as repo:1.0.0.
func (b *bench) pushPack(ctx context.Context, repo string, seed uint64, size int64) error {
	dg := b.dg.of(seed, size)
	if err := b.c.pushMonolithic(ctx, repo, seed, size, dg); err != nil {
		return err
	}
	empty := []byte("{}")
	if _, err := b.c.pushSmall(ctx, repo, empty, sha256Digest(empty)); err != nil {
		return err
	}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.packreg.pack.v1",
		Config:       ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: godigest.Digest(sha256Digest(empty)), Size: 2},
		Layers: []ocispec.Descriptor{{MediaType: "application/vnd.packreg.pack.file.v1", Digest: godigest.Digest(dg), Size: size,
			Annotations: map[string]string{ocispec.AnnotationTitle: "data.bin"}}},
	}
	body, _ := json.Marshal(m)
	return b.c.putManifest(ctx, repo, "1.0.0", body)
}

// awaitPacks waits until the pack index lists n versions under prefix.
func (b *bench) awaitPacks(ctx context.Context, prefix string, n int) error {
	return poll(ctx, 100*time.Millisecond, time.Minute, func() error {
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.c.url("/api/v1/packs?limit=100&name="+prefix), nil)
		resp, err := b.c.hc.Do(req)
		if err != nil {
			return pending("%v", err)
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			return pending("%v", err)
		}
		if len(list.Items) != n {
			return pending("the pack index lists %d versions of %s*, want %d", len(list.Items), prefix, n)
		}
		return nil
	})
}

// export streams a bundle of the bench's packs into file.
func (b *bench) export(ctx context.Context, file string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.c.url("/api/v1/export"),
		bytes.NewReader([]byte(`{"include":["bench/bundle-*"]}`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("POST /api/v1/export: %d %s", resp.StatusCode, msg)
	}
	f, err := os.Create(file)
	if err != nil {
		return 0, err
	}
	n, err := io.CopyBuffer(f, resp.Body, make([]byte, 1<<20))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("export cut short: %d of %d bytes", n, resp.ContentLength)
	}
	return n, err
}

// importBundle sends file (size bytes) to the server and polls the import
// until it has published; it returns how long the answer (202: received
// and checked) took.
func importBundle(ctx context.Context, c *client, file string, size int64) (time.Duration, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/api/v1/import?allowUnsigned=true"), f)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/x-tar")
	var imp struct {
		ID, State string
		Error     json.RawMessage
	}
	if err := c.doJSON(req, http.StatusAccepted, &imp); err != nil {
		return 0, err
	}
	checked := time.Since(start)
	for imp.State == "publishing" || imp.State == "receiving" {
		select {
		case <-ctx.Done():
			return checked, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/api/v1/imports/"+imp.ID), nil)
		if err := c.doJSON(req, http.StatusOK, &imp); err != nil {
			return checked, err
		}
	}
	if imp.State != "succeeded" {
		return checked, fmt.Errorf("import %s ended %s: %s", imp.ID, imp.State, imp.Error)
	}
	return checked, nil
}

// doJSON sends req, wants status want, and decodes the answer into out.
func (c *client) doJSON(req *http.Request, want int, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return errors.Join(fmt.Errorf("%s %s: answer", req.Method, req.URL.Path), err)
	}
	return nil
}
