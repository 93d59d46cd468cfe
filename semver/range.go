package semver

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Range is a set of versions, written as mirrors and upstreams select
// them: comparators >=, >, <=, <, = on full or partial versions (1.2 is
// 1.2.0), ^1.2.3 (same major), ~1.2.3 (same minor), 1.2.x, 1.x.x and *,
// separated by spaces (all must hold) and || (either side). A range that
// stops below the next version (^, ~, x-ranges) keeps that version's
// pre-releases out too: 1.x holds no 2.0.0-rc.1. The zero Range, from "",
// holds every version.
type Range struct {
	alts [][]comparator // OR of ANDs
}

// ParseRange parses s; the error says what is wrong.
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Range{}, nil
	}
	var out [][]comparator
	for alt := range strings.SplitSeq(s, "||") {
		var all []comparator
		for term := range strings.FieldsSeq(alt) {
			cs, err := parseTerm(term)
			if err != nil {
				return Range{}, err
			}
			all = append(all, cs...)
		}
		if len(all) == 0 {
			return Range{}, fmt.Errorf("empty alternative")
		}
		out = append(out, all)
	}
	return Range{alts: out}, nil
}

// Contains reports whether v is in the range.
func (r Range) Contains(v Version) bool {
	if len(r.alts) == 0 {
		return true
	}
	return slices.ContainsFunc(r.alts, func(all []comparator) bool {
		for _, c := range all {
			if !c.holds(v) {
				return false
			}
		}
		return true
	})
}

type comparator struct {
	op string // ">=", ">", "<=", "<", "="
	v  Version
}

func (c comparator) holds(v Version) bool {
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

// least is the lowest version there is: 0.0.0-0 precedes every 0.0.0-pre.
func least() Version { return Version{Pre: []string{"0"}} }

// parseTerm expands one range term into comparators.
func parseTerm(t string) ([]comparator, error) {
	if t == "*" || t == "x" || t == "X" {
		return []comparator{{">=", least()}}, nil
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
	// <2.0.0-0, so 2.0.0-rc.1 is out). A number at its maximum carries to
	// the one before it (0.<max>.x ends below 1.0.0-0); none when every
	// number the term fixes is at its maximum, as nothing is past it.
	upTo := func(level int) []comparator {
		nums := []uint64{v.Major, v.Minor, v.Patch}[:level+1]
		for level >= 0 && nums[level] == math.MaxUint64 {
			level--
		}
		if level < 0 {
			return nil
		}
		nums = nums[:level+1]
		nums[level]++
		nums = append(nums, 0, 0)
		return []comparator{{"<", Version{Major: nums[0], Minor: nums[1], Patch: nums[2], Pre: least().Pre}}}
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
			return []comparator{{">=", least()}}, nil
		case op == "<=":
			return below, nil
		case below == nil:
			return []comparator{{"<", least()}}, nil // nothing is past it
		}
		return []comparator{{">=", below[0].v}}, nil
	}
	return []comparator{{op, v}}, nil
}

// partial parses 1, 1.2, 1.2.3, 1.x, 1.2.x, 1.x.x (and a pre-release on
// full versions), and says how many numbers were given.
func partial(s string) (Version, int, error) {
	if s == "" {
		return Version{}, 0, fmt.Errorf("missing version")
	}
	if v, err := Parse(s); err == nil {
		return v, 3, nil
	}
	bad := fmt.Errorf("%q is not a version", s)
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return Version{}, 0, bad
	}
	var nums []uint64
	for i, p := range parts {
		if p == "x" || p == "X" || p == "*" {
			// Only wildcards may follow a wildcard: 1.x.3 is a typo.
			for _, q := range parts[i+1:] {
				if q != "x" && q != "X" && q != "*" {
					return Version{}, 0, bad
				}
			}
			break
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != p { // no sign, no leading zero
			return Version{}, 0, bad
		}
		nums = append(nums, n)
	}
	if len(nums) == 0 {
		return Version{}, 0, bad
	}
	v := Version{Major: nums[0]}
	if len(nums) > 1 {
		v.Minor = nums[1]
	}
	if len(nums) > 2 {
		v.Patch = nums[2]
	}
	return v, len(nums), nil
}
