package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-sizes", "64,1,16", "-distribution", "off", "-suites", "packs,replicas", "-markdown", "B.md"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1 << 20, 16 << 20, 64 << 20}; !slices.Equal(o.sizes, want) {
		t.Errorf("sizes = %v, want %v (sorted: the last is the largest)", o.sizes, want)
	}
	if o.distribution != "" || o.rounds != 2 || o.markdown != "B.md" || !o.suites["packs"] || !o.suites["replicas"] || o.suites["blobs"] {
		t.Errorf("parsed %+v", o)
	}
	if n := noDistributionNote(o); !strings.Contains(n, "-distribution off") || strings.Contains(n, "install") {
		t.Errorf("-distribution off: note %q blames a missing install", n)
	}
	if o.bigTags != 0 {
		t.Errorf("-quick: %d big tags, want the row skipped", o.bigTags)
	}
	if o, err = parseFlags([]string{"-quick", "-big-tags", "100000"}); err != nil || o.bigTags != 100_000 || o.ops != 200 {
		t.Errorf("-quick -big-tags 100000: %d big tags, %d ops, %v", o.bigTags, o.ops, err)
	}
	if o.packVersions != 1_000 || o.mirrorVersions != 100 {
		t.Errorf("-quick: %d pack versions, %d mirrored, want 1,000 and 100", o.packVersions, o.mirrorVersions)
	}
	if o, err = parseFlags([]string{"-quick", "-pack-versions", "10000", "-mirror-versions", "200"}); err != nil || o.packVersions != 10_000 || o.mirrorVersions != 200 {
		t.Errorf("-pack-versions, -mirror-versions: %d, %d, %v", o.packVersions, o.mirrorVersions, err)
	}
	if o, err = parseFlags([]string{"-distribution", "/opt/registry"}); err != nil || o.distribution != "/opt/registry" || o.rounds != 4 || o.packVersions != 10_000 {
		t.Errorf("-distribution PATH: %q rounds %d, %v", o.distribution, o.rounds, err)
	}
	for _, bad := range [][]string{{"-sizes", "0"}, {"-sizes", "1,x"}, {"-rounds", "33"}, {"-rounds", "-1"}, {"-suites", "mirrors"}, {"-pack-versions", "-5"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
