package mirror

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/storage"
)

// Filter selects the pack versions a mirror or upstream covers.
type Filter struct {
	include, exclude []*regexp.Regexp
	versions         [][]comparator // OR of ANDs
	states           []string
}

// DefaultStates is what a remote covers when its settings name no states:
// archived packs stay home.
var DefaultStates = []string{storage.PackActive, storage.PackDeprecated}

// NewFilter compiles name globs (none: every name), a semver range ("":
// every version) and lifecycle states (none: DefaultStates).
//
// Globs: * matches within one path segment, ** across segments, ? one
// character. Ranges: comparators >=, >, <=, <, = on full or partial
// versions (1.2 is 1.2.0), ^1.2.3 (same major), ~1.2.3 (same minor),
// 1.2.x and *, separated by spaces (all must hold) and || (either side).
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
			re, err := globRE(g)
			if err != nil {
				return nil, err
			}
			*list.out = append(*list.out, re)
		}
	}
	r, err := parseRange(versions)
	if err != nil {
		return nil, fmt.Errorf("versions %q: %w", versions, err)
	}
	f.versions = r
	return f, nil
}

// globRE turns a name glob into an anchored regexp.
func globRE(g string) (*regexp.Regexp, error) {
	if g == "" || len(g) > 255 {
		return nil, fmt.Errorf("name glob %q: want 1 to 255 characters", g)
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case c == '*' && i+1 < len(g) && g[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
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
	sv, err := pack.ParseSemver(v)
	if err != nil {
		return false
	}
	if len(f.versions) == 0 {
		return true
	}
	return slices.ContainsFunc(f.versions, func(all []comparator) bool {
		for _, c := range all {
			if !c.holds(sv) {
				return false
			}
		}
		return true
	})
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

type comparator struct {
	op string // ">=", ">", "<=", "<", "="
	v  pack.Semver
}

func (c comparator) holds(v pack.Semver) bool {
	n := v.Compare(c.v)
	switch c.op {
	case ">=":
		return n >= 0
	case ">":
		return n > 0
	case "<=":
		return n <= 0
	case "<":
		return n < 0
	}
	return n == 0
}

func parseRange(s string) ([][]comparator, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out [][]comparator
	for alt := range strings.SplitSeq(s, "||") {
		var all []comparator
		for term := range strings.FieldsSeq(alt) {
			cs, err := parseTerm(term)
			if err != nil {
				return nil, err
			}
			all = append(all, cs...)
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("empty alternative")
		}
		out = append(out, all)
	}
	return out, nil
}

// least is the lowest version there is: 0.0.0-0 precedes every 0.0.0-pre.
var least = pack.Semver{Pre: []string{"0"}}

// parseTerm expands one range term into comparators.
func parseTerm(t string) ([]comparator, error) {
	if t == "*" || t == "x" || t == "X" {
		return []comparator{{">=", least}}, nil
	}
	op := ""
	for _, p := range []string{">=", "<=", ">", "<", "=", "^", "~"} {
		if rest, ok := strings.CutPrefix(t, p); ok {
			op, t = p, rest
			break
		}
	}
	v, parts, err := partial(t)
	if err != nil {
		return nil, err
	}
	// upTo is "below the first version past what the term fixes" (1.x:
	// <2.0.0-0, so 2.0.0-rc.1 is out); none when that number is at its
	// maximum, as nothing is past it.
	upTo := func(level int) []comparator {
		nums := []uint64{v.Major, v.Minor, v.Patch}[:level+1]
		if nums[level] == math.MaxUint64 {
			return nil
		}
		nums[level]++
		nums = append(nums, 0, 0)
		return []comparator{{"<", pack.Semver{Major: nums[0], Minor: nums[1], Patch: nums[2], Pre: least.Pre}}}
	}
	from := []comparator{{">=", v}}
	switch op {
	case "^":
		level := 0
		if v.Major == 0 && parts > 1 {
			level = 1
			if v.Minor == 0 && parts > 2 {
				level = 2
			}
		}
		return append(from, upTo(level)...), nil
	case "~":
		return append(from, upTo(min(parts-1, 1))...), nil
	case "", "=":
		if parts < 3 {
			return append(from, upTo(parts-1)...), nil
		}
		return []comparator{{"=", v}}, nil
	}
	if parts < 3 && (op == ">" || op == "<=") {
		// >1.2 means past all of 1.2.x; <=1.2 includes all of it.
		below := upTo(parts - 1)
		switch {
		case op == "<=" && below == nil:
			return []comparator{{">=", least}}, nil
		case op == "<=":
			return below, nil
		case below == nil:
			return []comparator{{"<", least}}, nil // nothing is past it
		}
		return []comparator{{">=", below[0].v}}, nil
	}
	return []comparator{{op, v}}, nil
}

// partial parses 1, 1.2, 1.2.3, 1.x, 1.2.x, 1.x.x (and a pre-release on
// full versions), and says how many numbers were given.
func partial(s string) (pack.Semver, int, error) {
	if s == "" {
		return pack.Semver{}, 0, fmt.Errorf("missing version")
	}
	if v, err := pack.ParseSemver(s); err == nil {
		return v, 3, nil
	}
	bad := fmt.Errorf("%q is not a version", s)
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return pack.Semver{}, 0, bad
	}
	var nums []uint64
	for i, p := range parts {
		if p == "x" || p == "X" || p == "*" {
			// Only wildcards may follow a wildcard: 1.x.3 is a typo.
			for _, q := range parts[i+1:] {
				if q != "x" && q != "X" && q != "*" {
					return pack.Semver{}, 0, bad
				}
			}
			break
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != p { // no sign, no leading zero
			return pack.Semver{}, 0, bad
		}
		nums = append(nums, n)
	}
	if len(nums) == 0 {
		return pack.Semver{}, 0, bad
	}
	v := pack.Semver{Major: nums[0]}
	if len(nums) > 1 {
		v.Minor = nums[1]
	}
	if len(nums) > 2 {
		v.Patch = nums[2]
	}
	return v, len(nums), nil
}
