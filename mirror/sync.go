package mirror

import (
	"context"
	"fmt"

	"github.com/packreg/packreg/storage"
)

// maxRunErrors caps the errors kept with a run: enough to see what is
// wrong, bounded when a whole remote is down.
const maxRunErrors = 50

// sync carries out one sync of r: push to a mirror, pull from an
// upstream. It returns what went wrong, if anything; what went right is
// in counts.
func (s *Service) sync(ctx context.Context, r *remote, scope Scope, counts *Counts) []string {
	rm, err := s.remoteOf(r.set)
	if err != nil {
		return []string{err.Error()}
	}
	f, n := r.set.filter(), names{r.set.Prefix}
	actor := r.set.Kind + ":" + r.set.Name
	var (
		src  Source
		dst  Sink
		all  []Version // covered names and versions, every state
		errs []string
	)
	if r.set.Kind == storage.MirrorPush {
		src, dst = NewLocal(s.local, actor), rm
		all, err = s.localVersions(ctx, f, scope.Packs)
	} else {
		src, dst = rm, NewLocal(s.local, actor)
		var only []string
		for _, p := range scope.Packs {
			if name, ok := n.back(p); ok {
				only = append(only, name)
			}
		}
		all, err = remoteVersions(ctx, rm, f, only)
	}
	if err != nil {
		return []string{fmt.Sprintf("listing versions: %v", err)}
	}
	var jobs []Job
	for _, v := range all {
		if f.State(v.Status) {
			jobs = append(jobs, Job{SrcRepo: v.Name, DstRepo: n.there(v.Name), Ref: v.Version})
		}
	}
	eng := NewEngine(src, dst, EngineOptions{Concurrency: r.set.Concurrency, Retry: s.retry, Logger: s.log, Counts: counts})
	for _, res := range eng.Run(ctx, jobs, nil) {
		if res.Err != nil && len(errs) < maxRunErrors {
			errs = append(errs, fmt.Sprintf("%s:%s: %v", res.SrcRepo, res.Ref, res.Err))
		}
	}
	if on(r.set.Lifecycle) && ctx.Err() == nil {
		for _, e := range s.carryLifecycle(ctx, r, rm, all, counts) {
			if len(errs) < maxRunErrors {
				errs = append(errs, e)
			}
		}
	}
	return errs
}

// carryLifecycle makes the lifecycle on the copy side follow the primary
// side for every covered version both have, archived ones included: an
// archived version is not copied, but its copy must be archived too.
func (s *Service) carryLifecycle(ctx context.Context, r *remote, rm *Remote, primary []Version, counts *Counts) []string {
	if r.set.Kind == storage.MirrorPull && (s.lifecycle == nil || s.index == nil) {
		return nil
	}
	is, err := rm.IsPackreg(ctx)
	if err != nil {
		return []string{fmt.Sprintf("lifecycle: %v", err)}
	}
	if !is {
		return nil // a plain registry keeps no lifecycle
	}
	n := names{r.set.Prefix}
	var errs []string
	for _, name := range packNames(primary) {
		copies, err := s.copyStates(ctx, r, rm, n.there(name))
		if err != nil {
			errs = append(errs, fmt.Sprintf("lifecycle of %s: %v", name, err))
			continue
		}
		for _, v := range primary {
			have, ok := copies[v.Version]
			if v.Name != name || !ok || v.Status == "" || have == v.Status ||
				// Deleted is no state one sets: it follows a delete, and a
				// sync never deletes on either side.
				v.Status == storage.PackDeleted || have == storage.PackDeleted {
				continue
			}
			reason := v.Reason
			if reason == "" {
				reason = "as on the primary"
			}
			for _, step := range LifecycleSteps(have, v.Status) {
				if r.set.Kind == storage.MirrorPush {
					err = rm.SetLifecycle(ctx, n.there(name), v.Version, step.State, reason, step.Force)
				} else {
					err = s.lifecycle.SetPackState(ctx, n.there(name), v.Version, step.State, reason)
				}
				if err != nil {
					errs = append(errs, fmt.Sprintf("lifecycle of %s:%s to %s: %v", name, v.Version, step.State, err))
					break
				}
				counts.lifecycleChanged.Add(1)
			}
		}
	}
	return errs
}

// copyStates returns version -> state of a pack on the copy side.
func (s *Service) copyStates(ctx context.Context, r *remote, rm *Remote, name string) (map[string]string, error) {
	out := map[string]string{}
	if r.set.Kind == storage.MirrorPush {
		vs, err := rm.PackVersions(ctx, name)
		for _, v := range vs {
			out[v.Version] = v.Status
		}
		return out, err
	}
	vs, err := s.index.ListPackVersions(ctx, storage.PackQuery{Name: name})
	for _, v := range vs {
		out[v.Version] = v.Status
	}
	return out, err
}

// LifecycleStep is one transition of the pack lifecycle.
type LifecycleStep struct {
	State string
	Force bool
}

// LifecycleSteps are the transitions from one state to another that the
// pack lifecycle allows: archived comes back only through a forced
// active. A copy follows its primary's state this way (a sync, an
// import).
func LifecycleSteps(from, to string) []LifecycleStep {
	if from == storage.PackArchived && to != storage.PackArchived {
		steps := []LifecycleStep{{storage.PackActive, true}}
		if to != storage.PackActive {
			steps = append(steps, LifecycleStep{to, false})
		}
		return steps
	}
	return []LifecycleStep{{to, false}}
}

// replicates reports whether a publication in repo must go to mirror r now.
func replicates(r *remote, repo string) bool {
	return r.set.Kind == storage.MirrorPush && on(r.set.OnPublish) && r.set.filter().Name(repo)
}
