package mirror

import (
	"context"
	"slices"
	"strings"

	"github.com/packreg/packreg/storage"
)

// Listing pack versions on either side, in every lifecycle state: the
// callers filter by state themselves, because lifecycle and parity must
// see versions the sync leaves alone (archived ones, on both sides).

// localVersions lists this registry's versions whose name and version
// the filter covers (names limits them to some packs when not empty).
func (s *Service) localVersions(ctx context.Context, f *Filter, only []string) ([]Version, error) {
	if s.index == nil {
		return tagVersions(ctx, NewLocal(s.local, ""), f, only)
	}
	return IndexVersions(ctx, s.index, f, only)
}

// IndexVersions lists the versions of a pack index whose name and version
// the filter covers, in every lifecycle state (only, when not empty,
// limits them to those packs): what a sync, a parity check and an
// export of this registry walk.
func IndexVersions(ctx context.Context, index PackIndex, f *Filter, only []string) ([]Version, error) {
	var out []Version
	queries := []storage.PackQuery{{}}
	if len(only) > 0 {
		queries = queries[:0]
		for _, n := range only {
			queries = append(queries, storage.PackQuery{Name: n})
		}
	}
	for _, q := range queries {
		q.Limit = localPage
		for {
			page, err := index.ListPackVersions(ctx, q)
			if err != nil {
				return nil, err
			}
			for _, v := range page {
				if f.Name(v.Name) && f.Version(v.Version) {
					out = append(out, Version{Name: v.Name, Version: v.Version, Digest: v.Digest, Status: v.Status, Reason: v.StatusReason})
				}
			}
			if len(page) < q.Limit {
				break
			}
			last := page[len(page)-1]
			q.BeforeCreated, q.BeforeID = last.Created, last.ID
		}
	}
	return out, nil
}

// remoteVersions lists a remote's versions the filter covers, by the
// remote's names; a packreg remote says their lifecycle.
func remoteVersions(ctx context.Context, rm *Remote, f *Filter, only []string) ([]Version, error) {
	is, err := rm.IsPackreg(ctx)
	if err != nil {
		return nil, err
	}
	if !is {
		return tagVersions(ctx, rm, f, only)
	}
	var all []Version
	if len(only) > 0 {
		for _, n := range only {
			vs, err := rm.PackVersions(ctx, n)
			if err != nil {
				return nil, err
			}
			all = append(all, vs...)
		}
	} else if all, err = rm.ListPacks(ctx); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(v Version) bool { return !f.Name(v.Name) || !f.Version(v.Version) }), nil
}

// cataloged is a side that can list its repositories and their tags.
type cataloged interface {
	Source
	Cataloger
}

// tagVersions lists versions where no pack index says: the semver tags of
// the covered repositories. Their digests are resolved when copied.
func tagVersions(ctx context.Context, side cataloged, f *Filter, only []string) ([]Version, error) {
	repos := only
	if len(repos) == 0 {
		all, err := side.Repositories(ctx)
		if err != nil {
			return nil, err
		}
		repos = slices.DeleteFunc(all, func(r string) bool { return !f.Name(r) })
	}
	var out []Version
	for _, repo := range repos {
		tags, err := side.Tags(ctx, repo)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			if f.Version(t) {
				out = append(out, Version{Name: repo, Version: t})
			}
		}
	}
	return out, nil
}

// packNames returns the distinct names of vs, sorted.
func packNames(vs []Version) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	slices.SortFunc(out, strings.Compare)
	return slices.Compact(out)
}
