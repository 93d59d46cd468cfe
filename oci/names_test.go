package oci_test

import (
	"strings"
	"testing"

	"github.com/packreg/packreg/oci"
)

func TestValidName(t *testing.T) {
	long := "x" + strings.Repeat("0", 254)
	for name, want := range map[string]bool{
		"a": true, "acme/rules": true, "a.b": true, "a_b": true, "a__b": true, "a---b": true,
		"a/b/c/d": true, "0": true, "a1/b2": true, long: true,
		"": false, "A": false, "a//b": false, "/a": false, "a/": false, "a.": false, ".a": false,
		"a..b": false, "a___b": false, "a-": false, "a_.b": false, "a b": false, "a:b": false,
		"é": false, "a/../b": false, "-a": false, long + "0": false, string(make([]byte, 256)): false,
		strings.Repeat("a/", 200) + "a": false,
	} {
		if got := oci.ValidName(name); got != want {
			t.Errorf("ValidName(%.40q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"v1": true, "1.2.3": true, "1.0.0-rc.1": true, "_x": true, "A-Z_a.z": true, strings.Repeat("a", 128): true,
		"sha256-" + strings.Repeat("a", 64) + ".sig": true,
		"": false, "-x": false, ".x": false, "a+b": false, "a:b": false, "a/b": false, "é": false,
		strings.Repeat("a", 129): false,
	} {
		if got := oci.ValidTag(tag); got != want {
			t.Errorf("ValidTag(%.40q) = %v, want %v", tag, got, want)
		}
	}
}
