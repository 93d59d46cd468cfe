package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/registry"
)

// attests is the attest service wired around the registry and the pack
// API: it indexes signatures from registry events, gates pulls by the
// `attest:` policies of the config, serves /api/v1/keys and
// /api/v1/trusted-roots, and answers the
// signature paths of pack versions.
type attests struct {
	svc *attest.Service
}

func newAttest(st *stores, c Config, log *slog.Logger) *attests {
	// Packs are always gated: a pack never passes for a signature manifest.
	return &attests{svc: attest.New(st.meta, attest.WithConfig(c.Attest), attest.WithLogger(log), attest.WithGatedTypes(oci.IsPack))}
}

// defaultAttestConfig is permissive. Policies is empty, not nil, so that
// `config print` shows the key and what it prints decodes back the same.
func defaultAttestConfig() attest.Config {
	return attest.Config{Policies: []attest.Policy{}, TrustedRoots: []attest.RootConfig{}, QueueSize: attest.DefaultQueueSize,
		MaxReferrersPerSubject: attest.DefaultMaxReferrersPerSubject, MaxRecordsPerSubject: attest.DefaultMaxRecordsPerSubject}
}

// packOptions add attest's report to the versions the pack API returns.
func (a *attests) packOptions() []pack.Option {
	return []pack.Option{pack.WithVerificationReporter(packReporter{a.svc})}
}

// packReporter is attest's report in the pack API's terms.
type packReporter struct{ svc *attest.Service }

func (r packReporter) SignatureReport(ctx context.Context, name string, d digest.Digest) (*pack.SignatureReport, error) {
	rep, err := r.svc.Evaluate(ctx, name, d)
	if err != nil {
		return nil, err
	}
	return packReport(rep), nil
}

// SignatureReports is pack.BatchVerificationReporter: a listing page's
// reports under one read of the key ring and trusted roots.
func (r packReporter) SignatureReports(ctx context.Context, vs []pack.VersionRef) ([]*pack.SignatureReport, error) {
	subjects := make([]attest.Subject, len(vs))
	for i, v := range vs {
		subjects[i] = attest.Subject{Repo: v.Name, Digest: v.Digest}
	}
	reps, err := r.svc.EvaluateMany(ctx, subjects, attest.MaxSupersededShown)
	if err != nil {
		return nil, err
	}
	out := make([]*pack.SignatureReport, len(reps))
	for i, rep := range reps {
		out[i] = packReport(rep)
	}
	return out, nil
}

func packReport(rep *attest.Report) *pack.SignatureReport {
	return &pack.SignatureReport{Verification: rep.Verification, Signatures: rep.Signatures,
		Attestations: rep.Attestations, Pending: rep.Policy.Pending}
}

// registryOptions are the hooks the registry is built with.
func (a *attests) registryOptions() []registry.Option { return a.svc.RegistryOptions() }

// attach completes the wiring once the registry and the pack index exist:
// attest reads and stores signatures through the registry, resolves
// NAME/VERSION through the pack index (unknown versions are 404 there) and
// takes its indexing work from the store's outbox, from before the
// registry serves.
func (a *attests) attach(ctx context.Context, reg *registry.Registry, versions attest.VersionResolver) error {
	a.svc.Attach(reg, reg)
	a.svc.ResolveVersionsWith(versions)
	// The trusted root files must read before serving: a typo in one is
	// a failed start, not every keyless signature failing.
	if _, err := a.svc.ReloadTrustedRoots(ctx); err != nil {
		return err
	}
	return a.svc.Subscribe(ctx)
}

// start runs the indexing worker until ctx ends.
func (a *attests) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.svc.Run(ctx)
	}()
}
