package semver

import (
	"regexp"
	"strings"
	"testing"
)

// A native fuzz target for the range language a user writes in a mirror's
// settings. It checks what an accepted range means, not only that nothing
// panics. Seeds are in testdata/fuzz; `go test` runs them as ordinary tests
// and `make fuzz-short` fuzzes briefly.

// termRE is the grammar of one range term: an optional operator, then *,
// a full version, or one to three numbers where trailing ones may be
// wildcards.
var termRE = func() *regexp.Regexp {
	const (
		num  = `(?:0|[1-9][0-9]*)`
		wild = `[xX*]`
		pre  = `(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)`
	)
	part := `(?:` + num + `|` + wild + `)`
	return regexp.MustCompile(`^(?:(?:[<>]=?|=|\^|~)?(?:` + num + `\.` + num + `\.` + num + pre + `?|` +
		num + `(?:\.` + part + `(?:\.` + wild + `)?)?|` + num + `\.` + wild + `(?:\.` + wild + `)?)|` + wild + `)$`)
}()

// FuzzVersionRange: every term of an accepted range is in the documented
// grammar, and the comparators a term built from version a expands to
// hold for version b exactly when the documented meaning says so:
// ^a same major (minor below 1.0.0, patch below 0.1.0), ~a same minor,
// a partial version every version it prefixes, >a.b past all of a.b.x,
// * every version.
func FuzzVersionRange(f *testing.F) {
	f.Add(">=1.2.0 <2.0.0 || ^3.1", "1.2.3", "2.0.0-rc.1")
	f.Fuzz(func(t *testing.T, rng, a, b string) {
		if r, err := ParseRange(rng); err == nil {
			for alt := range strings.SplitSeq(rng, "||") {
				for term := range strings.FieldsSeq(alt) {
					if !termRE.MatchString(term) {
						t.Fatalf("range %q accepted with term %q", rng, term)
					}
				}
			}
			if strings.TrimSpace(rng) != "" && len(r.alts) == 0 {
				t.Fatalf("range %q has no alternative", rng)
			}
		}
		vb, err := Parse(b)
		if err != nil {
			return
		}
		for _, star := range []string{"*", "x", "X"} {
			if cs, err := parseTerm(star); err != nil || !cs[0].holds(vb) || len(cs) != 1 {
				t.Fatalf("%s does not hold for %s: %v %v", star, b, cs, err)
			}
		}
		va, n, err := partial(a)
		if err != nil {
			return
		}
		for _, op := range []string{"", "=", ">=", ">", "<=", "<", "^", "~"} {
			cs, err := parseTerm(op + a)
			if err != nil {
				t.Fatalf("term %q: %v", op+a, err)
			}
			got := true
			for _, c := range cs {
				got = got && c.holds(vb)
			}
			if want := rangeMeans(op, va, n, vb); got != want {
				t.Fatalf("%s%s holds for %s: %v, want %v (comparators %v)", op, a, b, got, want, cs)
			}
		}
	})
}

// rangeMeans is the documented meaning of op applied to version a (n of
// whose numbers were given), for version b, by prefixes and precedence
// only (no arithmetic, so no overflow).
func rangeMeans(op string, a Version, n int, b Version) bool {
	// prefix compares the first k numbers of b with a's.
	prefix := func(k int) int {
		as, bs := []uint64{a.Major, a.Minor, a.Patch}, []uint64{b.Major, b.Minor, b.Patch}
		for i := range k {
			if c := cmpUint(bs[i], as[i]); c != 0 {
				return c
			}
		}
		return 0
	}
	c := b.Compare(a)
	switch op {
	case "^":
		// Fixed: the numbers up to the first one given that is not 0.
		k := 1
		for k < n && []uint64{a.Major, a.Minor}[k-1] == 0 {
			k++
		}
		return c >= 0 && prefix(k) == 0
	case "~":
		return c >= 0 && prefix(min(n, 2)) == 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	}
	if n == 3 {
		switch op {
		case ">":
			return c > 0
		case "<=":
			return c <= 0
		}
		return c == 0
	}
	switch op {
	case ">":
		return prefix(n) > 0
	case "<=":
		return prefix(n) <= 0
	}
	return c >= 0 && prefix(n) == 0
}

func cmpUint(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
