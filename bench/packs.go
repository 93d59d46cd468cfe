package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	godigest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	secPacks = "Packs API at scale (GET /api/v1/packs, default page of 100, newest first, 1 client)"
	// packNames is how many packs the versions are spread over: a
	// registry's versions belong to many packs, not one.
	packNames  = 100
	packPrefix = "bench/packs/"
)

// packsSuite fills the registry with 10,000 pack versions (-quick: 1,000),
// pushed over OCI as packs are by oras, waits until the pack index lists
// them all and then until the server's background work is done (every
// outbox consumer's queue empty: awaitQueuesEmpty), then times the first
// page of GET /api/v1/packs: what the dashboard and `packreg pack list`
// ask first, of a settled registry.
func (b *bench) packsSuite(ctx context.Context) error {
	n := b.opt.packVersions
	empty := []byte("{}")
	file := genBytes(6_000_000_000, 1024)
	for p := range packNames {
		repo := packPrefix + fmt.Sprintf("p%03d", p)
		for _, blob := range [][]byte{empty, file} {
			if _, err := b.c.pushSmall(ctx, repo, blob, sha256Digest(blob)); err != nil {
				return b.failed(ctx, secPacks, "setup", err)
			}
		}
	}
	label := fmt.Sprintf("setup: push %s pack versions (%d packs), 16 clients", fmtCount(n), packNames)
	logf("%s: %s", b.backend, label)
	fill, err := b.load(ctx, n, 16, func(ctx context.Context, i int) error {
		repo := packPrefix + fmt.Sprintf("p%03d", i%packNames)
		return b.c.putManifest(ctx, repo, fmt.Sprintf("1.0.%d", i/packNames), packManifest(empty, file, i))
	})
	if err != nil {
		return b.failed(ctx, secPacks, label, err)
	}
	b.set(secPacks, label, rateCell(fill))
	start := time.Now()
	if err := b.awaitPackCount(ctx, n); err != nil {
		return b.failed(ctx, secPacks, "index every version", err)
	}
	b.set(secPacks, "setup: until the pack index lists them all", fmtDur(time.Since(start)))
	// The index lists a version before the outbox's consumers are done
	// with its push: timed then, the page shares the database with their
	// catch-up (the compliance worker's was 18-170 s after this fill).
	start = time.Now()
	if err := b.awaitQueuesEmpty(ctx); err != nil {
		return b.failed(ctx, secPacks, "empty the background queues", err)
	}
	b.set(secPacks, "setup: until the background queues are empty", fmtSecs(time.Since(start)))

	label = fmt.Sprintf("first page of a %s-version registry", fmtCount(n))
	logf("%s: %s x%d", b.backend, label, b.opt.listReqs)
	r, err := b.load(ctx, b.opt.listReqs, 1, func(ctx context.Context, _ int) error {
		page, err := b.packsPage(ctx, url.Values{})
		if err == nil && len(page.Items) != 100 {
			err = fmt.Errorf("first page holds %d versions, want 100", len(page.Items))
		}
		return err
	})
	if err != nil {
		return b.failed(ctx, secPacks, label, err)
	}
	b.set(secPacks, label, rateCell(r))
	return nil
}

// packManifest is pack version i: the empty config, one titled file, and
// an annotation that gives every version its own digest.
func packManifest(config, file []byte, i int) []byte {
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.packreg.pack.v1",
		Config:       ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: godigest.Digest(sha256Digest(config)), Size: int64(len(config))},
		Layers: []ocispec.Descriptor{{MediaType: "application/vnd.packreg.pack.file.v1", Digest: godigest.Digest(sha256Digest(file)),
			Size: int64(len(file)), Annotations: map[string]string{ocispec.AnnotationTitle: "rules.yaml"}}},
		Annotations: map[string]string{"dev.packreg.bench.seq": strconv.Itoa(i)},
	}
	body, _ := json.Marshal(m)
	return body
}

type packsPage struct {
	Items []json.RawMessage `json:"items"`
	Next  string            `json:"next"`
}

func (b *bench) packsPage(ctx context.Context, q url.Values) (packsPage, error) {
	var page packsPage
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.c.url("/api/v1/packs?"+q.Encode()), nil)
	resp, err := b.c.hc.Do(req)
	if err != nil {
		return page, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return page, fmt.Errorf("GET /api/v1/packs: status %d: %s", resp.StatusCode, msg)
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	return page, err
}

// awaitPackCount polls, walking every page under packPrefix, until the
// pack index lists n versions (the index follows OCI pushes
// asynchronously).
func (b *bench) awaitPackCount(ctx context.Context, n int) error {
	return poll(ctx, 500*time.Millisecond, 5*time.Minute, func() error {
		got, cursor := 0, ""
		for {
			q := url.Values{"name": {packPrefix}, "limit": {"1000"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			page, err := b.packsPage(ctx, q)
			if err != nil {
				return pending("%v", err)
			}
			got += len(page.Items)
			if cursor = page.Next; cursor == "" || len(page.Items) == 0 {
				break
			}
		}
		if got != n {
			return pending("the pack index lists %d versions under %s, want %d", got, packPrefix, n)
		}
		return nil
	})
}

// queueConsumers are the outbox consumers whose queues awaitQueuesEmpty
// waits out; each must be in the scrape, so a server that does not report
// one fails the wait rather than skipping it.
var queueConsumers = []string{"attest", "audit", "compliance"}

// awaitQueuesEmpty polls the server's /metrics until
// packreg_outbox_pending_events is 0 for every consumer.
func (b *bench) awaitQueuesEmpty(ctx context.Context) error {
	return poll(ctx, 250*time.Millisecond, 10*time.Minute, func() error {
		queued, err := b.pendingEvents(ctx)
		if err != nil {
			return pending("%v", err)
		}
		for _, c := range queueConsumers {
			if n, ok := queued[c]; !ok || n != 0 {
				return pending("outbox queues: %v", queued)
			}
		}
		return nil
	})
}

// pendingEvents reads packreg_outbox_pending_events by consumer from one
// scrape.
func (b *bench) pendingEvents(ctx context.Context) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.c.url("/metrics"), nil)
	resp, err := b.c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(text), "\n") {
		rest, ok := strings.CutPrefix(line, `packreg_outbox_pending_events{consumer="`)
		if !ok {
			continue
		}
		name, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out, nil
}
