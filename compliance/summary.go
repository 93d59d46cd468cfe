package compliance

import (
	"context"
	"encoding/json"
	"time"

	"github.com/packreg/packreg/internal/repopattern"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Summary is GET /api/v1/compliance/summary: the registry at a glance,
// added up from the stored findings (deleted versions left out).
type Summary struct {
	GeneratedAt         *time.Time       `json:"generatedAt"`
	Versions            int64            `json:"versions"`
	Compliant           int64            `json:"compliant"`
	Failing             int64            `json:"failing"`
	Verification        Verification     `json:"verification"`
	Attested            int64            `json:"attested"`
	AttestationCoverage map[string]int64 `json:"attestationCoverage"`
	Lifecycle           Lifecycle        `json:"lifecycle"`
	Mirrors             []MirrorParity   `json:"mirrors"`
}

// Verification counts versions by attest's verdict.
type Verification struct {
	Verified  int64 `json:"verified"`
	Unsigned  int64 `json:"unsigned"`
	Untrusted int64 `json:"untrusted"`
	Invalid   int64 `json:"invalid"`
}

// Lifecycle counts versions by state.
type Lifecycle struct {
	Active     int64 `json:"active"`
	Deprecated int64 `json:"deprecated"`
	Archived   int64 `json:"archived"`
}

// MirrorParity is a mirror's latest parity check.
type MirrorParity struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	InParity  bool            `json:"inParity"`
	CheckedAt *time.Time      `json:"checkedAt"`
	Counts    json.RawMessage `json:"counts"`
}

// Summary adds up the findings of the repositories matching pattern ("":
// all) that the caller may pull. It reads what the worker stored; it
// evaluates nothing.
func (s *Service) Summary(ctx context.Context, pattern string) (*Summary, error) {
	// Only what the caller may pull counts (with authentication on).
	match := func(name string) bool {
		return (pattern == "" || repopattern.Match(pattern, name)) && registry.MayPull(ctx, name)
	}
	tallies, err := s.st.ComplianceTallies(ctx)
	if err != nil {
		return nil, err
	}
	out := &Summary{AttestationCoverage: map[string]int64{}, Mirrors: []MirrorParity{}}
	var newest time.Time
	for _, t := range tallies {
		if !match(t.Name) {
			continue
		}
		out.add(t)
		if t.Evaluated.After(newest) {
			newest = t.Evaluated
		}
	}
	if !newest.IsZero() {
		out.GeneratedAt = &newest
	}
	cov, err := s.st.ComplianceCoverage(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cov {
		if match(c.Name) {
			out.AttestationCoverage[c.PredicateType] += c.Versions
		}
	}
	if out.Mirrors, err = s.mirrorParity(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

func (out *Summary) add(t storage.ComplianceTally) {
	n := t.Versions
	out.Versions += n
	if t.Compliant {
		out.Compliant += n
	} else {
		out.Failing += n
	}
	if t.Attested {
		out.Attested += n
	}
	switch t.Verification {
	case "verified":
		out.Verification.Verified += n
	case "untrusted":
		out.Verification.Untrusted += n
	case "invalid":
		out.Verification.Invalid += n
	default:
		out.Verification.Unsigned += n
	}
	switch t.Lifecycle {
	case storage.PackActive:
		out.Lifecycle.Active += n
	case storage.PackDeprecated:
		out.Lifecycle.Deprecated += n
	case storage.PackArchived:
		out.Lifecycle.Archived += n
	}
}

func (s *Service) mirrorParity(ctx context.Context) ([]MirrorParity, error) {
	ms, err := s.st.ListMirrors(ctx, storage.MirrorPush)
	if err != nil {
		return nil, err
	}
	out := []MirrorParity{}
	for _, m := range ms {
		mp := MirrorParity{ID: m.ID, Name: m.Name, Counts: json.RawMessage("{}")}
		checks, err := s.st.ListParityChecks(ctx, m.ID, 0, 1)
		if err != nil {
			return nil, err
		}
		if len(checks) > 0 {
			c := checks[0]
			mp.InParity = c.InParity
			if !c.Finished.IsZero() {
				mp.CheckedAt = &c.Finished
			}
			if json.Valid([]byte(c.Counts)) && c.Counts != "" {
				mp.Counts = json.RawMessage(c.Counts)
			}
		}
		out = append(out, mp)
	}
	return out, nil
}

// Counts is a snapshot's document: the summary's counts at one moment.
type Counts struct {
	At           time.Time    `json:"at"`
	Versions     int64        `json:"versions"`
	Compliant    int64        `json:"compliant"`
	Failing      int64        `json:"failing"`
	Attested     int64        `json:"attested"`
	Verification Verification `json:"verification"`
	Lifecycle    Lifecycle    `json:"lifecycle"`
}

// snapshot keeps the counts as they are now, in the snapshot of the
// current step (SnapshotEvery): the latest of a step stands for it.
func (s *Service) snapshot(ctx context.Context) error {
	tallies, err := s.st.ComplianceTallies(ctx)
	if err != nil {
		return err
	}
	var sum Summary
	for _, t := range tallies {
		sum.add(t)
	}
	at := s.now().UTC().Truncate(s.cfg.snapshotEvery())
	b, err := json.Marshal(Counts{At: at, Versions: sum.Versions, Compliant: sum.Compliant, Failing: sum.Failing,
		Attested: sum.Attested, Verification: sum.Verification, Lifecycle: sum.Lifecycle})
	if err != nil {
		return err
	}
	return s.st.PutComplianceSnapshot(ctx, storage.ComplianceSnapshot{At: at, Counts: string(b)})
}

// MaxHistory bounds the points of one history answer.
const MaxHistory = 1000

// History returns the snapshots from from to to, one per step at most
// (the latest of each step), oldest first.
func (s *Service) History(ctx context.Context, from, to time.Time, step time.Duration) ([]Counts, error) {
	snaps, err := s.st.ComplianceSnapshots(ctx, from, to, 0)
	if err != nil {
		return nil, err
	}
	out := []Counts{}
	for _, sn := range snaps {
		var c Counts
		if err := json.Unmarshal([]byte(sn.Counts), &c); err != nil {
			continue // a document of a newer release: not ours to read
		}
		c.At = sn.At
		if n := len(out); n > 0 && step > 0 && out[n-1].At.Truncate(step).Equal(c.At.Truncate(step)) {
			out[n-1] = c
			continue
		}
		out = append(out, c)
	}
	if len(out) > MaxHistory {
		out = out[len(out)-MaxHistory:]
	}
	return out, nil
}
