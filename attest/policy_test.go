package attest_test

import (
	"maps"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
)

// The settings the audit trail compares between starts (config.change on
// attest.policies) change with every key that loosens or tightens the
// policy, the caps per subject included, and only with those: a cap set
// to its default is the default.
func TestSettingsChangeWithEveryPolicyKey(t *testing.T) {
	base := attest.Config{Policies: []attest.Policy{{Repositories: []string{"acme/**"}, RequireSignature: true, SigningWindow: time.Minute}}}
	for _, c := range []struct {
		name    string
		edit    func(*attest.Config)
		changed bool
	}{
		{"max_records_per_subject", func(c *attest.Config) { c.MaxRecordsPerSubject = 5000 }, true},
		{"max_referrers_per_subject", func(c *attest.Config) { c.MaxReferrersPerSubject = 4 }, true},
		{"signing_window", func(c *attest.Config) { c.Policies[0].SigningWindow = time.Hour }, true},
		{"require_signature", func(c *attest.Config) { c.Policies[0].RequireSignature = false }, true},
		{"caps set to their defaults", func(c *attest.Config) {
			c.MaxRecordsPerSubject, c.MaxReferrersPerSubject = attest.DefaultMaxRecordsPerSubject, attest.DefaultMaxReferrersPerSubject
		}, false},
		{"queue_size (a batch size, no policy)", func(c *attest.Config) { c.QueueSize = 7 }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			edited := base
			edited.Policies = []attest.Policy{base.Policies[0]}
			c.edit(&edited)
			if got := !maps.Equal(base.Settings(), edited.Settings()); got != c.changed {
				t.Fatalf("settings changed: %v, want %v\nbefore %v\nafter  %v", got, c.changed, base.Settings(), edited.Settings())
			}
		})
	}
}
