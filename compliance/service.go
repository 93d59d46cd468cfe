package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Store is what compliance reads and writes: its own records, and the
// pack index, mirrors and parity checks the other packages keep.
type Store interface {
	storage.Compliance
	storage.Outbox
	storage.Leases
	ListPackVersions(ctx context.Context, q storage.PackQuery) ([]storage.PackVersion, error)
	ListMirrors(ctx context.Context, kind string) ([]*storage.Mirror, error)
	ListParityChecks(ctx context.Context, mirrorID string, before int64, n int) ([]*storage.ParityCheck, error)
	ParityEntries(ctx context.Context, checkID int64, status string) ([]storage.ParityEntry, error)
	// BadBlobs are the blobs a scrub found bad: a version holding one
	// fails the built-in integrity finding.
	BadBlobs(ctx context.Context) (map[digest.Digest]string, error)
	// GetManifest gives a version's references (its config) while some
	// blob is bad.
	GetManifest(ctx context.Context, repo string, d digest.Digest) (*storage.Manifest, error)
}

// Config is the compliance section of the serve config.
type Config struct {
	// Rules are the report-only rules, until rules are put through the
	// API (which then take precedence, and survive restarts).
	Rules []Rule `yaml:"rules"`
	// ReevaluateEvery is how often every version is evaluated again
	// without an event: for age rules as time passes, and parity checks.
	ReevaluateEvery time.Duration `yaml:"reevaluate_every"`
	// SnapshotEvery is the step of the kept history: the counts are
	// snapshot once per step (the latest of a step replaces the earlier).
	SnapshotEvery time.Duration `yaml:"snapshot_every"`
}

// Defaults of Config.
const (
	DefaultReevaluateEvery = 5 * time.Minute
	DefaultSnapshotEvery   = time.Hour
)

// Validate reports every problem of the section at once.
func (c *Config) Validate() error {
	errs := []error{Validate(c.Rules, "compliance.rules")}
	if c.ReevaluateEvery < 0 {
		errs = append(errs, errors.New("compliance.reevaluate_every must be >= 0"))
	}
	if c.SnapshotEvery < 0 {
		errs = append(errs, errors.New("compliance.snapshot_every must be >= 0"))
	}
	return errors.Join(errs...)
}

func (c *Config) reevaluateEvery() time.Duration {
	if c.ReevaluateEvery > 0 {
		return c.ReevaluateEvery
	}
	return DefaultReevaluateEvery
}

func (c *Config) snapshotEvery() time.Duration {
	if c.SnapshotEvery > 0 {
		return c.SnapshotEvery
	}
	return DefaultSnapshotEvery
}

// Service evaluates the rules (Run) and answers from what it stored.
type Service struct {
	st       Store
	ver      Verifier
	cfg      Config
	enforced []Rule
	log      *slog.Logger
	now      func() time.Time
	// after is the outbox consumer whose work must be done before an
	// event is evaluated (attest's: its signature records).
	after string

	wakeup   chan struct{}
	settle   storage.Settler  // spaces steps started by wake-ups (settleTime)
	progress storage.Progress // Signal when the worker acknowledged events (Wait)
	// Worker state, touched by Run's goroutine only.
	lastFull   time.Time
	paritySeen map[string]int64
	deferred   time.Time
	// bad is the scrub's bad blobs as this pass read them.
	bad map[digest.Digest]string
}

// Option configures a Service.
type Option func(*Service)

// WithEnforced sets the rules read from attest.policies (Enforce true).
func WithEnforced(rules []Rule) Option { return func(s *Service) { s.enforced = rules } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock replaces time.Now (tests of age rules).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// After makes the worker wait for consumer's queue of the outbox to be
// empty before it evaluates what events changed (MaxDefer at most).
func After(consumer string) Option { return func(s *Service) { s.after = consumer } }

// New returns a Service over st, reading verdicts through ver.
func New(st Store, ver Verifier, cfg Config, opts ...Option) *Service {
	s := &Service{st: st, ver: ver, cfg: cfg, log: slog.Default(), now: time.Now,
		wakeup: make(chan struct{}, 1), settle: storage.Settler{Window: settleTime}, paritySeen: map[string]int64{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ActionRules is the outbox event (and audit record) of a rules change.
const ActionRules = "compliance.rules"

// rulesDoc is the stored document of rules put through the API.
type rulesDoc struct {
	Rules []Rule `json:"rules"`
}

// RuleSet is the rules in force and where the report-only ones come from.
type RuleSet struct {
	Enforced []Rule `json:"enforced"`
	Rules    []Rule `json:"rules"`
	// Source is "config" (compliance.rules of the config file) or "api".
	Source  string     `json:"source"`
	Updated *time.Time `json:"updated,omitempty"`
}

// Rules returns the rule set in force.
func (s *Service) Rules(ctx context.Context) (*RuleSet, error) {
	rs := &RuleSet{Enforced: nonNilRules(s.enforced), Rules: nonNilRules(named(s.cfg.Rules)), Source: "config"}
	doc, updated, err := s.st.ComplianceRules(ctx)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return rs, nil
	case err != nil:
		return nil, err
	}
	var d rulesDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("compliance: stored rules: %w", err)
	}
	rs.Rules, rs.Source, rs.Updated = nonNilRules(named(d.Rules)), "api", &updated
	return rs, nil
}

func nonNilRules(r []Rule) []Rule {
	if r == nil {
		return []Rule{}
	}
	return r
}

// PutRules replaces the report-only rules; the worker evaluates every
// version again, and the audit trail records the change.
func (s *Service) PutRules(ctx context.Context, rules []Rule) (*RuleSet, error) {
	if err := Validate(rules, "rules"); err != nil {
		return nil, err
	}
	b, err := json.Marshal(rulesDoc{Rules: named(rules)})
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	ev := storage.Event{At: now, Actor: registry.ActorFrom(ctx), Action: ActionRules, Target: "compliance.rules",
		Details: map[string]string{"count": strconv.Itoa(len(rules)), "digest": string(digest.FromBytes(digest.SHA256, b))}}
	if err := s.st.PutComplianceRules(ctx, string(b), now, ev); err != nil {
		return nil, err
	}
	return s.Rules(ctx)
}

// ruleSet is the rules the worker evaluates by.
func (s *Service) ruleSet(ctx context.Context) (*Rules, error) {
	rs, err := s.Rules(ctx)
	if err != nil {
		return nil, err
	}
	return &Rules{Enforced: rs.Enforced, Report: rs.Rules}, nil
}

// Settings are the config's rules as the audit trail records a change of
// them between starts (config.change on compliance.rules).
func (c Config) Settings() map[string]string {
	out := map[string]string{"count": strconv.Itoa(len(c.Rules)),
		"reevaluate_every": c.reevaluateEvery().String(), "snapshot_every": c.snapshotEvery().String()}
	for i, r := range named(c.Rules) {
		b, err := json.Marshal(r)
		if err != nil {
			panic(err) // strings, bools, durations and lists of strings always marshal
		}
		out[fmt.Sprintf("rules[%d]", i)] = string(b)
	}
	return out
}
