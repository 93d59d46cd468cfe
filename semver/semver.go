package semver

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is a SemVer 2.0.0 version as packs use it: MAJOR.MINOR.PATCH
// with an optional pre-release, no leading "v", and no build metadata,
// because a version is an OCI tag and tags cannot hold "+".
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string // dot-separated pre-release identifiers
}

// maxVersionLen is the longest OCI tag.
const maxVersionLen = 128

// Parse parses s strictly; the error says what is wrong, for users.
func Parse(s string) (Version, error) {
	var v Version
	switch {
	case s == "":
		return v, errors.New("empty version")
	case len(s) > maxVersionLen:
		return v, fmt.Errorf("longer than %d characters", maxVersionLen)
	case s[0] == 'v' || s[0] == 'V':
		return v, errors.New(`no leading "v": write 1.2.3, not v1.2.3`)
	case strings.Contains(s, "+"):
		return v, errors.New(`build metadata ("+...") cannot be part of an OCI tag`)
	}
	core, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return v, errors.New("want MAJOR.MINOR.PATCH, like 1.2.3")
	}
	nums := [3]*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		n, err := numericIdent(p)
		if err != nil {
			return v, fmt.Errorf("%s %q: %w", [3]string{"major", "minor", "patch"}[i], p, err)
		}
		*nums[i] = n
	}
	if hasPre {
		for id := range strings.SplitSeq(pre, ".") {
			if err := preIdent(id); err != nil {
				return v, fmt.Errorf("pre-release %q: %w", pre, err)
			}
			v.Pre = append(v.Pre, id)
		}
	}
	return v, nil
}

// Valid reports whether s is a version.
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

func numericIdent(p string) (uint64, error) {
	if p == "" {
		return 0, errors.New("empty number")
	}
	if !allDigits(p) {
		return 0, errors.New("not a number")
	}
	if len(p) > 1 && p[0] == '0' {
		return 0, errors.New("leading zero")
	}
	return strconv.ParseUint(p, 10, 64)
}

func preIdent(id string) error {
	if id == "" {
		return errors.New("empty identifier")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
			return fmt.Errorf("character %q is not allowed", c)
		}
	}
	if allDigits(id) && len(id) > 1 && id[0] == '0' {
		return errors.New("numeric identifier with a leading zero")
	}
	return nil
}

// String is the canonical form (what Parse accepted).
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if len(v.Pre) > 0 {
		s += "-" + strings.Join(v.Pre, ".")
	}
	return s
}

// Compare orders versions by SemVer 2.0.0 precedence: -1, 0 or +1.
func (v Version) Compare(w Version) int {
	if c := cmp.Compare(v.Major, w.Major); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Minor, w.Minor); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Patch, w.Patch); c != 0 {
		return c
	}
	// A pre-release sorts before its release.
	switch {
	case len(v.Pre) == 0 && len(w.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1
	case len(w.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(w.Pre); i++ {
		if c := comparePre(v.Pre[i], w.Pre[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(v.Pre), len(w.Pre))
}

// comparePre: numeric identifiers compare as numbers (of any length: no
// leading zeros, so the longer is larger) and sort before alphanumeric
// ones, which compare in ASCII order.
func comparePre(a, b string) int {
	an, bn := allDigits(a), allDigits(b)
	switch {
	case an && bn:
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
