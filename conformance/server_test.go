package conformance

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServerBasics checks the wiring around the registry: health and
// readiness, request ids, version, config print, and the refusal to listen
// anonymously beyond loopback.
func TestServerBasics(t *testing.T) {
	s := startServer(t)
	c := newClient(t, s.URL)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, body := c.do("GET", p, nil, nil)
		expect(t, resp, body, http.StatusOK, p)
	}
	resp, body := c.do("GET", "/v2/", nil, nil)
	expect(t, resp, body, http.StatusOK, "/v2/")
	if id := resp.Header.Get("X-Request-Id"); id == "" {
		t.Error("/v2/ answer has no X-Request-Id")
	}
	if v := resp.Header.Get("Docker-Distribution-Api-Version"); v != "registry/2.0" {
		t.Errorf("Docker-Distribution-Api-Version %q", v)
	}

	run := func(args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, packregBin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	if out, _, err := run("version"); err != nil || !strings.HasPrefix(out, "packreg ") {
		t.Errorf("packreg version: %q %v", out, err)
	}
	dir := t.TempDir()
	if _, stderr, err := run("serve", "--addr", "0.0.0.0:0", "--data", dir); err == nil || !strings.Contains(stderr, "--allow-anonymous") {
		t.Errorf("serve on 0.0.0.0 without --allow-anonymous: err %v, stderr %q", err, stderr)
	}
	cfg := filepath.Join(dir, "packreg.yaml")
	os.WriteFile(cfg, []byte("addr: 127.0.0.1:0\nlisten: 127.0.0.1:1\n"), 0o600)
	if _, stderr, err := run("serve", "--config", cfg); err == nil || !strings.Contains(stderr, "listen") {
		t.Errorf("serve with an unknown config key: err %v, stderr %q", err, stderr)
	}
	out, _, err := run("config", "print", "--data", dir, "--database", "postgres://packreg:s3cret@127.0.0.1:5432/packreg")
	if err != nil || strings.Contains(out, "s3cret") || !strings.Contains(out, "postgres://packreg:xxxxx@127.0.0.1:5432/packreg") ||
		!strings.Contains(out, "addr: 127.0.0.1:5000") {
		t.Errorf("config print (%v):\n%s", err, out)
	}
}

// TestGracefulShutdown sends SIGTERM while an upload is in flight: the
// server stops accepting connections, lets the request finish, and exits 0.
func TestGracefulShutdown(t *testing.T) {
	s := startServer(t)
	s.dumpLogOnFailure()
	c := newClient(t, s.URL)
	resp, body := c.do("POST", "/v2/graceful/blob/blobs/uploads/", nil, nil)
	expect(t, resp, body, http.StatusAccepted, "start upload")
	loc := resp.Header.Get("Location")

	// 4 MiB, half sent before SIGTERM: more than the disk store's 1 MiB
	// buffer, so the first half reaches the data file.
	chunk := bytes.Repeat([]byte("graceful"), 512<<10)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PATCH", c.url(loc), pr)
	req.ContentLength = int64(len(chunk))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", "0-"+strconv.Itoa(len(chunk)-1))
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	// A connection of its own: on a kept-alive one the server may still see
	// it idle (between requests) when SIGTERM lands, and Shutdown rightly
	// closes idle connections. A new connection is never idle.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		resp, err := fresh.Do(req)
		done <- result{resp, err}
	}()
	pw.Write(chunk[:len(chunk)/2])
	// The bytes are in the kernel once Write returns, but the server may not
	// have accepted the connection yet, and a listener closed by Shutdown
	// drops connections still in its backlog. Wait until the server is
	// writing this PATCH to the upload's data file (the documented disk
	// layout, DATA/uploads/<id>), so the request is surely in flight.
	waitFor(t, 10*time.Second, "the server to start writing the PATCH", func() bool {
		fi, err := os.Stat(filepath.Join(s.Data, "uploads", path.Base(loc)))
		return err == nil && fi.Size() > 0
	})

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.stopped = true
	// New connections are refused once shutdown has begun.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := (&http.Client{Timeout: time.Second}).Get(s.URL + "/healthz")
		if err != nil {
			break
		}
		r.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still accepts connections 10s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-s.done:
		t.Fatal("server exited while a request was in flight")
	default:
	}
	pw.Write(chunk[len(chunk)/2:])
	pw.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("in-flight PATCH failed during graceful shutdown: %v", r.err)
	}
	r.resp.Body.Close()
	if r.resp.StatusCode != http.StatusAccepted || r.resp.Header.Get("Range") != "0-"+strconv.Itoa(len(chunk)-1) {
		t.Fatalf("in-flight PATCH: %d Range %q", r.resp.StatusCode, r.resp.Header.Get("Range"))
	}
	select {
	case <-s.done:
		if s.waitErr != nil {
			t.Fatalf("exit after SIGTERM: %v", s.waitErr)
		}
	case <-time.After(30 * time.Second):
		s.kill()
		t.Fatal("server did not exit after the last request finished")
	}
	log, _ := os.ReadFile(s.logPath)
	if !strings.Contains(string(log), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", clip(string(log)))
	}

	// The acknowledged chunk survived: a restarted server resumes there.
	s2 := s.restart()
	c2 := newClient(t, s2.URL)
	resp, body = c2.do("GET", loc, nil, nil)
	expect(t, resp, body, http.StatusNoContent, "upload status after restart")
	if rg := resp.Header.Get("Range"); rg != "0-"+strconv.Itoa(len(chunk)-1) {
		t.Fatalf("upload status after restart: Range %q", rg)
	}
}

// waitFor polls cond until it holds, failing t after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
