package conformance

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP trace receiver on loopback: it keeps every
// span it is sent.
type collector struct {
	mu    sync.Mutex
	spans map[string]string // span name -> hex trace id
	auth  []string          // the x-api-key header of each export
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auth = append(c.auth, r.Header.Get("X-Api-Key"))
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				c.spans[sp.Name] = hex.EncodeToString(sp.TraceId)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	resp, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(resp)
}

func (c *collector) span(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.spans[name]
	return id, ok
}

// TestTracing: with tracing.endpoint set, every request becomes a server
// span named by its route template, exported with OTLP over HTTP, in the
// caller's trace when it sent a traceparent, with the configured headers.
func TestTracing(t *testing.T) {
	col := &collector{spans: map[string]string{}}
	srv := httptest.NewServer(col)
	defer srv.Close()
	cfg := writeConfig(t, "tracing:\n  endpoint: "+srv.URL+"\n  headers: {x-api-key: trace-secret}\n  service_name: packreg-test\n")
	s := startServer(t, "--config", cfg)
	c := newClient(t, s.URL)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, body := c.do("GET", "/v2/traced/app/manifests/v1", http.Header{
		"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"},
	}, nil)
	expect(t, resp, body, 404, "GET an unknown manifest")
	resp, body = c.do("GET", "/v2/", nil, nil)
	expect(t, resp, body, 200, "GET /v2/")

	s.stop() // a clean stop flushes what the batcher holds
	if id, ok := col.span("GET /v2/{name}/manifests/{ref}"); !ok || id != traceID {
		t.Errorf("manifest GET span: trace %q (exported: %v), want the caller's %s", id, ok, traceID)
	}
	if id, ok := col.span("GET /v2/"); !ok || id == traceID || id == "" {
		t.Errorf("GET /v2/ span: trace %q (exported: %v), want a new trace", id, ok)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, a := range col.auth {
		if a != "trace-secret" {
			t.Errorf("an export without the configured header: %q", a)
		}
	}
	for name := range col.spans {
		if name != "GET /v2/{name}/manifests/{ref}" && name != "GET /v2/" && name != "GET /readyz" {
			t.Errorf("unexpected span %q", name)
		}
	}
}
