package pack

import (
	"encoding/json"

	"github.com/packreg/packreg/oci"
)

// parseManifest reads an OCI image manifest as packs read it: what policy
// checks, what the index records. The registry has already validated any
// manifest read back, so this parse only picks fields.
func parseManifest(payload []byte) (*oci.Manifest, error) {
	var m oci.Manifest
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// totalSize is manifest, config and layers: what a pull transfers.
func totalSize(m *oci.Manifest, manifestSize int64) int64 {
	n := manifestSize + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func layerTypes(m *oci.Manifest) []string {
	out := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		out[i] = l.MediaType
	}
	return out
}
