package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gcGrace is the grace period of the stress test: tiny, so collections
// run into pushes, and long enough that a push's blobs and its manifest
// land within it on a loaded machine (a push slower than that may
// rightly find its blobs collected, and the test says so).
const gcGrace = 2 * time.Second

// gcPush is one acknowledged manifest: its tag (or "" when pushed by
// digest only, which is garbage), its digest and its blobs.
type gcPush struct {
	repo, tag, digest string
	blobs             map[string][]byte // digest -> bytes
	unique            int64             // bytes of its own layer (no other manifest lists it)
}

// gcClient is a raw OCI client for goroutines: it returns errors instead
// of failing the test.
type gcClient struct {
	base string
	hc   *http.Client
}

func (c *gcClient) do(method, path, ct string, body []byte) (int, []byte, http.Header, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// pushBlob is a monolithic upload; it returns the status.
func (c *gcClient) pushBlob(repo string, b []byte) (int, string, error) {
	st, body, _, err := c.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha256Digest(b), "application/octet-stream", b)
	return st, string(body), err
}

// gcStress pushes and tags while the servers collect every second with
// a tiny grace; it checks that no push of blobs just acknowledged was
// refused MANIFEST_BLOB_UNKNOWN. It returns the acknowledged tagged
// pushes.
func gcStress(t *testing.T, servers []*server) (kept []gcPush) {
	t.Helper()
	const (
		pushers = 3
		rounds  = 25
		repo    = "stress/app"
	)
	clients := make([]*gcClient, len(servers))
	for i, s := range servers {
		clients[i] = &gcClient{base: s.URL, hc: &http.Client{Timeout: time.Minute}}
	}
	base := bytes.Repeat([]byte("shared base layer "), 512)
	var (
		mu       sync.Mutex
		acked    []gcPush
		problems []string
		late     int // MANIFEST_BLOB_UNKNOWN after the grace period: allowed, counted
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	// Pushers go on until a scheduled collection has removed something
	// under them: the test is about collections running into pushes.
	var collected atomic.Bool
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for !collected.Load() {
			st, body, _, err := clients[0].do("GET", "/api/v1/gc/runs?limit=100", "", nil)
			if err != nil || st != 200 {
				fail("gc runs: %d %v", st, err)
				return
			}
			var list struct{ Items []gcRun }
			if err := json.Unmarshal(body, &list); err != nil {
				fail("gc runs: %v", err)
				return
			}
			for _, r := range list.Items {
				if r.Counts.Manifests > 0 && r.Counts.Blobs > 0 {
					collected.Store(true)
				}
			}
			time.Sleep(100 * time.Millisecond) // a poll interval, not a synchronisation
		}
	}()
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 7))
			for i := 0; i < rounds || (!collected.Load() && i < 50*rounds); i++ {
				c := clients[(p+i)%len(clients)]
				layer := make([]byte, 4096+rng.IntN(60000))
				for j := range layer {
					layer[j] = byte(rng.Uint32())
				}
				cfg := []byte(fmt.Sprintf(`{"pusher":%d,"round":%d}`, p, i))
				start := time.Now()
				blobs := map[string][]byte{}
				ok := true
				for _, b := range [][]byte{base, layer, cfg} {
					st, body, err := c.pushBlob(repo, b)
					if err != nil || st == http.StatusServiceUnavailable {
						ok = false // not acknowledged: a collection took the bytes under it, or a 503
						break
					}
					if st != http.StatusCreated {
						fail("pusher %d round %d: blob push %d %s", p, i, st, clip(body))
						ok = false
						break
					}
					blobs[sha256Digest(b)] = b
				}
				if !ok {
					continue
				}
				m := mustJSONBytes(map[string]any{"schemaVersion": 2, "mediaType": mtOCIManifest,
					"config": map[string]any{"mediaType": mtOCIConfig, "digest": sha256Digest(cfg), "size": len(cfg)},
					"layers": []map[string]any{
						{"mediaType": mtOCILayerGz, "digest": sha256Digest(base), "size": len(base)},
						{"mediaType": mtOCILayerGz, "digest": sha256Digest(layer), "size": len(layer)},
					}})
				tag := fmt.Sprintf("p%d-r%d", p, i)
				ref := tag
				if i%4 == 3 {
					ref, tag = sha256Digest(m), "" // untagged: garbage once older than the grace
				}
				st, body, _, err := c.do("PUT", "/v2/"+repo+"/manifests/"+ref, mtOCIManifest, m)
				switch {
				case err != nil:
					fail("pusher %d round %d: manifest put: %v", p, i, err)
				case st == http.StatusCreated:
					mu.Lock()
					acked = append(acked, gcPush{repo: repo, tag: tag, digest: sha256Digest(m), blobs: blobs,
						unique: int64(len(layer) + len(cfg))})
					mu.Unlock()
				case strings.Contains(string(body), "MANIFEST_BLOB_UNKNOWN") && time.Since(start) >= gcGrace:
					mu.Lock()
					late++
					mu.Unlock()
				default:
					fail("pusher %d round %d: manifest put %d after %s: %s", p, i, st, time.Since(start).Round(time.Millisecond), clip(string(body)))
				}
			}
		}()
	}
	// A tagger: points "latest" at acknowledged tagged manifests, so
	// tags move while collections run.
	stop := make(chan struct{})
	var tagWG sync.WaitGroup
	tagWG.Add(1)
	go func() {
		defer tagWG.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			var pick *gcPush
			for i := len(acked) - 1; i >= 0; i-- {
				if acked[i].tag != "" {
					pick = &acked[i]
					break
				}
			}
			mu.Unlock()
			if pick == nil {
				continue
			}
			c := clients[n%len(clients)]
			st, m, _, err := c.do("GET", "/v2/"+repo+"/manifests/"+pick.tag, "", nil)
			if err != nil || st != http.StatusOK {
				fail("tagger: get %s: %d %v", pick.tag, st, err)
				return
			}
			if st, body, _, err := c.do("PUT", "/v2/"+repo+"/manifests/latest", mtOCIManifest, m); err != nil || st != http.StatusCreated {
				fail("tagger: tag latest -> %s: %d %v %s", pick.tag, st, err, clip(string(body)))
				return
			}
		}
	}()
	wg.Wait()
	collected.Store(true)
	<-watchDone
	close(stop)
	tagWG.Wait()
	if len(problems) > 0 {
		t.Fatalf("%d problems under collection, first: %s", len(problems), strings.Join(problems[:min(5, len(problems))], "\n"))
	}
	t.Logf("%d manifests acknowledged, %d refused after their grace period", len(acked), late)
	st, body, _, err := clients[0].do("GET", "/api/v1/gc/runs?limit=100", "", nil)
	if err != nil || st != 200 || !strings.Contains(string(body), `"schedule"`) {
		t.Fatalf("no scheduled collection recorded: %d %v %s", st, err, clip(string(body)))
	}

	for _, a := range acked {
		if a.tag != "" {
			kept = append(kept, a)
		}
	}
	if len(kept) < 6 {
		t.Fatalf("only %d tagged pushes acknowledged", len(kept))
	}
	return kept
}

// deleteSomeTags deletes the tags of the last three tagged pushes on the
// server at base, moving "latest" off them first, and returns the pushes
// that stay tagged and those deleted. The tests call it once the
// scheduled collections have stopped, so that only the run they measure
// can free what the deleted tags held (a scheduled run in between did,
// and the measured run then rightly freed less).
func deleteSomeTags(t *testing.T, base string, tagged []gcPush) (kept, deleted []gcPush) {
	t.Helper()
	repo := tagged[0].repo
	c := &gcClient{base: base, hc: &http.Client{Timeout: time.Minute}}
	kept = tagged
	keepLatest := kept[0]
	if st, m, _, _ := c.do("GET", "/v2/"+repo+"/manifests/"+keepLatest.tag, "", nil); st == 200 {
		if st, body, _, _ := c.do("PUT", "/v2/"+repo+"/manifests/latest", mtOCIManifest, m); st != 201 {
			t.Fatalf("retag latest: %d %s", st, body)
		}
	}
	deleted, kept = kept[len(kept)-3:], kept[:len(kept)-3]
	for _, d := range deleted {
		if st, body, _, err := c.do("DELETE", "/v2/"+repo+"/manifests/"+d.tag, "", nil); err != nil || st != http.StatusAccepted {
			t.Fatalf("delete tag %s: %d %v %s", d.tag, st, err, body)
		}
	}
	return kept, deleted
}

// pullsWhole checks that every kept push pulls, manifest and blobs, with
// the bytes that were pushed.
func pullsWhole(t *testing.T, base string, kept []gcPush) {
	t.Helper()
	c := &gcClient{base: base, hc: &http.Client{Timeout: time.Minute}}
	for _, k := range kept {
		st, m, _, err := c.do("GET", "/v2/"+k.repo+"/manifests/"+k.tag, "", nil)
		if err != nil || st != 200 || sha256Digest(m) != k.digest {
			t.Fatalf("pull %s:%s: %d %v (digest %s, pushed %s)", k.repo, k.tag, st, err, sha256Digest(m), k.digest)
		}
		for d, want := range k.blobs {
			st, b, _, err := c.do("GET", "/v2/"+k.repo+"/blobs/"+d, "", nil)
			if err != nil || st != 200 || !bytes.Equal(b, want) {
				t.Fatalf("pull blob %s of %s: %d %v (%d bytes, pushed %d)", d, k.tag, st, err, len(b), len(want))
			}
		}
	}
}

// gcRun is the part of a run the tests read.
type gcRun struct {
	ID     int64  `json:"id"`
	DryRun bool   `json:"dryRun"`
	Error  string `json:"error"`
	Counts struct {
		Manifests, Links, Blobs, Uploads, Kept int
		Bytes                                  int64
	} `json:"counts"`
	Items []struct {
		Kind, Repo, Digest string
		Size               int64
	} `json:"items"`
}

// diskBlobBytes is the size of every blob file under a disk store.
func diskBlobBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(p, string(filepath.Separator)+"sha256"+string(filepath.Separator)) {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustJSONBytes(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// gcCLI runs `packreg gc --json` with args and decodes the run.
func gcCLI(t *testing.T, s *server, args ...string) gcRun {
	t.Helper()
	out := packregCLI(t, newTool(t), s.URL, 0, append([]string{"gc", "--json"}, args...)...)
	var run gcRun
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("packreg gc --json: %v: %s", err, clip(out))
	}
	if run.Error != "" {
		t.Fatalf("run %d stopped: %s", run.ID, run.Error)
	}
	return run
}

// TestGCStressDisk: disk + SQLite, collections every second with a 2s
// grace while pushers and a tagger work; then, on the same data with no
// schedule, a dry run lists exactly what the run collects and disk usage
// falls by exactly the bytes it freed, at least those only the deleted
// tags held.
func TestGCStressDisk(t *testing.T) {
	cfg := writeConfig(t, fmt.Sprintf("gc:\n  grace: %s\n  schedule: 1s\n", gcGrace))
	s := startServer(t, "--config", cfg)
	kept := gcStress(t, []*server{s})
	end := time.Now()
	pullsWhole(t, s.URL, kept)
	if out := packregCLI(t, newTool(t), s.URL, 0, "gc", "runs"); !strings.Contains(out, "schedule") {
		t.Fatalf("packreg gc runs lists no scheduled run: %s", clip(out))
	}
	s.stop()

	quiet := writeConfig(t, fmt.Sprintf("gc:\n  grace: %s\n", gcGrace))
	s = startServerAt(t, s.Data, "--config", quiet)
	kept, deleted := deleteSomeTags(t, s.URL, kept)
	// Everything the stress left must be older than the grace period
	// for the dry run and the run to see the same: the rule under test.
	for time.Since(end) <= gcGrace {
		time.Sleep(50 * time.Millisecond)
	}
	before := diskBlobBytes(t, s.Data)
	plan := gcCLI(t, s, "--dry-run")
	run := gcCLI(t, s)
	after := diskBlobBytes(t, s.Data)
	var want int64
	for _, d := range deleted {
		want += d.unique
	}
	if !plan.DryRun || run.DryRun || plan.Counts != run.Counts || len(plan.Items) != len(run.Items) {
		t.Fatalf("the dry run planned %+v (%d items); the run did %+v (%d items)", plan.Counts, len(plan.Items), run.Counts, len(run.Items))
	}
	if before-after != run.Counts.Bytes || run.Counts.Bytes < want {
		t.Fatalf("disk usage fell by %d bytes; the run freed %d; the deleted tags held %d of their own", before-after, run.Counts.Bytes, want)
	}
	if again := gcCLI(t, s); again.Counts.Manifests+again.Counts.Links+again.Counts.Blobs != 0 {
		t.Fatalf("a second run still found %+v", again.Counts)
	}
	c := &gcClient{base: s.URL, hc: http.DefaultClient}
	for _, d := range deleted {
		if st, _, _, _ := c.do("GET", "/v2/"+d.repo+"/manifests/"+d.digest, "", nil); st != 404 {
			t.Fatalf("untagged %s still served after the collection: %d", d.digest, st)
		}
	}
	pullsWhole(t, s.URL, kept)
}

// s3BlobUsage counts the blob objects under a storage URL's prefix and
// their bytes.
func s3BlobUsage(t *testing.T, storageURL string) (objects int, bytes int64) {
	t.Helper()
	l := parseS3Location(t, storageURL)
	l.eachObject(t, l.client(t), strings.TrimPrefix(l.prefix+"/blobs/", "/"), func(_ string, size int64) {
		objects++
		bytes += size
	})
	return objects, bytes
}

// TestGCStressS3PostgresReplicas: the stress on two replicas over one S3
// prefix and one PostgreSQL database, both collecting every second (the
// lease lets one at a time); then one replica with no schedule: its dry
// run equals its run, and the S3 object count and bytes fall by exactly
// what the run deleted.
func TestGCStressS3PostgresReplicas(t *testing.T) {
	s3URL := needEnv(t, "PACKREG_TEST_S3")
	pgURL := needEnv(t, "PACKREG_TEST_POSTGRES")
	storageURL := isolatedS3(t, s3URL)
	stores := []string{"--storage", storageURL, "--database", isolatedPostgres(t, pgURL)}
	cfg := writeConfig(t, fmt.Sprintf("gc:\n  grace: %s\n  schedule: 1s\n", gcGrace))
	a := startServer(t, append(stores, "--config", cfg)...)
	b := startServer(t, append(stores, "--config", cfg)...)
	a.dumpLogOnFailure()
	b.dumpLogOnFailure()
	kept := gcStress(t, []*server{a, b})
	end := time.Now()
	pullsWhole(t, a.URL, kept)
	pullsWhole(t, b.URL, kept)
	a.stop()
	b.stop()

	quiet := writeConfig(t, fmt.Sprintf("gc:\n  grace: %s\n", gcGrace))
	s := startServer(t, append(stores, "--config", quiet)...)
	kept, deleted := deleteSomeTags(t, s.URL, kept)
	for time.Since(end) <= gcGrace { // older than the grace: the rule under test
		time.Sleep(50 * time.Millisecond)
	}
	objBefore, bytesBefore := s3BlobUsage(t, storageURL)
	plan := gcCLI(t, s, "--dry-run")
	run := gcCLI(t, s)
	objAfter, bytesAfter := s3BlobUsage(t, storageURL)
	var want int64
	for _, d := range deleted {
		want += d.unique
	}
	if plan.Counts != run.Counts || len(plan.Items) != len(run.Items) {
		t.Fatalf("the dry run planned %+v (%d items); the run did %+v (%d items)", plan.Counts, len(plan.Items), run.Counts, len(run.Items))
	}
	if objBefore-objAfter != run.Counts.Blobs || bytesBefore-bytesAfter != run.Counts.Bytes || run.Counts.Bytes < want {
		t.Fatalf("S3 lost %d objects and %d bytes; the run deleted %d blobs of %d bytes; the deleted tags held %d bytes of their own",
			objBefore-objAfter, bytesBefore-bytesAfter, run.Counts.Blobs, run.Counts.Bytes, want)
	}
	pullsWhole(t, s.URL, kept)
}

// TestScrubFlippedByte: a byte of a stored blob is flipped on disk; the
// scheduled scrub finds it, records it in the audit trail (blob.corrupt),
// and from then on a pull of the blob is 500 UNKNOWN before any byte,
// while the other blobs serve as before.
func TestScrubFlippedByte(t *testing.T) {
	cfg := writeConfig(t, "scrub:\n  schedule: 1s\n")
	s := startServer(t, "--config", cfg)
	c := &gcClient{base: s.URL, hc: &http.Client{Timeout: time.Minute}}
	const repo = "scrub/app"
	good, rot := []byte("bytes that stay good"), bytes.Repeat([]byte("bytes that rot "), 100)
	for _, b := range [][]byte{good, rot} {
		if st, body, err := c.pushBlob(repo, b); err != nil || st != 201 {
			t.Fatalf("push: %d %v %s", st, err, body)
		}
	}
	d := sha256Digest(rot)
	b := flipStoredByte(t, s.Data, d)
	waitBadBlob(t, c, repo, d, b)
	if st, body, _, _ := c.do("GET", "/v2/"+repo+"/blobs/"+sha256Digest(good), "", nil); st != 200 || !bytes.Equal(body, good) {
		t.Fatalf("the good blob: %d", st)
	}
	waitAudited(t, newTool(t), s.URL, "blob.corrupt", d)
}

// TestScrubBadLayerRepairedByCranePush: crane pushes an image, a byte of
// its layer rots on disk and the scheduled scrub finds it; crane pushes
// the image again (under another tag: crane skips a tag that holds the
// manifest already), which repairs the layer: the finding goes
// (blob.repaired), and crane pulls the image whole.
func TestScrubBadLayerRepairedByCranePush(t *testing.T) {
	crane := needTool(t, "crane")
	cfg := writeConfig(t, "scrub:\n  schedule: 1s\n")
	s := startServer(t, "--config", cfg)
	c := &gcClient{base: s.URL, hc: &http.Client{Timeout: time.Minute}}
	tl := newTool(t)
	img := makeImage(t, strings.Repeat("a layer that rots and is pushed again\n", 100))
	writeLayout(tl, "layout", img)
	const repo = "scrub/repush"
	tl.run(crane, "push", "--insecure", "layout", s.Addr+"/"+repo+":v1")
	waitBadBlob(t, c, repo, img.LayerDigest, flipStoredByte(t, s.Data, img.LayerDigest))

	tl.run(crane, "push", "--insecure", "layout", s.Addr+"/"+repo+":v2")
	if st, body, _, err := c.do("GET", "/v2/"+repo+"/blobs/"+img.LayerDigest, "", nil); err != nil || st != 200 || !bytes.Equal(body, img.Layer) {
		t.Fatalf("GET of the layer pushed again: %d %v", st, err)
	}
	out := tl.path("pulled")
	tl.run(crane, "pull", "--insecure", "--format=oci", s.Addr+"/"+repo+":v1", out)
	layoutHolds(t, out, img.Digest, true)
	got, err := os.ReadFile(filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(img.LayerDigest, "sha256:")))
	if err != nil || !bytes.Equal(got, img.Layer) {
		t.Fatalf("the pulled layer: %v", err)
	}
	waitAudited(t, tl, s.URL, "blob.repaired", img.LayerDigest)
}

// flipStoredByte flips the middle byte of blob d's file in the data
// directory of a server on disk, and returns the altered bytes.
func flipStoredByte(t *testing.T, data, d string) []byte {
	t.Helper()
	hex := strings.TrimPrefix(d, "sha256:")
	var path string
	err := filepath.WalkDir(data, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && e.Name() == hex {
			path = p
		}
		return err
	})
	if err != nil || path == "" {
		t.Fatalf("blob file of %s not found under %s: %v", d, data, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitBadBlob waits for a scrub to find blob d of repo bad, bytes b
// stored: a GET of it is then 500 UNKNOWN, without b.
func waitBadBlob(t *testing.T, c *gcClient, repo, d string, b []byte) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, body, _, err := c.do("GET", "/v2/"+repo+"/blobs/"+d, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if st == 500 {
			if !strings.Contains(string(body), `"UNKNOWN"`) || bytes.Contains(body, b) {
				t.Fatalf("refusal of the bad blob: %s", clip(string(body)))
			}
			return
		}
		if st != 200 || time.Now().After(deadline) {
			t.Fatalf("GET of the flipped blob: %d after %s", st, time.Minute)
		}
		time.Sleep(100 * time.Millisecond) // a poll interval
	}
}

// waitAudited waits for the audit trail of server to hold an action
// about digest d.
func waitAudited(t *testing.T, tl *tool, server, action, d string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, e := range auditTrail(t, tl, server) {
			if e.Action == action && e.Digest == d {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s record of %s in the audit trail", action, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
