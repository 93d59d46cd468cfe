package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/storage"
)

// fakeMeta has the optional Pinger ability, which answers err;
// everything else panics.
type fakeMeta struct {
	storage.Store
	err error
}

func (f *fakeMeta) Ping(context.Context) error { return f.err }

// fakeBlobs has the optional Pinger ability.
type fakeBlobs struct {
	storage.BlobStore
	err error
}

func (f *fakeBlobs) Ping(context.Context) error { return f.err }

// fakeOCI stands in for the registry: it has no rows, so h answers
// every path the table does not have.
type fakeOCI struct{ h http.Handler }

func (f fakeOCI) Routes() []routes.Route         { return nil }
func (f fakeOCI) NotFound() http.Handler         { return f.h }
func (f fakeOCI) NotAllowed(string) http.Handler { return f.h }

func TestHandler(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, nil))
	meta := &fakeMeta{}
	blobs := &fakeBlobs{}
	var draining atomic.Bool
	reg := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the registry sees: the request id the wrapper chose.
		w.Header().Set("X-Seen-Id", reqid.From(r.Context()))
		if r.URL.Path == "/v2/boom" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "registry")
	})
	srv := httptest.NewServer(newHandler(newRouteTable(fakeOCI{reg}, &stores{blobs: blobs, meta: meta}, &draining, log, nil, nil, nil, nil), log, edgeSettings{checkHost: true}, nil))
	defer srv.Close()

	get := func(path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	if resp, body := get("/healthz"); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get("/readyz"); resp.StatusCode != 200 {
		t.Errorf("readyz: %d", resp.StatusCode)
	}
	// The reason names the store, never the backend's own words (hosts,
	// bucket names): the log line has those.
	meta.err = storage.ErrUnavailable
	if resp, body := get("/readyz"); resp.StatusCode != 503 || body != "database unavailable\n" {
		t.Errorf("readyz with metadata down: %d %q", resp.StatusCode, body)
	}
	meta.err = nil
	blobs.err = errors.New("bucket gone")
	if resp, body := get("/readyz"); resp.StatusCode != 503 || body != "blob store unavailable\n" {
		t.Errorf("readyz with blobs down: %d %q", resp.StatusCode, body)
	}
	blobs.err = nil
	draining.Store(true)
	if resp, body := get("/readyz"); resp.StatusCode != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("readyz while draining: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get("/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz while draining: %d", resp.StatusCode)
	}
	draining.Store(false)

	// Everything else goes to the registry, with a request id.
	resp, body := get("/v2/")
	id := resp.Header.Get("X-Request-Id")
	if body != "registry" || len(id) != 16 || resp.Header.Get("X-Seen-Id") != id {
		t.Errorf("/v2/: body %q id %q seen %q", body, id, resp.Header.Get("X-Seen-Id"))
	}
	// A sane incoming id is kept; a hostile one is replaced.
	if resp, _ := get("/v2/", "X-Request-Id", "lb-1234_abc.def"); resp.Header.Get("X-Request-Id") != "lb-1234_abc.def" {
		t.Errorf("sane id not kept: %q", resp.Header.Get("X-Request-Id"))
	}
	if resp, _ := get("/v2/", "X-Request-Id", "evil\" id"); resp.Header.Get("X-Request-Id") == "evil\" id" {
		t.Error("hostile id kept")
	}
	if resp, _ := get("/v2/", "X-Request-Id", strings.Repeat("a", 65)); len(resp.Header.Get("X-Request-Id")) != 16 {
		t.Error("overlong id kept")
	}
	get("/v2/boom")

	// One log line per request, with status and request id.
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(logBuf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 11 {
		t.Fatalf("%d request lines, want 11:\n%s", len(lines), logBuf.String())
	}
	first := lines[0]
	if first["path"] != "/healthz" || first["status"] != float64(200) || first["request_id"] == "" || first["bytes_out"] != float64(3) {
		t.Errorf("first line %v", first)
	}
	last := lines[len(lines)-1]
	if last["path"] != "/v2/boom" || last["status"] != float64(500) || last["level"] != "WARN" {
		t.Errorf("last line %v", last)
	}
}

// TestReadyzPingsTheStores: /readyz asks the real default stores (disk
// blobs, SQLite) through their Ping: a data directory gone from under the
// server, or a closed database, makes it unready.
func TestReadyzPingsTheStores(t *testing.T) {
	blobs, meta, dir := teststores.Open(t)
	var draining atomic.Bool
	log := slog.New(slog.DiscardHandler)
	h := newHandler(newRouteTable(fakeOCI{http.NotFoundHandler()}, &stores{blobs: blobs, meta: meta}, &draining, log, nil, nil, nil, nil),
		log, edgeSettings{}, nil)
	ready := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code
	}
	if got := ready(); got != 200 {
		t.Fatalf("readyz: %d, want 200", got)
	}
	if err := os.RemoveAll(filepath.Join(dir, "blobs", "tmp")); err != nil {
		t.Fatal(err)
	}
	if got := ready(); got != 503 {
		t.Errorf("readyz with the blob directories gone: %d, want 503", got)
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := ready(); got != 200 {
		t.Fatalf("readyz with the blob directories back: %d, want 200", got)
	}
	meta.Close()
	if got := ready(); got != 503 {
		t.Errorf("readyz with the database closed: %d, want 503", got)
	}
}

// statusWriter keeps the ResponseWriter abilities handlers rely on.
func TestStatusWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	sw := &statusWriter{ResponseWriter: rec}
	var w http.ResponseWriter = sw
	if _, ok := w.(http.Flusher); !ok {
		t.Error("not a Flusher")
	}
	if _, ok := w.(io.ReaderFrom); !ok {
		t.Error("not a ReaderFrom")
	}
	if err := http.NewResponseController(w).Flush(); err != nil {
		t.Errorf("ResponseController.Flush: %v", err)
	}
	n, err := io.Copy(w, strings.NewReader("hello"))
	if err != nil || n != 5 || sw.bytes != 5 || sw.status != 200 || rec.Body.String() != "hello" {
		t.Errorf("copy: n=%d err=%v bytes=%d status=%d body=%q", n, err, sw.bytes, sw.status, rec.Body.String())
	}

	sw = &statusWriter{ResponseWriter: httptest.NewRecorder()}
	sw.WriteHeader(http.StatusContinue) // informational: not the final status
	sw.WriteHeader(http.StatusAccepted)
	if sw.status != http.StatusAccepted {
		t.Errorf("status %d", sw.status)
	}
}

func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	l, err := newLogger(&b, LogConfig{Level: "warn", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", "v")
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), `"msg":"shown"`) {
		t.Errorf("log output %q", b.String())
	}
	if _, err := newLogger(&b, LogConfig{Level: "loud", Format: "json"}); err == nil {
		t.Error("bad level accepted")
	}
	if _, err := newLogger(&b, LogConfig{Level: "info", Format: "xml"}); err == nil {
		t.Error("bad format accepted")
	}
}

// A trusted root file that is missing or not a trusted root stops the
// start, naming it, before the server listens: a typo must not leave
// every keyless signature failing.
func TestServeRefusesABadTrustedRootFile(t *testing.T) {
	dir := t.TempDir()
	notRoot := filepath.Join(dir, "not-a-root.json")
	if err := os.WriteFile(notRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"missing": filepath.Join(dir, "nowhere.json"), "not a root": notRoot} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "packreg.yaml")
			if err := os.WriteFile(cfg, []byte("attest:\n  trusted_roots:\n    - {name: ci, path: "+path+"}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// Bounded so that a server that starts anyway stops (and fails
			// the test) rather than hanging it.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, []string{"serve", "--config", cfg, "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), "attest.trusted_roots ci") || strings.Contains(stderr.String(), "listening") {
				t.Fatalf("serve = %d\n%s", code, stderr.String())
			}
		})
	}
}
