package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/ui"
)

// complianceSvc is the compliance service wired to attest's verdicts, the
// `compliance:` rules of the config and attest.policies read as the rules
// that enforce; it serves /api/v1/compliance and runs its evaluator.
type complianceSvc struct {
	svc *compliance.Service
}

func newCompliance(st *stores, c Config, att *attest.Service, log *slog.Logger) *complianceSvc {
	return &complianceSvc{svc: compliance.New(st.meta, evidence{att}, c.Compliance,
		compliance.WithEnforced(enforcedRules(c.Attest)), compliance.WithLogger(log), compliance.After(attest.Consumer))}
}

// defaultComplianceConfig reports nothing until rules are set. Rules is
// empty, not nil, so that `config print` shows the key.
func defaultComplianceConfig() compliance.Config {
	return compliance.Config{Rules: []compliance.Rule{}, ReevaluateEvery: compliance.DefaultReevaluateEvery,
		SnapshotEvery: compliance.DefaultSnapshotEvery}
}

// enforcedRules reads attest.policies as compliance rules that enforce:
// the one policy language (compliance's doc.go has the mapping).
func enforcedRules(c attest.Config) []compliance.Rule {
	out := make([]compliance.Rule, 0, len(c.Policies))
	for i, p := range c.Policies {
		out = append(out, compliance.Rule{Name: fmt.Sprintf("attest.policies[%d]", i), Enforce: true,
			Repositories: p.Repositories, RequireSignature: p.RequireSignature || p.VerifyBeforeVisible,
			RequiredAttestations: p.RequiredAttestations})
	}
	return out
}

// evidence is attest's report in compliance's words.
type evidence struct{ att *attest.Service }

func (e evidence) Evidence(ctx context.Context, repo string, d digest.Digest) (compliance.Evidence, error) {
	rep, err := e.att.Evaluate(ctx, repo, d)
	if err != nil {
		return compliance.Evidence{}, err
	}
	return evidenceOf(rep), nil
}

// EvidenceMany is compliance.BatchVerifier: one read of the key ring and
// trusted roots per batch, and no superseded history, which evidence
// never reads.
func (e evidence) EvidenceMany(ctx context.Context, vs []storage.PackVersion) ([]compliance.Evidence, error) {
	subjects := make([]attest.Subject, len(vs))
	for i, v := range vs {
		subjects[i] = attest.Subject{Repo: v.Name, Digest: v.Digest}
	}
	reps, err := e.att.EvaluateMany(ctx, subjects, 0)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Evidence, len(reps))
	for i, rep := range reps {
		out[i] = evidenceOf(rep)
	}
	return out, nil
}

func evidenceOf(rep *attest.Report) compliance.Evidence {
	ev := compliance.Evidence{Verification: rep.Verification}
	for _, f := range append(rep.Signatures, rep.Attestations...) {
		if f.Superseded != nil || f.Status != storage.SigVerified {
			continue
		}
		if f.Kind == attest.KindAttestation {
			ev.Attestations = append(ev.Attestations, f.PredicateType)
		}
		if f.Recorded != nil && f.Recorded.After(ev.Newest) {
			ev.Newest = *f.Recorded
		}
	}
	return ev
}

// attach subscribes the evaluator to the outbox before the registry serves.
func (c *complianceSvc) attach(ctx context.Context) error { return c.svc.Subscribe(ctx) }

// start runs the evaluator until ctx ends.
func (c *complianceSvc) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.svc.Run(ctx)
	}()
}

// uiReporter is attest's report as the dashboard's pack page lists it:
// the current signatures and attestations, judged as they are now.
type uiReporter struct{ att *attest.Service }

func (r uiReporter) Signatures(ctx context.Context, repo string, d digest.Digest) ([]ui.Signature, error) {
	rep, err := r.att.Evaluate(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	var out []ui.Signature
	for _, f := range append(rep.Signatures, rep.Attestations...) {
		if f.Superseded != nil {
			continue
		}
		s := ui.Signature{Kind: f.Kind, PredicateType: f.PredicateType, Status: f.Status, Reason: f.Reason, Signer: f.KeyName}
		if s.Signer == "" && f.KeyID != "" {
			s.Signer = "key " + f.KeyID[:min(12, len(f.KeyID))]
		}
		if f.Identity != nil {
			s.Signer = f.Identity.String()
		}
		if f.Recorded != nil {
			s.Recorded = *f.Recorded
		}
		out = append(out, s)
	}
	return out, nil
}

// dashboard is the read-only dashboard over the compliance findings.
func (c *complianceSvc) dashboard(st *stores, att *attest.Service, log *slog.Logger, authOn bool) *ui.UI {
	return ui.New(st.meta, c.svc, uiReporter{att}, log, !authOn)
}
