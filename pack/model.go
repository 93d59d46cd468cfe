package pack

import (
	"encoding/json"
	"io"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/storage"
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

// Config is the pack config blob, and what a pack version's manifest
// endpoint resolves from the config or the annotations.
type Config struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Created     string            `json:"created,omitempty"` // RFC 3339
}

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
	CreatedAt    Timestamp          `json:"createdAt"`
	UpdatedAt    Timestamp          `json:"updatedAt"`
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
		CreatedAt: Timestamp(v.Created), UpdatedAt: Timestamp(v.Updated), Files: files,
	}
}

// Timestamp is a time.Time that encoding/json writes as text, in the same
// bytes as a time.Time (RFC 3339 with nanoseconds, quoted). What a
// json.Marshaler such as time.Time returns is compacted, scanned byte by
// byte, and that was 40% of marshaling a packs page (issue 15); a
// TextMarshaler's text is only quoted.
type Timestamp time.Time

// Time is t as a time.Time.
func (t Timestamp) Time() time.Time { return time.Time(t) }

func (t Timestamp) MarshalText() ([]byte, error) { return time.Time(t).MarshalText() }

func (t *Timestamp) UnmarshalText(b []byte) error { return (*time.Time)(t).UnmarshalText(b) }

// VersionList is a page of GET /api/v1/packs.
type VersionList struct {
	Items []Version `json:"items"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// StreamJSON writes l as encoding/json would, a version at a time
// (apierr.Streamer), so a page of 1,000 is never whole in memory as JSON.
// The layout is the struct's tags: wire_test holds it to the Encoder's.
func (l *VersionList) StreamJSON(w io.Writer, enc *json.Encoder) error {
	if _, err := io.WriteString(w, `{"items":`); err != nil {
		return err
	}
	if err := apierr.StreamArray(w, enc, l.Items); err != nil {
		return err
	}
	if l.Next != "" {
		if _, err := io.WriteString(w, `,"next":`); err != nil {
			return err
		}
		if err := enc.Encode(l.Next); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "}")
	return err
}

// Versions is GET /api/v1/packs/{name}/versions: every version, in semver order.
type Versions struct {
	Name     string    `json:"name"`
	Versions []Version `json:"versions"`
}

// StreamJSON writes v as encoding/json would, a version at a time, as
// VersionList's: this answer is not paged, so its size is the pack's
// whole history.
func (v *Versions) StreamJSON(w io.Writer, enc *json.Encoder) error {
	if _, err := io.WriteString(w, `{"name":`); err != nil {
		return err
	}
	if err := enc.Encode(v.Name); err != nil {
		return err
	}
	if _, err := io.WriteString(w, `,"versions":`); err != nil {
		return err
	}
	if err := apierr.StreamArray(w, enc, v.Versions); err != nil {
		return err
	}
	_, err := io.WriteString(w, "}")
	return err
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
