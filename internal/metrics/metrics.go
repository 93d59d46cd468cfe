package metrics

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/packreg/packreg/storage"
)

const ns = "packreg"

// Run kinds and outcomes, the values ObserveRun expects.
const (
	RunGC        = "gc"
	RunRetention = "retention"
	RunScrub     = "scrub"
	RunSync      = "sync"
	RunParity    = "parity"

	RunSucceeded   = "succeeded"
	RunFailed      = "failed"
	RunInterrupted = "interrupted" // shutdown or a lost lease; carried on later
	RunDryRun      = "dry_run"
)

// NoRoute is the route label of a request no route matched.
const NoRoute = "none"

// Metrics is one server's metrics. The zero value is not usable; a nil
// *Metrics is (every method does nothing), so code that may run without
// metrics need not check.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	inFlight prometheus.Gauge
	// children caches the series of a (route, method): the label lookup
	// hashes strings, and the request path does it once per pair.
	children sync.Map // routeKey -> *routeSeries

	storeOps *prometheus.CounterVec
	storeDur *prometheus.HistogramVec

	runs    *prometheus.CounterVec
	runDur  *prometheus.HistogramVec
	runLast *prometheus.GaugeVec

	gcCollected      *prometheus.CounterVec
	gcFreed          prometheus.Counter
	retentionChanges *prometheus.CounterVec
	scrubBytes       prometheus.Counter
	scrubMismatches  prometheus.Counter
}

type routeKey struct{ route, method string }

type routeSeries struct {
	duration prometheus.Observer
	in, out  prometheus.Counter
	codes    sync.Map // int -> prometheus.Counter
}

// Request latencies: API calls take milliseconds, blob transfers minutes.
var requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// Backend calls: a local disk answers in microseconds, S3 in tens of ms.
var storeBuckets = []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Runs: a GC of a small registry takes a second, a sync of a big one hours.
var runBuckets = []float64{.1, .5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600}

// New returns the metrics of one server, with the Go runtime and process
// collectors and build_info{version} registered.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := factory{m.reg}
	m.requests = f.counterVec("http_requests_total", "HTTP requests answered, by route template, method and status code.", "route", "method", "code")
	m.duration = f.histogramVec("http_request_duration_seconds", "Time from a request's arrival to the end of its answer, by route template and method.", requestBuckets, "route", "method")
	m.bytesIn = f.counterVec("http_request_bytes_total", "Request body bytes read, by route template.", "route")
	m.bytesOut = f.counterVec("http_response_bytes_total", "Response body bytes written, by route template.", "route")
	m.inFlight = f.gauge("http_requests_in_flight", "Requests being served now.")
	m.storeOps = f.counterVec("storage_operations_total", "Backend operations of the blob store (store=blobs) and the database (store=database), by operation and outcome.", "store", "op", "outcome")
	m.storeDur = f.histogramVec("storage_operation_duration_seconds", "Time of backend operations, by store and operation.", storeBuckets, "store", "op")
	m.runs = f.counterVec("runs_total", "Background runs finished (gc, retention, scrub, sync, parity), by kind and outcome.", "kind", "outcome")
	m.runDur = f.histogramVec("run_duration_seconds", "Duration of background runs, by kind and outcome.", runBuckets, "kind", "outcome")
	m.runLast = f.gaugeVec("run_last_finished_timestamp_seconds", "When the last run of each kind finished (Unix time).", "kind")
	m.gcCollected = f.counterVec("gc_collected_total", "What garbage collection removed: blobs, manifests, uploads.", "what")
	m.gcFreed = f.counter("gc_freed_bytes_total", "Bytes of blob data garbage collection freed.")
	m.retentionChanges = f.counterVec("retention_changes_total", "Pack versions retention changed, by action (deprecate, archive, delete).", "action")
	m.scrubBytes = f.counter("scrub_checked_bytes_total", "Blob bytes scrub re-hashed.")
	m.scrubMismatches = f.counter("scrub_mismatches_total", "Blobs scrub found not matching their digest.")
	info := f.gaugeVec("build_info", "The running packreg's version; always 1.", "version")
	info.WithLabelValues(version).Set(1)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text (or OpenMetrics)
// format. A collector's failure is logged and leaves its family out.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{log},
		ErrorHandling: promhttp.ContinueOnError,
		// Scrapes are few and small; one at a time is plenty, and a flood
		// of /metrics requests then queues instead of piling up queries.
		MaxRequestsInFlight: 1,
		Timeout:             10 * time.Second,
	})
}

// Registry is the underlying registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Method is the method label of a request method: the standard ones
// as they are, anything else "other".
func Method(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// RequestStarted counts a request in flight; the caller calls
// ObserveRequest when it ends.
func (m *Metrics) RequestStarted() {
	if m != nil {
		m.inFlight.Inc()
	}
}

// ObserveRequest records one finished request. route is a route
// template (or NoRoute), method any request method (Method normalises it).
func (m *Metrics) ObserveRequest(route, method string, code int, took time.Duration, in, out int64) {
	if m == nil {
		return
	}
	m.inFlight.Dec()
	key := routeKey{route, Method(method)}
	v, ok := m.children.Load(key)
	if !ok {
		v, _ = m.children.LoadOrStore(key, &routeSeries{
			duration: m.duration.WithLabelValues(key.route, key.method),
			in:       m.bytesIn.WithLabelValues(key.route),
			out:      m.bytesOut.WithLabelValues(key.route),
		})
	}
	s := v.(*routeSeries)
	c, ok := s.codes.Load(code)
	if !ok {
		c, _ = s.codes.LoadOrStore(code, m.requests.WithLabelValues(key.route, key.method, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
	s.duration.Observe(took.Seconds())
	if in > 0 {
		s.in.Add(float64(in))
	}
	if out > 0 {
		s.out.Add(float64(out))
	}
}

// StoreObserver returns the storage.OpObserver of one store ("blobs" or
// "database").
func (m *Metrics) StoreObserver(store string) storage.OpObserver {
	return func(op string, took time.Duration, err error) {
		if m == nil {
			return
		}
		m.storeOps.WithLabelValues(store, op, Outcome(err)).Inc()
		m.storeDur.WithLabelValues(store, op).Observe(took.Seconds())
	}
}

// Outcome sorts a backend error: ok, not_found (a miss is an answer, not a
// failure), canceled (the caller gave up), unavailable, error.
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, storage.ErrNotFound):
		return "not_found"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	case errors.Is(err, storage.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// ObserveRun records one finished background run of kind (RunGC...) with
// its outcome (RunSucceeded...) and how long it took.
func (m *Metrics) ObserveRun(kind, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(kind, outcome).Inc()
	m.runDur.WithLabelValues(kind, outcome).Observe(took.Seconds())
	m.runLast.WithLabelValues(kind).SetToCurrentTime()
}

// GCCollected adds what one GC run removed: n of what ("blobs",
// "manifests", "uploads") and, for blobs, the bytes freed.
func (m *Metrics) GCCollected(what string, n int, freed int64) {
	if m == nil {
		return
	}
	m.gcCollected.WithLabelValues(what).Add(float64(n))
	if freed > 0 {
		m.gcFreed.Add(float64(freed))
	}
}

// RetentionChanged adds n versions that retention moved by action
// ("deprecate", "archive", "delete").
func (m *Metrics) RetentionChanged(action string, n int) {
	if m != nil {
		m.retentionChanges.WithLabelValues(action).Add(float64(n))
	}
}

// ScrubChecked adds bytes re-hashed by scrub and the mismatches it found.
func (m *Metrics) ScrubChecked(bytes int64, mismatches int) {
	if m == nil {
		return
	}
	m.scrubBytes.Add(float64(bytes))
	m.scrubMismatches.Add(float64(mismatches))
}

// Backlog is what the metadata store gauges read when scraped.
type Backlog interface {
	CountUploads(ctx context.Context) (int64, error)
	CountPendingEvents(ctx context.Context, consumer string) (int64, error)
}

// WatchStore registers the gauges read from the metadata store at each
// scrape: open upload sessions and the outbox backlog of each consumer.
func (m *Metrics) WatchStore(b Backlog, consumers ...string) {
	m.reg.MustRegister(&backlogCollector{b: b, consumers: consumers,
		uploads: prometheus.NewDesc(ns+"_upload_sessions_open", "Upload sessions open (in the metadata store, so across replicas).", nil, nil),
		pending: prometheus.NewDesc(ns+"_outbox_pending_events", "Events waiting for a consumer of the outbox (audit, attest, compliance): its queue depth.", []string{"consumer"}, nil),
	})
}

// WatchDB registers database/sql's pool statistics (go_sql_*).
func (m *Metrics) WatchDB(db *sql.DB, name string) {
	m.reg.MustRegister(collectors.NewDBStatsCollector(db, name))
}

// backlogCollector asks the store when scraped. Each answer is current and
// shared by every replica; a scrape of a replica whose database is down
// has none, which an alert on absent() notices.
type backlogCollector struct {
	b                Backlog
	consumers        []string
	uploads, pending *prometheus.Desc
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.uploads
	ch <- c.pending
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n, err := c.b.CountUploads(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.uploads, prometheus.GaugeValue, float64(n))
	} else {
		ch <- prometheus.NewInvalidMetric(c.uploads, err)
	}
	for _, name := range c.consumers {
		if n, err := c.b.CountPendingEvents(ctx, name); err == nil {
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n), name)
		} else {
			ch <- prometheus.NewInvalidMetric(c.pending, err)
		}
	}
}

// factory registers each family as it is made.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// slogPrinter is promhttp's error log on slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", v) }
