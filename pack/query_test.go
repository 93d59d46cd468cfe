package pack_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/pack"
)

// TestListing: newest first, filters, and cursor pages that add up to the
// whole listing without repeats; versions in semver order.
func TestListing(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	var all []string
	for i := range 23 {
		name := []string{"acme/rules", "acme/rulesets", "other"}[i%3]
		version := fmt.Sprintf("1.%d.0", 22-i) // published from high to low
		labels := map[string]string{"parity": []string{"even", "odd"}[i%2]}
		e.mustPublish(pack.Metadata{Name: name, Version: version, Labels: labels}, file{name: "f", data: []byte(version)})
		all = append(all, name+":"+version)
	}
	slices.Reverse(all)
	walk := func(query string, limit int) []string {
		t.Helper()
		var got []string
		next := ""
		for page := 0; ; page++ {
			q := fmt.Sprintf("%s?limit=%d%s", pack.Prefix, limit, query)
			if next != "" {
				q += "&cursor=" + next
			}
			w := e.do("GET", q, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("%s: %d %s", q, w.Code, w.Body)
			}
			l := decode[pack.VersionList](t, w)
			if len(l.Items) > limit || l.Next != "" && len(l.Items) != limit {
				t.Fatalf("page %d: %d items, next %q", page, len(l.Items), l.Next)
			}
			for _, v := range l.Items {
				got = append(got, v.Name+":"+v.Version)
			}
			if l.Next == "" {
				return got
			}
			next = l.Next
		}
	}
	for _, limit := range []int{1, 5, 23, 100} {
		if got := walk("", limit); !slices.Equal(got, all) {
			t.Fatalf("pages of %d:\n got %v\nwant %v", limit, got, all)
		}
	}
	filter := func(keep func(i int, s string) bool) []string {
		var out []string
		for i, s := range all {
			if keep(len(all)-1-i, s) {
				out = append(out, s)
			}
		}
		return out
	}
	if got, want := walk("&name=acme/rules", 4), filter(func(i int, _ string) bool { return i%3 != 2 }); !slices.Equal(got, want) {
		t.Fatalf("name prefix:\n got %v\nwant %v", got, want)
	}
	if got, want := walk("&label=parity=odd&name=acme/", 2), filter(func(i int, _ string) bool { return i%2 == 1 && i%3 != 2 }); !slices.Equal(got, want) {
		t.Fatalf("label and prefix:\n got %v\nwant %v", got, want)
	}
	vs := decode[pack.Versions](t, e.do("GET", pack.Prefix+"/acme/rules/versions", nil))
	var versions []string
	for _, v := range vs.Versions {
		versions = append(versions, v.Version)
	}
	if want := []string{"1.1.0", "1.4.0", "1.7.0", "1.10.0", "1.13.0", "1.16.0", "1.19.0", "1.22.0"}; !slices.Equal(versions, want) {
		t.Fatalf("versions in semver order: %v, want %v", versions, want)
	}
}

// TestNamesAgreeWithRegistry: oci.ValidName, which pack checks names
// with, accepts exactly the names the registry accepts, so a publish is
// never refused late for its name.
func TestNamesAgreeWithRegistry(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	for _, name := range []string{"a", "acme/rules", "a.b", "a_b", "a__b", "a---b", "a/b/c/d", "0", "a1/b2",
		"A", "a//b", "/a", "a/", "a.", ".a", "a..b", "a___b", "a-", "a_.b", "a b", "a:b", "é",
		string(make([]byte, 256)), "x" + fmt.Sprintf("%0254d", 0), "x" + fmt.Sprintf("%0255d", 0)} {
		err := e.reg.PushBlob(t.Context(), name, sha([]byte("x")), strings.NewReader("x"))
		regInvalid := errors.Is(err, oci.ErrNameInvalid)
		if oci.ValidName(name) == regInvalid {
			t.Errorf("name %.20q: oci.ValidName %v, registry says %v", name, oci.ValidName(name), err)
		}
	}
}

// TestResolveVersion: attest finds a version's manifest through the pack
// index (cmd/packreg's TestVersionRoutes routes its paths).
func TestResolveVersion(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy())
	e.mustPublish(pack.Metadata{Name: "acme/versions/rules", Version: "1.0.0"}, rulesYAML)
	repo, d, err := e.svc.ResolveVersion(t.Context(), "acme/versions/rules", "1.0.0")
	if err != nil || repo != "acme/versions/rules" || d.String() != e.version("acme/versions/rules", "1.0.0").Digest {
		t.Fatalf("ResolveVersion = %s %s %v", repo, d, err)
	}
	if _, _, err := e.svc.ResolveVersion(t.Context(), "acme/versions/rules", "2.0.0"); err == nil {
		t.Fatal("ResolveVersion of an unknown version succeeded")
	}
}
