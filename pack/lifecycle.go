package pack

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/semver"
	"github.com/packreg/packreg/storage"
)

const maxReasonLen = 1024

// Transition reports whether a version may move from one state to another:
// active ↔ deprecated, active or deprecated → archived, and archived →
// active only when forced. Staying in the same state is not a transition,
// and deleted is no state one asks for or leaves through the API.
func Transition(from, to string, force bool) bool {
	switch {
	case from == to, from == storage.PackDeleted, to == storage.PackDeleted:
		return false
	case to == storage.PackArchived:
		return from == storage.PackActive || from == storage.PackDeprecated
	case from == storage.PackArchived:
		return to == storage.PackActive && force
	}
	return (from == storage.PackActive && to == storage.PackDeprecated) ||
		(from == storage.PackDeprecated && to == storage.PackActive)
}

func validState(s string) bool {
	return s == storage.PackActive || s == storage.PackDeprecated || s == storage.PackArchived
}

func (r *LifecycleRequest) check() error {
	if !validState(r.State) {
		return apierr.New(http.StatusBadRequest, apierr.BadRequest, "state %q: want active, deprecated or archived", apierr.Clip(r.State))
	}
	if len(r.Reason) > maxReasonLen {
		return apierr.New(http.StatusBadRequest, apierr.BadRequest, "reason is longer than %d bytes", maxReasonLen)
	}
	return nil
}

func transitionError(v *storage.PackVersion, r LifecycleRequest) *apierr.Error {
	msg := "cannot move pack %s:%s from %s to %s"
	switch {
	case v.Status == storage.PackArchived && r.State == storage.PackActive:
		msg += ` without "force": true`
	case v.Status == storage.PackDeleted:
		msg += `: its tag or manifest was deleted; push the same content again to bring it back`
	}
	return apierr.New(http.StatusConflict, apierr.TransitionInvalid, msg, v.Name, v.Version, v.Status, r.State).
		WithDetails(map[string]string{"version": v.Version, "from": v.Status, "to": r.State})
}

// SetLifecycle moves one version (version != "") or every version of a pack
// (version == "") to r.State, all or nothing. For a whole pack, versions
// already in that state and deleted versions are left alone, and if any
// other version cannot make the transition nothing changes (409). A
// deleted version changes state only by a push of its content. Each
// change gets a history entry and an audit record in the same transaction.
func (s *Service) SetLifecycle(ctx context.Context, name, version string, r LifecycleRequest) ([]Version, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	var targets []storage.PackVersion
	if version != "" {
		v, err := s.getVersion(ctx, name, version)
		if err != nil {
			return nil, err
		}
		if !Transition(v.Status, r.State, r.Force) {
			return nil, transitionError(v, r)
		}
		targets = []storage.PackVersion{*v}
	} else {
		all, err := s.packVersions(ctx, name)
		if err != nil {
			return nil, err
		}
		var refused []map[string]string
		for i := range all {
			v := &all[i]
			switch {
			case v.Status == r.State, v.Status == storage.PackDeleted:
			case Transition(v.Status, r.State, r.Force):
				targets = append(targets, *v)
			default:
				refused = append(refused, transitionError(v, r).Details.(map[string]string))
			}
		}
		if len(refused) > 0 {
			return nil, apierr.New(http.StatusConflict, apierr.TransitionInvalid,
				"cannot move %d version(s) of pack %s to %s; nothing was changed", len(refused), name, r.State).
				WithDetails(map[string]any{"refused": refused})
		}
	}
	actor := registry.ActorFrom(ctx)
	at := s.now()
	changes := make([]storage.PackStatusChange, len(targets))
	recs := make([]*storage.AuditRecord, len(targets))
	for i, v := range targets {
		changes[i] = storage.PackStatusChange{Name: v.Name, Version: v.Version, From: v.Status, To: r.State,
			Reason: r.Reason, Actor: actor, At: at}
		details := map[string]string{"from": v.Status, "to": r.State, "reason": r.Reason}
		if r.Force {
			details["force"] = "true"
		}
		recs[i] = &storage.AuditRecord{At: at, Actor: actor, Action: ActionLifecycle,
			Target: v.Name + ":" + v.Version, Digest: v.Digest, Details: details}
	}
	if len(changes) > 0 {
		err := s.store.ChangePackStatus(ctx, changes, recs)
		if errors.Is(err, storage.ErrConflict) {
			return nil, apierr.New(http.StatusConflict, apierr.Conflict,
				"pack %s changed state concurrently; read it again and retry", name)
		}
		if err != nil {
			return nil, err
		}
	}
	if version != "" {
		v, err := s.getVersion(ctx, name, version)
		if err != nil {
			return nil, err
		}
		return []Version{versionOf(v)}, nil
	}
	return s.sortedVersions(ctx, name)
}

// History returns the lifecycle history of a version, or of every version
// of a pack when version is "".
func (s *Service) History(ctx context.Context, name, version string) (*Lifecycle, error) {
	if version != "" {
		if _, err := s.getVersion(ctx, name, version); err != nil {
			return nil, err
		}
	}
	hist, err := s.store.PackLifecycle(ctx, name, version)
	if err != nil {
		return nil, err
	}
	if version == "" && len(hist) == 0 {
		return nil, notFoundPack(name)
	}
	out := &Lifecycle{Name: name, Version: version, History: make([]LifecycleEntry, len(hist))}
	for i, h := range hist {
		out.History[i] = LifecycleEntry{Version: h.Version, From: h.From, To: h.To, Reason: h.Reason, Actor: h.Actor, At: h.At}
	}
	return out, nil
}

// packVersions returns every version of a pack, 404 when it has none.
func (s *Service) packVersions(ctx context.Context, name string) ([]storage.PackVersion, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	all, err := s.store.ListPackVersions(ctx, storage.PackQuery{Name: name})
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, notFoundPack(name)
	}
	return all, nil
}

// sortedVersions is every version of a pack in semver order.
func (s *Service) sortedVersions(ctx context.Context, name string) ([]Version, error) {
	all, err := s.packVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b storage.PackVersion) int { return compareVersions(a.Version, b.Version) })
	out := make([]Version, len(all))
	for i := range all {
		out[i] = versionOf(&all[i])
	}
	return out, nil
}

// compareVersions orders by semver precedence. The index only records
// valid versions; bytes order anything else rather than fail a listing.
func compareVersions(a, b string) int {
	va, errA := semver.Parse(a)
	vb, errB := semver.Parse(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}
