package retention

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/semver"
	"github.com/packreg/packreg/storage"
)

// Actions of a plan's items.
const (
	ActionKeep      = "keep"
	ActionDeprecate = "deprecate"
	ActionArchive   = "archive"
	ActionDelete    = "delete"
)

// Version is what a plan knows of one pack version.
type Version struct {
	Name    string
	Version string
	Digest  digest.Digest
	Status  string    // storage.PackActive, PackDeprecated or PackArchived
	Created time.Time // first published
	// ArchivedAt is when it was last archived (archived versions only;
	// zero when unknown, and then it is never deleted).
	ArchivedAt time.Time
}

// Item is one version of a plan: what the rules do to it and why, and,
// in a real run, what came of it.
type Item struct {
	Name    string        `json:"name"`
	Version string        `json:"version"`
	Digest  digest.Digest `json:"digest"`
	Status  string        `json:"status"` // before the run
	Action  string        `json:"action"`
	Reason  string        `json:"reason"`
	Rule    int           `json:"rule"` // index in retention.rules
	// Error is why a real run could not make the change.
	Error string `json:"error,omitempty"`
}

// VerifiedFunc answers whether version d of pack name is signed and verified
// (asked only of versions a rule without force would delete).
type VerifiedFunc func(ctx context.Context, name string, d digest.Digest) (bool, error)

// Plan is what the rules do to versions at now: one item per version a
// rule covers (deleted versions and those no rule covers are left out),
// ordered by pack name, then newest version first. Dry runs and real runs
// both come from it, so a dry run lists exactly what a real run at the
// same moment over the same versions does.
func Plan(ctx context.Context, c Config, now time.Time, versions []Version, verified VerifiedFunc) ([]Item, error) {
	byPack := map[string][]Version{}
	for _, v := range versions {
		if v.Status == storage.PackDeleted {
			continue
		}
		byPack[v.Name] = append(byPack[v.Name], v)
	}
	var out []Item
	for _, name := range slices.Sorted(maps.Keys(byPack)) {
		ri := c.RuleFor(name)
		if ri < 0 {
			continue
		}
		vs := byPack[name]
		slices.SortFunc(vs, func(a, b Version) int { return compareVersions(b.Version, a.Version) })
		items, err := planPack(ctx, c.Rules[ri], ri, now, vs, verified)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
	}
	return out, nil
}

// planPack plans the versions of one pack, newest first, under rule r.
func planPack(ctx context.Context, r Rule, ri int, now time.Time, vs []Version, verified VerifiedFunc) ([]Item, error) {
	out := make([]Item, 0, len(vs))
	activeRank := 0 // how many newer active semver versions came before
	for _, v := range vs {
		it := Item{Name: v.Name, Version: v.Version, Digest: v.Digest, Status: v.Status, Rule: ri}
		it.Action, it.Reason = ActionKeep, "no part of the rule applies"
		rank := -1
		if v.Status == storage.PackActive && semver.Valid(v.Version) {
			rank = activeRank
			activeRank++
		}
		if v.Status == storage.PackArchived {
			if err := planArchived(ctx, r, now, v, verified, &it); err != nil {
				return nil, err
			}
		} else {
			planLive(r, now, v, rank, &it)
		}
		out = append(out, it)
	}
	return out, nil
}

// planArchived: an archived version can only be deleted.
func planArchived(ctx context.Context, r Rule, now time.Time, v Version, verified VerifiedFunc, it *Item) error {
	d := r.DeleteArchivedAfter
	switch {
	case d == nil:
		it.Reason = "archived; the rule deletes no archived version"
		return nil
	case v.ArchivedAt.IsZero():
		it.Reason = "archived, but when is not recorded"
		return nil
	case now.Sub(v.ArchivedAt) < *d:
		it.Reason = fmt.Sprintf("archived %s ago, less than delete_archived_after %s", age(now, v.ArchivedAt), *d)
		return nil
	}
	reason := fmt.Sprintf("archived %s ago, at least delete_archived_after %s", age(now, v.ArchivedAt), *d)
	if !r.Force {
		ok, err := verified(ctx, v.Name, v.Digest)
		if err != nil {
			return fmt.Errorf("signature status of %s:%s: %w", v.Name, v.Version, err)
		}
		if ok {
			it.Reason = reason + ", but signed and verified and the rule has no force"
			return nil
		}
	}
	it.Action, it.Reason = ActionDelete, reason
	return nil
}

// planLive plans an active or deprecated version; rank is its place
// among the pack's active semver versions, newest first (-1: not one).
// The stronger change wins: archive over deprecate.
func planLive(r Rule, now time.Time, v Version, rank int, it *Item) {
	if r.KeepActive != nil && rank >= 0 && rank < *r.KeepActive {
		it.Reason = fmt.Sprintf("one of the %d newest active versions", *r.KeepActive)
		return
	}
	if d := r.ArchiveAfter; d != nil && now.Sub(v.Created) >= *d {
		it.Action, it.Reason = ActionArchive, fmt.Sprintf("published %s ago, at least archive_after %s", age(now, v.Created), *d)
		return
	}
	if r.KeepActive != nil && rank >= 0 {
		act := cmp.Or(r.KeepActiveAction, ActionDeprecate)
		it.Action, it.Reason = act, fmt.Sprintf("active beyond the %d newest active versions", *r.KeepActive)
		return
	}
	if d := r.DeprecateAfter; d != nil && v.Status == storage.PackActive && now.Sub(v.Created) >= *d {
		it.Action, it.Reason = ActionDeprecate, fmt.Sprintf("published %s ago, at least deprecate_after %s", age(now, v.Created), *d)
		return
	}
	if v.Status == storage.PackDeprecated {
		it.Reason = "deprecated; not old enough to archive"
	}
}

// age is how long ago t was, to the second.
func age(now, t time.Time) time.Duration { return now.Sub(t).Truncate(time.Second) }

// compareVersions orders by semver precedence; a version that is not
// semver (the pack index records none, but a plan does not trust that)
// sorts below every semver one, by bytes among its kind.
func compareVersions(a, b string) int {
	va, errA := semver.Parse(a)
	vb, errB := semver.Parse(b)
	switch {
	case errA == nil && errB == nil:
		return va.Compare(vb)
	case errA == nil:
		return 1
	case errB == nil:
		return -1
	}
	return strings.Compare(a, b)
}
