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
// by tag, with 1 and 16 concurrent clients.
func (b *bench) manifests(ctx context.Context) error {
	refs := newImageRefs()
	if err := b.pushRefs(ctx, manifestRepo, refs); err != nil {
		return err
	}
	n := b.opt.ops
	for _, workers := range []int{1, 16} {
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = refs.manifest(workers*1_000_000 + i)
		}
		label := fmt.Sprintf("PUT by tag, %s", clients(workers))
		logf("%s: manifest %s x%d", b.backend, label, n)
		r, err := b.load(ctx, n, workers, func(ctx context.Context, i int) error {
			return b.c.putManifest(ctx, manifestRepo, fmt.Sprintf("c%d-%d", workers, i), bodies[i])
		})
		if err != nil {
			if err := b.failed(ctx, secManifests, label, err); err != nil {
				return err
			}
			continue
		}
		b.set(secManifests, label, rateCell(r))
	}
	for _, workers := range []int{1, 16} {
		label := fmt.Sprintf("GET by tag, %s", clients(workers))
		logf("%s: manifest %s x%d", b.backend, label, n)
		r, err := b.load(ctx, n, workers, func(ctx context.Context, i int) error {
			return b.c.getManifest(ctx, manifestRepo, fmt.Sprintf("c16-%d", i))
		})
		if err != nil {
			if err := b.failed(ctx, secManifests, label, err); err != nil {
				return err
			}
			continue
		}
		b.set(secManifests, label, rateCell(r))
	}
	return nil
}
