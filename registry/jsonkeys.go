package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// One manifest body must not read as two manifests. The registry checks
// and records the references Go's decoder reads, while clients, mirrors
// and other registries act on what their own readers see. Go's decoder
// matches keys case-insensitively, with Unicode folding ("ſubject" is
// "subject"), and keeps the last of duplicate keys; JavaScript and Python
// match keys exactly, and some readers keep the first duplicate. So a
// manifest may not repeat a key in any object, nor spell a field that
// parseManifest reads in another case.

// keySet says which fields an object is read by.
type keySet int

const (
	freeKeys     keySet = iota // annotations, fields we do not read
	docKeys                    // oci.Document
	descKeys                   // oci.DocDescriptor
	platformKeys               // its platform
)

func (k keySet) fields() []string {
	switch k {
	case docKeys:
		return []string{"schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests", "subject", "annotations"}
	case descKeys:
		return []string{"mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType"}
	case platformKeys:
		return []string{"architecture", "os", "os.version", "os.features", "variant"}
	}
	return nil
}

// child is the key set of the value of key.
func (k keySet) child(key string) keySet {
	if k == docKeys && (key == "config" || key == "layers" || key == "manifests" || key == "subject") {
		return descKeys
	}
	if k == descKeys && key == "platform" {
		return platformKeys
	}
	return freeKeys
}

// checkKeys walks payload, which json.Unmarshal has accepted (so it is one
// value, nested at most as deep as the decoder allows).
func checkKeys(payload []byte) error {
	return walkKeys(json.NewDecoder(bytes.NewReader(payload)), docKeys)
}

// walkKeys reads one value; an array passes ks on to its elements.
func walkKeys(dec *json.Decoder, ks keySet) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('['):
		for dec.More() {
			if err := walkKeys(dec, ks); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('{'):
	default:
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // object keys are strings in valid JSON
		if seen[key] {
			return fmt.Errorf("key %q appears twice in one object", clip(key))
		}
		seen[key] = true
		for _, f := range ks.fields() {
			if key != f && strings.EqualFold(key, f) {
				return fmt.Errorf("key %q is %q in another case", clip(key), f)
			}
		}
		if err := walkKeys(dec, ks.child(key)); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}
