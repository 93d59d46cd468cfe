package attest

import (
	"errors"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// Identity is a keyless signer a policy trusts: the OIDC issuer and the
// certificate's subject (the SAN: a workflow URI, an email), each exact
// or by a Go regular expression, and any of Fulcio's certificate
// extensions pinned to an exact value. Regular expressions match as
// cosign's --certificate-identity-regexp does, anywhere in the value
// unless anchored with ^ and $. A keyless signature counts only when
// some identity of its repository's policy matches it.
type Identity struct {
	Issuer        string `yaml:"issuer" json:"issuer,omitempty"`
	IssuerRegexp  string `yaml:"issuer_regexp" json:"issuerRegexp,omitempty"`
	Subject       string `yaml:"subject" json:"subject,omitempty"`
	SubjectRegexp string `yaml:"subject_regexp" json:"subjectRegexp,omitempty"`

	// Fulcio's extensions (OID 1.3.6.1.4.1.57264.1.9 to .22), named as
	// Fulcio's documentation names them.
	BuildSignerURI                      string `yaml:"build_signer_uri" json:"buildSignerUri,omitempty"`
	BuildSignerDigest                   string `yaml:"build_signer_digest" json:"buildSignerDigest,omitempty"`
	RunnerEnvironment                   string `yaml:"runner_environment" json:"runnerEnvironment,omitempty"`
	SourceRepositoryURI                 string `yaml:"source_repository_uri" json:"sourceRepositoryUri,omitempty"`
	SourceRepositoryDigest              string `yaml:"source_repository_digest" json:"sourceRepositoryDigest,omitempty"`
	SourceRepositoryRef                 string `yaml:"source_repository_ref" json:"sourceRepositoryRef,omitempty"`
	SourceRepositoryIdentifier          string `yaml:"source_repository_identifier" json:"sourceRepositoryIdentifier,omitempty"`
	SourceRepositoryOwnerURI            string `yaml:"source_repository_owner_uri" json:"sourceRepositoryOwnerUri,omitempty"`
	SourceRepositoryOwnerIdentifier     string `yaml:"source_repository_owner_identifier" json:"sourceRepositoryOwnerIdentifier,omitempty"`
	BuildConfigURI                      string `yaml:"build_config_uri" json:"buildConfigUri,omitempty"`
	BuildConfigDigest                   string `yaml:"build_config_digest" json:"buildConfigDigest,omitempty"`
	BuildTrigger                        string `yaml:"build_trigger" json:"buildTrigger,omitempty"`
	RunInvocationURI                    string `yaml:"run_invocation_uri" json:"runInvocationUri,omitempty"`
	SourceRepositoryVisibilityAtSigning string `yaml:"source_repository_visibility_at_signing" json:"sourceRepositoryVisibilityAtSigning,omitempty"`
}

func (id Identity) extensions() certificate.Extensions {
	return certificate.Extensions{
		BuildSignerURI: id.BuildSignerURI, BuildSignerDigest: id.BuildSignerDigest,
		RunnerEnvironment: id.RunnerEnvironment, SourceRepositoryURI: id.SourceRepositoryURI,
		SourceRepositoryDigest: id.SourceRepositoryDigest, SourceRepositoryRef: id.SourceRepositoryRef,
		SourceRepositoryIdentifier: id.SourceRepositoryIdentifier, SourceRepositoryOwnerURI: id.SourceRepositoryOwnerURI,
		SourceRepositoryOwnerIdentifier: id.SourceRepositoryOwnerIdentifier, BuildConfigURI: id.BuildConfigURI,
		BuildConfigDigest: id.BuildConfigDigest, BuildTrigger: id.BuildTrigger, RunInvocationURI: id.RunInvocationURI,
		SourceRepositoryVisibilityAtSigning: id.SourceRepositoryVisibilityAtSigning,
	}
}

// Matcher compiles the identity into sigstore-go's certificate identity,
// the matcher cosign verifies with. Both an issuer and a subject
// criterion are required: an identity that names only one would trust
// every signer of the other.
func (id Identity) Matcher() (verify.CertificateIdentity, error) {
	if id.Issuer == "" && id.IssuerRegexp == "" {
		return verify.CertificateIdentity{}, errors.New("an identity needs issuer or issuer_regexp")
	}
	if id.Subject == "" && id.SubjectRegexp == "" {
		return verify.CertificateIdentity{}, errors.New("an identity needs subject or subject_regexp")
	}
	san, err := verify.NewSANMatcher(id.Subject, id.SubjectRegexp)
	if err != nil {
		return verify.CertificateIdentity{}, fmt.Errorf("subject_regexp: %w", err)
	}
	iss, err := verify.NewIssuerMatcher(id.Issuer, id.IssuerRegexp)
	if err != nil {
		return verify.CertificateIdentity{}, fmt.Errorf("issuer_regexp: %w", err)
	}
	return verify.NewCertificateIdentity(san, iss, id.extensions())
}

// compileIdentities compiles the identities of every policy, by policy
// index; Validate has reported the bad ones, which match nothing.
func compileIdentities(c *Config) [][]verify.CertificateIdentity {
	out := make([][]verify.CertificateIdentity, len(c.Policies))
	for i, p := range c.Policies {
		for _, id := range p.Identities {
			if m, err := id.Matcher(); err == nil {
				out[i] = append(out[i], m)
			}
		}
	}
	return out
}

// matchIdentity returns the index of the first identity that the
// certificate summary matches, or -1.
func matchIdentity(ids []verify.CertificateIdentity, s certificate.Summary) int {
	for i, id := range ids {
		if id.Verify(s) == nil {
			return i
		}
	}
	return -1
}

// Signer is the identity of a keyless signature as a finding shows it:
// who signed (the OIDC issuer and subject), from what (the source
// repository, ref and trigger Fulcio recorded), when, how that time was
// proven, and which trusted root verified it.
type Signer struct {
	Issuer              string     `json:"issuer"`
	Subject             string     `json:"subject"`
	SourceRepositoryURI string     `json:"sourceRepositoryUri,omitempty"`
	SourceRepositoryRef string     `json:"sourceRepositoryRef,omitempty"`
	SourceRepositoryDig string     `json:"sourceRepositoryDigest,omitempty"`
	BuildTrigger        string     `json:"buildTrigger,omitempty"`
	BuildSignerURI      string     `json:"buildSignerUri,omitempty"`
	BuildConfigURI      string     `json:"buildConfigUri,omitempty"`
	RunnerEnvironment   string     `json:"runnerEnvironment,omitempty"`
	RunInvocationURI    string     `json:"runInvocationUri,omitempty"`
	SignedAt            *time.Time `json:"signedAt,omitempty"`
	TimeSource          string     `json:"timeSource,omitempty"`
	TrustedRoot         string     `json:"trustedRoot,omitempty"`
}

func signerOf(p *keylessProof) *Signer {
	id := p.Identity
	return &Signer{Issuer: id.Issuer, Subject: id.SubjectAlternativeName,
		SourceRepositoryURI: id.SourceRepositoryURI, SourceRepositoryRef: id.SourceRepositoryRef,
		SourceRepositoryDig: id.SourceRepositoryDigest, BuildTrigger: id.BuildTrigger,
		BuildSignerURI: id.BuildSignerURI, BuildConfigURI: id.BuildConfigURI,
		RunnerEnvironment: id.RunnerEnvironment, RunInvocationURI: id.RunInvocationURI,
		SignedAt: timePtr(p.SignedAt), TimeSource: p.TimeSource, TrustedRoot: p.Root}
}

// String names the signer in one line: issuer and subject.
func (s *Signer) String() string { return s.Subject + " (" + s.Issuer + ")" }
