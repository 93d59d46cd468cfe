package conformance

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// startReplicas starts two servers over one S3 bucket prefix and one
// PostgreSQL database of their own: two replicas of one registry.
func startReplicas(t *testing.T) (a, b *server) {
	t.Helper()
	s3URL := needEnv(t, "PACKREG_TEST_S3")
	pgURL := needEnv(t, "PACKREG_TEST_POSTGRES")
	stores := []string{"--storage", isolatedS3(t, s3URL), "--database", isolatedPostgres(t, pgURL)}
	a = startServer(t, stores...)
	b = startServer(t, stores...)
	a.dumpLogOnFailure()
	b.dumpLogOnFailure()
	return a, b
}

// chunkedAcrossReplicas pushes one blob to repo in chunks sent to a and b
// in turn, each replica checking the other's progress, the closing PUT on
// either, and both must serve the blob.
func chunkedAcrossReplicas(t *testing.T, a, b *server, repo string) {
	t.Helper()
	replicas := []*client{newClient(t, a.URL), newClient(t, b.URL)}
	// Chunk sizes straddle the S3 multipart minimum (5 MiB) on purpose.
	sizes := []int{6 << 20, 1 << 20, 7 << 20, 3<<20 + 5, 6 << 20, 2 << 20}
	total := 0
	for _, n := range sizes {
		total += n
	}
	data := make([]byte, total)
	rand.NewChaCha8([32]byte{'r', 'e', 'p'}).Read(data)
	final := sha256Digest(data)

	resp, body := replicas[0].do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	expect(t, resp, body, http.StatusAccepted, "POST on A")
	loc := resp.Header.Get("Location")
	offset := int64(0)
	for i, n := range sizes[:len(sizes)-1] {
		c := replicas[(i+1)%2] // B, A, B, ...
		loc, offset = patchChunk(t, c, loc, data, offset, int64(n))
		// The other replica sees the same progress.
		other := replicas[i%2]
		resp, body := other.do("GET", loc, nil, nil)
		expect(t, resp, body, http.StatusNoContent, "upload status on the other replica")
		if rg := resp.Header.Get("Range"); rg != fmt.Sprintf("0-%d", offset-1) {
			t.Fatalf("other replica reports Range %q after %d bytes", rg, offset)
		}
	}
	last := replicas[len(sizes)%2]
	resp, body = last.do("PUT", addQuery(loc, "digest", final), http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("%d-%d", offset, total-1)},
	}, data[offset:])
	expect(t, resp, body, http.StatusCreated, "closing PUT")
	for i, c := range replicas {
		if got := c.getBlob(repo, final); !bytes.Equal(got, data) {
			t.Fatalf("replica %d serves %d bytes (%s), want %s", i, len(got), sha256Digest(got), final)
		}
	}
}

// TestTwoReplicasSharedDisk runs two packreg processes over one data
// directory (a shared filesystem) and one PostgreSQL database. A disk
// store keeps an upload's data file open between chunks: each replica's
// open file must follow the chunks the other wrote, and the blob must be
// the bytes pushed, whichever replica closes it.
func TestTwoReplicasSharedDisk(t *testing.T) {
	pgURL := needEnv(t, "PACKREG_TEST_POSTGRES")
	stores := []string{"--storage", "file://" + t.TempDir(), "--database", isolatedPostgres(t, pgURL)}
	a, b := startServer(t, stores...), startServer(t, stores...)
	a.dumpLogOnFailure()
	b.dumpLogOnFailure()
	chunkedAcrossReplicas(t, a, b, "shared/chunked")
	// Again on the same replicas: each keeps the first session's file
	// (now the published blob) until it goes idle; a new session must not
	// be confused by it.
	chunkedAcrossReplicas(t, b, a, "shared/again")
}

// TestTwoReplicas runs two packreg processes over one S3 prefix and one
// PostgreSQL database (issue 3): they must act as one registry, with no
// sticky sessions.
func TestTwoReplicas(t *testing.T) {
	a, b := startReplicas(t)

	t.Run("chunked upload alternating replicas", func(t *testing.T) {
		chunkedAcrossReplicas(t, a, b, "replica/chunked")
	})

	t.Run("tag pushed on A is pulled from B", func(t *testing.T) {
		ca, cb := newClient(t, a.URL), newClient(t, b.URL)
		img := makeImage(t, "pushed on A\n")
		ca.pushImage("replica/img", "v1", img)
		if d := cb.manifestDigest("replica/img", "v1"); d != img.Digest {
			t.Fatalf("B resolves v1 to %s, want %s", d, img.Digest)
		}
		if got := cb.getBlob("replica/img", img.LayerDigest); !bytes.Equal(got, img.Layer) {
			t.Fatal("B serves another layer")
		}
		// A tag move on B is visible on A at once.
		img2 := makeImage(t, "moved on B\n")
		cb.pushImage("replica/img", "v1", img2)
		if d := ca.manifestDigest("replica/img", "v1"); d != img2.Digest {
			t.Fatalf("A resolves v1 to %s after B moved it to %s", d, img2.Digest)
		}
		// A delete on A is visible on B.
		resp, body := ca.do("DELETE", "/v2/replica/img/manifests/"+img.Digest, nil, nil)
		expect(t, resp, body, http.StatusAccepted, "delete on A")
		if _, _, code := cb.getManifest("replica/img", img.Digest); code != http.StatusNotFound {
			t.Fatalf("B still serves a manifest deleted on A: %d", code)
		}
	})

	t.Run("concurrent pushes to one tag", func(t *testing.T) {
		const repo, tag, perReplica = "replica/race", "latest", 8
		servers := []*server{a, b}
		var imgs []*image
		for i := range 2 * perReplica {
			img := makeImage(t, fmt.Sprintf("racer %d\n", i))
			newClient(t, servers[i%2].URL).pushBlob(repo, img.Config)
			newClient(t, servers[i%2].URL).pushBlob(repo, img.Layer)
			imgs = append(imgs, img)
		}
		start := make(chan struct{})
		errs := make(chan error, len(imgs))
		var wg sync.WaitGroup
		for i, img := range imgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest("PUT", servers[i%2].URL+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(img.Manifest))
				req.Header.Set("Content-Type", mtOCIManifest)
				resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("PUT %s on replica %d: %d %s", img.Digest, i%2, resp.StatusCode, b)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
		ca, cb := newClient(t, a.URL), newClient(t, b.URL)
		da, db := ca.manifestDigest(repo, tag), cb.manifestDigest(repo, tag)
		if da != db {
			t.Fatalf("replicas disagree on %s: A %s, B %s", tag, da, db)
		}
		if !slices.ContainsFunc(imgs, func(im *image) bool { return im.Digest == da }) {
			t.Fatalf("%s points at %s, which nobody pushed", tag, da)
		}
		for _, img := range imgs {
			for _, c := range []*client{ca, cb} {
				if d := c.manifestDigest(repo, img.Digest); d != img.Digest {
					t.Fatalf("manifest %s not addressable: %s", img.Digest, d)
				}
			}
		}
		if tags := ca.tags(repo); !slices.Equal(tags, []string{tag}) {
			t.Fatalf("tags %q, want [%s]", tags, tag)
		}
	})
}
