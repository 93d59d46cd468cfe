package pack

import (
	"encoding/json"

	"github.com/packreg/packreg/digest"
)

const mediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"

// ociManifest is an OCI image manifest as packs read and write it: what
// policy checks, what the index records, what REST publish builds. The
// registry has already validated any manifest read back, so this parse only
// picks fields.
type ociManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      digest.Digest     `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func parseManifest(payload []byte) (*ociManifest, error) {
	var m ociManifest
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// totalSize is manifest, config and layers: what a pull transfers.
func (m *ociManifest) totalSize(manifestSize int64) int64 {
	n := manifestSize + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func (m *ociManifest) layerTypes() []string {
	out := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		out[i] = l.MediaType
	}
	return out
}
