package pack

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/semver"
	"github.com/packreg/packreg/storage"
)

// Page sizes of the listings.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

func checkName(name string) error {
	if !oci.ValidName(name) {
		return apierr.New(http.StatusBadRequest, apierr.NameInvalid,
			"pack name %q is not a valid repository name (lowercase letters and digits, separated by . _ __ - or /)", apierr.Clip(name))
	}
	return nil
}

func checkVersion(version string) error {
	if _, err := semver.Parse(version); err != nil {
		return apierr.New(http.StatusBadRequest, apierr.VersionInvalid,
			"version %q is not a semantic version (like 1.2.0): %v", apierr.Clip(version), err)
	}
	return nil
}

func notFoundPack(name string) error {
	return apierr.New(http.StatusNotFound, apierr.NotFound, "pack %s not found", name)
}

// getVersion returns one version, 400 for a malformed name or version and
// 404 for an unknown one.
func (s *Service) getVersion(ctx context.Context, name, version string) (*storage.PackVersion, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	v, err := s.store.GetPackVersion(ctx, name, version)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, apierr.New(http.StatusNotFound, apierr.NotFound, "pack %s has no version %s", name, version)
	}
	return v, err
}

// Version returns one version.
func (s *Service) Version(ctx context.Context, name, version string) (*Version, error) {
	v, err := s.getVersion(ctx, name, version)
	if err != nil {
		return nil, err
	}
	out := versionOf(v)
	if err := s.report(ctx, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ResolveVersion maps a pack version to its repository and manifest
// digest, from the pack index (attest.VersionResolver): unknown versions
// are 404, not whatever a same-named plain tag points at.
func (s *Service) ResolveVersion(ctx context.Context, name, version string) (string, digest.Digest, error) {
	v, err := s.getVersion(ctx, name, version)
	if err != nil {
		return "", "", err
	}
	return v.Name, v.Digest, nil
}

// Versions returns every version of a pack in semver order.
func (s *Service) Versions(ctx context.Context, name string) (*Versions, error) {
	vs, err := s.sortedVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	shown, err := s.listed(ctx, vs)
	if err != nil {
		return nil, err
	}
	return &Versions{Name: name, Versions: shown}, nil
}

// List returns one page of q (newest first) and the cursor of the next.
// q.Limit is the page size; the cursor fields come from DecodeCursor.
func (s *Service) List(ctx context.Context, q storage.PackQuery) (*VersionList, error) {
	limit := q.Limit
	// One more than asked tells whether a next page exists, so the last
	// page never comes with a cursor to an empty one.
	q.Limit++
	vs, err := s.store.ListPackVersions(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &VersionList{}
	page := make([]Version, 0, min(len(vs), limit))
	for i := range vs {
		if i == limit {
			last := &vs[i-1]
			out.Next = EncodeCursor(last.Created, last.ID)
			break
		}
		v := versionOf(&vs[i])
		// A pending version, or one of a repository the caller may not
		// pull, leaves the page short rather than shift the cursor, which
		// stays on the rows the store returned.
		if registry.MayPull(ctx, v.Name) {
			page = append(page, v)
		}
	}
	if out.Items, err = s.listed(ctx, page); err != nil {
		return nil, err
	}
	return out, nil
}

// EncodeCursor makes the opaque cursor for the page after (created, id).
func EncodeCursor(created time.Time, id int64) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "v1:%d:%d", created.UnixNano(), id))
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(c string) (time.Time, int64, error) {
	bad := apierr.New(http.StatusBadRequest, apierr.BadRequest, "cursor %q is not one this server made", apierr.Clip(c))
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, 0, bad
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 || parts[0] != "v1" {
		return time.Time{}, 0, bad
	}
	ns, err1 := strconv.ParseInt(parts[1], 10, 64)
	id, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || ns <= 0 || id <= 0 {
		return time.Time{}, 0, bad
	}
	return time.Unix(0, ns).UTC(), id, nil
}

// Manifest returns a version's manifest, byte-exact, with the resolved
// pack config.
func (s *Service) Manifest(ctx context.Context, name, version string) (*ManifestView, error) {
	v, err := s.getVersion(ctx, name, version)
	if err != nil {
		return nil, err
	}
	reg, err := s.attached()
	if err != nil {
		return nil, err
	}
	m, err := reg.Manifest(ctx, name, v.Digest.String())
	if err != nil {
		return nil, err
	}
	shape, err := parseManifest(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("pack manifest %s@%s: %w", name, m.Digest, err)
	}
	b, err := s.readConfig(ctx, reg, name, shape)
	if err != nil {
		return nil, err
	}
	cfg := s.resolveConfig(ctx, name, shape, b)
	cfg.Name, cfg.Version = name, version
	return &ManifestView{Name: name, Version: version, Digest: string(m.Digest), MediaType: m.MediaType,
		Manifest: m.Payload, Config: cfg}, nil
}
