package metrics_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/internal/metrics"
)

// TestObserveRequestsAtOnce: requests of routes and codes not seen before
// are recorded at once (each new pair makes its series) while scrapes
// read: every request is counted once and none is left in flight.
func TestObserveRequestsAtOnce(t *testing.T) {
	m := metrics.New("test")
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.RequestStarted()
				m.ObserveRequest(fmt.Sprint("/r", i%5), "GET", 200+i%3, time.Millisecond, 1, 2)
				if i%50 == w {
					m.ObserveRun(metrics.RunGC, metrics.RunSucceeded, time.Second)
				}
			}
		})
	}
	h := m.Handler(slog.New(slog.DiscardHandler))
	wg.Go(func() {
		for range 5 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("scrape during the requests: %d", rec.Code)
			}
		}
	})
	wg.Wait()
	text := scrape(t, m)
	total := 0
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, "packreg_http_requests_total{"); ok {
			_, v, _ := strings.Cut(rest, "} ")
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			total += n
		}
	}
	if total != workers*each {
		t.Errorf("%d requests counted, want %d", total, workers*each)
	}
	if !strings.Contains(text, "packreg_http_requests_in_flight 0\n") {
		t.Error("requests left in flight")
	}
	if !strings.Contains(text, fmt.Sprintf(`packreg_runs_total{kind="gc",outcome="succeeded"} %d`, workers*each/50)) {
		t.Error("runs not counted once each")
	}
}
