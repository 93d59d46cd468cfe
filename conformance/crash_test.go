package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	crashBlobSize = 64 << 20
	crashChunk    = 8 << 20
)

// TestKill9ChunkedUpload kills the server with SIGKILL in the middle of a
// chunked upload, twice: once in the body of a PATCH, once in the body of
// the closing PUT. After each restart on the same data the upload resumes
// from the last acknowledged offset (or is cleanly unknown and starts
// over), the finished blob is served byte-exact, and at no point is a
// partial blob served: not under the final digest, nor under the digest of
// any prefix of the data.
func TestKill9ChunkedUpload(t *testing.T) {
	s := startServer(t)
	s.dumpLogOnFailure()
	const repo = "crash/blob"

	data := make([]byte, crashBlobSize)
	rng := rand.NewChaCha8([32]byte{'p', 'a', 'c', 'k', 'r', 'e', 'g'})
	rng.Read(data)
	final := sha256Digest(data)
	// Digests of every prefix a crash could leave behind: the acknowledged
	// chunk boundaries and the midpoints of the chunks being killed.
	var partial []string
	for off := crashChunk / 2; off < crashBlobSize; off += crashChunk / 2 {
		partial = append(partial, sha256Digest(data[:off]))
	}

	// A watcher HEADs the final and partial digests all along: the final
	// one must stay unknown until the closing PUT succeeds, the partial
	// ones always.
	var (
		base      atomic.Value // current server URL
		committed atomic.Bool  // the closing PUT has been sent
		stop      = make(chan struct{})
		watchWG   sync.WaitGroup
		watchMu   sync.Mutex
		watchErrs []string
	)
	base.Store(s.URL)
	watchWG.Add(1)
	go func() {
		defer watchWG.Done()
		hc := &http.Client{Timeout: 5 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, d := range append([]string{final}, partial[i%len(partial)]) {
				if d == final && committed.Load() {
					continue
				}
				resp, err := hc.Head(base.Load().(string) + "/v2/" + repo + "/blobs/" + d)
				if err != nil {
					continue // the server is down between kill and restart
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound && !(d == final && committed.Load()) {
					watchMu.Lock()
					watchErrs = append(watchErrs, fmt.Sprintf("HEAD %s = %d while the upload was incomplete", d, resp.StatusCode))
					watchMu.Unlock()
				}
			}
		}
	}()
	defer func() {
		close(stop)
		watchWG.Wait()
		for _, e := range watchErrs {
			t.Error(e)
		}
	}()

	c := newClient(t, s.URL)
	resp, body := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	expect(t, resp, body, http.StatusAccepted, "start upload")
	loc := resp.Header.Get("Location")
	offset := int64(0)

	// restart brings the killed server back on the same data, checks that
	// nothing partial is served, and finds where the upload resumes.
	restart := func() {
		s = s.restart()
		base.Store(s.URL)
		c = newClient(t, s.URL)
		assertNotServed(t, c, repo, final, partial)
		loc, offset = resumePoint(t, c, repo, loc, offset)
	}

	// Three acknowledged chunks, then a kill in the body of the fourth.
	for range 3 {
		loc, offset = patchChunk(t, c, loc, data, offset, crashChunk)
	}
	assertNotServed(t, c, repo, final, partial)
	killMidRequest(t, s, "PATCH", c.url(loc), data[offset:offset+crashChunk], offset)

	restart()

	// Up to the last chunk, then a kill in the body of the closing PUT.
	for offset < crashBlobSize-crashChunk {
		loc, offset = patchChunk(t, c, loc, data, offset, crashChunk)
	}
	killMidRequest(t, s, "PUT", c.url(addQuery(loc, "digest", final)), data[offset:], offset)

	restart()
	for offset < crashBlobSize-crashChunk {
		loc, offset = patchChunk(t, c, loc, data, offset, crashChunk)
	}

	// Close with the last chunk in the PUT body. From the moment it is sent
	// the blob may appear (the server commits before the client reads the
	// 201), so the watcher stops checking the final digest.
	committed.Store(true)
	resp, body = c.do("PUT", addQuery(loc, "digest", final), http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("%d-%d", offset, crashBlobSize-1)},
	}, data[offset:])
	expect(t, resp, body, http.StatusCreated, "closing PUT")
	if got := resp.Header.Get("Docker-Content-Digest"); got != final {
		t.Fatalf("closing PUT: Docker-Content-Digest %q, want %s", got, final)
	}

	got := c.getBlob(repo, final)
	if len(got) != crashBlobSize || !bytes.Equal(got, data) {
		t.Fatalf("served blob: %d bytes, sha256 %s; want %d bytes, %s", len(got), sha256Digest(got), crashBlobSize, final)
	}
	// And after one more restart, still byte-exact, partials still absent.
	s.stop()
	s = s.restart()
	base.Store(s.URL)
	c = newClient(t, s.URL)
	h := sha256.New()
	r, err := http.Get(s.URL + "/v2/" + repo + "/blobs/" + final)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(h, r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || n != crashBlobSize || "sha256:"+hex.EncodeToString(h.Sum(nil)) != final {
		t.Fatalf("after restart: status %d, %d bytes", r.StatusCode, n)
	}
	assertNotServed(t, c, repo, "", partial)
}

// patchChunk sends data[offset:offset+n] as one PATCH and checks the
// acknowledgement; it returns the next Location and offset.
func patchChunk(t *testing.T, c *client, loc string, data []byte, offset, n int64) (string, int64) {
	t.Helper()
	end := min(offset+n, int64(len(data)))
	resp, body := c.do("PATCH", loc, http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("%d-%d", offset, end-1)},
	}, data[offset:end])
	expect(t, resp, body, http.StatusAccepted, fmt.Sprintf("PATCH %d-%d", offset, end-1))
	if rg := resp.Header.Get("Range"); rg != fmt.Sprintf("0-%d", end-1) {
		t.Fatalf("PATCH %d-%d acknowledged Range %q", offset, end-1, rg)
	}
	next := resp.Header.Get("Location")
	if next == "" {
		t.Fatal("PATCH answer has no Location")
	}
	return next, end
}

// killMidRequest starts a request whose body is chunk, lets half of it
// through, SIGKILLs the server and checks that the request failed.
func killMidRequest(t *testing.T, s *server, method, url string, chunk []byte, offset int64) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(method, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(chunk))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", offset, offset+int64(len(chunk))-1))
	dataFile := filepath.Join(s.Data, "uploads", path.Base(req.URL.Path))
	before := fileSize(dataFile)
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	half := len(chunk) / 2
	if _, err := pw.Write(chunk[:half]); err != nil {
		t.Fatalf("%s: writing the first half: %v", method, err)
	}
	// Kill once the server is writing this body to the upload's data file
	// (the documented disk layout, DATA/uploads/<id>): the file grows past
	// what it held before the request (the acknowledged bytes, and what an
	// earlier killed request left beyond them, which the server truncates
	// away first), so the server has read part of the first half.
	waitFor(t, 30*time.Second, method+" body reaching the upload's data file", func() bool {
		return fileSize(dataFile) > before
	})
	s.kill()
	pw.CloseWithError(errors.New("server killed"))
	r := <-done
	if r.err == nil {
		t.Fatalf("%s killed mid-body still got status %d", method, r.status)
	}
	t.Logf("%s at offset %d killed mid-body after %d bytes: %v", method, offset, half, r.err)
}

// fileSize is the size of file, 0 when it is absent.
func fileSize(file string) int64 {
	fi, err := os.Stat(file)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// resumePoint asks the restarted server where the upload stands. It must be
// exactly the last acknowledged offset (204 with Range 0-(acked-1)), or the
// upload must be cleanly unknown (404 BLOB_UPLOAD_UNKNOWN): then a new
// upload starts from zero.
func resumePoint(t *testing.T, c *client, repo, loc string, acked int64) (string, int64) {
	t.Helper()
	resp, body := c.do("GET", loc, nil, nil)
	switch resp.StatusCode {
	case http.StatusNoContent:
		rg := resp.Header.Get("Range")
		want := fmt.Sprintf("0-%d", acked-1)
		if rg != want {
			t.Fatalf("upload status after kill: Range %q, want %q (last acknowledged offset %d)", rg, want, acked)
		}
		next := resp.Header.Get("Location")
		if next == "" {
			next = loc
		}
		t.Logf("upload resumes at offset %d", acked)
		return next, acked
	case http.StatusNotFound:
		var env struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		if json.Unmarshal(body, &env) != nil || len(env.Errors) == 0 || env.Errors[0].Code != "BLOB_UPLOAD_UNKNOWN" {
			t.Fatalf("upload status after kill: 404 without BLOB_UPLOAD_UNKNOWN: %s", body)
		}
		t.Logf("upload is unknown after the kill; starting over")
		resp, body := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
		expect(t, resp, body, http.StatusAccepted, "restart upload")
		return resp.Header.Get("Location"), 0
	}
	t.Fatalf("upload status after kill: %d %s", resp.StatusCode, body)
	return "", 0
}

// assertNotServed checks that final (unless empty) and every partial digest
// are unknown in repo.
func assertNotServed(t *testing.T, c *client, repo, final string, partial []string) {
	t.Helper()
	ds := partial
	if final != "" {
		ds = append([]string{final}, partial...)
	}
	for _, d := range ds {
		if st := c.blobStatus(repo, d); st != http.StatusNotFound {
			what := "a partial"
			if d == final {
				what = "the final"
			}
			t.Fatalf("HEAD of %s digest %s = %d before the upload completed", what, d, st)
		}
		resp, _ := c.do("GET", "/v2/"+repo+"/blobs/"+d, http.Header{"Range": {"bytes=0-0"}}, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET of digest %s = %d before the upload completed", d, resp.StatusCode)
		}
	}
}

// TestKill9ClosingPut kills the server inside the closing PUT of a chunked
// upload, at its narrowest point: the blob is published in the blob store
// and the metadata store has not yet linked it nor dropped the session. A
// lock on the database holds the server there; the test kills it as soon
// as the blob appears. After the restart the upload must finish: the
// session is intact and the closing PUT succeeds, or it is gone with the
// blob in place. Never a 500, never an acknowledged byte lost. On disk and
// SQLite, and on S3 and PostgreSQL.
func TestKill9ClosingPut(t *testing.T) {
	t.Run("disk+sqlite", func(t *testing.T) {
		s := startServer(t)
		killInClosingPut(t, s,
			func(d string) bool {
				hex := strings.TrimPrefix(d, "sha256:")
				_, err := os.Stat(filepath.Join(s.Data, "blobs", "sha256", hex[:2], hex))
				return err == nil
			},
			func() func() { return lockSQLiteWrites(t, filepath.Join(s.Data, "packreg.db")) })
	})
	t.Run("s3+postgres", func(t *testing.T) {
		s3URL := needEnv(t, "PACKREG_TEST_S3")
		pgURL := needEnv(t, "PACKREG_TEST_POSTGRES")
		storage, database := isolatedS3(t, s3URL), isolatedPostgres(t, pgURL)
		s := startServer(t, "--storage", storage, "--database", database)
		loc := parseS3Location(t, storage)
		cl := loc.client(t)
		killInClosingPut(t, s,
			func(d string) bool {
				hex := strings.TrimPrefix(d, "sha256:")
				key := path.Join(loc.prefix, "blobs", "sha256", hex[:2], hex)
				_, err := cl.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &loc.bucket, Key: &key})
				return err == nil
			},
			func() func() { return lockPostgresTables(t, database, "blobs", "uploads") })
	})
}

// killInClosingPut uploads a blob in chunks, locks the database against
// writes (lock), sends the closing PUT, kills the server the moment the
// blob is published (published), restarts it and finishes the upload.
func killInClosingPut(t *testing.T, s *server, published func(d string) bool, lock func() (release func())) {
	s.dumpLogOnFailure()
	const repo = "crash/closing"
	data := make([]byte, 3<<20+5)
	rand.NewChaCha8([32]byte{'c', 'l', 'o', 's', 'e'}).Read(data)
	d := sha256Digest(data)

	c := newClient(t, s.URL)
	resp, body := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	expect(t, resp, body, http.StatusAccepted, "start upload")
	loc, offset := resp.Header.Get("Location"), int64(0)
	for offset < int64(len(data)) {
		loc, offset = patchChunk(t, c, loc, data, offset, 1<<20)
	}

	release := lock()
	put := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("PUT", c.url(addQuery(loc, "digest", d)), nil)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		put <- err
	}()
	waitFor(t, 30*time.Second, "the blob published by the closing PUT", func() bool { return published(d) })
	s.kill()
	release()
	if err := <-put; !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("the closing PUT was not cut by the kill: %v", err)
	}

	s = s.restart()
	c = newClient(t, s.URL)
	resp, body = c.do("GET", loc, nil, nil)
	switch resp.StatusCode {
	case http.StatusNoContent:
		// The session is intact, every acknowledged byte in it: finish it.
		if rg, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", len(data)-1); rg != want {
			t.Fatalf("session after the kill: Range %q, want %q", rg, want)
		}
		resp, body = c.do("PUT", addQuery(loc, "digest", d), nil, nil)
		if resp.StatusCode == http.StatusNotFound && strings.Contains(string(body), "BLOB_UPLOAD_UNKNOWN") {
			// Finished in between (another replica): the blob must be there.
			break
		}
		expect(t, resp, body, http.StatusCreated, "closing PUT after the restart")
		if got := resp.Header.Get("Docker-Content-Digest"); got != d {
			t.Fatalf("Docker-Content-Digest %q, want %s", got, d)
		}
	case http.StatusNotFound:
		if !strings.Contains(string(body), "BLOB_UPLOAD_UNKNOWN") {
			t.Fatalf("upload status after the kill: 404 without BLOB_UPLOAD_UNKNOWN: %s", body)
		}
	default:
		t.Fatalf("upload status after the kill: %d %s", resp.StatusCode, body)
	}
	if got := c.getBlob(repo, d); !bytes.Equal(got, data) {
		t.Fatalf("served blob: %d bytes, %s; want %d bytes, %s", len(got), sha256Digest(got), len(data), d)
	}
	resp, body = c.do("GET", loc, nil, nil)
	expect(t, resp, body, http.StatusNotFound, "upload status once finished")
}
