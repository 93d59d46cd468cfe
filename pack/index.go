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

// maxConfigSize bounds the pack config blob the index reads.
const maxConfigSize = 1 << 20

// Observe is the registry event subscriber that keeps the pack index: a
// pack manifest tagged with a version becomes a pack version, however it
// arrived (oras, crane, REST publish); a version whose tag is deleted, or
// moved to something that is not a pack, or whose manifest is deleted, is
// recorded as deleted: its record stays (a version is never reused for
// other content), and pushing its content again brings it back in the
// state it had. Failures are logged: the push itself has succeeded.
func (s *Service) Observe(ctx context.Context, e registry.Event) {
	var err error
	switch e.Action {
	case registry.ActionTagMove:
		if !semver.Valid(e.Tag) {
			return
		}
		if oci.IsPack(e.ArtifactType) {
			_, _, err = s.index(ctx, e.Repo, e.Tag, e.Digest, e.Actor)
		} else {
			err = s.markDeleted(ctx, storage.PackQuery{Name: e.Repo}, e.Tag, "the tag moved to a manifest that is not a pack", e.Actor)
		}
	case registry.ActionTagDelete:
		if semver.Valid(e.Tag) {
			err = s.markDeleted(ctx, storage.PackQuery{Name: e.Repo}, e.Tag, "tag deleted", e.Actor)
		}
	case registry.ActionManifestDelete:
		err = s.markDeleted(ctx, storage.PackQuery{Name: e.Repo, Digest: e.Digest}, "", "manifest deleted", e.Actor)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "pack index not updated", "action", e.Action, "repo", e.Repo,
			"tag", e.Tag, "digest", e.Digest, "err", err)
	}
}

// markDeleted records the version tag of q.Name (or, with no tag, every
// version of q.Name pointing at q.Digest) as deleted, each with a history
// entry and a pack.delete audit record in one transaction. Most semver
// tags of plain images are no pack, and a read costs no write
// transaction, so it reads first.
func (s *Service) markDeleted(ctx context.Context, q storage.PackQuery, tag, reason, actor string) error {
	// A lifecycle change racing with this one makes the swap fail: read
	// again and retry, a few times.
	for attempt := 0; ; attempt++ {
		var vs []storage.PackVersion
		if tag != "" {
			v, err := s.store.GetPackVersion(ctx, q.Name, tag)
			if errors.Is(err, storage.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			vs = []storage.PackVersion{*v}
		} else {
			var err error
			if vs, err = s.store.ListPackVersions(ctx, q); err != nil {
				return err
			}
		}
		at := s.now()
		var changes []storage.PackStatusChange
		var recs []*storage.AuditRecord
		for _, v := range vs {
			if v.Status == storage.PackDeleted {
				continue
			}
			changes = append(changes, storage.PackStatusChange{Name: v.Name, Version: v.Version, From: v.Status,
				To: storage.PackDeleted, Reason: reason, Actor: actor, At: at})
			recs = append(recs, &storage.AuditRecord{At: at, Actor: actor, Action: ActionDelete, Target: v.Name + ":" + v.Version,
				Digest: v.Digest, Details: map[string]string{"from": v.Status, "reason": reason}})
		}
		if len(changes) == 0 {
			return nil
		}
		err := s.store.ChangePackStatus(ctx, changes, recs)
		if !errors.Is(err, storage.ErrConflict) || attempt == 3 {
			return err
		}
	}
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
		Size: m.Size, TotalSize: totalSize(shape, m.Size),
		Description: cfg.Description, Labels: cfg.Labels,
	}
	// Files are the layers with a title: the ones `oras pull` writes out.
	for _, l := range shape.Layers {
		if name := l.Annotations[oci.AnnotationTitle]; name != "" {
			v.Files = append(v.Files, storage.PackFile{Name: name, Digest: digest.Digest(l.Digest), Size: l.Size, MediaType: l.MediaType})
		}
	}
	return v, cfg, nil
}

// packConfig resolves the pack's facts: from the pack config blob when the
// manifest has one, otherwise from its annotations. Name and version are
// always the repository and tag, whatever the config claims.
func (s *Service) packConfig(ctx context.Context, repo string, shape *oci.Manifest) (Config, error) {
	var cfg Config
	if shape.Config.MediaType == oci.MediaTypePackConfig {
		reg, err := s.attached()
		if err != nil {
			return cfg, err
		}
		rc, _, err := reg.OpenBlob(ctx, repo, digest.Digest(shape.Config.Digest))
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
		if cfg, err = decodeConfig(b); err == nil {
			return cfg, nil
		}
		// A malformed config does not make the version disappear: it is
		// indexed with what the annotations say.
		s.log.WarnContext(ctx, "unreadable pack config", "repo", repo, "digest", shape.Config.Digest, "err", err)
	}
	cfg, problems := configFromAnnotations(shape.Annotations)
	for _, err := range problems {
		s.log.WarnContext(ctx, "pack annotation left out", "repo", repo, "err", err)
	}
	return cfg, nil
}
