package compliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packreg/packreg/internal/repopattern"
	"github.com/packreg/packreg/storage"
)

// Rule is what a set of repositories should meet. A rule that reports
// (Enforce false) only produces findings; a rule that enforces is one of
// attest.policies, read here as a rule so the dashboard judges by the
// same words the pull gate refuses by.
type Rule struct {
	// Name names the rule in findings; "rules[i]" when empty.
	Name string `yaml:"name" json:"name"`
	// Repositories are repository patterns, as attest.policies reads them
	// (repopattern): "acme/*", "acme/**", "**".
	Repositories []string `yaml:"repositories" json:"repositories"`
	// Enforce is true only for the rules read from attest.policies: the
	// pull gate enforces those. Rules set here never do.
	Enforce bool `yaml:"-" json:"enforce"`
	// RequireSignature: a signature verified by a trusted key or identity
	// (attest's verdict "verified").
	RequireSignature bool `yaml:"require_signature" json:"requireSignature"`
	// RequiredAttestations are predicate types that must each have a
	// verified attestation; AnyPredicate ("*") asks for one of any type.
	RequiredAttestations []string `yaml:"required_attestations" json:"requiredAttestations"`
	// MaxAge bounds the age of the newest verified signature or
	// attestation; 0: no bound.
	MaxAge Duration `yaml:"max_age" json:"maxAge"`
	// Lifecycle lists the states a version may be in (active,
	// deprecated, archived); empty: any.
	Lifecycle []string `yaml:"lifecycle" json:"lifecycle"`
	// ParityMirrors name mirrors whose latest parity check must find the
	// version in sync.
	ParityMirrors []string `yaml:"parity_mirrors" json:"parityMirrors"`
}

// AnyPredicate in RequiredAttestations asks for a verified attestation of
// any predicate type.
const AnyPredicate = "*"

// Duration is a time.Duration written as "720h" in YAML and JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	if d == 0 {
		return []byte(`""`), nil
	}
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf(`maxAge: want a duration like "720h"`)
	}
	return d.parse(s)
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	return d.parse(s)
}

func (d *Duration) parse(s string) error {
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("max age %q: want a positive duration like 720h", s)
	}
	*d = Duration(v)
	return nil
}

// Limits of a rule set: it is read on every evaluation and comes from
// the API too.
const (
	MaxRules           = 256
	maxPatternsPerRule = 64
	maxListPerRule     = 64
	maxNameLen         = 128
)

var lifecycleStates = []string{storage.PackActive, storage.PackDeprecated, storage.PackArchived}

// Validate reports every problem of a report-only rule set at once; where
// names the set in messages ("compliance.rules").
func Validate(rules []Rule, where string) error {
	var errs []error
	if len(rules) > MaxRules {
		errs = append(errs, fmt.Errorf("%s: %d rules, at most %d", where, len(rules), MaxRules))
	}
	names := map[string]bool{}
	for i, r := range rules {
		at := fmt.Sprintf("%s[%d]", where, i)
		bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(at+": "+format, args...)) }
		if r.Enforce {
			bad("enforce: rules that enforce are attest.policies in the config file; these only report")
		}
		n := r.name(i)
		if len(n) > maxNameLen || strings.ContainsFunc(n, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			bad("name: at most %d printable characters", maxNameLen)
		} else if names[n] {
			bad("name %q twice", n)
		}
		names[n] = true
		if len(r.Repositories) == 0 {
			bad("no repositories")
		}
		for _, lst := range []struct {
			what string
			l    []string
		}{{"repositories", r.Repositories}, {"requiredAttestations", r.RequiredAttestations}, {"lifecycle", r.Lifecycle}, {"parityMirrors", r.ParityMirrors}} {
			limit := maxListPerRule
			if lst.what == "repositories" {
				limit = maxPatternsPerRule
			}
			if len(lst.l) > limit {
				bad("%s: %d entries, at most %d", lst.what, len(lst.l), limit)
			}
			for _, v := range lst.l {
				if strings.TrimSpace(v) == "" || len(v) > 512 {
					bad("%s: an empty or overlong entry", lst.what)
				}
			}
		}
		for _, p := range r.Repositories {
			if err := repopattern.Check(p); err != nil {
				bad("repository pattern %q: %v", p, err)
			}
		}
		for _, s := range r.Lifecycle {
			if !slices.Contains(lifecycleStates, s) {
				bad("lifecycle %q: want one of %s", s, strings.Join(lifecycleStates, ", "))
			}
		}
		if !r.RequireSignature && len(r.RequiredAttestations) == 0 && r.MaxAge == 0 && len(r.Lifecycle) == 0 && len(r.ParityMirrors) == 0 {
			bad("requires nothing")
		}
	}
	return errors.Join(errs...)
}

func (r *Rule) name(i int) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("rules[%d]", i)
}

func (r *Rule) matches(repo string) bool {
	for _, p := range r.Repositories {
		if repopattern.Match(p, repo) {
			return true
		}
	}
	return false
}

// Rules is the rule set in force: the enforced rules (attest.policies,
// first match wins, as the pull gate reads them) and the report-only ones
// (every match applies).
type Rules struct {
	Enforced []Rule
	Report   []Rule
}

// For returns the rules that apply to repo, the enforced one first.
func (rs *Rules) For(repo string) []Rule {
	var out []Rule
	for _, r := range rs.Enforced {
		if r.matches(repo) {
			out = append(out, r)
			break
		}
	}
	for _, r := range rs.Report {
		if r.matches(repo) {
			out = append(out, r)
		}
	}
	return out
}

// mirrors are the mirror names the rules ask parity on.
func (rs *Rules) mirrors() []string {
	var out []string
	for _, r := range slices.Concat(rs.Enforced, rs.Report) {
		for _, m := range r.ParityMirrors {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

func (rs *Rules) hasAge() bool {
	for _, r := range slices.Concat(rs.Enforced, rs.Report) {
		if r.MaxAge > 0 {
			return true
		}
	}
	return false
}

// named gives every rule its name, so findings and the API show them.
func named(rules []Rule) []Rule {
	out := slices.Clone(rules)
	for i := range out {
		out[i].Name = out[i].name(i)
	}
	return out
}
