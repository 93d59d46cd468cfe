package pack

import (
	"encoding/json"
	"regexp"
	"time"

	"github.com/packreg/packreg/storage"
)

// Media types and annotations that make an OCI manifest a pack.
const (
	// ArtifactType marks a pack manifest (its artifactType).
	ArtifactType = "application/vnd.packreg.pack.v1"
	// ConfigMediaType is the pack config blob. A manifest with this config
	// and no artifactType (pre-1.1 clients) is a pack too.
	ConfigMediaType = "application/vnd.packreg.pack.config.v1+json"
	// FileMediaType is the layer type of a published file whose upload did
	// not say what it is.
	FileMediaType = "application/vnd.packreg.pack.file.v1"

	// AnnotationTitle names a layer's file; `oras pull` writes it there.
	AnnotationTitle       = "org.opencontainers.image.title"
	AnnotationCreated     = "org.opencontainers.image.created"
	AnnotationDescription = "org.opencontainers.image.description"
	// AnnotationLabels carries the labels (a JSON object) of a pack pushed
	// with the empty config instead of a pack config blob.
	AnnotationLabels = "vnd.packreg.pack.labels"
)

// Audit actions of the pack package (the registry's own actions are in
// registry/events.go).
const (
	ActionPublish   = "pack.publish"
	ActionLifecycle = "pack.lifecycle"
	// ActionDelete: a version's tag or manifest was deleted; it is
	// recorded as deleted, not forgotten.
	ActionDelete = "pack.delete"
)

// IsPack reports whether a manifest's artifact type (as the registry
// reports it: artifactType, else the config media type) makes it a pack.
func IsPack(artifactType string) bool {
	return artifactType == ArtifactType || artifactType == ConfigMediaType
}

// Config is the pack config blob, and what a pack version's manifest
// endpoint resolves from the config or the annotations.
type Config struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Created     string            `json:"created,omitempty"` // RFC 3339
}

// nameRE is the distribution-spec repository name grammar. Go regexps run
// in linear time and ValidName checks the length first, so hostile input
// costs at most 255 bytes of matching.
var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

const maxNameLen = 255

// ValidName reports whether name can be a pack (an OCI repository) name.
func ValidName(name string) bool {
	return len(name) > 0 && len(name) <= maxNameLen && nameRE.MatchString(name)
}

// cosignTagRE matches cosign's tag schema (signatures, attestations and
// SBOMs attached by tag): these tags are not versions and stay writable.
var cosignTagRE = regexp.MustCompile(`^sha256-[0-9a-f]{64}\.(?:sig|att|sbom)$`)

func isCosignTag(tag string) bool { return len(tag) <= 76 && cosignTagRE.MatchString(tag) }

// Version is a pack version as the REST API shows it.
type Version struct {
	Name         string             `json:"name"`
	Version      string             `json:"version"`
	Digest       string             `json:"digest"`
	MediaType    string             `json:"mediaType"`
	ArtifactType string             `json:"artifactType"`
	Size         int64              `json:"size"`      // the manifest's, as in its descriptor
	TotalSize    int64              `json:"totalSize"` // manifest, config and files
	Status       string             `json:"status"`
	StatusReason string             `json:"statusReason"`
	Description  string             `json:"description,omitempty"`
	Labels       map[string]string  `json:"labels,omitempty"`
	CreatedAt    time.Time          `json:"createdAt"`
	UpdatedAt    time.Time          `json:"updatedAt"`
	Files        []storage.PackFile `json:"files"`
	// The signature report (verification, signatures, attestations) when
	// a VerificationReporter is configured (verification.go).
	*SignatureReport
}

func versionOf(v *storage.PackVersion) Version {
	files := v.Files
	if files == nil {
		files = []storage.PackFile{}
	}
	return Version{
		Name: v.Name, Version: v.Version, Digest: string(v.Digest),
		MediaType: v.MediaType, ArtifactType: v.ArtifactType, Size: v.Size, TotalSize: v.TotalSize,
		Status: v.Status, StatusReason: v.StatusReason, Description: v.Description, Labels: v.Labels,
		CreatedAt: v.Created, UpdatedAt: v.Updated, Files: files,
	}
}

// VersionList is a page of GET /api/v1/packs.
type VersionList struct {
	Items []Version `json:"items"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// Versions is GET /api/v1/packs/{name}/versions: every version, in semver order.
type Versions struct {
	Name     string    `json:"name"`
	Versions []Version `json:"versions"`
}

// ManifestView is GET .../versions/{version}/manifest.
type ManifestView struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Manifest is the manifest as JSON. The answer is re-indented, so for
	// the exact bytes that hash to Digest, GET /v2/<name>/manifests/<digest>.
	Manifest json.RawMessage `json:"manifest"`
	Config   Config          `json:"config"`
}

// LifecycleRequest is the body of the lifecycle POSTs.
type LifecycleRequest struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	// Force allows archived → active.
	Force bool `json:"force"`
}

// LifecycleEntry is one step of a version's history.
type LifecycleEntry struct {
	Version string    `json:"version"`
	From    string    `json:"from"` // "" when the version was published
	To      string    `json:"to"`
	Reason  string    `json:"reason"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
}

// Lifecycle is GET .../lifecycle.
type Lifecycle struct {
	Name    string           `json:"name"`
	Version string           `json:"version,omitempty"`
	History []LifecycleEntry `json:"history"`
}
