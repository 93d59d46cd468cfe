package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/retention"
	"github.com/packreg/packreg/storage"
)

// The `retention:` section is retention.Config: rules that deprecate,
// archive and delete pack versions (package retention); here are its
// routes and its schedule, shaped as garbage collection's (gc.go).

const (
	retentionPrefix = "/api/v1/retention"
	retentionLease  = "packs.retention"
)

// errRetentionBusy: another run holds the lease.
var errRetentionBusy = apierr.New(http.StatusConflict, apierr.Conflict, "a retention run is under way; try again when it ends")

// retentionRunView is one run on the wire; Items only in the answer to
// the run.
type retentionRunView struct {
	ID       int64                   `json:"id"`
	DryRun   bool                    `json:"dryRun"`
	Trigger  string                  `json:"trigger"`
	Started  time.Time               `json:"startedAt"`
	Finished time.Time               `json:"finishedAt"`
	Error    string                  `json:"error,omitempty"`
	Counts   storage.RetentionCounts `json:"counts"`
	Items    []retention.Item        `json:"items,omitempty"`
}

type retentionRunList struct {
	Items []retentionRunView `json:"items"`
}

func viewRetentionRun(r storage.RetentionRun) retentionRunView {
	return retentionRunView{ID: r.ID, DryRun: r.DryRun, Trigger: r.Trigger, Started: r.Started, Finished: r.Finished,
		Error: r.Error, Counts: r.Counts}
}

// retainer runs the retention rules on request and on schedule.
type retainer struct {
	svc  *retention.Service
	log  *slog.Logger
	excl *leased
}

func newRetainer(c retention.Config, st *stores, packs *pack.Service, reg *registry.Registry, verifier pack.VerificationReporter,
	log *slog.Logger, ob *observer) *retainer {
	svc := retention.New(c, st.meta, packs, reg, verifier, retention.WithLogger(log), retention.WithObserver(ob.retentionObserver()))
	return &retainer{svc: svc, log: log,
		excl: &leased{leases: st.meta, name: retentionLease, holder: janitorHolder(), busy: errRetentionBusy}}
}

// run applies the rules once if this process gets the lease; a dry run
// changes nothing and needs no lease.
func (r *retainer) run(ctx context.Context, dry bool, trigger string) (*retention.Report, error) {
	o := retention.Options{DryRun: dry, Trigger: trigger}
	return leasedRun(ctx, r.excl, dry, func(ctx context.Context) (*retention.Report, error) { return r.svc.Run(ctx, o) })
}

func (r *retainer) start(ctx context.Context, wg *sync.WaitGroup, period time.Duration) {
	r.excl.scheduled(ctx, wg, period, r.log, "scheduled retention", func(ctx context.Context) error {
		_, err := r.run(ctx, false, "schedule")
		return err
	})
}

func (r *retainer) routes() []routes.Route {
	return []routes.Route{
		routes.Post(retentionPrefix, apierr.Handler(r.log, r.post)),
		routes.Get(retentionPrefix+"/runs", apierr.Handler(r.log, r.list)),
	}
}

func (r *retainer) post(w http.ResponseWriter, req *http.Request) error {
	in, err := decodeRunRequest(req)
	if err != nil {
		return err
	}
	rep, err := r.run(req.Context(), in.DryRun, "api")
	if err != nil && (rep == nil || rep.Counts.Failed == 0) {
		return err // it did not get to plan (recorded with its error)
	}
	// A run some of whose changes failed is answered whole: the failed
	// items carry their error, and so does the run.
	v := viewRetentionRun(rep.RetentionRun)
	v.Items = rep.Items
	if v.Items == nil {
		v.Items = []retention.Item{}
	}
	apierr.JSON(w, http.StatusOK, v)
	return nil
}

func (r *retainer) list(w http.ResponseWriter, req *http.Request) error {
	return serveRuns(w, req, r.svc.Runs, viewRetentionRun)
}
