package semver_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/packreg/packreg/semver"
)

func TestParse(t *testing.T) {
	for _, s := range []string{"0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7",
		"1.0.0-x.7.z.92", "1.0.0-x-y-z.--", "99999999999999999.0.0", "1.0.0-0a", "1.2.3----RC-SNAPSHOT.12.9.1--.12"} {
		v, err := semver.Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if v.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, v.String())
		}
	}
	for _, c := range []struct{ in, why string }{
		{"", "empty"}, {"1", "MAJOR.MINOR.PATCH"}, {"1.2", "MAJOR.MINOR.PATCH"}, {"1.2.3.4", "MAJOR.MINOR.PATCH"},
		{"v1.2.3", `leading "v"`}, {"V1.2.3", `leading "v"`}, {"01.2.3", "leading zero"}, {"1.02.3", "leading zero"},
		{"1.2.03", "leading zero"}, {"1.2.3-01", "leading zero"}, {"1.2.3-", "empty identifier"},
		{"1.2.3-a..b", "empty identifier"}, {"1.2.3+build", "build metadata"}, {"1.2.3-rc+b", "build metadata"},
		{"1.2.3-rc_1", "not allowed"}, {"1.2.x", "not a number"}, {"-1.2.3", "MAJOR.MINOR.PATCH"}, {"1..3", "empty number"},
		{"1.2.3 ", "not a number"}, {"99999999999999999999.0.0", "out of range"}, {strings.Repeat("1", 129), "longer"},
		{"latest", "MAJOR.MINOR.PATCH"}, {"1.2.3-é", "not allowed"},
	} {
		if _, err := semver.Parse(c.in); err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", c.in, err, c.why)
		}
	}
}

// The precedence example of SemVer 2.0.0 §11, shuffled and sorted back.
func TestOrder(t *testing.T) {
	want := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0-1", "2.0.0-2", "2.0.0-10",
		"2.0.0-99999999999999999999", "2.0.0-a", "2.0.0"}
	got := slices.Clone(want)
	slices.Reverse(got)
	got[0], got[5] = got[5], got[0]
	slices.SortFunc(got, func(a, b string) int {
		va, _ := semver.Parse(a)
		vb, _ := semver.Parse(b)
		return va.Compare(vb)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("sorted:\n got %v\nwant %v", got, want)
	}
}

// FuzzParse: what parses prints back as itself, is a valid OCI tag
// (versions are tags), and compares equal only to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.2.3", "1.0.0-rc.1", "0.0.0-0", "v1", "1.2.3+x", "1.0.0-a.b.c.1.2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := semver.Parse(s)
		if err != nil {
			return
		}
		if v.String() != s {
			t.Fatalf("%q parses but prints as %q", s, v.String())
		}
		if len(s) > 128 || strings.ContainsAny(s, "+/:@ ") || s[0] == '.' || s[0] == '-' {
			t.Fatalf("%q parses but is not a valid tag", s)
		}
		if v.Compare(v) != 0 {
			t.Fatalf("%q does not equal itself", s)
		}
	})
}
