package mirror

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/semver"
	"github.com/packreg/packreg/storage"
)

// Filter selects the pack versions a mirror or upstream covers.
type Filter struct {
	include, exclude []*regexp.Regexp
	versions         semver.Range
	states           []string
}

// DefaultStates is what a remote covers when its settings name no states:
// archived packs stay home.
var DefaultStates = []string{storage.PackActive, storage.PackDeprecated}

// NewFilter compiles name globs (none: every name), a semver range ("":
// every version; semver.Range) and lifecycle states (none: DefaultStates).
//
// Globs: * matches within one path segment, ** across segments, ? one
// character.
func NewFilter(include, exclude []string, versions string, states []string) (*Filter, error) {
	f := &Filter{states: states}
	if len(f.states) == 0 {
		f.states = DefaultStates
	}
	for _, s := range f.states {
		if s != storage.PackActive && s != storage.PackDeprecated && s != storage.PackArchived {
			return nil, fmt.Errorf("state %q: want active, deprecated or archived", s)
		}
	}
	for _, list := range []struct {
		globs []string
		out   *[]*regexp.Regexp
	}{{include, &f.include}, {exclude, &f.exclude}} {
		for _, g := range list.globs {
			re, err := oci.NameGlob(g)
			if err != nil {
				return nil, err
			}
			*list.out = append(*list.out, re)
		}
	}
	r, err := semver.ParseRange(versions)
	if err != nil {
		return nil, fmt.Errorf("versions %q: %w", versions, err)
	}
	f.versions = r
	return f, nil
}

// Name reports whether a pack name is covered.
func (f *Filter) Name(name string) bool {
	match := func(res []*regexp.Regexp) bool {
		return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(name) })
	}
	return (len(f.include) == 0 || match(f.include)) && !match(f.exclude)
}

// Version reports whether a version is in the range. Without a range any
// pack version (semver) is; a tag that is not semver never is.
func (f *Filter) Version(v string) bool {
	sv, err := semver.Parse(v)
	return err == nil && f.versions.Contains(sv)
}

// State reports whether a lifecycle state is covered. A side without
// lifecycle ("") counts as active.
func (f *Filter) State(s string) bool {
	if s == "" {
		s = storage.PackActive
	}
	return slices.Contains(f.states, s)
}

// Covers is Name, Version and State at once.
func (f *Filter) Covers(v Version) bool {
	return f.Name(v.Name) && f.Version(v.Version) && f.State(v.Status)
}
