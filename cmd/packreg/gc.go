package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// GCConfig is the `gc:` section: online garbage collection (registry/gc.go).
type GCConfig struct {
	// Grace: manifests, blob links and upload sessions younger than this
	// are never collected.
	Grace time.Duration `yaml:"grace"`
	// Schedule is how often the worker collects (0: never; runs are then
	// asked for through the API or `packreg gc`). Every replica may run
	// the worker; a lease lets one at a time collect.
	Schedule time.Duration `yaml:"schedule"`
}

func defaultGCConfig() GCConfig { return GCConfig{Grace: registry.DefaultGCGrace} }

func (c GCConfig) validate() error {
	if c.Grace < time.Second || c.Schedule < 0 {
		return fmt.Errorf("gc: grace must be at least 1s and schedule 0 (off) or positive, got %s and %s", c.Grace, c.Schedule)
	}
	return nil
}

const (
	gcPrefix = "/api/v1/gc"
	gcLease  = "registry.gc"
	// gcLeaseTTL is how long a crashed collector keeps the others out.
	gcLeaseTTL = 30 * time.Second
	// gcMaxRuns caps a page of GET /api/v1/gc/runs (and of retention's).
	gcMaxRuns = 100
)

// gcRunView is one run on the wire; Items only in the answer to the run.
type gcRunView struct {
	ID        int64             `json:"id"`
	DryRun    bool              `json:"dryRun"`
	Trigger   string            `json:"trigger"`
	Started   time.Time         `json:"startedAt"`
	Finished  time.Time         `json:"finishedAt"`
	Error     string            `json:"error,omitempty"`
	Counts    storage.GCCounts  `json:"counts"`
	Items     []registry.GCItem `json:"items,omitempty"`
	Truncated bool              `json:"truncated,omitempty"`
}

type gcRunList struct {
	Items []gcRunView `json:"items"`
}

func viewGCRun(r storage.GCRun) gcRunView {
	return gcRunView{ID: r.ID, DryRun: r.DryRun, Trigger: r.Trigger, Started: r.Started, Finished: r.Finished,
		Error: r.Error, Counts: r.Counts}
}

// collector runs collections under the lease, on request and on schedule.
type collector struct {
	reg   *registry.Registry
	grace time.Duration
	log   *slog.Logger
	excl  *leased
}

func newCollector(reg *registry.Registry, leases storage.Leases, grace time.Duration, log *slog.Logger) *collector {
	return &collector{reg: reg, grace: grace, log: log, excl: &leased{leases: leases, name: gcLease, holder: janitorHolder(), busy: errGCBusy}}
}

// errGCBusy: another run holds the lease.
var errGCBusy = apierr.New(http.StatusConflict, apierr.Conflict, "a garbage collection is running; try again when it ends")

// run collects once if this process gets the lease; dry runs change
// nothing and need no lease.
func (c *collector) run(ctx context.Context, dry bool, trigger string) (*registry.GCReport, error) {
	o := registry.GCOptions{DryRun: dry, Grace: c.grace, Trigger: trigger}
	return leasedRun(ctx, c.excl, dry, func(ctx context.Context) (*registry.GCReport, error) { return c.reg.CollectGarbage(ctx, o) })
}

// leased runs one kind of background work that changes things: one run
// at a time in this process (mu) and across replicas (the lease); busy is
// the answer when another has it.
type leased struct {
	leases storage.Leases
	name   string
	holder string
	busy   error
	mu     sync.Mutex
}

func (l *leased) do(ctx context.Context, fn func(context.Context) error) error {
	if !l.mu.TryLock() {
		return l.busy
	}
	defer l.mu.Unlock()
	ok, err := underLease(ctx, l.leases, l.name, l.holder, fn)
	if err == nil && !ok {
		err = l.busy
	}
	return err
}

// leasedRun runs fn under l, or, for a dry run (which changes nothing),
// without it.
func leasedRun[T any](ctx context.Context, l *leased, dry bool, fn func(context.Context) (T, error)) (T, error) {
	if dry {
		return fn(ctx)
	}
	var out T
	err := l.do(ctx, func(ctx context.Context) error {
		var err error
		out, err = fn(ctx)
		return err
	})
	return out, err
}

// scheduled runs fn every period (when positive) until ctx ends, logging
// failures other than busy under what.
func (l *leased) scheduled(ctx context.Context, wg *sync.WaitGroup, period time.Duration, log *slog.Logger, what string, fn func(context.Context) error) {
	if period <= 0 {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(ctx, period, func(ctx context.Context) {
			if err := fn(ctx); err != nil && err != l.busy && ctx.Err() == nil {
				log.WarnContext(ctx, what, "err", err)
			}
		})
	}()
}

// underLease runs fn holding lease name for the GC-like runs (renewed
// while fn runs; fn's context ends if it is lost), and reports false
// without running it when another holder has the lease.
func underLease(ctx context.Context, leases storage.Leases, name, holder string, fn func(context.Context) error) (bool, error) {
	return storage.WithLease(ctx, leases, name, holder, gcLeaseTTL, fn)
}

// every calls fn every period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
	}
}

// start runs the scheduled collections when period is positive.
func (c *collector) start(ctx context.Context, wg *sync.WaitGroup, period time.Duration) {
	c.excl.scheduled(ctx, wg, period, c.log, "scheduled garbage collection", func(ctx context.Context) error {
		_, err := c.run(ctx, false, "schedule")
		return err
	})
}

func (c *collector) routes() []routes.Route {
	return []routes.Route{
		routes.Post(gcPrefix, apierr.Handler(c.log, c.post)),
		routes.Get(gcPrefix+"/runs", apierr.Handler(c.log, c.list)),
	}
}

func (c *collector) post(w http.ResponseWriter, req *http.Request) error {
	in, err := decodeRunRequest(req)
	if err != nil {
		return err
	}
	rep, err := c.run(req.Context(), in.DryRun, "api")
	if err != nil {
		return err // a run that stopped half way is recorded with its error
	}
	v := viewGCRun(rep.GCRun)
	v.Items, v.Truncated = rep.Items, rep.Truncated
	if v.Items == nil {
		v.Items = []registry.GCItem{}
	}
	apierr.JSON(w, http.StatusOK, v)
	return nil
}

func (c *collector) list(w http.ResponseWriter, req *http.Request) error {
	return serveRuns(w, req, c.reg.GCRuns, viewGCRun)
}

// serveRuns answers GET .../runs: a page of recorded runs, each as view
// shows it.
func serveRuns[R, V any](w http.ResponseWriter, req *http.Request, runs func(context.Context, int64, int) ([]R, error), view func(R) V) error {
	before, limit, err := runsPage(req)
	if err != nil {
		return err
	}
	rs, err := runs(req.Context(), before, limit)
	if err != nil {
		return err
	}
	out := struct {
		Items []V `json:"items"`
	}{Items: make([]V, 0, len(rs))}
	for _, r := range rs {
		out.Items = append(out.Items, view(r))
	}
	apierr.JSON(w, http.StatusOK, out)
	return nil
}

// runsPage reads ?limit=N&before=ID of a list of recorded runs.
func runsPage(req *http.Request) (before int64, limit int, err error) {
	q, err := apierr.Query(req.URL.RawQuery, "limit", "before")
	if err != nil {
		return 0, 0, err
	}
	limit = 20
	if s, ok := q["limit"]; ok {
		if limit, err = apierr.ParseLimit(s, gcMaxRuns); err != nil {
			return 0, 0, err
		}
	}
	if s, ok := q["before"]; ok {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 1 {
			return 0, 0, apierr.Bad("before %q: want a run id", apierr.Clip(s))
		}
	}
	return before, limit, nil
}
