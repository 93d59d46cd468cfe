package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/metrics"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/retention"
)

// metricValue reads one sample of a scrape: the line that starts with
// series (name and labels as the text format writes them), or -1.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// TestMetricsCountRequests: the whole server, in process: every request
// is counted under its route template, method and status, with its bytes;
// a path no route has is "none"; the database and blob store calls are
// counted; and nothing of a request's path reaches a label.
func TestMetricsCountRequests(t *testing.T) {
	h := edgeApp(t, nil)
	blob := bytes.Repeat([]byte("m"), 3000)
	sum := sha256.Sum256(blob)
	d := "sha256:" + hex.EncodeToString(sum[:])

	want(t, send(h, "POST", "/v2/metrics/demo/blobs/uploads/?digest="+d, blob), 201, "", "monolithic upload")
	// An untagged manifest over it: one event for attest's queue (blob
	// events are not queued for attest).
	man := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + d + `","size":3000},"layers":[]}`)
	msum := sha256.Sum256(man)
	want(t, send(h, "PUT", "/v2/metrics/demo/manifests/sha256:"+hex.EncodeToString(msum[:]), man,
		"Content-Type", "application/vnd.oci.image.manifest.v1+json"), 201, "", "manifest PUT")
	for i := 0; i < 3; i++ {
		want(t, send(h, "GET", "/v2/metrics/demo/blobs/"+d, nil), 200, "", "blob GET")
	}
	want(t, send(h, "GET", "/v2/metrics/demo/manifests/nope", nil), 404, "MANIFEST_UNKNOWN", "manifest GET")
	want(t, send(h, "GET", "/secret-looking/path", nil), 404, "", "no route")
	want(t, send(h, "BREW", "/v2/", nil), 405, "", "odd method")

	w := send(h, "GET", "/metrics", nil)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	text := w.Body.String()
	for series, v := range map[string]float64{
		`packreg_http_requests_total{code="202",method="POST",route="/v2/{name}/blobs/uploads/"}`:  -1, // not this route's code
		`packreg_http_requests_total{code="201",method="POST",route="/v2/{name}/blobs/uploads/"}`:  1,
		`packreg_http_requests_total{code="201",method="PUT",route="/v2/{name}/manifests/{ref}"}`:  1,
		`packreg_http_requests_total{code="200",method="GET",route="/v2/{name}/blobs/{ref}"}`:      3,
		`packreg_http_response_bytes_total{route="/v2/{name}/blobs/{ref}"}`:                        3 * 3000,
		`packreg_http_request_bytes_total{route="/v2/{name}/blobs/uploads/"}`:                      3000,
		`packreg_http_requests_total{code="404",method="GET",route="/v2/{name}/manifests/{ref}"}`:  1,
		`packreg_http_requests_total{code="404",method="GET",route="none"}`:                        1,
		`packreg_http_requests_total{code="405",method="other",route="/v2/"}`:                      1,
		`packreg_http_request_duration_seconds_count{method="GET",route="/v2/{name}/blobs/{ref}"}`: 3,
		`packreg_upload_sessions_open`: 0,
		// No attest or compliance worker runs here: the manifest push
		// waits in both queues.
		`packreg_outbox_pending_events{consumer="attest"}`:                       1,
		`packreg_outbox_pending_events{consumer="compliance"}`:                   1,
		`packreg_outbox_pending_events{consumer="audit"}`:                        0,
		`packreg_http_requests_in_flight`:                                        1, // this scrape
		`packreg_storage_operations_total{op="open",outcome="ok",store="blobs"}`: 3,
		// A single-request upload is one put (storage.BlobPutter), no commit.
		`packreg_storage_operations_total{op="put",outcome="ok",store="blobs"}`:       1,
		`packreg_storage_operations_total{op="commit",outcome="ok",store="blobs"}`:    -1,
		`packreg_storage_operations_total{op="query",outcome="ok",store="database"}`:  -2,
		`packreg_storage_operations_total{op="commit",outcome="ok",store="database"}`: -2,
	} {
		got := metricValue(t, text, series)
		switch {
		case v == -2 && got <= 0:
			t.Errorf("%s: missing or zero", series)
		case v != -2 && got != v:
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	for _, leak := range []string{"secret-looking", "metrics/demo", "BREW", d} {
		if strings.Contains(text, leak) {
			t.Errorf("a label holds %q", leak)
		}
	}
}

// TestMetricsDisabled: metrics.enabled false leaves /metrics unrouted.
func TestMetricsDisabled(t *testing.T) {
	h := edgeApp(t, func(c *Config) { c.Metrics.Enabled = false })
	if w := send(h, "GET", "/metrics", nil); w.Code != http.StatusNotFound {
		t.Fatalf("GET /metrics with metrics off: %d", w.Code)
	}
}

// oneRow is a registry with one row.
type oneRow struct{ h http.Handler }

func (o oneRow) Routes() []routes.Route {
	return []routes.Route{routes.Get("/v2/{name:.+}/blobs/{ref:[^/]*}", o.h)}
}
func (o oneRow) NotFound() http.Handler         { return http.NotFoundHandler() }
func (o oneRow) NotAllowed(string) http.Handler { return http.NotFoundHandler() }

// TestBlobGetKeepsSendfile: under the request log (with metrics and the
// route label) and the edge, a matched row still writes through an
// io.ReaderFrom (the kernel's sendfile for a file), never a plain copy.
func TestBlobGetKeepsSendfile(t *testing.T) {
	var sawReaderFrom bool
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, sawReaderFrom = w.(io.ReaderFrom)
		io.WriteString(w, "blob")
	})
	log := slog.New(slog.DiscardHandler)
	ob := &observer{m: metrics.New("test")}
	table := newRouteTable(oneRow{inner}, &stores{}, nil, log, nil, nil, nil, ob)
	srv := httptest.NewServer(newHandler(table, log, edgeSettings{}, ob))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v2/any/blobs/sha256:00")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !sawReaderFrom {
		t.Fatalf("status %d; the handler's writer an io.ReaderFrom: %v", resp.StatusCode, sawReaderFrom)
	}
	w := httptest.NewRecorder()
	ob.m.Handler(log).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if got := metricValue(t, w.Body.String(), `packreg_http_requests_total{code="200",method="GET",route="/v2/{name}/blobs/{ref}"}`); got != 1 {
		t.Fatalf("the blob GET counted %v times", got)
	}
}

// TestAbortedRequestEnds: a handler that panics midway (ErrAbortHandler:
// a streamed page that fails after its start went out) still ends its
// request: counted, out of the in-flight gauge, logged as a warning.
// Before, the gauge kept it forever and the log had no line.
func TestAbortedRequestEnds(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "[1,")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	var logged lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	ob := &observer{m: metrics.New("test")}
	table := newRouteTable(oneRow{inner}, &stores{}, nil, log, nil, nil, nil, ob)
	srv := httptest.NewServer(newHandler(table, log, edgeSettings{}, ob))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v2/any/blobs/sha256:00")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the client read a whole answer from a handler that aborted it")
	}
	// The request ended before the panic reached net/http, which closes
	// the connection only then: what the client saw is recorded.
	w := httptest.NewRecorder()
	ob.m.Handler(log).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	scrape := w.Body.String()
	if got := metricValue(t, scrape, `packreg_http_requests_in_flight`); got != 0 {
		t.Errorf("in flight after the aborted request: %v, want 0", got)
	}
	if got := metricValue(t, scrape, `packreg_http_requests_total{code="200",method="GET",route="/v2/{name}/blobs/{ref}"}`); got != 1 {
		t.Errorf("the aborted GET counted %v times, want 1", got)
	}
	if line := logged.String(); !strings.Contains(line, `"msg":"request"`) || !strings.Contains(line, `"aborted":true`) || !strings.Contains(line, `"level":"WARN"`) {
		t.Errorf("log = %s; want a WARN request line with aborted", line)
	}
}

// TestMetricsCountGCRuns: collections, dry or not, are counted as runs of
// kind gc through the registry's observer.
func TestMetricsCountGCRuns(t *testing.T) {
	h := edgeApp(t, nil)
	want(t, send(h, "POST", "/api/v1/gc", []byte(`{"dryRun":true}`), "Content-Type", "application/json"), 200, "", "dry run")
	want(t, send(h, "POST", "/api/v1/gc", []byte(`{}`), "Content-Type", "application/json"), 200, "", "run")
	text := send(h, "GET", "/metrics", nil).Body.String()
	// A dry run is its own outcome, as for retention: it freed nothing.
	if got := metricValue(t, text, `packreg_runs_total{kind="gc",outcome="succeeded"}`); got != 1 {
		t.Fatalf("gc runs counted %v, want 1", got)
	}
	if got := metricValue(t, text, `packreg_runs_total{kind="gc",outcome="dry_run"}`); got != 1 {
		t.Fatalf("gc dry runs counted %v, want 1", got)
	}
}

// TestMetricsCountInterruptedRuns: a collection or a retention run whose
// context ends (shutdown, a lost lease) is counted as interrupted, not
// failed, and its record says so: a later run carries on.
func TestMetricsCountInterruptedRuns(t *testing.T) {
	a := testApp(t, func(c *Config) {
		c.Retention.Rules = []retention.Rule{{Repositories: []string{"**"}, KeepActive: ptr(0)}}
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	gc, err := a.gc.run(ctx, true, "test")
	if err == nil || !strings.HasPrefix(gc.Error, "interrupted") {
		t.Fatalf("cancelled collection: %+v %v", gc, err)
	}
	ret, err := a.ret.svc.Run(ctx, retention.Options{Trigger: "test"})
	if err == nil || !strings.HasPrefix(ret.Error, "interrupted") {
		t.Fatalf("cancelled retention run: %+v %v", ret, err)
	}
	text := send(a.handler, "GET", "/metrics", nil).Body.String()
	for _, kind := range []string{"gc", "retention"} {
		if got := metricValue(t, text, `packreg_runs_total{kind="`+kind+`",outcome="interrupted"}`); got != 1 {
			t.Errorf("%s: interrupted runs counted %v, want 1", kind, got)
		}
		if got := metricValue(t, text, `packreg_runs_total{kind="`+kind+`",outcome="failed"}`); got > 0 {
			t.Errorf("%s: failed runs counted %v, want none", kind, got)
		}
	}
}
