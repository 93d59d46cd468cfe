package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Parity statuses of one version.
const (
	InSync              = "in_sync"
	OutOfSync           = "out_of_sync" // the copy's digest differs
	Missing             = "missing"     // not on the copy side
	Extra               = "extra"       // only on the copy side
	ReferrersIncomplete = "referrers_incomplete"
)

// ValidParityStatus reports whether s is one of the statuses above: the
// filters the API and the CLI take.
func ValidParityStatus(s string) bool {
	switch s {
	case InSync, OutOfSync, Missing, Extra, ReferrersIncomplete:
		return true
	}
	return false
}

// ParityStatusWanted names the statuses, for a refusal of another.
const ParityStatusWanted = "want in_sync, out_of_sync, missing, extra or referrers_incomplete"

// ParityEntry is one version's verdict as the API shows it.
type ParityEntry struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Status        string `json:"status"`
	PrimaryDigest string `json:"primaryDigest,omitempty"`
	MirrorDigest  string `json:"mirrorDigest,omitempty"`
	Detail        string `json:"detail,omitempty"`
}

// ParityReport is one parity check of a remote.
type ParityReport struct {
	ID       int64          `json:"id"`
	Remote   string         `json:"remote"`
	Name     string         `json:"name"`
	Kind     string         `json:"kind"`
	InParity bool           `json:"inParity"`
	Counts   map[string]int `json:"counts"`
	Started  time.Time      `json:"startedAt"`
	Finished time.Time      `json:"finishedAt"`
	Entries  []ParityEntry  `json:"entries"`
}

// Parity compares a remote with its primary side and stores the result:
// for a mirror this registry is the primary, for an upstream the remote
// is. A remote that cannot be read fails the check; it is not reported
// as missing everything.
func (s *Service) Parity(ctx context.Context, kind, id string) (*ParityReport, error) {
	r, err := s.loadKind(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	started := s.now()
	entries, err := s.compare(ctx, r)
	if err != nil {
		return nil, err
	}
	rep := &ParityReport{Remote: id, Name: r.set.Name, Kind: r.rec.Kind, Counts: map[string]int{},
		Started: started, Finished: s.now(), Entries: entries, InParity: true}
	recs := make([]storage.ParityEntry, len(entries))
	for i, e := range entries {
		rep.Counts[e.Status]++
		rep.InParity = rep.InParity && e.Status == InSync
		recs[i] = storage.ParityEntry{Name: e.Name, Version: e.Version, Status: e.Status,
			PrimaryDigest: digest.Digest(e.PrimaryDigest), MirrorDigest: digest.Digest(e.MirrorDigest), Detail: e.Detail}
	}
	counts, _ := json.Marshal(rep.Counts)
	check := &storage.ParityCheck{MirrorID: id, InParity: rep.InParity, Counts: string(counts), Started: rep.Started, Finished: rep.Finished}
	if err := s.store.PutParityCheck(ctx, check, recs); err != nil {
		return nil, err
	}
	rep.ID = check.ID
	s.log.Info("mirror: parity checked", "remote", r.set.Name, "check", check.ID, "in_parity", rep.InParity, "counts", string(counts))
	return rep, nil
}

// compare builds the entries of one check, by name and version.
func (s *Service) compare(ctx context.Context, r *remote) ([]ParityEntry, error) {
	rm, err := s.remoteOf(r.set)
	if err != nil {
		return nil, err
	}
	f, n := r.set.filter(), names{r.set.Prefix}
	var (
		primary, copies Source
		all             []Version
	)
	if r.set.Kind == storage.MirrorPush {
		primary, copies = NewLocal(s.local, ""), rm
		all, err = s.localVersions(ctx, f, nil)
	} else {
		primary, copies = rm, NewLocal(s.local, "")
		all, err = remoteVersions(ctx, rm, f, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("listing the primary's versions: %w", err)
	}
	// discover is the engine's: the same referrers a sync copies.
	eng := NewEngine(primary, nil, EngineOptions{Retry: s.retry, Logger: s.log})
	var (
		mu      sync.Mutex
		entries []ParityEntry
		failed  error
		wg      sync.WaitGroup
		slots   = make(chan struct{}, r.set.Concurrency)
	)
	for _, v := range all {
		if !f.State(v.Status) {
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			e, err := s.compareVersion(ctx, eng, primary, copies, rm, v, n.there(v.Name))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = errors.Join(failed, err)
				return
			}
			entries = append(entries, e)
		}()
	}
	wg.Wait()
	if failed != nil {
		return nil, failed
	}
	extra, err := s.extras(ctx, copies, f, n, all)
	if err != nil {
		return nil, err
	}
	entries = append(entries, extra...)
	slices.SortFunc(entries, func(a, b ParityEntry) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
	return entries, nil
}

// compareVersion judges one version: digest first, then the referrers.
func (s *Service) compareVersion(ctx context.Context, eng *Engine, primary, copies Source, rm *Remote, v Version, copyName string) (ParityEntry, error) {
	e := ParityEntry{Name: v.Name, Version: v.Version}
	pd := v.Digest
	if pd == "" {
		desc, err := resolveRetry(ctx, eng, primary, v.Name, v.Version)
		if err != nil {
			return e, fmt.Errorf("%s:%s on the primary: %w", v.Name, v.Version, err)
		}
		pd = digest.Digest(desc.Digest)
	}
	e.PrimaryDigest = pd.String()
	md, err := s.copyDigest(ctx, eng, copies, rm, copyName, v.Version)
	if errors.Is(err, ErrNotFound) {
		e.Status = Missing
		return e, nil
	}
	if err != nil {
		return e, fmt.Errorf("%s:%s on the copy side: %w", copyName, v.Version, err)
	}
	e.MirrorDigest = md.String()
	if md != pd {
		e.Status, e.Detail = OutOfSync, "the versions point at different manifests"
		return e, nil
	}
	want, err := referrerSet(ctx, eng, primary, v.Name, pd)
	if err != nil {
		return e, err
	}
	have, err := referrerSet(ctx, eng, copies, copyName, pd)
	if err != nil {
		return e, err
	}
	var lacking []string
	for d := range want {
		if !have[d] {
			lacking = append(lacking, d.String())
		}
	}
	if len(lacking) > 0 {
		slices.Sort(lacking)
		e.Status, e.Detail = ReferrersIncomplete, "the copy lacks referrers "+strings.Join(lacking, ", ")
		return e, nil
	}
	e.Status = InSync
	return e, nil
}

func resolveRetry(ctx context.Context, eng *Engine, side Source, repo, ref string) (oci.Descriptor, error) {
	var d oci.Descriptor
	err := eng.retry.do(ctx, func() (err error) {
		d, err = side.Resolve(ctx, repo, ref)
		return err
	})
	return d, err
}

// copyDigest is the digest of a version on the copy side. A packreg that
// refuses to serve it (archived there) is asked through its pack API.
func (s *Service) copyDigest(ctx context.Context, eng *Engine, copies Source, rm *Remote, name, version string) (digest.Digest, error) {
	desc, err := resolveRetry(ctx, eng, copies, name, version)
	if err == nil || !errors.Is(err, ErrDenied) || copies != Source(rm) {
		return digest.Digest(desc.Digest), err
	}
	vs, perr := rm.PackVersions(ctx, name)
	if perr != nil {
		return "", err
	}
	for _, v := range vs {
		if v.Version == version && v.Digest != "" {
			return v.Digest, nil
		}
	}
	return "", err
}

// referrerSet is every referrer of subject on one side, by subject and by
// cosign tag.
func referrerSet(ctx context.Context, eng *Engine, side Source, repo string, subject digest.Digest) (map[digest.Digest]bool, error) {
	refs, tagged, err := eng.discover(ctx, side, repo, subject)
	if err != nil {
		return nil, err
	}
	set := map[digest.Digest]bool{}
	for _, r := range refs {
		set[digest.Digest(r.Digest)] = true
	}
	for _, d := range tagged {
		set[digest.Digest(d.Digest)] = true
	}
	return set, nil
}

// extras lists versions only the copy side has, among the names and
// versions the remote covers. Versions the primary has in any state are
// not extra: an archived version stays on its mirrors.
func (s *Service) extras(ctx context.Context, copies Source, f *Filter, n names, primary []Version) ([]ParityEntry, error) {
	cat, ok := copies.(cataloged)
	if !ok {
		return nil, nil
	}
	known := map[string]bool{}
	for _, v := range primary {
		known[v.Name+":"+v.Version] = true
	}
	repos, err := cat.Repositories(ctx)
	if err != nil {
		if errors.Is(err, ErrDenied) || errors.Is(err, ErrNotFound) {
			return nil, nil // no catalog for us there: extras cannot be known
		}
		return nil, fmt.Errorf("catalog of the copy side: %w", err)
	}
	var out []ParityEntry
	for _, repo := range repos {
		name, ok := n.back(repo)
		if !ok || !f.Name(name) {
			continue
		}
		tags, err := cat.Tags(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("tags of %s on the copy side: %w", repo, err)
		}
		for _, t := range tags {
			if f.Version(t) && !known[name+":"+t] {
				out = append(out, ParityEntry{Name: name, Version: t, Status: Extra, Detail: "only on the copy side, as " + repo + ":" + t})
			}
		}
	}
	return out, nil
}

// LatestParity returns the newest stored check of a remote, its entries
// filtered by status ("" for all).
func (s *Service) LatestParity(ctx context.Context, kind, id, status string) (*ParityReport, error) {
	r, err := s.loadKind(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	checks, err := s.store.ListParityChecks(ctx, id, 0, 1)
	if err != nil {
		return nil, err
	}
	if len(checks) == 0 {
		return nil, fmt.Errorf("no parity check of %s yet: %w", r.set.Name, storage.ErrNotFound)
	}
	return s.report(ctx, r, checks[0], status)
}

// ParityCheck returns one stored check.
func (s *Service) ParityCheck(ctx context.Context, check int64, status string) (*ParityReport, error) {
	c, err := s.store.GetParityCheck(ctx, check)
	if err != nil {
		return nil, err
	}
	r, err := s.load(ctx, c.MirrorID)
	if err != nil {
		return nil, err
	}
	return s.report(ctx, r, c, status)
}

// ParityHistory lists the checks of a remote, newest first, without entries.
func (s *Service) ParityHistory(ctx context.Context, id string, before int64, n int) ([]ParityReport, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	checks, err := s.store.ListParityChecks(ctx, id, before, n)
	if err != nil {
		return nil, err
	}
	out := make([]ParityReport, len(checks))
	for i, c := range checks {
		out[i] = reportOf(r, c)
	}
	return out, nil
}

func reportOf(r *remote, c *storage.ParityCheck) ParityReport {
	rep := ParityReport{ID: c.ID, Remote: c.MirrorID, Name: r.set.Name, Kind: r.rec.Kind, InParity: c.InParity,
		Counts: map[string]int{}, Started: c.Started, Finished: c.Finished}
	_ = json.Unmarshal([]byte(c.Counts), &rep.Counts)
	return rep
}

func (s *Service) report(ctx context.Context, r *remote, c *storage.ParityCheck, status string) (*ParityReport, error) {
	rep := reportOf(r, c)
	recs, err := s.store.ParityEntries(ctx, c.ID, status)
	if err != nil {
		return nil, err
	}
	rep.Entries = make([]ParityEntry, len(recs))
	for i, e := range recs {
		rep.Entries[i] = ParityEntry{Name: e.Name, Version: e.Version, Status: e.Status,
			PrimaryDigest: e.PrimaryDigest.String(), MirrorDigest: e.MirrorDigest.String(), Detail: e.Detail}
	}
	return &rep, nil
}
