package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/internal/metrics"
	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
	"go.opentelemetry.io/otel/trace"
)

// serve runs the registry until ctx ends or SIGTERM/SIGINT arrives, then
// drains in-flight requests for at most c.ShutdownTimeout and closes the
// stores.
func serve(ctx context.Context, c Config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	ob, err := newObserver(c, log)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ob.shutdown(fctx); err != nil {
			log.Warn("flushing traces", "err", err)
		}
	}()
	st, err := start(ctx, c, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing stores", "err", err)
		}
	}()
	ob.watchStores(st)

	var draining atomic.Bool
	a, err := wire(ctx, st, c, log, &draining, ob)
	if err != nil {
		return err
	}
	var certs *certReloader
	if c.TLS.Cert != "" {
		if certs, err = newCertReloader(c.TLS.Cert, c.TLS.Key, log); err != nil {
			return err
		}
	}
	prof, err := startPprof(c.Debug, log)
	if err != nil {
		return err
	}
	defer prof.close()
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	if certs != nil {
		ln = tls.NewListener(ln, certs.tlsConfig())
	}
	srv := &http.Server{
		Handler: a.handler,
		// No read or write timeout: blob uploads and downloads are long
		// streams. Slow-header clients and idle keep-alives are bounded.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// Background work stops when the server begins to shut down.
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	startBackground(bgCtx, &bg, a.reg, c, log)
	a.packs.start(bgCtx, &bg)
	a.att.start(bgCtx, &bg)
	a.mir.start(bgCtx, &bg)
	a.bun.start(bgCtx, &bg)
	a.comp.start(bgCtx, &bg)
	a.gc.start(bgCtx, &bg, c.GC.Schedule)
	a.ret.start(bgCtx, &bg, c.Retention.Schedule)
	a.scrub.start(bgCtx, &bg, c.Scrub.Schedule)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "version", buildVersion(),
		"storage", redact(c.Storage), "database", redact(c.Database), "tls", certs != nil, "auth", c.Auth.Enabled())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx), "timeout", c.ShutdownTimeout)
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	draining.Store(true)
	bgCancel()

	shCtx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		log.Warn("graceful shutdown timed out; closing open connections", "err", err)
		_ = srv.Close()
	}
	bg.Wait()
	// Publications since the mirror worker's last pass, or while requests
	// drained, become runs now, for the next worker to carry out.
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	a.mir.flush(fctx)
	fcancel()
	if runErr == nil {
		log.Info("stopped")
	}
	return runErr
}

// app is everything serve runs over the open stores.
type app struct {
	reg     *registry.Registry
	packs   *packs
	att     *attests
	mir     *mirrors
	bun     *bundles
	comp    *complianceSvc
	gc      *collector
	ret     *retainer
	scrub   *scrubber
	routes  *routeTable // the route table
	handler http.Handler
}

// wire builds the services around the registry and the HTTP handler that
// serves them all; serve and the in-process tests share it.
func wire(ctx context.Context, st *stores, c Config, log *slog.Logger, draining *atomic.Bool, ob *observer) (*app, error) {
	att := newAttest(st, c, log)
	packs, err := newPacks(ctx, st, c, log, att.packOptions()...)
	if err != nil {
		return nil, err
	}
	mir := newMirrors(st, c, log, packs, ob)
	reg := registry.New(st.blobs, st.meta, append([]registry.Option{
		registry.WithLogger(log),
		registry.WithDeleteEnabled(c.Registry.DeleteEnabled),
		registry.WithMaxBlobSize(c.Registry.MaxBlobSize),
		registry.WithUploadTTL(c.Registry.UploadTTL),
		registry.WithMaxPageSize(c.Registry.MaxPageSize),
	}, slices.Concat(ob.registryRunOptions(), packs.registryOptions(), att.registryOptions(), mir.registryOptions())...)...)
	packs.attach(reg)
	if err := att.attach(ctx, reg, packs.svc); err != nil {
		return nil, err
	}
	if err := packs.recordConfig(ctx, "attest.policies", c.Attest.Settings()); err != nil {
		return nil, err
	}
	if err := mir.attach(ctx, reg); err != nil {
		return nil, err
	}
	bun, err := newBundles(st, c, log, reg, packs, att)
	if err != nil {
		return nil, err
	}
	if err := packs.recordConfig(ctx, "compliance.rules", c.Compliance.Settings()); err != nil {
		return nil, err
	}
	if err := packs.recordConfig(ctx, "retention.rules", c.Retention.Settings()); err != nil {
		return nil, err
	}
	comp := newCompliance(st, c, att.svc, log)
	if err := comp.attach(ctx); err != nil {
		return nil, err
	}
	g, err := newGate(c, st.meta, log)
	if err != nil {
		return nil, err
	}
	gc := newCollector(reg, st.meta, c.GC.Grace, log)
	ret := newRetainer(c.Retention, st, packs.svc, reg, packReporter{att.svc}, log, ob)
	scr := newScrubber(reg, st.meta, c.Scrub, log)
	table := newRouteTable(reg, st, draining, log,
		slices.Concat(packs.svc.Routes(), audit.Routes(packs.trail, log), att.svc.Routes(), mir.svc.Routes(), bun.svc.Routes(),
			comp.svc.Routes(log), gc.routes(), ret.routes(), scr.routes()),
		comp.dashboard(st, att.svc, log, g != nil).Routes(), g, ob)
	return &app{reg: reg, packs: packs, att: att, mir: mir, bun: bun, comp: comp, gc: gc, ret: ret, scrub: scr, routes: table,
		handler: newHandler(table, log, newEdgeSettings(c), ob)}, nil
}

// startBackground runs the registry's upload janitor until ctx ends. Every
// replica runs one; the registry's lease lets one at a time do the work.
func startBackground(ctx context.Context, wg *sync.WaitGroup, reg *registry.Registry, c Config, log *slog.Logger) {
	holder := janitorHolder()
	log.Debug("upload janitor", "holder", holder, "every", c.Registry.JanitorInterval)
	wg.Add(1)
	go func() {
		defer wg.Done()
		reg.RunJanitor(ctx, holder, c.Registry.JanitorInterval)
	}()
}

// janitorHolder names this process in the janitor lease: host, pid and a
// random suffix, so a restarted process on the same host is a new holder.
func janitorHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), reqid.New()[:8])
}

// ping asks each store that has the storage.Pinger ability whether its
// backend answers, within a deadline a probe can wait for.
func (s *stores) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, st := range []struct {
		name  string
		store any
	}{{"database", s.meta}, {"blob store", s.blobs}} {
		if p, ok := st.store.(storage.Pinger); ok {
			if err := p.Ping(ctx); err != nil {
				return &unreadyError{st.name, err}
			}
		}
	}
	return nil
}

// unreadyError is a store that failed its readiness Ping. /readyz answers
// with Store alone: the backend's own words (hosts, bucket names) are for
// the log, not for whoever can reach the port.
type unreadyError struct {
	Store string
	err   error
}

func (e *unreadyError) Error() string { return e.Store + ": " + e.err.Error() }
func (e *unreadyError) Unwrap() error { return e.err }

// logRequests gives every request its id (reqid.Accept: kept from
// X-Request-Id when the client sent a sane one, so a proxy's id carries
// through), logs one line when it ends and feeds the request metrics and,
// when tracing is on, a server span. Handlers read the id from the
// context, so their error lines and 5xx answers carry the same id.
func logRequests(next http.Handler, log *slog.Logger, ob *observer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := served{start: time.Now(), log: log, ob: ob}
		req, r.id = reqid.Accept(w, req)
		r.sw = &statusWriter{ResponseWriter: w}
		if req.Body != nil && req.Body != http.NoBody {
			r.in = &countingBody{ReadCloser: req.Body}
			req.Body = r.in
		}
		req, r.span = ob.startSpan(req, r.id)
		r.req = req
		ob.metrics().RequestStarted()
		defer func() {
			// A handler that panics (a streamed page that fails midway
			// panics with its cause, apierr.stream; http.ErrAbortHandler
			// likewise cuts an answer) still ends its request: the
			// in-flight gauge would count it forever and the log would not
			// show it. net/http then closes the connection (and logs any
			// panic but ErrAbortHandler).
			if p := recover(); p != nil {
				r.end(true)
				panic(p)
			}
		}()
		next.ServeHTTP(r.sw, req)
		r.end(false)
	})
}

// served is one request as logRequests follows it.
type served struct {
	start time.Time
	id    string
	req   *http.Request
	sw    *statusWriter
	in    *countingBody
	span  trace.Span
	log   *slog.Logger
	ob    *observer
}

// end feeds the request's end to the metrics, the span and the log; an
// aborted one is logged as a warning, with the status its answer began
// with.
func (r *served) end(aborted bool) {
	sw, req := r.sw, r.req
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	took := time.Since(r.start)
	route := sw.route
	if route == "" {
		route = metrics.NoRoute
	}
	r.ob.metrics().ObserveRequest(route, req.Method, sw.status, took, r.in.count(), sw.bytes)
	r.ob.endSpan(r.span, req.Method, route, sw.status)
	level := slog.LevelInfo
	if sw.status >= 500 || aborted {
		level = slog.LevelWarn
	}
	h := r.log.Handler()
	if !h.Enabled(req.Context(), level) {
		return
	}
	// The record is built here, not by log.LogAttrs, which takes its
	// caller's PC (runtime.Callers) for a source the handler does not
	// print: a quarter of the line's cost, 2% of a manifest GET's CPU.
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(
		slog.String("request_id", r.id),
		slog.String("method", req.Method),
		slog.String("path", req.URL.Path),
		slog.Int("status", sw.status),
		slog.Int64("bytes_in", max(req.ContentLength, 0)),
		slog.Int64("bytes_out", sw.bytes),
		slog.Duration("duration", took),
		slog.String("remote", req.RemoteAddr),
		slog.String("user_agent", req.UserAgent()),
	)
	if aborted {
		rec.AddAttrs(slog.Bool("aborted", true))
	}
	_ = h.Handle(req.Context(), rec)
}

// countingBody counts the request body bytes a handler read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) count() int64 {
	if b == nil {
		return 0
	}
	return b.n
}

// statusWriter records the status, the body size and the route template
// the table matched (setRoute). It keeps the fast paths of the wrapped
// writer: Flush, ReadFrom (sendfile for blob GETs) and Unwrap for
// http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	route  string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(w.ResponseWriter, r)
	}
	w.bytes += n
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newLogger builds the stderr logger from the config.
func newLogger(out io.Writer, c LogConfig) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(out, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(out, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.Format)
}
