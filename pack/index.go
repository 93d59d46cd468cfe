package pack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// maxConfigSize bounds the pack config blob the index reads.
const maxConfigSize = 1 << 20

// Observe is the registry event subscriber that keeps the pack index: a
// pack manifest tagged with a version becomes a pack version, however it
// arrived (oras, crane, REST publish); a version whose tag is deleted, or
// moved to something that is not a pack, or whose manifest is deleted, is
// forgotten. Failures are logged: the push itself has succeeded.
func (s *Service) Observe(ctx context.Context, e registry.Event) {
	var err error
	switch e.Action {
	case registry.ActionTagMove:
		if !ValidVersion(e.Tag) {
			return
		}
		if IsPack(e.ArtifactType) {
			_, _, err = s.index(ctx, e.Repo, e.Tag, e.Digest, e.Actor)
		} else {
			err = s.forget(ctx, e.Repo, e.Tag)
		}
	case registry.ActionTagDelete:
		if ValidVersion(e.Tag) {
			err = s.forget(ctx, e.Repo, e.Tag)
		}
	case registry.ActionManifestDelete:
		_, err = s.store.DeletePackDigest(ctx, e.Repo, e.Digest)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "pack index not updated", "action", e.Action, "repo", e.Repo,
			"tag", e.Tag, "digest", e.Digest, "err", err)
	}
}

// forget drops a version record, reading first: most semver tags of plain
// images are no pack, and a read costs no write transaction.
func (s *Service) forget(ctx context.Context, repo, tag string) error {
	if _, err := s.store.GetPackVersion(ctx, repo, tag); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}
	err := s.store.DeletePackVersion(ctx, repo, tag)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// index records repo:tag → d as a pack version (and the audit record of
// its publication, in the same transaction). It is idempotent: recording
// the same digest again changes nothing.
func (s *Service) index(ctx context.Context, repo, tag string, d digest.Digest, actor string) (*storage.PackVersion, bool, error) {
	reg, err := s.attached()
	if err != nil {
		return nil, false, err
	}
	m, err := reg.Manifest(ctx, repo, d.String())
	if err != nil {
		return nil, false, err
	}
	v, _, err := s.describe(ctx, m)
	if err != nil {
		return nil, false, fmt.Errorf("describe %s@%s: %w", repo, d, err)
	}
	v.Version = tag
	rec := &storage.AuditRecord{Actor: actor, Action: ActionPublish, Target: repo + ":" + tag, Digest: d,
		Details: map[string]string{"files": strconv.Itoa(len(v.Files)), "size": strconv.FormatInt(v.TotalSize, 10)}}
	changed, err := s.store.PutPackVersion(ctx, v, rec)
	return v, changed, err
}

// describe reads a pack manifest (and its config blob) into a version
// record (without Version) and the resolved pack config.
func (s *Service) describe(ctx context.Context, m *storage.Manifest) (*storage.PackVersion, Config, error) {
	shape, err := parseManifest(m.Payload)
	if err != nil {
		return nil, Config{}, err
	}
	cfg, err := s.packConfig(ctx, m.Repo, shape)
	if err != nil {
		return nil, Config{}, err
	}
	v := &storage.PackVersion{
		Name: m.Repo, Digest: m.Digest, MediaType: m.MediaType, ArtifactType: m.ArtifactType,
		Size: m.Size, TotalSize: shape.totalSize(m.Size),
		Description: cfg.Description, Labels: cfg.Labels,
	}
	// Files are the layers with a title: the ones `oras pull` writes out.
	for _, l := range shape.Layers {
		if name := l.Annotations[AnnotationTitle]; name != "" {
			v.Files = append(v.Files, storage.PackFile{Name: name, Digest: l.Digest, Size: l.Size, MediaType: l.MediaType})
		}
	}
	return v, cfg, nil
}

// packConfig resolves the pack's facts: from the pack config blob when the
// manifest has one, otherwise from its annotations. Name and version are
// always the repository and tag, whatever the config claims.
func (s *Service) packConfig(ctx context.Context, repo string, shape *ociManifest) (Config, error) {
	var cfg Config
	if shape.Config.MediaType == ConfigMediaType {
		reg, err := s.attached()
		if err != nil {
			return cfg, err
		}
		rc, _, err := reg.OpenBlob(ctx, repo, shape.Config.Digest)
		if err != nil {
			return cfg, fmt.Errorf("pack config: %w", err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
		if err != nil {
			return cfg, fmt.Errorf("pack config: %w", err)
		}
		if len(b) > maxConfigSize {
			return cfg, fmt.Errorf("pack config is larger than %d bytes", maxConfigSize)
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			// A malformed config does not make the version disappear: it is
			// indexed with what the annotations say.
			s.log.WarnContext(ctx, "unreadable pack config", "repo", repo, "digest", shape.Config.Digest, "err", err)
			cfg = Config{}
		} else {
			return cfg, nil
		}
	}
	a := shape.Annotations
	cfg.Description = a[AnnotationDescription]
	cfg.Created = a[AnnotationCreated]
	if raw := a[AnnotationLabels]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &cfg.Labels); err != nil {
			s.log.WarnContext(ctx, "unreadable pack labels annotation", "repo", repo, "err", err)
		}
	}
	return cfg, nil
}
