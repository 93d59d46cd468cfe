package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/registry"
)

// MirrorsConfig is the `mirrors:` section: the background worker and the
// remotes declared in the file (created or updated by name at every
// start; remotes added through the API are kept as they are).
type MirrorsConfig struct {
	// Worker runs scheduled and requested syncs and parity checks (every
	// replica may; a lease per remote lets one at a time work on it).
	Worker bool `yaml:"worker"`
	// Tick is how often the worker looks for due work.
	Tick time.Duration `yaml:"tick"`
	// LeaseTTL is how long a crashed worker's run waits before another
	// worker carries it on.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// RunTimeout bounds one attempt of a sync or parity run.
	RunTimeout time.Duration `yaml:"run_timeout"`
	// Remotes are mirrors (kind: mirror) and upstreams (kind: upstream).
	Remotes []mirror.Settings `yaml:"remotes"`
}

func defaultMirrorsConfig() MirrorsConfig {
	// Empty, not nil: `config print` shows the key, and what it prints
	// decodes back to the same value.
	return MirrorsConfig{Worker: true, Tick: 5 * time.Second, LeaseTTL: 30 * time.Second, RunTimeout: mirror.DefaultRunTimeout,
		Remotes: []mirror.Settings{}}
}

func (c MirrorsConfig) validate() error {
	var errs []error
	if c.Tick <= 0 || c.LeaseTTL < 3*time.Second {
		errs = append(errs, fmt.Errorf("mirrors: tick must be positive and lease_ttl at least 3s"))
	}
	if c.RunTimeout < time.Second {
		errs = append(errs, fmt.Errorf("mirrors: run_timeout must be at least 1s"))
	}
	seen := map[string]bool{}
	for i, r := range c.Remotes {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("mirrors.remotes[%d] (%s): %w", i, r.Name, err))
		}
		if seen[r.Kind+"/"+r.Name] {
			errs = append(errs, fmt.Errorf("mirrors.remotes[%d]: %s %q given twice", i, r.Kind, r.Name))
		}
		seen[r.Kind+"/"+r.Name] = true
	}
	return errors.Join(errs...)
}

// redacted hides the remotes' passwords and tokens from `config print`.
func (c MirrorsConfig) redacted() MirrorsConfig {
	out := c
	out.Remotes = make([]mirror.Settings, len(c.Remotes))
	for i, r := range c.Remotes {
		if r.Credentials != nil {
			cr := *r.Credentials
			if cr.Password != "" {
				cr.Password = redacted
			}
			if cr.Token != "" {
				cr.Token = redacted
			}
			r.Credentials = &cr
		}
		out.Remotes[i] = r
	}
	return out
}

// mirrors is the mirror service wired around the registry.
type mirrors struct {
	svc *mirror.Service
	c   MirrorsConfig
}

// newMirrors builds the mirror service over the metadata store; it reads
// versions and lifecycle from the pack index and applies an upstream's
// lifecycle through the pack service.
func newMirrors(st *stores, c Config, log *slog.Logger, packs *packs, ob *observer) *mirrors {
	svc := mirror.New(st.meta, nil, mirror.WithLogger(log), mirror.WithPackIndex(st.meta),
		mirror.WithLifecycleSetter(packLifecycle{svc: packs.svc, actor: "mirror"}), mirror.WithHolder(janitorHolder()),
		mirror.WithRunObserver(ob.runObserver()))
	return &mirrors{svc: svc, c: c.Mirrors}
}

func (m *mirrors) registryOptions() []registry.Option { return m.svc.RegistryOptions() }

// attach completes the wiring once the registry exists, and stores the
// remotes the config declares (in the audit trail, their changes are the
// system's, like those of the other config sections).
func (m *mirrors) attach(ctx context.Context, reg *registry.Registry) error {
	m.svc.Attach(reg)
	ctx = registry.WithActor(ctx, "system")
	for _, r := range m.c.Remotes {
		if _, err := m.svc.Ensure(ctx, r.Kind, r); err != nil {
			return fmt.Errorf("mirrors: %s %s: %w", r.Kind, r.Name, err)
		}
	}
	return nil
}

// start runs the worker until ctx ends; without one (mirrors.worker:
// false), what turns this replica's publications into runs that the
// other replicas' workers carry out.
func (m *mirrors) start(ctx context.Context, wg *sync.WaitGroup) {
	o := mirror.WorkerOptions{Tick: m.c.Tick, LeaseTTL: m.c.LeaseTTL, RunTimeout: m.c.RunTimeout}
	run := m.svc.RunWorker
	if !m.c.Worker {
		run = m.svc.RunPublisher
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(ctx, o)
	}()
}

// flush records runs for the publications the worker (or publisher)
// has not taken, on the way out (mirror.Service.FlushPublications).
func (m *mirrors) flush(ctx context.Context) { m.svc.FlushPublications(ctx) }

// packLifecycle applies an upstream's (or a bundle's) lifecycle to the
// copy: the copy follows its primary, archived ones come back when it
// says so. actor, when set, is who does it; else the context's actor
// (an import's importer).
type packLifecycle struct {
	svc   *pack.Service
	actor string
}

func (p packLifecycle) SetPackState(ctx context.Context, name, version, state, reason string) error {
	if p.actor != "" {
		ctx = registry.WithActor(ctx, p.actor)
	}
	_, err := p.svc.SetLifecycle(ctx, name, version,
		pack.LifecycleRequest{State: state, Reason: reason, Force: true})
	return err
}
