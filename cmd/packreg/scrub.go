package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

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

const scrubLease = "registry.scrub"

// startScrub runs scheduled scrubs under the lease when c.Schedule is set.
func startScrub(ctx context.Context, wg *sync.WaitGroup, reg *registry.Registry, leases storage.Leases, c ScrubConfig, log *slog.Logger) {
	if c.Schedule <= 0 {
		return
	}
	holder := janitorHolder()
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(ctx, c.Schedule, func(ctx context.Context) {
			_, err := underLease(ctx, leases, scrubLease, holder, func(ctx context.Context) error {
				rep, err := reg.Scrub(ctx, c.Rate)
				if rep != nil {
					log.InfoContext(ctx, "scrub", "blobs", rep.Blobs, "bytes", rep.Bytes, "bad", len(rep.Bad), "skipped", rep.Skipped, "err", err)
				}
				return err
			})
			if err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "scheduled scrub", "err", err)
			}
		})
	}()
}
