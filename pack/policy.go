package pack

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/semver"
	"github.com/packreg/packreg/storage"
)

// Policy says what the registry accepts for packs and how it serves them.
// It only ever applies to pack manifests and version tags, so plain OCI
// images and artifacts are unaffected by it.
type Policy struct {
	// ImmutableVersions refuses (403 DENIED) moving a version tag to
	// another digest. cosign's sha256-<hex>.sig/.att/.sbom tags are not
	// versions and stay writable.
	ImmutableVersions bool
	// RequireSemver refuses pack manifests tagged with anything but a
	// SemVer 2.0.0 version (cosign tags aside).
	RequireSemver bool
	// MaxPackSize caps a pack (manifest, config and files) in bytes; 0 means
	// no cap.
	MaxPackSize int64
	// AllowedLayerMediaTypes, when not empty, lists the media types a pack's
	// files may have; an entry ending in "*" matches by prefix.
	AllowedLayerMediaTypes []string
	// AllowArchivedPulls serves archived versions (with a warning) instead
	// of refusing them.
	AllowArchivedPulls bool
}

// DefaultPolicy: versions are immutable semver tags, archived versions are
// not served, any size and media type is accepted.
func DefaultPolicy() Policy {
	return Policy{ImmutableVersions: true, RequireSemver: true}
}

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	if p.MaxPackSize < 0 {
		return fmt.Errorf("max pack size must be >= 0, got %d", p.MaxPackSize)
	}
	for _, mt := range p.AllowedLayerMediaTypes {
		if strings.TrimSuffix(mt, "*") == "" || strings.ContainsAny(mt, " \t,") || strings.Count(mt, "*") > 1 ||
			strings.Contains(mt, "*") && !strings.HasSuffix(mt, "*") {
			return fmt.Errorf("allowed layer media type %q: want a media type, or a prefix ending in *", mt)
		}
	}
	return nil
}

// Settings renders p as audit details, so a change of policy between two
// runs of the server shows in the trail.
func (p Policy) Settings() map[string]string {
	return map[string]string{
		"immutable_versions":        strconv.FormatBool(p.ImmutableVersions),
		"require_semver":            strconv.FormatBool(p.RequireSemver),
		"max_pack_size":             strconv.FormatInt(p.MaxPackSize, 10),
		"allowed_layer_media_types": strings.Join(p.AllowedLayerMediaTypes, ","),
		"allow_archived_pulls":      strconv.FormatBool(p.AllowArchivedPulls),
	}
}

func (p Policy) layerAllowed(mt string) bool {
	if len(p.AllowedLayerMediaTypes) == 0 {
		return true
	}
	for _, a := range p.AllowedLayerMediaTypes {
		if prefix, ok := strings.CutSuffix(a, "*"); ok && strings.HasPrefix(mt, prefix) || a == mt {
			return true
		}
	}
	return false
}

// checkContent applies the size and media type rules to a pack of total
// bytes whose files have the given media types: admission runs it for
// every push.
func (p Policy) checkContent(total int64, layerTypes []string) error {
	if p.oversize(total) {
		return oci.Errorf(oci.ErrDenied, "pack is %d bytes; policy allows at most %d", total, p.MaxPackSize)
	}
	return p.checkTypes(layerTypes)
}

// oversize reports whether a pack of total bytes is over MaxPackSize.
func (p Policy) oversize(total int64) bool { return p.MaxPackSize > 0 && total > p.MaxPackSize }

// checkTypes refuses file media types the policy does not allow.
func (p Policy) checkTypes(layerTypes []string) error {
	for _, mt := range layerTypes {
		if !p.layerAllowed(mt) {
			return oci.Errorf(oci.ErrDenied, "file media type %q is not allowed by policy (allowed: %s)",
				mt, strings.Join(p.AllowedLayerMediaTypes, ", "))
		}
	}
	return nil
}

// isCosignTag: what cosign attaches by tag (signatures, attestations,
// SBOMs) is no version, and its tags stay writable.
func isCosignTag(tag string) bool {
	_, _, ok := oci.ParseCosignTag(tag)
	return ok
}

// AdmitManifest is the registry's admission hook (registry.Admitter): it
// runs for every manifest push, by any client, before anything is stored.
func (s *Service) AdmitManifest(ctx context.Context, c registry.ManifestCandidate) error {
	isPack := oci.IsPack(c.ArtifactType)
	if isPack {
		m := shapeOf(c)
		if err := s.policy.checkContent(totalSize(m, int64(len(c.Payload))), layerTypes(m)); err != nil {
			return err
		}
	}
	for _, tag := range c.Tags {
		if isCosignTag(tag) {
			continue
		}
		if isPack && s.policy.RequireSemver {
			if _, err := semver.Parse(tag); err != nil {
				return oci.Errorf(oci.ErrDenied, "pack tags must be semantic versions like 1.2.0 (policy require_semver): %q: %v", tag, err)
			}
		}
		if s.policy.ImmutableVersions {
			if err := s.checkImmutable(ctx, c.Repo, tag, c.Digest); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkImmutable refuses binding a version to other content than it was
// published with: what its claim says (kept across deletes, so a deleted
// version is never reused for other bytes), or what its tag points at
// now. This is the early check with the clear message; the claim taken
// with the tag write (ClaimTags) is what decides between concurrent
// first pushes.
func (s *Service) checkImmutable(ctx context.Context, repo, tag string, d digest.Digest) error {
	if !semver.Valid(tag) {
		return nil
	}
	reg, err := s.attached()
	if err != nil {
		return err
	}
	claimed, err := reg.ClaimedDigest(ctx, repo, tag)
	switch {
	case errors.Is(err, oci.ErrManifestUnknown):
	case err != nil:
		return err
	case claimed != d:
		return oci.Errorf(oci.ErrDenied, "pack %s:%s was published with digest %s and versions are immutable, even after a delete: publish a new version instead", repo, tag, claimed)
	default:
		return nil
	}
	cur, err := reg.Manifest(ctx, repo, tag)
	if errors.Is(err, oci.ErrManifestUnknown) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.Digest == d || !oci.IsPack(cur.ArtifactType) {
		return nil
	}
	return oci.Errorf(oci.ErrDenied, "pack %s:%s already exists with digest %s and versions are immutable: publish a new version instead", repo, tag, cur.Digest)
}

// ClaimTags is the registry's TagClaimer: the version tags of a pack are
// claimed by its digest in the transaction that writes them (for good
// when versions are immutable, following the tag when they are not, so
// the record stays true), and a manifest that is no pack may not take a
// version tag claimed by a pack.
func (s *Service) ClaimTags(_ context.Context, c registry.ManifestCandidate) ([]storage.TagClaim, error) {
	isPack := oci.IsPack(c.ArtifactType)
	var claims []storage.TagClaim
	for _, tag := range c.Tags {
		if isCosignTag(tag) || !semver.Valid(tag) {
			continue
		}
		switch {
		case isPack && s.policy.ImmutableVersions:
			claims = append(claims, storage.TagClaim{Tag: tag, Mode: storage.ClaimBind})
		case isPack:
			claims = append(claims, storage.TagClaim{Tag: tag, Mode: storage.ClaimRebind})
		case s.policy.ImmutableVersions:
			claims = append(claims, storage.TagClaim{Tag: tag, Mode: storage.ClaimCheck})
		}
	}
	return claims, nil
}

var _ registry.TagClaimer = (*Service)(nil)

// CheckPull is the registry's pull gate (registry.PullGate): deprecated
// versions are served with a warning, archived ones are refused unless
// policy allows them. A pull by tag is judged by that version; a pull by
// digest by every version of the pack pointing at it, and it is served
// plainly if any of them is active. A deleted version whose manifest is
// still there is judged by the state it had before: archived stays
// archived.
func (s *Service) CheckPull(ctx context.Context, repo string, d digest.Digest, tag string) ([]string, error) {
	var versions []storage.PackVersion
	if tag != "" {
		if !semver.Valid(tag) {
			return nil, nil // not a version: no lifecycle (plain OCI tags cost no lookup)
		}
		v, err := s.store.GetPackVersion(ctx, repo, tag)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		versions = []storage.PackVersion{*v}
	} else {
		var err error
		versions, err = s.store.ListPackVersions(ctx, storage.PackQuery{Name: repo, Digest: d})
		if err != nil {
			return nil, err
		}
	}
	var warnings []string
	var archived *storage.PackVersion
	for i := range versions {
		v := &versions[i]
		if v.Status == storage.PackDeleted {
			was, err := s.stateBeforeDelete(ctx, v)
			if err != nil {
				return nil, err
			}
			judged := *v
			judged.Status, judged.StatusReason = was, "deleted after it was "+was
			v = &judged
		}
		switch v.Status {
		case storage.PackActive:
			return nil, nil
		case storage.PackDeprecated:
			warnings = append(warnings, statusMessage(v))
		case storage.PackArchived:
			archived = v
		}
	}
	if len(warnings) > 0 || archived == nil {
		return warnings, nil
	}
	if s.policy.AllowArchivedPulls {
		return []string{statusMessage(archived)}, nil
	}
	return nil, oci.Errorf(oci.ErrDenied, "%s; pulls of archived versions are refused", statusMessage(archived))
}

// stateBeforeDelete is the state a deleted version had: where its last
// transition to deleted came from.
func (s *Service) stateBeforeDelete(ctx context.Context, v *storage.PackVersion) (string, error) {
	hist, err := s.store.PackLifecycle(ctx, v.Name, v.Version)
	if err != nil {
		return "", err
	}
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].To == storage.PackDeleted {
			return hist[i].From, nil
		}
	}
	return storage.PackActive, nil
}

// statusMessage reads `pack acme/rules:1.2.0 is deprecated: <reason>`, the
// text of the Warning header (the registry quotes it: 299 - "...").
func statusMessage(v *storage.PackVersion) string {
	msg := fmt.Sprintf("pack %s:%s is %s", v.Name, v.Version, v.Status)
	if v.StatusReason != "" {
		msg += ": " + v.StatusReason
	}
	return msg
}
