package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/internal/metrics"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/retention"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// Observability: the Prometheus metrics (/metrics, internal/metrics) and
// the optional OpenTelemetry traces of one server. The request log
// (serve.go) feeds both; the route table tells it the route template
// (routeLabel); the stores report their backend calls through
// storage.OpsObservable; background runs through runObserver.

// MetricsConfig is the `metrics:` section.
type MetricsConfig struct {
	// Enabled serves GET /metrics (Prometheus text format).
	Enabled bool `yaml:"enabled"`
}

// TracingConfig is the `tracing:` section: OpenTelemetry traces, sent
// with OTLP over HTTP. Off unless Endpoint is set.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector's base URL
	// (http://collector:4318); traces go to Endpoint/v1/traces.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces recorded (0..1); a request
	// whose caller sampled its trace (traceparent) is always recorded.
	SampleRatio float64 `yaml:"sample_ratio"`
	// Headers are sent with every export (an API key, say); their values
	// are secrets: config print shows them as xxxxx.
	Headers map[string]string `yaml:"headers"`
	// ServiceName is the service.name resource attribute.
	ServiceName string `yaml:"service_name"`
}

func defaultTracingConfig() TracingConfig {
	return TracingConfig{SampleRatio: 1, Headers: map[string]string{}, ServiceName: "packreg"}
}

func (c TracingConfig) validate() error {
	var errs []error
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Errorf("tracing.endpoint %q: want http(s)://host[:port][/path], without credentials", redact(c.Endpoint)))
		}
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio must be between 0 and 1, got %g", c.SampleRatio))
	}
	if c.ServiceName == "" {
		errs = append(errs, errors.New("tracing.service_name is empty"))
	}
	return errors.Join(errs...)
}

func (c TracingConfig) redacted() TracingConfig {
	out := c
	out.Endpoint = redact(c.Endpoint)
	out.Headers = make(map[string]string, len(c.Headers))
	for k := range c.Headers {
		out.Headers[k] = redacted
	}
	return out
}

// observer is the metrics and the tracer of a server; a nil *observer
// observes nothing (in-process tests of the handler).
type observer struct {
	m      *metrics.Metrics // nil: metrics.enabled is false
	tracer trace.Tracer     // nil: tracing is off
	prop   propagation.TextMapPropagator
	// shutdown flushes and stops the trace exporter.
	shutdown func(context.Context) error
}

// newObserver builds the metrics (unless disabled) and the tracer (when an
// endpoint is set). Nothing is dialled here: the exporter connects when it
// first sends.
func newObserver(c Config, log *slog.Logger) (*observer, error) {
	ob := &observer{shutdown: func(context.Context) error { return nil }}
	if c.Metrics.Enabled {
		ob.m = metrics.New(buildVersion())
	}
	if c.Tracing.Endpoint == "" {
		return ob, nil
	}
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(c.Tracing.Endpoint+"/v1/traces"),
		otlptracehttp.WithHeaders(c.Tracing.Headers))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", c.Tracing.ServiceName),
		attribute.String("service.version", buildVersion()))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.Tracing.SampleRatio))))
	ob.tracer = tp.Tracer("github.com/packreg/packreg")
	ob.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	ob.shutdown = tp.Shutdown
	log.Info("tracing on", "endpoint", redact(c.Tracing.Endpoint), "sample_ratio", c.Tracing.SampleRatio)
	return ob, nil
}

// metrics is nil when there are none (every method of a nil
// *metrics.Metrics does nothing).
func (ob *observer) metrics() *metrics.Metrics {
	if ob == nil {
		return nil
	}
	return ob.m
}

// watchStores hands the stores the metrics' observers and registers the
// gauges read from the metadata store at each scrape.
func (ob *observer) watchStores(st *stores) {
	m := ob.metrics()
	if m == nil {
		return
	}
	if o, ok := st.blobs.(storage.OpsObservable); ok {
		o.ObserveOps(m.StoreObserver("blobs"))
	}
	if o, ok := st.meta.(storage.OpsObservable); ok {
		o.ObserveOps(m.StoreObserver("database"))
	}
	if db, ok := st.meta.(*sqlmeta.Store); ok {
		m.WatchDB(db.DB(), "packreg")
	}
	m.WatchStore(st.meta, storage.AuditConsumer, attest.Consumer, compliance.Consumer)
}

// runObserver is the hook background runs report to (mirror syncs and
// parity checks; GC, retention and scrub).
func (ob *observer) runObserver() func(kind, outcome string, took time.Duration) {
	m := ob.metrics()
	return func(kind, outcome string, took time.Duration) { m.ObserveRun(kind, outcome, took) }
}

// routeLabel is the route table's middleware that tells the request log
// which row matched: its path template, the metrics' route label. It runs
// only for matched rows (404s keep metrics.NoRoute).
func routeLabel(next http.Handler) http.Handler {
	var labels sync.Map // template -> label
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r := mux.CurrentRoute(req); r != nil {
			if tpl, err := r.GetPathTemplate(); err == nil {
				l, ok := labels.Load(tpl)
				if !ok {
					l, _ = labels.LoadOrStore(tpl, routes.StripPatterns(tpl))
				}
				setRoute(w, l.(string))
			}
		}
		next.ServeHTTP(w, req)
	})
}

// setRoute finds the request log's statusWriter under w.
func setRoute(w http.ResponseWriter, route string) {
	for {
		switch x := w.(type) {
		case *statusWriter:
			x.route = route
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// startSpan starts the server span of a request when tracing is on,
// continuing the caller's trace (traceparent).
func (ob *observer) startSpan(req *http.Request, id string) (*http.Request, trace.Span) {
	if ob == nil || ob.tracer == nil {
		return req, nil
	}
	ctx := ob.prop.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
	ctx, span := ob.tracer.Start(ctx, req.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", req.Method),
			attribute.String("url.path", req.URL.Path),
			attribute.String("packreg.request_id", id)))
	return req.WithContext(ctx), span
}

// endSpan names the span by its route and records the status.
func (ob *observer) endSpan(span trace.Span, method, route string, status int) {
	if span == nil {
		return
	}
	span.SetName(metrics.Method(method) + " " + route)
	span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// registryRunOptions report the registry's garbage collections and
// scrubs to the metrics (dry runs change nothing, so they count as runs
// but collect nothing).
func (ob *observer) registryRunOptions() []registry.Option {
	m := ob.metrics()
	return []registry.Option{
		registry.WithGCObserver(func(rep *registry.GCReport) {
			m.ObserveRun(metrics.RunGC, recordedOutcome(rep.DryRun, rep.Error), rep.Finished.Sub(rep.Started))
			if !rep.DryRun {
				m.GCCollected("manifests", rep.Counts.Manifests, 0)
				m.GCCollected("uploads", rep.Counts.Uploads, 0)
				m.GCCollected("blobs", rep.Counts.Blobs, rep.Counts.Bytes)
			}
		}),
		registry.WithScrubObserver(func(rep *registry.ScrubReport, took time.Duration, err error) {
			o := metrics.RunSucceeded
			switch {
			case errors.Is(err, context.Canceled):
				o = metrics.RunInterrupted
			case err != nil:
				o = metrics.RunFailed
			}
			m.ObserveRun(metrics.RunScrub, o, took)
			if rep != nil {
				m.ScrubChecked(rep.Bytes, len(rep.Bad))
			}
		}),
	}
}

// retentionObserver reports retention runs to the metrics: every run,
// and the changes of real runs by action.
func (ob *observer) retentionObserver() func(*retention.Report) {
	m := ob.metrics()
	return func(rep *retention.Report) {
		m.ObserveRun(metrics.RunRetention, recordedOutcome(rep.DryRun, rep.Error), rep.Finished.Sub(rep.Started))
		if !rep.DryRun {
			m.RetentionChanged(retention.ActionDeprecate, rep.Counts.Deprecated)
			m.RetentionChanged(retention.ActionArchive, rep.Counts.Archived)
			m.RetentionChanged(retention.ActionDelete, rep.Counts.Deleted)
		}
	}
}

// recordedOutcome is the outcome of a recorded run (GC, retention) by its
// Error: one its context ended (storage.RunInterrupted) is not a failure.
func recordedOutcome(dry bool, errText string) string {
	switch {
	case storage.RunInterrupted(errText):
		return metrics.RunInterrupted
	case errText != "":
		return metrics.RunFailed
	case dry:
		return metrics.RunDryRun
	}
	return metrics.RunSucceeded
}
