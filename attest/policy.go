package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/internal/repopattern"
)

// Config is the attest section of the serve config. The zero value is
// permissive: everything is indexed and reported, nothing is enforced.
type Config struct {
	// Policies apply per repository; the first whose pattern matches wins.
	Policies []Policy `yaml:"policies"`
	// QueueSize is how many pending indexing events the worker takes
	// from the queue (the store's outbox, which has no bound) and
	// acknowledges at a time: after a crash, at most that many are
	// indexed again. 0 means DefaultQueueSize. Once it bounded an
	// in-memory queue that dropped jobs when full; the key stays for the
	// config files that set it.
	QueueSize int `yaml:"queue_size"`
	// MaxReferrersPerSubject caps the referrer manifests whose signatures
	// are checked, and current, for one subject. A referrer past it is not checked: it
	// gets one failed finding naming the limit, so the subject is
	// invalid rather than verified on a partial reading. 0 means
	// DefaultMaxReferrersPerSubject.
	MaxReferrersPerSubject int `yaml:"max_referrers_per_subject"`
	// MaxRecordsPerSubject caps the current records about one subject
	// (those the pull gate reads on every pull, and reports judge by):
	// past it the report gets a failed finding naming the limit. 0 means
	// DefaultMaxRecordsPerSubject.
	MaxRecordsPerSubject int `yaml:"max_records_per_subject"`
	// TrustedRoots are Sigstore trusted_root.json files keyless
	// signatures are verified against (roots.go), re-read when they
	// change.
	TrustedRoots []RootConfig `yaml:"trusted_roots"`
}

// Defaults of the caps per subject. A version signed and attested a few
// times has a handful of referrers and records. Both caps count current
// records only: each `cosign sign` in the tag schema writes a new .sig
// manifest holding every earlier signature too and moves the tag to it,
// and the records of the manifest it replaced are superseded, so a
// version re-signed a thousand times is not over a cap.
const (
	DefaultMaxReferrersPerSubject = 128
	DefaultMaxRecordsPerSubject   = 1024
)

func (c *Config) maxReferrers() int {
	if c.MaxReferrersPerSubject > 0 {
		return c.MaxReferrersPerSubject
	}
	return DefaultMaxReferrersPerSubject
}

func (c *Config) maxRecords() int {
	if c.MaxRecordsPerSubject > 0 {
		return c.MaxRecordsPerSubject
	}
	return DefaultMaxRecordsPerSubject
}

// Policy is what a set of repositories requires.
type Policy struct {
	// Repositories are path.Match patterns over repository names ("*" does
	// not cross "/"); a trailing "/**" matches any depth below a prefix,
	// and "**" alone matches every repository.
	Repositories []string `yaml:"repositories"`
	// RequireSignature refuses pulls (403 DENIED), by tag or by digest, of
	// a manifest that has no signature verified by a trusted key, or any
	// invalid one.
	RequireSignature bool `yaml:"require_signature"`
	// SigningWindow lets a manifest be read by digest for this long after
	// it was pushed although it is not signed yet, because `cosign sign`
	// reads the manifest it signs: without it, a repository that requires
	// signatures can only be signed through the API (the catch-22 of
	// Harbor's cosign policy). 0, the default, allows no unsigned read.
	// Once packreg authenticates, "may push" will be the better test.
	SigningWindow time.Duration `yaml:"signing_window"`
	// VerifyBeforeVisible keeps a new pack version pending until a
	// verified signature arrives (the pack index asks attest).
	VerifyBeforeVisible bool `yaml:"verify_before_visible"`
	// RequiredAttestations are in-toto predicate types that must each have
	// a verified attestation for a version to be "verified".
	RequiredAttestations []string `yaml:"required_attestations"`
	// Identities are the keyless signers trusted here (identity.go): a
	// keyless signature or attestation by any other identity is
	// untrusted, never verified. None: no keyless signature counts.
	Identities []Identity `yaml:"identities"`
}

// DefaultQueueSize is the indexing batch when Config leaves QueueSize 0.
const DefaultQueueSize = 1024

// Settings are the policies as the audit trail records a change of them
// between starts (config.change on attest.policies): one entry per policy,
// in order, with the count, and the caps per subject as enforced (0 is
// their default), since raising a cap loosens the policy too.
func (c Config) Settings() map[string]string {
	out := map[string]string{"count": strconv.Itoa(len(c.Policies)),
		"max_referrers_per_subject": strconv.Itoa(c.maxReferrers()),
		"max_records_per_subject":   strconv.Itoa(c.maxRecords())}
	for i, p := range c.Policies {
		m := map[string]any{
			"repositories":          p.Repositories,
			"require_signature":     p.RequireSignature,
			"signing_window":        p.SigningWindow.String(),
			"verify_before_visible": p.VerifyBeforeVisible,
			"required_attestations": p.RequiredAttestations,
		}
		if len(p.Identities) > 0 { // absent before keyless: no change to record on upgrade
			m["identities"] = p.Identities
		}
		b, err := json.Marshal(m)
		if err != nil {
			panic(err) // strings, bools and slices of strings always marshal
		}
		out[fmt.Sprintf("policies[%d]", i)] = string(b)
	}
	for _, r := range c.TrustedRoots {
		out["trusted_roots."+r.Name] = r.Path
	}
	return out
}

// Validate reports every bad pattern and setting at once.
func (c *Config) Validate() error {
	var errs []error
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("attest.queue_size must be >= 0, got %d", c.QueueSize))
	}
	if c.MaxReferrersPerSubject < 0 {
		errs = append(errs, fmt.Errorf("attest.max_referrers_per_subject must be >= 0, got %d", c.MaxReferrersPerSubject))
	}
	if c.MaxRecordsPerSubject < 0 {
		errs = append(errs, fmt.Errorf("attest.max_records_per_subject must be >= 0, got %d", c.MaxRecordsPerSubject))
	}
	names := map[string]bool{}
	for i, r := range c.TrustedRoots {
		if err := checkRootName(r.Name); err != nil {
			errs = append(errs, fmt.Errorf("attest.trusted_roots[%d]: name %q: %s", i, r.Name, rootNameText))
		} else if names[r.Name] {
			errs = append(errs, fmt.Errorf("attest.trusted_roots[%d]: name %q twice", i, r.Name))
		}
		names[r.Name] = true
		if strings.TrimSpace(r.Path) == "" {
			errs = append(errs, fmt.Errorf("attest.trusted_roots[%d]: no path", i))
		}
	}
	for i, p := range c.Policies {
		for j, id := range p.Identities {
			if _, err := id.Matcher(); err != nil {
				errs = append(errs, fmt.Errorf("attest.policies[%d].identities[%d]: %w", i, j, err))
			}
		}
		if len(p.Repositories) == 0 {
			errs = append(errs, fmt.Errorf("attest.policies[%d]: no repositories", i))
		}
		for _, pat := range p.Repositories {
			if err := repopattern.Check(pat); err != nil {
				errs = append(errs, fmt.Errorf("attest.policies[%d]: repository pattern %q: %w", i, pat, err))
			}
		}
		if p.SigningWindow < 0 {
			errs = append(errs, fmt.Errorf("attest.policies[%d]: signing_window must be >= 0", i))
		}
		for _, t := range p.RequiredAttestations {
			if strings.TrimSpace(t) == "" {
				errs = append(errs, fmt.Errorf("attest.policies[%d]: empty required attestation type", i))
			}
		}
	}
	return errors.Join(errs...)
}

// PolicyFor returns the policy of repo, or nil when none matches
// (permissive).
func (c *Config) PolicyFor(repo string) *Policy {
	if i := c.policyIndex(repo); i >= 0 {
		return &c.Policies[i]
	}
	return nil
}

func (c *Config) policyIndex(repo string) int {
	for i := range c.Policies {
		for _, pat := range c.Policies[i].Repositories {
			if repopattern.Match(pat, repo) {
				return i
			}
		}
	}
	return -1
}
