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

// listed attaches the report and says whether v belongs in a listing.
func (s *Service) listed(ctx context.Context, v *Version) (bool, error) {
	if err := s.report(ctx, v); err != nil {
		return false, err
	}
	return v.SignatureReport == nil || !v.SignatureReport.Pending, nil
}
