package pack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/semver"
	"github.com/packreg/packreg/storage"
)

// maxConfigSize bounds the pack config blob a manifest view reads; a
// push hands the index the config when it is at most
// registry.MaxInlineConfig (WithInlineConfig), which a valid pack config
// always is.
const maxConfigSize = 1 << 20

// The pack index is kept by the registry's writes themselves: the
// Service is a registry.Indexer, and what a push or a delete does to the
// index is written in the transaction that makes the push or the delete
// (storage.IndexChanges). However a pack version arrives (oras, crane,
// REST publish), it is recorded when its version tag moves to it; a
// version whose tag is deleted, or moved to something that is not a pack,
// or whose manifest is deleted, is recorded as deleted: its record stays
// (a version is never reused for other content), and pushing its content
// again brings it back in the state it had. A crash cannot separate a
// push from its version, and the index costs the push no write of its
// own.

var _ registry.Indexer = (*Service)(nil)

// IndexPush is the index changes of a manifest push: each semver tag of a
// pack manifest becomes (or stays) a version of it, each semver tag moved
// to something else deletes the version it named. It reads nothing: the
// registry hands it the parsed manifest and the config.
func (s *Service) IndexPush(ctx context.Context, c registry.ManifestCandidate) (storage.IndexChanges, error) {
	var ix storage.IndexChanges
	var v *storage.PackVersion
	for _, tag := range c.Tags {
		if !semver.Valid(tag) {
			continue
		}
		if !oci.IsPack(c.ArtifactType) {
			ix.Deletes = append(ix.Deletes, packDelete(c.Repo, tag, "", "the tag moved to a manifest that is not a pack", c.Actor))
			continue
		}
		if v == nil {
			v = s.describe(ctx, c)
		}
		tv := *v
		tv.Version = tag
		ix.Puts = append(ix.Puts, storage.PackPut{Version: &tv, Event: storage.Event{Actor: c.Actor, Action: ActionPublish,
			Target: c.Repo + ":" + tag, Digest: c.Digest,
			Details: map[string]string{"files": strconv.Itoa(len(tv.Files)), "size": strconv.FormatInt(tv.TotalSize, 10)}}})
	}
	return ix, nil
}

// IndexDelete is the index changes of a delete: the version a deleted
// semver tag names, or every version of a deleted manifest, is deleted.
func (s *Service) IndexDelete(ctx context.Context, repo, tag string, d digest.Digest) (storage.IndexChanges, error) {
	var ix storage.IndexChanges
	switch {
	case tag != "" && semver.Valid(tag):
		ix.Deletes = append(ix.Deletes, packDelete(repo, tag, "", "tag deleted", registry.ActorFrom(ctx)))
	case tag == "" && d != "":
		ix.Deletes = append(ix.Deletes, packDelete(repo, "", d, "manifest deleted", registry.ActorFrom(ctx)))
	}
	return ix, nil
}

func packDelete(repo, version string, d digest.Digest, reason, actor string) storage.PackDelete {
	return storage.PackDelete{Name: repo, Version: version, Digest: d, Reason: reason,
		Event: storage.Event{Actor: actor, Action: ActionDelete}}
}

// describe is the version record (without Version) of a pack manifest
// the registry has parsed and checked.
func (s *Service) describe(ctx context.Context, c registry.ManifestCandidate) *storage.PackVersion {
	shape := shapeOf(c)
	cfg := s.resolveConfig(ctx, c.Repo, shape, c.Config)
	v := &storage.PackVersion{
		Name: c.Repo, Digest: c.Digest, MediaType: c.MediaType, ArtifactType: c.ArtifactType,
		Size: int64(len(c.Payload)), TotalSize: totalSize(shape, int64(len(c.Payload))),
		Description: cfg.Description, Labels: cfg.Labels,
	}
	// Files are the layers with a title: the ones `oras pull` writes out.
	for _, l := range shape.Layers {
		if name := l.Annotations[oci.AnnotationTitle]; name != "" {
			v.Files = append(v.Files, storage.PackFile{Name: name, Digest: digest.Digest(l.Digest), Size: l.Size, MediaType: l.MediaType})
		}
	}
	return v
}

// shapeOf is the manifest of a candidate as packs read it; an index that
// says it is a pack reads as a pack without files.
func shapeOf(c registry.ManifestCandidate) *oci.Manifest {
	if c.Manifest == nil {
		return &oci.Manifest{Annotations: c.Annotations}
	}
	return c.Manifest
}

// resolveConfig is the pack's facts: from the pack config blob (config,
// its bytes) when the manifest has one, otherwise from its annotations.
// Name and version are always the repository and tag, whatever the config
// claims. A config that cannot be read or is malformed does not make the
// version disappear: the version is described by its annotations.
func (s *Service) resolveConfig(ctx context.Context, repo string, shape *oci.Manifest, config []byte) Config {
	if shape.Config.MediaType == oci.MediaTypePackConfig {
		cfg, err := decodeConfig(config)
		if config == nil {
			err = fmt.Errorf("config of %d bytes, more than %d", shape.Config.Size, registry.MaxInlineConfig)
		}
		if err == nil {
			return cfg
		}
		s.log.WarnContext(ctx, "unreadable pack config", "repo", repo, "digest", shape.Config.Digest, "err", err)
	}
	cfg, problems := configFromAnnotations(shape.Annotations)
	for _, err := range problems {
		s.log.WarnContext(ctx, "pack annotation left out", "repo", repo, "err", err)
	}
	return cfg
}

// readConfig reads the pack config of a stored manifest (for a manifest
// view: a read, not a push).
func (s *Service) readConfig(ctx context.Context, reg Registry, repo string, shape *oci.Manifest) ([]byte, error) {
	if shape.Config.MediaType != oci.MediaTypePackConfig || shape.Config.Size > registry.MaxInlineConfig {
		return nil, nil
	}
	rc, _, err := reg.OpenBlob(ctx, repo, digest.Digest(shape.Config.Digest))
	if errors.Is(err, oci.ErrBlobUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pack config: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("pack config: %w", err)
	}
	return b, nil
}
