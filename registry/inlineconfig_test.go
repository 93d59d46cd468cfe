package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/fs"
	"github.com/packreg/packreg/storage/sqlmeta"
)

const inlineType = "application/vnd.test.inline.config+json"

// configSeer records the config bytes each hook was handed.
type configSeer struct{ admitted, indexed []byte }

func (c *configSeer) AdmitManifest(_ context.Context, m registry.ManifestCandidate) error {
	c.admitted = m.Config
	return nil
}

func (c *configSeer) IndexPush(_ context.Context, m registry.ManifestCandidate) (storage.IndexChanges, error) {
	c.indexed = m.Config
	return storage.IndexChanges{}, nil
}

func (c *configSeer) IndexDelete(context.Context, string, string, digest.Digest) (storage.IndexChanges, error) {
	return storage.IndexChanges{}, nil
}

// TestInlineConfigPutReadsReferencesOnce: a push whose config the
// registry reads for the Indexers (WithInlineConfig, as packs') looks its
// references up once, in the put's transaction, as any image manifest
// does; it read their sizes before reading the config too, a statement
// more. A config that is not the repository's is still refused (after
// the read, with the same code), and only the Indexers see the bytes.
func TestInlineConfigPutReadsReferencesOnce(t *testing.T) {
	for name, open := range map[string]func(testing.TB) (*fs.Store, *sqlmeta.Store, string){
		"sqlite": teststores.Open, "postgres": teststores.OpenPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			blobs, meta, _ := open(t)
			seer := &configSeer{}
			h := registry.New(blobs, meta, registry.WithInlineConfig(inlineType), registry.WithAdmitter(seer))
			put := putStatements(t, h, meta)
			repo := "acme/inline"
			image := func(configType string, cfg []byte, layer byte) []byte {
				return mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
					"config": desc(configType, pushBlob(t, h, repo, cfg), int64(len(cfg))),
					"layers": []oci.Descriptor{desc("application/vnd.oci.image.layer.v1.tar", pushBlob(t, h, repo, []byte{layer}), 1)}})
			}
			put(repo, "warm", image("application/vnd.oci.empty.v1+json", []byte(`{}`), 0), oci.MediaTypeImageManifest)
			plain := put(repo, "plain", image("application/vnd.oci.empty.v1+json", []byte(`{}`), 1), oci.MediaTypeImageManifest)
			for i := range 2 {
				cfg := []byte(fmt.Sprintf(`{"n":%d}`, i))
				if n := put(repo, fmt.Sprint("inline", i), image(inlineType, cfg, byte(2+i)), oci.MediaTypeImageManifest); n != plain {
					t.Fatalf("a PUT with an inline config ran %d store statements, with a plain one %d: want as many", n, plain)
				}
				if seer.admitted != nil || !bytes.Equal(seer.indexed, cfg) {
					t.Fatalf("config handed to the admitter %q, to the indexer %q; want none and %q", seer.admitted, seer.indexed, cfg)
				}
			}
			// A config pushed to another repository only.
			other := []byte(`{"other":true}`)
			pushBlob(t, h, "acme/elsewhere", other)
			m := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
				"config": desc(inlineType, sha(other), int64(len(other))),
				"layers": []oci.Descriptor{}})
			expect(t, putManifest(t, h, repo, "stranger", m, oci.MediaTypeImageManifest), http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
			// One never pushed: the read fails, and the check answers.
			m = mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
				"config": desc(inlineType, sha([]byte("never")), 5), "layers": []oci.Descriptor{}})
			expect(t, putManifest(t, h, repo, "missing", m, oci.MediaTypeImageManifest), http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
			// A size its descriptor gets wrong.
			cfg := []byte(`{"n":9}`)
			m = mustJSON(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
				"config": desc(inlineType, pushBlob(t, h, repo, cfg), int64(len(cfg))+1), "layers": []oci.Descriptor{}})
			expect(t, putManifest(t, h, repo, "wrongsize", m, oci.MediaTypeImageManifest), http.StatusBadRequest, "MANIFEST_INVALID")
		})
	}
}
