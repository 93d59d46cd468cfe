package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/packreg/packreg/internal/depcheck"
	"github.com/packreg/packreg/internal/metrics"
	"github.com/packreg/packreg/storage"
)

// TestDependencies: metrics sits beside the stores, below cmd only.
func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/packreg/packreg/storage", "github.com/prometheus/client_golang/")
}

// scrape returns the exposition text of m's handler.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestObserveRequest(t *testing.T) {
	m := metrics.New("v1.2.3")
	route := "/v2/{name}/blobs/{ref}"
	for i := 0; i < 3; i++ {
		m.RequestStarted()
		m.ObserveRequest(route, "GET", 200, 10*time.Millisecond, 0, 100)
	}
	m.RequestStarted()
	m.ObserveRequest(route, "GET", 404, time.Millisecond, 0, 50)
	m.RequestStarted()
	m.ObserveRequest(route, "PUT", 201, time.Millisecond, 4096, 0)
	// A made-up method is "other": a client cannot grow the label set.
	m.RequestStarted()
	m.ObserveRequest(metrics.NoRoute, "BREW", 405, time.Millisecond, 0, 0)
	m.RequestStarted() // one still in flight

	text := scrape(t, m)
	for _, want := range []string{
		`packreg_http_requests_total{code="200",method="GET",route="/v2/{name}/blobs/{ref}"} 3`,
		`packreg_http_requests_total{code="404",method="GET",route="/v2/{name}/blobs/{ref}"} 1`,
		`packreg_http_requests_total{code="201",method="PUT",route="/v2/{name}/blobs/{ref}"} 1`,
		`packreg_http_requests_total{code="405",method="other",route="none"} 1`,
		`packreg_http_request_duration_seconds_count{method="GET",route="/v2/{name}/blobs/{ref}"} 4`,
		`packreg_http_request_duration_seconds_bucket{method="GET",route="/v2/{name}/blobs/{ref}",le="0.005"} 1`,
		`packreg_http_response_bytes_total{route="/v2/{name}/blobs/{ref}"} 350`,
		`packreg_http_request_bytes_total{route="/v2/{name}/blobs/{ref}"} 4096`,
		`packreg_http_requests_in_flight 1`,
		`packreg_build_info{version="v1.2.3"} 1`,
		`go_goroutines `,
		`process_start_time_seconds `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(text, "BREW") {
		t.Error("a raw method reached a label")
	}
}

func TestStoreObserverOutcomes(t *testing.T) {
	m := metrics.New("test")
	obs := m.StoreObserver("blobs")
	for _, err := range []error{
		nil, nil,
		fmt.Errorf("stat: %w", storage.ErrNotFound),
		fmt.Errorf("x: %w", context.Canceled),
		fmt.Errorf("s3: %w: 503", storage.ErrUnavailable),
		errors.New("disk on fire"),
	} {
		obs("GetObject", 3*time.Millisecond, err)
	}
	m.StoreObserver("database")("commit", time.Millisecond, nil)
	text := scrape(t, m)
	for _, want := range []string{
		`packreg_storage_operations_total{op="GetObject",outcome="ok",store="blobs"} 2`,
		`packreg_storage_operations_total{op="GetObject",outcome="not_found",store="blobs"} 1`,
		`packreg_storage_operations_total{op="GetObject",outcome="canceled",store="blobs"} 1`,
		`packreg_storage_operations_total{op="GetObject",outcome="unavailable",store="blobs"} 1`,
		`packreg_storage_operations_total{op="GetObject",outcome="error",store="blobs"} 1`,
		`packreg_storage_operation_duration_seconds_count{op="GetObject",store="blobs"} 6`,
		`packreg_storage_operations_total{op="commit",outcome="ok",store="database"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestRuns(t *testing.T) {
	m := metrics.New("test")
	m.ObserveRun(metrics.RunGC, metrics.RunSucceeded, 2*time.Second)
	m.ObserveRun(metrics.RunGC, metrics.RunDryRun, time.Second)
	m.ObserveRun(metrics.RunSync, metrics.RunFailed, time.Minute)
	m.GCCollected("blobs", 7, 7000)
	m.GCCollected("manifests", 2, 0)
	m.RetentionChanged("archive", 3)
	m.ScrubChecked(1<<20, 1)
	text := scrape(t, m)
	for _, want := range []string{
		`packreg_runs_total{kind="gc",outcome="succeeded"} 1`,
		`packreg_runs_total{kind="gc",outcome="dry_run"} 1`,
		`packreg_runs_total{kind="sync",outcome="failed"} 1`,
		`packreg_run_duration_seconds_sum{kind="sync",outcome="failed"} 60`,
		`packreg_run_last_finished_timestamp_seconds{kind="gc"} `,
		`packreg_gc_collected_total{what="blobs"} 7`,
		`packreg_gc_collected_total{what="manifests"} 2`,
		`packreg_gc_freed_bytes_total 7000`,
		`packreg_retention_changes_total{action="archive"} 3`,
		`packreg_scrub_checked_bytes_total 1.048576e+06`,
		`packreg_scrub_mismatches_total 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// A nil *Metrics takes every call: code may run without metrics.
func TestNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	m.RequestStarted()
	m.ObserveRequest("/x", "GET", 200, time.Second, 1, 1)
	m.ObserveRun(metrics.RunGC, metrics.RunSucceeded, time.Second)
	m.GCCollected("blobs", 1, 1)
	m.RetentionChanged("delete", 1)
	m.ScrubChecked(1, 0)
	m.StoreObserver("blobs")("stat", time.Second, nil)
}

type backlog struct {
	uploads int64
	pending map[string]int64
	err     error
}

func (b backlog) CountUploads(context.Context) (int64, error) { return b.uploads, b.err }
func (b backlog) CountPendingEvents(_ context.Context, c string) (int64, error) {
	return b.pending[c], b.err
}

func TestWatchStore(t *testing.T) {
	m := metrics.New("test")
	m.WatchStore(backlog{uploads: 4, pending: map[string]int64{"audit": 0, "attest": 12}}, "audit", "attest")
	text := scrape(t, m)
	for _, want := range []string{
		`packreg_upload_sessions_open 4`,
		`packreg_outbox_pending_events{consumer="audit"} 0`,
		`packreg_outbox_pending_events{consumer="attest"} 12`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// A database that does not answer leaves its gauges out of the scrape,
// and the rest is still served.
func TestWatchStoreDown(t *testing.T) {
	m := metrics.New("test")
	m.WatchStore(backlog{err: storage.ErrUnavailable}, "audit")
	rec := httptest.NewRecorder()
	m.Handler(slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK || strings.Contains(string(body), "packreg_upload_sessions_open ") ||
		!strings.Contains(string(body), "packreg_build_info") {
		t.Fatalf("scrape with the database down: %d\n%s", rec.Code, body)
	}
	if n, err := testutil.GatherAndCount(m.Registry(), "packreg_outbox_pending_events"); err == nil || n != 0 {
		t.Fatalf("gathered %d pending gauges (err %v), want none and an error", n, err)
	}
}

// BenchmarkObserveRequest is what the request path pays per request.
func BenchmarkObserveRequest(b *testing.B) {
	m := metrics.New("bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RequestStarted()
			m.ObserveRequest("/v2/{name}/manifests/{ref}", "GET", 200, time.Millisecond, 0, 512)
		}
	})
}
