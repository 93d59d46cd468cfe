package conformance

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// scrape is one GET /metrics, as Prometheus reads it: each sample line
// (series name with its labels, as the text format writes them) to its value.
type scrape map[string]float64

func scrapeMetrics(t *testing.T, s *server) scrape {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), clip(b.String()))
	}
	out := scrape{}
	for line := range strings.SplitSeq(b.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// delta is how much series grew from s to later (a series absent counts 0).
func (s scrape) delta(later scrape, series string) float64 { return later[series] - s[series] }

// req is the name of the request counter of a route.
func req(code int, method, route string) string {
	return fmt.Sprintf(`packreg_http_requests_total{code="%d",method="%s",route="%s"}`, code, method, route)
}

// TestMetrics scrapes /metrics of the real binary around a known set of
// requests, and checks that every counter moved by exactly what was sent:
// per route template, method and status; body bytes both ways; the
// open upload sessions; the storage and database calls. Then the same on
// S3 + PostgreSQL, whose blob calls are S3 operations.
func TestMetrics(t *testing.T) {
	t.Run("disk", func(t *testing.T) { testMetrics(t, startServer(t), "commit") })
	t.Run("s3-postgres", func(t *testing.T) {
		s3URL, pgURL := needEnv(t, "PACKREG_TEST_S3"), needEnv(t, "PACKREG_TEST_POSTGRES")
		s := startServer(t, "--storage", isolatedS3(t, s3URL), "--database", isolatedPostgres(t, pgURL))
		testMetrics(t, s, "PutObject")
	})
}

func testMetrics(t *testing.T, s *server, blobWrite string) {
	c := newClient(t, s.URL)
	before := scrapeMetrics(t, s)

	const gets = 5
	for range gets {
		resp, body := c.do("GET", "/v2/", nil, nil)
		expect(t, resp, body, 200, "GET /v2/")
	}
	blobs := [][]byte{randomBytes(t, 1000), randomBytes(t, 20000), randomBytes(t, 3)}
	var sent int64
	var digests []string
	for _, b := range blobs {
		digests = append(digests, c.pushBlob("metrics/app", b)) // POST 202, PUT 201
		sent += int64(len(b))
	}
	var served int64
	for i, d := range digests {
		served += int64(len(c.getBlob("metrics/app", d)))
		if i == 0 {
			served += int64(len(c.getBlob("metrics/app", d)))
		}
	}
	for range 2 {
		resp, body := c.do("GET", "/v2/metrics/app/manifests/missing", nil, nil)
		expect(t, resp, body, 404, "GET unknown manifest")
	}
	resp, body := c.do("GET", "/no/such/route/metrics-app", nil, nil)
	expect(t, resp, body, 404, "unrouted GET")

	// An upload left open is one session open, until it is cancelled.
	resp, body = c.do("POST", "/v2/metrics/app/blobs/uploads/", nil, nil)
	expect(t, resp, body, 202, "start an upload")
	loc := resp.Header.Get("Location")
	mid := scrapeMetrics(t, s)
	if got := mid[`packreg_upload_sessions_open`]; got != 1 {
		t.Errorf("upload_sessions_open with one upload open = %v, want 1", got)
	}
	resp, body = c.do("DELETE", loc, nil, nil)
	expect(t, resp, body, 204, "cancel the upload")

	after := scrapeMetrics(t, s)
	for series, want := range map[string]float64{
		req(200, "GET", "/v2/"):                                                                    gets,
		req(202, "POST", "/v2/{name}/blobs/uploads/"):                                              float64(len(blobs) + 1),
		req(201, "PUT", "/v2/{name}/blobs/uploads/{ref}"):                                          float64(len(blobs)),
		req(204, "DELETE", "/v2/{name}/blobs/uploads/{ref}"):                                       1,
		req(200, "GET", "/v2/{name}/blobs/{ref}"):                                                  float64(len(blobs) + 1),
		req(404, "GET", "/v2/{name}/manifests/{ref}"):                                              2,
		req(404, "GET", "none"):                                                                    1,
		req(200, "GET", "/metrics"):                                                                2, // before and mid; this one is still in flight
		`packreg_http_request_bytes_total{route="/v2/{name}/blobs/uploads/{ref}"}`:                 float64(sent),
		`packreg_http_response_bytes_total{route="/v2/{name}/blobs/{ref}"}`:                        float64(served),
		`packreg_http_request_duration_seconds_count{method="GET",route="/v2/{name}/blobs/{ref}"}`: float64(len(blobs) + 1),
		`packreg_storage_operations_total{op="` + blobWrite + `",outcome="ok",store="blobs"}`:      -1,
		`packreg_storage_operations_total{op="commit",outcome="ok",store="database"}`:              -1,
		`packreg_storage_operation_duration_seconds_count{op="query",store="database"}`:            -1,
	} {
		got := before.delta(after, series)
		if want == -1 {
			if got <= 0 {
				t.Errorf("%s did not move", series)
			}
			continue
		}
		if got != want {
			t.Errorf("%s grew by %v, want %v", series, got, want)
		}
	}
	if got := after[`packreg_upload_sessions_open`]; got != 0 {
		t.Errorf("upload_sessions_open after the cancel = %v, want 0", got)
	}
	if got := after[`packreg_http_requests_in_flight`]; got != 1 {
		t.Errorf("requests in flight during a scrape = %v, want 1 (the scrape)", got)
	}
	for _, series := range []string{
		`packreg_outbox_pending_events{consumer="audit"}`,
		`packreg_outbox_pending_events{consumer="attest"}`,
		`process_resident_memory_bytes`,
		`go_sql_open_connections{db_name="packreg"}`,
	} {
		if _, ok := after[series]; !ok {
			t.Errorf("no %s", series)
		}
	}
	for series := range after {
		if strings.Contains(series, "metrics/app") || strings.Contains(series, "sha256:") || strings.Contains(series, "metrics-app") {
			t.Errorf("a raw path or name reached a label: %s", series)
		}
	}
}
