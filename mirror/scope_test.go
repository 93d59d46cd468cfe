package mirror_test

import (
	"testing"

	"github.com/packreg/packreg/mirror"
)

func TestFilter(t *testing.T) {
	cases := []struct {
		include, exclude []string
		versions         string
		states           []string
		v                mirror.Version
		want             bool
	}{
		{nil, nil, "", nil, mirror.Version{Name: "a/b", Version: "1.0.0"}, true},
		{nil, nil, "", nil, mirror.Version{Name: "a/b", Version: "latest"}, false},
		{nil, nil, "", nil, mirror.Version{Name: "a/b", Version: "1.0.0", Status: "archived"}, false},
		{nil, nil, "", []string{"archived"}, mirror.Version{Name: "a/b", Version: "1.0.0", Status: "archived"}, true},
		{nil, nil, "", nil, mirror.Version{Name: "a/b", Version: "1.0.0", Status: "deprecated"}, true},
		{[]string{"acme/*"}, nil, "", nil, mirror.Version{Name: "acme/rules", Version: "1.0.0"}, true},
		{[]string{"acme/*"}, nil, "", nil, mirror.Version{Name: "acme/team/rules", Version: "1.0.0"}, false},
		{[]string{"acme/**"}, nil, "", nil, mirror.Version{Name: "acme/team/rules", Version: "1.0.0"}, true},
		{[]string{"acme/**"}, []string{"acme/private/**"}, "", nil, mirror.Version{Name: "acme/private/x", Version: "1.0.0"}, false},
		{[]string{"acme/rule?"}, nil, "", nil, mirror.Version{Name: "acme/rules", Version: "1.0.0"}, true},
		{[]string{"acme.io/*"}, nil, "", nil, mirror.Version{Name: "acmexio/a", Version: "1.0.0"}, false},
		{nil, nil, ">=1.2.0 <2.0.0", nil, mirror.Version{Name: "a", Version: "1.5.0"}, true},
		{nil, nil, ">=1.2.0 <2.0.0", nil, mirror.Version{Name: "a", Version: "2.0.0"}, false},
		{nil, nil, ">=1.2.0 <2.0.0", nil, mirror.Version{Name: "a", Version: "1.1.9"}, false},
		{nil, nil, "^1.2.3", nil, mirror.Version{Name: "a", Version: "1.9.0"}, true},
		{nil, nil, "^1.2.3", nil, mirror.Version{Name: "a", Version: "2.0.0"}, false},
		{nil, nil, "^0.2.3", nil, mirror.Version{Name: "a", Version: "0.3.0"}, false},
		{nil, nil, "~1.2.3", nil, mirror.Version{Name: "a", Version: "1.2.9"}, true},
		{nil, nil, "~1.2.3", nil, mirror.Version{Name: "a", Version: "1.3.0"}, false},
		{nil, nil, "1.x", nil, mirror.Version{Name: "a", Version: "1.7.1"}, true},
		{nil, nil, "1.2", nil, mirror.Version{Name: "a", Version: "1.3.0"}, false},
		{nil, nil, ">1.2", nil, mirror.Version{Name: "a", Version: "1.2.5"}, false},
		{nil, nil, "<=1.2", nil, mirror.Version{Name: "a", Version: "1.2.5"}, true},
		{nil, nil, "1.0.0 || >=3", nil, mirror.Version{Name: "a", Version: "3.1.0"}, true},
		{nil, nil, "1.0.0 || >=3", nil, mirror.Version{Name: "a", Version: "2.0.0"}, false},
		{nil, nil, "*", nil, mirror.Version{Name: "a", Version: "0.0.1-rc.1"}, true},
		{nil, nil, "*", nil, mirror.Version{Name: "a", Version: "0.0.0-rc.1"}, true},
		{nil, nil, "^1.2.3", nil, mirror.Version{Name: "a", Version: "2.0.0-rc.1"}, false},
		{nil, nil, "1.x", nil, mirror.Version{Name: "a", Version: "2.0.0-0"}, false},
		{nil, nil, ">1.2", nil, mirror.Version{Name: "a", Version: "1.3.0-rc.1"}, true},
		{nil, nil, "^18446744073709551615.0.0", nil, mirror.Version{Name: "a", Version: "18446744073709551615.1.0"}, true},
	}
	for _, c := range cases {
		f, err := mirror.NewFilter(c.include, c.exclude, c.versions, c.states)
		if err != nil {
			t.Fatalf("NewFilter(%q, %q, %q): %v", c.include, c.exclude, c.versions, err)
		}
		if got := f.Covers(c.v); got != c.want {
			t.Errorf("include %q exclude %q versions %q states %q: Covers(%+v) = %v, want %v",
				c.include, c.exclude, c.versions, c.states, c.v, got, c.want)
		}
	}
	for _, bad := range []string{">=", "1.2.3.4", "abc", "||", "^", "1.2.3.x", "1.x.3", "01.2", "+1"} {
		if _, err := mirror.NewFilter(nil, nil, bad, nil); err == nil {
			t.Errorf("range %q accepted", bad)
		}
	}
	if _, err := mirror.NewFilter(nil, nil, "", []string{"gone"}); err == nil {
		t.Error("state gone accepted")
	}
}
