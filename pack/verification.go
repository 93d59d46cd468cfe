package pack

import (
	"context"

	"github.com/packreg/packreg/digest"
)

// VerificationReporter reports what is known about the signatures of a
// pack version. pack does not import the package that knows (attest); cmd
// adapts it to this interface.
type VerificationReporter interface {
	// SignatureReport reports on manifest d of pack name.
	SignatureReport(ctx context.Context, name string, d digest.Digest) (*SignatureReport, error)
}

// BatchVerificationReporter is an optional VerificationReporter ability:
// the reports of several manifests at once, in order, for a listing page
// (the reporter reads what every report shares once).
type BatchVerificationReporter interface {
	SignatureReports(ctx context.Context, versions []VersionRef) ([]*SignatureReport, error)
}

// VersionRef names the manifest of a pack version.
type VersionRef struct {
	Name   string
	Digest digest.Digest
}

// SignatureReport is the signature part of a version as the API shows it.
type SignatureReport struct {
	// Verification is one word: verified, unsigned, invalid or untrusted.
	Verification string `json:"verification"`
	// Signatures and Attestations are the reporter's findings (status,
	// key id, algorithm, predicate type...), shown as it encodes them.
	Signatures   any `json:"signatures"`
	Attestations any `json:"attestations"`
	// Pending: the policy keeps the version invisible until it is
	// verified, so listings leave it out.
	Pending bool `json:"pending,omitempty"`
}

// WithVerificationReporter adds the signature report to every version the
// API returns, and leaves pending versions out of listings.
func WithVerificationReporter(r VerificationReporter) Option {
	return func(s *Service) { s.verifier = r }
}

// report attaches the signature report to v (nothing without a reporter).
func (s *Service) report(ctx context.Context, v *Version) error {
	if s.verifier == nil {
		return nil
	}
	r, err := s.verifier.SignatureReport(ctx, v.Name, digest.Digest(v.Digest))
	if err != nil {
		return err
	}
	v.SignatureReport = r
	return nil
}

// listed attaches the reports to vs and returns those that belong in a
// listing: pending versions are left out.
func (s *Service) listed(ctx context.Context, vs []Version) ([]Version, error) {
	if b, ok := s.verifier.(BatchVerificationReporter); ok {
		refs := make([]VersionRef, len(vs))
		for i := range vs {
			refs[i] = VersionRef{vs[i].Name, digest.Digest(vs[i].Digest)}
		}
		reps, err := b.SignatureReports(ctx, refs)
		if err != nil {
			return nil, err
		}
		for i := range vs {
			vs[i].SignatureReport = reps[i]
		}
	} else {
		for i := range vs {
			if err := s.report(ctx, &vs[i]); err != nil {
				return nil, err
			}
		}
	}
	out := vs[:0]
	for _, v := range vs {
		if v.SignatureReport == nil || !v.SignatureReport.Pending {
			out = append(out, v)
		}
	}
	return out, nil
}
