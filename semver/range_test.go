package semver_test

import (
	"testing"

	"github.com/packreg/packreg/semver"
)

func TestRange(t *testing.T) {
	for _, c := range []struct {
		rng, v string
		want   bool
	}{
		{"", "1.0.0", true},
		{"", "0.0.1-rc.1", true},
		{">=1.2.0 <2.0.0", "1.5.0", true},
		{">=1.2.0 <2.0.0", "2.0.0", false},
		{">=1.2.0 <2.0.0", "1.1.9", false},
		{">=1.2.0 <2.0.0", "2.0.0-rc.1", true}, // a pre-release of 2.0.0 sorts before it
		{"^1.2.3", "1.9.0", true},
		{"^1.2.3", "2.0.0", false},
		{"^1.2.3", "1.2.2", false},
		{"^0.2.3", "0.2.9", true},
		{"^0.2.3", "0.3.0", false},
		{"^0.0.3", "0.0.4", false},
		{"~1.2.3", "1.2.9", true},
		{"~1.2.3", "1.3.0", false},
		{"~1", "1.9.0", true},
		{"1.x", "1.7.1", true},
		{"1.x", "2.0.0", false},
		{"1.2", "1.2.7", true},
		{"1.2", "1.3.0", false},
		{"=1.2.3", "1.2.3", true},
		{"1.2.3", "1.2.4", false},
		{">1.2", "1.2.5", false},
		{">1.2", "1.3.0", true},
		{"<=1.2", "1.2.5", true},
		{"<=1.2", "1.3.0", false},
		{"<1.2.0", "1.2.0-rc.1", true},
		{"1.0.0 || >=3", "3.1.0", true},
		{"1.0.0 || >=3", "2.0.0", false},
		{"*", "0.0.1-rc.1", true},
	} {
		r, err := semver.ParseRange(c.rng)
		if err != nil {
			t.Fatalf("ParseRange(%q): %v", c.rng, err)
		}
		v, err := semver.Parse(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Contains(v); got != c.want {
			t.Errorf("%q contains %s: %v, want %v", c.rng, c.v, got, c.want)
		}
	}
	for _, bad := range []string{">=", "1.2.3.4", "abc", "||", "^", "1 ||", "-1"} {
		if _, err := semver.ParseRange(bad); err == nil {
			t.Errorf("range %q accepted", bad)
		}
	}
}
