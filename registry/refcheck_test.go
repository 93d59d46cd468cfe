package registry_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage/fs"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// TestReferenceRefusals pins what a client reads when a manifest's
// references are not what it says (BAD_INPUTS "Manifests and referrers"):
// the code, and the message naming the first bad reference in the
// document's order. Where the check runs (before the store's transaction
// or in it) must not show.
func TestReferenceRefusals(t *testing.T) {
	for name, open := range map[string]func(testing.TB) (*fs.Store, *sqlmeta.Store, string){
		"sqlite": teststores.Open, "postgres": teststores.OpenPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			blobs, meta, _ := open(t)
			referenceRefusals(t, registry.New(blobs, meta))
		})
	}
}

func referenceRefusals(t *testing.T, h http.Handler) {
	repo, other := "refs/here", "refs/elsewhere"
	cfg := []byte(`{}`)
	cfgD := pushBlob(t, h, repo, cfg)
	layer := []byte("layer bytes")
	layerD := pushBlob(t, h, repo, layer)
	onlyThere := pushBlob(t, h, other, []byte("linked in another repository"))
	missing, missing2 := sha([]byte("never pushed")), sha([]byte("never pushed either"))
	child := imageManifest(t, h, repo, layer)
	expect(t, putManifest(t, h, repo, "child", child, oci.MediaTypeImageManifest), 201, "")
	childD := sha(child)
	// A manifest whose bytes are not a blob of the repository, and a blob
	// whose bytes are no manifest of it: each is only the one it is.
	lone := []byte(`{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageIndex + `","manifests":[]}`)
	expect(t, putManifest(t, h, repo, "lone", lone, oci.MediaTypeImageIndex), 201, "")
	loneD := sha(lone)

	image := func(config oci.Descriptor, layers ...oci.Descriptor) []byte {
		return mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
			"config": config, "layers": append([]oci.Descriptor{}, layers...)})
	}
	index := func(children ...oci.Descriptor) []byte {
		return mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex, "manifests": children})
	}
	blob := func(d digest.Digest, size int) oci.Descriptor {
		return desc("application/vnd.oci.image.layer.v1.tar", d, int64(size))
	}
	goodCfg := desc("application/vnd.oci.empty.v1+json", cfgD, int64(len(cfg)))
	goodLayer := blob(layerD, len(layer))
	man := func(d digest.Digest, size int) oci.Descriptor {
		return desc(oci.MediaTypeImageManifest, d, int64(size))
	}
	foreign := desc("application/vnd.oci.image.layer.nondistributable.v1.tar", missing, 3)
	referrer := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
		"config": goodCfg, "layers": []oci.Descriptor{goodLayer}, "subject": man(missing, 3)})

	for _, tc := range []struct {
		name, ct string
		body     []byte
		status   int
		code     string
		message  string
	}{
		{"missing config", oci.MediaTypeImageManifest, image(desc("application/json", missing, 3), goodLayer),
			400, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("blob %s is not in repository %s", missing, repo)},
		{"missing layer", oci.MediaTypeImageManifest, image(goodCfg, goodLayer, blob(missing, 3)),
			400, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("blob %s is not in repository %s", missing, repo)},
		{"first of two missing layers named", oci.MediaTypeImageManifest, image(goodCfg, blob(missing2, 3), blob(missing, 3)),
			400, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("blob %s is not in repository %s", missing2, repo)},
		{"missing before wrong size", oci.MediaTypeImageManifest, image(goodCfg, blob(missing, 3), blob(layerD, 1)),
			400, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("blob %s is not in repository %s", missing, repo)},
		{"wrong size before missing", oci.MediaTypeImageManifest, image(goodCfg, blob(layerD, 1), blob(missing, 3)),
			400, "MANIFEST_INVALID", fmt.Sprintf("descriptor of %s says 1 bytes, stored blob has %d", layerD, len(layer))},
		{"blob linked in another repository only", oci.MediaTypeImageManifest, image(goodCfg, blob(onlyThere, 28)),
			400, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("blob %s is not in repository %s", onlyThere, repo)},
		{"layer that is a manifest, not a blob", oci.MediaTypeImageManifest, image(goodCfg, blob(loneD, len(lone))),
			400, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("blob %s is not in repository %s", loneD, repo)},
		{"wrong config size", oci.MediaTypeImageManifest, image(desc("application/json", cfgD, 3), goodLayer),
			400, "MANIFEST_INVALID", fmt.Sprintf("descriptor of %s says 3 bytes, stored blob has 2", cfgD)},
		{"missing child", oci.MediaTypeImageIndex, index(man(childD, len(child)), man(missing, 3)),
			400, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("manifest %s is not in repository %s", missing, repo)},
		{"child that is a blob, not a manifest", oci.MediaTypeImageIndex, index(man(layerD, len(layer))),
			400, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("manifest %s is not in repository %s", layerD, repo)},
		{"wrong child size", oci.MediaTypeImageIndex, index(man(childD, len(child)+1)),
			400, "MANIFEST_INVALID", fmt.Sprintf("descriptor of %s says %d bytes, stored manifest has %d", childD, len(child)+1, len(child))},
		{"config listed twice", oci.MediaTypeImageManifest, image(goodCfg, blob(cfgD, len(cfg)), goodLayer, goodLayer), 201, "", ""},
		{"non-distributable layer not pushed", oci.MediaTypeImageManifest, image(goodCfg, foreign), 201, "", ""},
		{"referrer before its subject", oci.MediaTypeImageManifest, referrer, 201, "", ""},
		{"index of a manifest and an index", oci.MediaTypeImageIndex, index(man(childD, len(child)), desc(oci.MediaTypeImageIndex, loneD, int64(len(lone)))), 201, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := putManifest(t, h, repo, "t", tc.body, tc.ct)
			expect(t, w, tc.status, tc.code)
			if tc.status != 201 {
				var env struct {
					Errors []struct{ Code, Message string }
				}
				if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || len(env.Errors) != 1 || env.Errors[0].Message != tc.message {
					t.Fatalf("body %s, want the one message %q", w.Body, tc.message)
				}
				// Nothing was stored.
				expect(t, do(t, h, "GET", "/v2/"+repo+"/manifests/"+sha(tc.body).String(), nil), 404, "MANIFEST_UNKNOWN")
			}
		})
	}
}
