package oci_test

import (
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// TestParseCosignTag is the one rule of cosign's tag schema: a valid tag
// <alg>-<hex>.sig|.att|.sbom whose <alg>:<hex> is a digest packreg
// accepts. The rows are what the three parsers it replaced (attest,
// pack, mirror) disagreed on, and what all of them refused.
func TestParseCosignTag(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for tag, want := range map[string]string{
		"sha256-" + h + ".sig":  "sha256:" + h + " sig",
		"sha256-" + h + ".att":  "sha256:" + h + " att",
		"sha256-" + h + ".sbom": "sha256:" + h + " sbom",
		// cosign writes sha512-<128 hex>.sig: 139 characters, no tag at all.
		"sha512-" + h + h + ".sig":              "",
		"sha256-" + h:                           "", // the referrers fallback tag is no cosign tag
		"sha256-" + strings.ToUpper(h) + ".sig": "",
		"sha256-" + h[:10] + ".sig":             "",
		"sha256-" + h + "a.sig":                 "",
		"md5-" + h + ".sig":                     "",
		"sha256:" + h + ".sig":                  "",
		"sha256-" + h + ".sig.sig":              "",
		"sha256-" + h + ".SIG":                  "",
		"sha256-" + h + ".foo":                  "",
		"sha256-" + h + "-x.sig":                "",
		"x-sha256-" + h + ".sig":                "",
		"v1.0.0":                                "",
		".sig":                                  "",
		"-.sig":                                 "",
		"":                                      "",
	} {
		d, suffix, ok := oci.ParseCosignTag(tag)
		got := ""
		if ok {
			got = string(d) + " " + suffix
		}
		if got != want {
			t.Errorf("ParseCosignTag(%.80q) = %q, want %q", tag, got, want)
		}
		if ok && oci.CosignTag(d, suffix) != tag {
			t.Errorf("CosignTag does not invert ParseCosignTag for %q", tag)
		}
	}
}

func TestReferrersTag(t *testing.T) {
	h256 := strings.Repeat("0123456789abcdef", 4)
	h512 := strings.Repeat("fedcba9876543210", 8)
	for d, want := range map[digest.Digest]string{
		digest.Digest("sha256:" + h256): "sha256-" + h256,
		// <ref> is cut to 64 characters: a valid tag for sha512 too.
		digest.Digest("sha512:" + h512): "sha512-" + h512[:64],
	} {
		got := oci.ReferrersTag(d)
		if got != want || !oci.ValidTag(got) {
			t.Errorf("ReferrersTag(%s) = %q (valid tag: %v), want %q", d, got, oci.ValidTag(got), want)
		}
		if _, _, ok := oci.ParseCosignTag(got); ok {
			t.Errorf("the fallback tag %q parses as a cosign tag", got)
		}
	}
}

// FuzzCosignTag: a tag from a remote's tag list is a cosign tag exactly
// when it is the tag CosignTag writes for the subject and suffix it names,
// so the mirror copies under it what cosign attached to that subject and
// nothing it merely resembles.
func FuzzCosignTag(f *testing.F) {
	f.Add("sha256-" + strings.Repeat("0123456789abcdef", 4) + ".sig")
	f.Fuzz(func(t *testing.T, tag string) {
		d, suffix, ok := oci.ParseCosignTag(tag)
		if !ok {
			return
		}
		if _, err := digest.Parse(string(d)); err != nil || oci.CosignTag(d, suffix) != tag || !oci.ValidTag(tag) {
			t.Fatalf("%q read as cosign's tag %q for %s (%v)", tag, oci.CosignTag(d, suffix), d, err)
		}
	})
}
