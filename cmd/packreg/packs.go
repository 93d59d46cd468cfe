package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/pack/audit"
	"github.com/packreg/packreg/registry"
)

// PacksConfig is the `packs:` section of the config.
type PacksConfig struct {
	Policy PolicyConfig `yaml:"policy"`
	// MaxPublishSize caps one REST publish request in bytes, whatever
	// policy.max_pack_size says: it bounds the disk one request can fill
	// in DATA/spool while its files are hashed.
	MaxPublishSize int64 `yaml:"max_publish_size"`
}

// PolicyConfig is `packs.policy`: what the registry accepts for packs. It
// applies to pack manifests and version tags only, so plain OCI pushes and
// pulls are unaffected whatever it says.
type PolicyConfig struct {
	// ImmutableVersions: re-pushing a version with another digest is 403
	// DENIED (cosign's sha256-*.sig/.att/.sbom tags stay writable).
	ImmutableVersions bool `yaml:"immutable_versions"`
	// RequireSemver: pack manifests may only be tagged with SemVer 2.0.0
	// versions (no leading v).
	RequireSemver bool `yaml:"require_semver"`
	// MaxPackSize caps a pack (manifest, config and files) in bytes; 0: no cap.
	MaxPackSize int64 `yaml:"max_pack_size"`
	// AllowedLayerMediaTypes lists the media types a pack's files may have
	// (an entry ending in * is a prefix); empty: any.
	AllowedLayerMediaTypes []string `yaml:"allowed_layer_media_types"`
	// AllowArchivedPulls serves archived versions, with a warning, instead
	// of refusing them with 403 DENIED.
	AllowArchivedPulls bool `yaml:"allow_archived_pulls"`
}

func defaultPacksConfig() PacksConfig {
	p := pack.DefaultPolicy()
	return PacksConfig{MaxPublishSize: pack.DefaultMaxPublishSize, Policy: PolicyConfig{
		ImmutableVersions: p.ImmutableVersions,
		RequireSemver:     p.RequireSemver,
		MaxPackSize:       p.MaxPackSize,
		// Empty, not nil: `config print` shows the key, and what it prints
		// decodes back to the same value.
		AllowedLayerMediaTypes: []string{},
		AllowArchivedPulls:     p.AllowArchivedPulls,
	}}
}

func (c PolicyConfig) policy() pack.Policy {
	return pack.Policy{
		ImmutableVersions:      c.ImmutableVersions,
		RequireSemver:          c.RequireSemver,
		MaxPackSize:            c.MaxPackSize,
		AllowedLayerMediaTypes: c.AllowedLayerMediaTypes,
		AllowArchivedPulls:     c.AllowArchivedPulls,
	}
}

// packs is the pack service and the audit trail, wired around the registry.
type packs struct {
	store pack.Store
	svc   *pack.Service
	rec   *audit.Recorder
	log   *slog.Logger
}

// newPacks builds the pack service over the metadata store and records the
// pack policy in the audit trail when it changed since the last start.
func newPacks(ctx context.Context, st *stores, c Config, log *slog.Logger, opts ...pack.Option) (*packs, error) {
	store, ok := st.meta.(pack.Store)
	if !ok {
		return nil, fmt.Errorf("metadata store %T keeps no pack index or audit trail", st.meta)
	}
	pol := c.Packs.Policy.policy()
	spool, err := spoolDir(c)
	if err != nil {
		return nil, err
	}
	p := &packs{
		store: store,
		svc: pack.New(store, append([]pack.Option{pack.WithPolicy(pol), pack.WithLogger(log),
			pack.WithSpoolDir(spool), pack.WithMaxPublishSize(c.Packs.MaxPublishSize)}, opts...)...),
		rec: audit.NewRecorder(store, log),
		log: log,
	}
	if _, err := p.rec.RecordConfig(ctx, "system", "packs.policy", pol.Settings()); err != nil {
		return nil, fmt.Errorf("audit: recording the pack policy: %w", err)
	}
	return p, nil
}

// spoolDir makes DATA/spool, where the files of a REST publish wait while
// they are hashed: on the data disk, not in /tmp (often small, or memory).
func spoolDir(c Config) (string, error) {
	dir := filepath.Join(c.Data, "spool")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("publish spool: %w", err)
	}
	return dir, nil
}

// registryOptions are the hooks the registry is built with. The audit
// recorder comes first, so the trail reads manifest.push, tag.move and
// then the pack.publish the index derives from them.
func (p *packs) registryOptions() []registry.Option {
	return append([]registry.Option{registry.WithSubscriber(p.rec.Observe)}, p.svc.RegistryOptions()...)
}

// attach completes the wiring once the registry exists.
func (p *packs) attach(reg *registry.Registry) { p.svc.Attach(reg) }

// routes are the REST APIs to mount next to /v2/.
func (p *packs) routes() []apiRoute {
	return []apiRoute{
		{pack.Prefix, p.svc.Handler()},
		{audit.Prefix, audit.Handler(p.store, p.log)},
	}
}

// apiRoute is a REST API mounted at prefix (and everything below it).
type apiRoute struct {
	prefix string
	h      http.Handler
}
