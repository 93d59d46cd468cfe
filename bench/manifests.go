package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	godigest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const manifestRepo = "bench/manifests"

// imageRefs are the config and layer every bench manifest points at: the
// registry must check they exist on each PUT, which is part of the cost.
type imageRefs struct {
	config, layer          []byte
	configDigest, layerDig string
}

func newImageRefs() imageRefs {
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := genBytes(3_000_000_000, 1024)
	return imageRefs{config: cfg, layer: layer, configDigest: sha256Digest(cfg), layerDig: sha256Digest(layer)}
}

// push uploads the config and layer into repo (each repository needs its
// own link to them before a manifest may reference them).
func (b *bench) pushRefs(ctx context.Context, repo string, refs imageRefs) error {
	if _, err := b.c.pushSmall(ctx, repo, refs.config, refs.configDigest); err != nil {
		return fmt.Errorf("config blob: %w", err)
	}
	if _, err := b.c.pushSmall(ctx, repo, refs.layer, refs.layerDig); err != nil {
		return fmt.Errorf("layer blob: %w", err)
	}
	return nil
}

// manifest builds a small OCI image manifest. seq goes into an annotation so
// every manifest has its own digest: pushing the same bytes twice could be
// answered from what the registry already has.
func (refs imageRefs) manifest(seq int) []byte {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: godigest.Digest(refs.configDigest),
			Size: int64(len(refs.config))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: godigest.Digest(refs.layerDig),
			Size: int64(len(refs.layer))}},
		Annotations: map[string]string{
			ocispec.AnnotationCreated: "2026-01-01T00:00:00Z",
			"dev.packreg.bench.seq":   strconv.Itoa(seq),
		},
	}
	body, _ := json.Marshal(m)
	return body
}

// manifests measures manifest PUT (new tag, new manifest each time) and GET
// by tag, with 1 and 16 concurrent clients, and the listing of a 1,000-tag
// repository, on packreg and Distribution side by side.
func (b *bench) manifests(ctx context.Context) error {
	refs := newImageRefs()
	for _, t := range b.targets {
		if _, err := b.on(t, func() (result, error) { return result{}, b.pushRefs(ctx, manifestRepo, refs) }); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	n := b.opt.ops
	for _, workers := range []int{1, 16} {
		row := sideRow{
			label:  fmt.Sprintf("manifest PUT by tag, %s", clients(workers)),
			metric: metricRate,
			extra:  rateExtra,
			warm: b.warmUp(workers, func(ctx context.Context, t *target, i int) error {
				return t.c.putManifest(ctx, manifestRepo, fmt.Sprintf("warm-c%d-%d", workers, i), refs.manifest(80_000_000+workers*100_000+i))
			}),
			run: func(ctx context.Context, t *target, round int) (result, error) {
				bodies := make([][]byte, n)
				for i := range bodies {
					bodies[i] = refs.manifest(workers*1_000_000 + round*n + i)
				}
				return b.load(ctx, n, workers, func(ctx context.Context, i int) error {
					return t.c.putManifest(ctx, manifestRepo, benchTag(workers, round, i), bodies[i])
				})
			},
		}
		if err := b.side(ctx, row); err != nil {
			return err
		}
	}
	for _, workers := range []int{1, 16} {
		row := sideRow{
			label:  fmt.Sprintf("manifest GET by tag, %s", clients(workers)),
			metric: metricRate,
			extra:  rateExtra,
			warm: b.warmUp(workers, func(ctx context.Context, t *target, i int) error {
				return t.c.getManifest(ctx, manifestRepo, benchTag(16, 0, i%n))
			}),
			run: func(ctx context.Context, t *target, round int) (result, error) {
				// The tags the first 16-client PUT sample created.
				return b.load(ctx, n, workers, func(ctx context.Context, i int) error {
					return t.c.getManifest(ctx, manifestRepo, benchTag(16, 0, i))
				})
			},
		}
		if err := b.side(ctx, row); err != nil {
			return err
		}
	}
	return b.listSide(ctx, refs)
}

// benchTag names the tag of manifest i of a PUT sample.
func benchTag(workers, round, i int) string { return fmt.Sprintf("c%d-r%d-%d", workers, round, i) }

// listSide times GET tags/list?n=1000 of a repository holding exactly
// 1,000 tags (opt.listTags: the "tags list of 1,000"; the tags
// suite walks a far larger repository on packreg alone): one page, the
// whole list. Each target's repository is filled before its first sample
// (not timed).
func (b *bench) listSide(ctx context.Context, refs imageRefs) error {
	const repo = "bench/list"
	listSize := b.opt.listTags
	row := sideRow{
		label:  fmt.Sprintf("tags/list of a %s-tag repository, 1 client", fmtCount(listSize)),
		metric: metricP50ms,
		extra:  rateExtra,
		run: func(ctx context.Context, t *target, round int) (result, error) {
			if round == 0 {
				if err := b.pushRefs(ctx, repo, refs); err != nil {
					return result{}, err
				}
				if _, err := b.load(ctx, listSize, 16, func(ctx context.Context, i int) error {
					return t.c.putManifest(ctx, repo, tagName(i), refs.manifest(50_000_000+i))
				}); err != nil {
					return result{}, fmt.Errorf("fill: %w", err)
				}
			}
			return b.loadChecked(ctx, b.opt.listReqs, 1, func(ctx context.Context, i int) (func() error, error) {
				a, err := t.c.fetchTags(ctx, repo, listSize, "")
				return func() error {
					tags, err := a.tags()
					if err == nil && len(tags) != listSize {
						err = fmt.Errorf("listed %d tags, want %d", len(tags), listSize)
					}
					return err
				}, err
			})
		},
	}
	return b.side(ctx, row)
}
