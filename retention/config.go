package retention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/internal/repopattern"
)

// Config is the `retention:` section of the server's config.
type Config struct {
	// Schedule is how often the worker applies the rules (0: never; runs
	// are then asked for through the API or `packreg retention`).
	Schedule time.Duration `yaml:"schedule"`
	// Rules, in order: a pack is governed by the first rule one of whose
	// patterns matches its name, and by no other.
	Rules []Rule `yaml:"rules"`
}

// Rule is what happens to the versions of the packs it covers. Every
// part is optional; a rule with none only shields its packs from the
// rules after it.
type Rule struct {
	// Repositories are repository patterns (repopattern): "acme/*",
	// "acme/**", "**".
	Repositories []string `yaml:"repositories"`
	// KeepActive keeps the N newest active versions (semver order)
	// whatever their age; the older active ones get KeepActiveAction.
	KeepActive *int `yaml:"keep_active,omitempty"`
	// KeepActiveAction is "deprecate" (default) or "archive".
	KeepActiveAction string `yaml:"keep_active_action,omitempty"`
	// DeprecateAfter deprecates active versions at least this old (since
	// they were first published).
	DeprecateAfter *time.Duration `yaml:"deprecate_after,omitempty"`
	// ArchiveAfter archives active and deprecated versions at least this
	// old.
	ArchiveAfter *time.Duration `yaml:"archive_after,omitempty"`
	// DeleteArchivedAfter deletes (their tag) versions archived at least
	// this long ago.
	DeleteArchivedAfter *time.Duration `yaml:"delete_archived_after,omitempty"`
	// Force lets DeleteArchivedAfter delete a version that is signed and
	// verified; without it such a version is kept.
	Force bool `yaml:"force,omitempty"`
}

// Validate says what is wrong with the rules, naming the rule.
func (c Config) Validate() error {
	if c.Schedule < 0 {
		return fmt.Errorf("retention.schedule: 0 (off) or positive, got %s", c.Schedule)
	}
	for i, r := range c.Rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("retention.rules[%d]: %w", i, err)
		}
	}
	return nil
}

func (r Rule) validate() error {
	if len(r.Repositories) == 0 {
		return errors.New("repositories: at least one pattern")
	}
	for _, p := range r.Repositories {
		if err := repopattern.Check(p); err != nil {
			return fmt.Errorf("repositories: pattern %q: %v", p, err)
		}
	}
	if r.KeepActive != nil && *r.KeepActive < 0 {
		return fmt.Errorf("keep_active: 0 or more, got %d", *r.KeepActive)
	}
	switch r.KeepActiveAction {
	case "", ActionDeprecate, ActionArchive:
	default:
		return fmt.Errorf("keep_active_action %q: want deprecate or archive", r.KeepActiveAction)
	}
	if r.KeepActiveAction != "" && r.KeepActive == nil {
		return errors.New("keep_active_action needs keep_active")
	}
	for _, d := range r.durations() {
		if d.d != nil && *d.d <= 0 {
			return fmt.Errorf("%s: a positive duration like \"720h\", got %s", d.key, *d.d)
		}
	}
	if r.Force && r.DeleteArchivedAfter == nil {
		return errors.New("force applies to delete_archived_after, which is not set")
	}
	return nil
}

// covers reports whether the rule governs repository name.
func (r Rule) covers(name string) bool {
	for _, p := range r.Repositories {
		if repopattern.Match(p, name) {
			return true
		}
	}
	return false
}

// RuleFor is the index of the rule governing name, -1 for none.
func (c Config) RuleFor(name string) int {
	for i, r := range c.Rules {
		if r.covers(name) {
			return i
		}
	}
	return -1
}

// Settings are the config as the audit trail records it when it changes
// (a "config" record of section retention.rules): changed rules are
// changes of what the server deletes.
func (c Config) Settings() map[string]string {
	out := map[string]string{"count": strconv.Itoa(len(c.Rules)), "schedule": c.Schedule.String()}
	for i, r := range c.Rules {
		out[fmt.Sprintf("rules[%d]", i)] = r.String()
	}
	return out
}

// String is the rule in its config keys, the unset ones left out.
func (r Rule) String() string {
	parts := []string{"repositories=" + strings.Join(r.Repositories, ",")}
	if r.KeepActive != nil {
		parts = append(parts, fmt.Sprintf("keep_active=%d", *r.KeepActive))
	}
	if r.KeepActiveAction != "" {
		parts = append(parts, "keep_active_action="+r.KeepActiveAction)
	}
	for _, d := range r.durations() {
		if d.d != nil {
			parts = append(parts, d.key+"="+d.d.String())
		}
	}
	if r.Force {
		parts = append(parts, "force=true")
	}
	return strings.Join(parts, " ")
}

type keyedDuration struct {
	key string
	d   *time.Duration
}

// durations are the rule's durations by config key.
func (r Rule) durations() []keyedDuration {
	return []keyedDuration{{"deprecate_after", r.DeprecateAfter}, {"archive_after", r.ArchiveAfter},
		{"delete_archived_after", r.DeleteArchivedAfter}}
}
