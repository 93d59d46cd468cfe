package conformance

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// waitForLockWaiter waits until a session of the database at dsn waits
// for a lock on table: the server has reached the write the test holds
// back, and cannot get past it.
func waitForLockWaiter(t *testing.T, dsn, table string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	defer conn.Close(context.Background())
	waitFor(t, 30*time.Second, "the server to wait for the lock on "+table, func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass`, table).Scan(&n)
		return err == nil && n > 0
	})
}

// packStates returns the status of every version of name in the pack
// index, by version.
func packStates(c *client, name string) map[string]string {
	c.t.Helper()
	out := map[string]string{}
	for _, v := range c.packs("?status=all&name=" + name).Items {
		out[v.Version] = v.Status
	}
	return out
}

// TestKill9PackIndex kills the server while the pack index write of a
// push, and then of a tag delete, is held back (a lock on pack_versions,
// PostgreSQL). The pack index must never disagree with the tags after the
// restart: a version tag that is served is a version the API lists, and a
// deleted tag is a deleted version. (When the index was a subscriber that
// ran after the push had committed, the tag was served and the version
// missing from /api/v1/packs for good.)
func TestKill9PackIndex(t *testing.T) {
	s, database := startOnPostgres(t)
	c := newClient(t, s.URL)
	const repo = "index/crash"
	const fileType = "application/vnd.packreg.pack.file.v1"
	c.putManifest(repo, "1.0.0", mtOCIManifest, rawPack(c, repo, packArtifactType, fileType, []byte("first")))
	if got := packStates(c, repo); got["1.0.0"] != "active" {
		t.Fatalf("versions before the crash: %v", got)
	}
	body := rawPack(c, repo, packArtifactType, fileType, []byte("pushed as the server dies"))

	// A push killed at its index write.
	crashWhile(t, s, database, func() {
		req, _ := http.NewRequest("PUT", s.URL+"/v2/"+repo+"/manifests/1.1.0", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", mtOCIManifest)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
	})
	s = s.restart()
	c = newClient(t, s.URL)
	_, _, status := c.getManifest(repo, "1.1.0")
	states := packStates(c, repo)
	if (status == http.StatusOK) != (states["1.1.0"] == "active") {
		t.Fatalf("after the restart, GET %s:1.1.0 answers %d and the pack index says %q", repo, status, states["1.1.0"])
	}
	// The client retries the push it never got an answer to.
	c.putManifest(repo, "1.1.0", mtOCIManifest, body)
	if got := packStates(c, repo); got["1.1.0"] != "active" {
		t.Fatalf("versions after the retried push: %v", got)
	}

	// A tag delete killed at its index write.
	crashWhile(t, s, database, func() {
		req, _ := http.NewRequest("DELETE", s.URL+"/v2/"+repo+"/manifests/1.0.0", nil)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
	})
	s = s.restart()
	c = newClient(t, s.URL)
	_, _, status = c.getManifest(repo, "1.0.0")
	states = packStates(c, repo)
	if served, deleted := status == http.StatusOK, states["1.0.0"] == "deleted"; served == deleted {
		t.Fatalf("after the restart, GET %s:1.0.0 answers %d and the pack index says %q", repo, status, states["1.0.0"])
	}
}

// crashWhile runs request in the background with writes to pack_versions
// held back, kills the server once it waits for them, and returns when
// the request has ended.
func crashWhile(t *testing.T, s *server, database string, request func()) {
	t.Helper()
	release := lockPostgresTables(t, database, "pack_versions")
	done := make(chan struct{})
	go func() {
		defer close(done)
		request()
	}()
	waitForLockWaiter(t, database, "pack_versions")
	s.kill()
	release()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the request outlived the server by a minute")
	}
}
