package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/routes"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// ScrubConfig is the `scrub:` section: re-hashing stored blobs
// (registry/scrub.go).
type ScrubConfig struct {
	// Schedule is how often a scrub starts (0: never). Every replica may
	// run the worker; a lease lets one at a time scrub.
	Schedule time.Duration `yaml:"schedule"`
	// Rate caps the bytes per second a scrub reads from the blob store.
	Rate int64 `yaml:"rate"`
}

func defaultScrubConfig() ScrubConfig { return ScrubConfig{Rate: registry.DefaultScrubRate} }

func (c ScrubConfig) validate() error {
	if c.Schedule < 0 || c.Rate < 1 {
		return fmt.Errorf("scrub: schedule must be 0 (off) or positive and rate at least 1 byte per second, got %s and %d", c.Schedule, c.Rate)
	}
	return nil
}

const (
	scrubLease  = "registry.scrub"
	scrubPrefix = "/api/v1/scrub"
)

// errScrubBusy: another scrub holds the lease.
var errScrubBusy = apierr.New(http.StatusConflict, apierr.Conflict, "a scrub is running; try again when it ends")

// scrubber runs scrubs under the lease, on request and on schedule.
type scrubber struct {
	reg  *registry.Registry
	rate int64
	log  *slog.Logger
	excl *leased
}

func newScrubber(reg *registry.Registry, leases storage.Leases, c ScrubConfig, log *slog.Logger) *scrubber {
	return &scrubber{reg: reg, rate: c.Rate, log: log,
		excl: &leased{leases: leases, name: scrubLease, holder: janitorHolder(), busy: errScrubBusy}}
}

// run scrubs once if this process gets the lease.
func (s *scrubber) run(ctx context.Context) (*registry.ScrubReport, error) {
	return leasedRun(ctx, s.excl, false, func(ctx context.Context) (*registry.ScrubReport, error) {
		rep, err := s.reg.Scrub(ctx, s.rate)
		if rep != nil {
			s.log.InfoContext(ctx, "scrub", "blobs", rep.Blobs, "bytes", rep.Bytes, "bad", len(rep.Bad), "repaired", len(rep.Repaired),
				"skipped", rep.Skipped, "err", err)
		}
		return rep, err
	})
}

// start runs scheduled scrubs when period is positive.
func (s *scrubber) start(ctx context.Context, wg *sync.WaitGroup, period time.Duration) {
	s.excl.scheduled(ctx, wg, period, s.log, "scheduled scrub", func(ctx context.Context) error {
		_, err := s.run(ctx)
		return err
	})
}

func (s *scrubber) routes() []routes.Route {
	return []routes.Route{routes.Post(scrubPrefix, apierr.Handler(s.log, s.post))}
}

// post is POST /api/v1/scrub: scrub now (at scrub.rate) and answer what
// it found when it is done. Its body, when there is one, is {}.
func (s *scrubber) post(w http.ResponseWriter, req *http.Request) error {
	if _, err := apierr.Query(req.URL.RawQuery); err != nil {
		return err
	}
	var in struct{}
	if _, err := apierr.DecodeOptionalJSON(req.Body, &in, 4<<10); err != nil {
		return err
	}
	rep, err := s.run(req.Context())
	if err != nil {
		return err
	}
	if rep.Bad == nil {
		rep.Bad = []digest.Digest{}
	}
	apierr.JSON(w, http.StatusOK, rep)
	return nil
}
