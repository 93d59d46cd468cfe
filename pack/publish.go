package pack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Limits on pack metadata.
const (
	maxDescriptionLen = 4096
	maxLabels         = 64
	maxLabelKeyLen    = 63
	maxLabelValueLen  = 256
)

func (md *Metadata) check() error {
	if err := checkName(md.Name); err != nil {
		return err
	}
	if err := checkVersion(md.Version); err != nil {
		return err
	}
	if err := checkDescription(md.Description); err != nil {
		return err
	}
	return checkLabels(md.Labels)
}

// checkDescription and checkLabels hold a pack's facts to one set of rules
// however the pack arrives: REST publish, or a pushed config
// (packconfig.go).
func checkDescription(d string) error {
	if len(d) > maxDescriptionLen || !utf8.ValidString(d) {
		return apierr.Bad("description must be UTF-8 and at most %d bytes", maxDescriptionLen)
	}
	return nil
}

func checkLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return apierr.Bad("at most %d labels", maxLabels)
	}
	for k, v := range labels {
		if err := checkLabel(k, v); err != nil {
			return err
		}
	}
	return nil
}

// checkLabel: keys are short identifiers (letters, digits, . _ - /), values
// printable UTF-8 text; a label filter must be able to name any of them in
// a query string.
func checkLabel(k, v string) error {
	if k == "" || len(k) > maxLabelKeyLen || !isLabelKey(k) {
		return apierr.Bad("label key %q: want 1 to %d letters, digits, '.', '_', '-' or '/', starting with a letter or digit", apierr.Clip(k), maxLabelKeyLen)
	}
	if len(v) > maxLabelValueLen || !utf8.ValidString(v) || !printable(v) {
		return apierr.Bad("label %q: the value must be printable UTF-8, at most %d bytes", k, maxLabelValueLen)
	}
	return nil
}

func isLabelKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-' && c != '/') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Publish stores a pack version from the files of a REST request: blobs
// first, then the pack config, then the manifest under its version tag,
// through the registry's service methods (same validation, admission and
// events as an OCI push). Everything that can be refused is checked before
// the manifest is pushed, and the tag is the last thing written, so a
// refused publish leaves no version behind (only unreferenced blobs, which
// are content-addressed and harmless).
//
// Publishing the same files and metadata again answers the existing
// version (created false): a client may retry. Other content under an
// existing version is 409 VERSION_EXISTS.
func (s *Service) Publish(ctx context.Context, md *Metadata, files []*upload) (*Version, bool, error) {
	if err := md.check(); err != nil {
		return nil, false, err
	}
	if len(files) == 0 {
		return nil, false, apierr.New(http.StatusBadRequest, apierr.PackEmpty, "a pack needs at least one file")
	}
	reg, err := s.attached()
	if err != nil {
		return nil, false, err
	}
	if v, err := s.existing(ctx, md, files); v != nil || err != nil {
		return v, false, err
	}
	cfgBytes, shape, manifest, err := s.build(md, files)
	if err != nil {
		return nil, false, err
	}
	// Refused before anything is stored; admission checks the pushed
	// manifest again, as it checks every push, with 403 where a REST
	// client is told 413.
	if total := totalSize(shape, int64(len(manifest))); s.policy.oversize(total) {
		return nil, false, apierr.New(http.StatusRequestEntityTooLarge, apierr.TooLarge,
			"pack is %d bytes; policy max_pack_size allows %d", total, s.policy.MaxPackSize)
	}
	if err := s.policy.checkTypes(layerTypes(shape)); err != nil {
		return nil, false, err
	}
	for _, f := range files {
		rc, err := f.open()
		if err != nil {
			return nil, false, err
		}
		err = reg.PushBlob(ctx, md.Name, f.digest, rc)
		rc.Close()
		if err != nil {
			return nil, false, err
		}
	}
	if err := reg.PushBlob(ctx, md.Name, digest.Digest(shape.Config.Digest), bytes.NewReader(cfgBytes)); err != nil {
		return nil, false, err
	}
	// The push records the version in the pack index in its own
	// transaction (IndexPush): it is there when PushManifest returns.
	if _, err := reg.PushManifest(ctx, md.Name, md.Version, oci.MediaTypeImageManifest, manifest); err != nil {
		// Refused: a concurrent publish of this version won the claim of
		// its tag. Say so the same way as when it was there first.
		if errors.Is(err, oci.ErrDenied) {
			if v, xerr := s.existing(ctx, md, files); v != nil || xerr != nil {
				return v, false, xerr
			}
		}
		return nil, false, err
	}
	v, err := s.getVersion(ctx, md.Name, md.Version)
	if err != nil {
		return nil, false, err
	}
	out := versionOf(v)
	return &out, true, nil
}

// existing returns the recorded version when it holds exactly these files
// and metadata, a 409 when the version or its tag holds something else, and
// nil, nil when the version is free.
func (s *Service) existing(ctx context.Context, md *Metadata, files []*upload) (*Version, error) {
	v, err := s.store.GetPackVersion(ctx, md.Name, md.Version)
	if errors.Is(err, storage.ErrNotFound) {
		// Not a pack version; the tag may still hold something else.
		reg, err := s.attached()
		if err != nil {
			return nil, err
		}
		m, err := reg.Manifest(ctx, md.Name, md.Version)
		if errors.Is(err, oci.ErrManifestUnknown) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return nil, apierr.New(http.StatusConflict, apierr.VersionExists,
			"tag %s:%s already exists (digest %s) and is not a pack version", md.Name, md.Version, m.Digest).
			WithDetails(map[string]string{"digest": string(m.Digest)})
	}
	if err != nil {
		return nil, err
	}
	if sameContent(v, md, files) {
		if v.Status == storage.PackDeleted {
			return s.restore(ctx, v)
		}
		out := versionOf(v)
		return &out, nil
	}
	return nil, apierr.New(http.StatusConflict, apierr.VersionExists,
		"pack %s:%s already exists with other content (digest %s); versions are immutable, publish a new version", md.Name, md.Version, v.Digest).
		WithDetails(map[string]string{"digest": string(v.Digest)})
}

// restore tags a deleted version's manifest again, which brings the
// version back in the state it had. The manifest must still be there:
// published anew it would get a new digest (its created time), and the
// version is bound to the old one.
func (s *Service) restore(ctx context.Context, v *storage.PackVersion) (*Version, error) {
	reg, err := s.attached()
	if err != nil {
		return nil, err
	}
	m, err := reg.Manifest(ctx, v.Name, v.Digest.String())
	if errors.Is(err, oci.ErrManifestUnknown) {
		return nil, apierr.New(http.StatusConflict, apierr.VersionExists,
			"pack %s:%s was deleted with its manifest (digest %s); a version is never published twice: push that manifest again, or publish a new version",
			v.Name, v.Version, v.Digest).WithDetails(map[string]string{"digest": string(v.Digest)})
	}
	if err != nil {
		return nil, err
	}
	// The push restores the version in its own transaction (IndexPush).
	if _, err := reg.PushManifest(ctx, v.Name, v.Version, m.MediaType, m.Payload); err != nil {
		return nil, err
	}
	got, err := s.getVersion(ctx, v.Name, v.Version)
	if err != nil {
		return nil, err
	}
	out := versionOf(got)
	return &out, nil
}

func sameContent(v *storage.PackVersion, md *Metadata, files []*upload) bool {
	if v.Description != md.Description || !maps.Equal(v.Labels, md.Labels) {
		return false
	}
	return slices.EqualFunc(v.Files, files, func(f storage.PackFile, u *upload) bool {
		return f.Name == u.name && f.Digest == u.digest && f.MediaType == u.mediaType && f.Size == u.size
	})
}

// build makes the pack config blob and the manifest (as a value and as
// the bytes to push): artifactType pack, one layer per file with its
// title, so `oras pull` writes the files back.
func (s *Service) build(md *Metadata, files []*upload) ([]byte, *oci.Manifest, []byte, error) {
	created := s.now().Format(time.RFC3339)
	cfg, err := json.Marshal(Config{Name: md.Name, Version: md.Version, Description: md.Description,
		Labels: md.Labels, Created: created})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pack config: %w", err)
	}
	layers := make([]oci.Descriptor, len(files))
	for i, f := range files {
		layers[i] = oci.NewDescriptor(f.mediaType, f.digest, f.size)
		layers[i].Annotations = map[string]string{oci.AnnotationTitle: f.name}
	}
	m := oci.NewManifest(oci.NewDescriptor(oci.MediaTypePackConfig, digest.FromBytes(digest.SHA256, cfg), int64(len(cfg))), layers)
	m.ArtifactType = oci.ArtifactTypePack
	m.Annotations = map[string]string{oci.AnnotationCreated: created}
	if md.Description != "" {
		m.Annotations[oci.AnnotationDescription] = md.Description
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pack manifest: %w", err)
	}
	return cfg, &m, payload, nil
}
