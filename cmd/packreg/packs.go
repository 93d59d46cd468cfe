package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/pack"
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
	svc   *pack.Service
	trail audit.Log
	rec   *audit.Recorder
	log   *slog.Logger
}

// newPacks builds the pack service over the metadata store, and the audit
// recorder: it records the events a crash left unrecorded, then the pack
// policy when it changed since the last start, and from then on every
// event as soon as it is committed.
func newPacks(ctx context.Context, st *stores, c Config, log *slog.Logger, opts ...pack.Option) (*packs, error) {
	pol := c.Packs.Policy.policy()
	spool, err := spoolDir(c)
	if err != nil {
		return nil, err
	}
	p := &packs{
		trail: st.meta,
		svc: pack.New(st.meta, append([]pack.Option{pack.WithPolicy(pol), pack.WithLogger(log),
			pack.WithSpoolDir(spool), pack.WithMaxPublishSize(c.Packs.MaxPublishSize)}, opts...)...),
		rec: audit.NewRecorder(st.meta, log),
		log: log,
	}
	if err := p.rec.Flush(ctx); err != nil {
		// Run retries; the server is more use up than down meanwhile.
		log.Error("audit: recording the changes left unrecorded by the last run", "err", err)
	}
	if err := p.recordConfig(ctx, "packs.policy", pol.Settings()); err != nil {
		return nil, err
	}
	// After the Flush: the trail stays in the order things happened.
	p.rec.Watch()
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

// recordConfig records a configuration section in the audit trail when it
// changed since the last start.
func (p *packs) recordConfig(ctx context.Context, section string, settings map[string]string) error {
	if _, err := p.rec.RecordConfig(ctx, "system", section, settings); err != nil {
		return fmt.Errorf("audit: recording %s: %w", section, err)
	}
	return nil
}

// start records, every auditFlushInterval until ctx ends, what the
// immediate recording after a commit could not write.
func (p *packs) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.rec.Run(ctx, auditFlushInterval)
	}()
}

// auditFlushInterval is how often events not yet in the audit trail (a
// failed write, a replica that died) are looked for.
const auditFlushInterval = 10 * time.Second

// registryOptions are the hooks the registry is built with. The pack
// index is written by the registry's own transactions, its pack.publish
// and pack.delete events recorded after the change's, so the trail reads
// manifest.push, tag.move and then the pack.publish derived from them.
func (p *packs) registryOptions() []registry.Option {
	return p.svc.RegistryOptions()
}

// attach completes the wiring once the registry exists.
func (p *packs) attach(reg *registry.Registry) { p.svc.Attach(reg) }
