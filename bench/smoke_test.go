package main

import (
	"slices"
	"strings"
	"testing"
)

// A FAILED cell fails the run whichever path set it, a figure never does,
// and a part skipped fails a -smoke run only.
func TestVerdict(t *testing.T) {
	for _, smoke := range []bool{false, true} {
		b := &bench{rep: newReport(options{smoke: smoke}, "packreg", "v"), backend: "disk"}
		b.set(secTags, "manifest PUT into a repo with 10 tags, 1 client", "1,234/s")
		// A cell may add a note as it renders (pushCell does).
		b.setCell(secTags, "push", func(*limits) string { b.rep.noteOnce("rendered"); return "10.0 MB/s" })
		if err := b.rep.verdict(); err != nil {
			t.Fatalf("smoke %v: figures only: %v", smoke, err)
		}
		b.rep.skip("mirror: regctl not found (PATH, ~/go/bin)\nmore")
		err := b.rep.verdict()
		if smoke != (err != nil) {
			t.Fatalf("smoke %v: a part skipped: err %v", smoke, err)
		}
		if smoke && (!strings.Contains(err.Error(), "regctl not found") || strings.Contains(err.Error(), "more")) {
			t.Errorf("smoke: err %q, want the skip's first line", err)
		}
		b.setIn(sideSection("disk"), "pull 1 MiB x16", distName, failedCell)
		if err := b.rep.verdict(); err == nil || !strings.Contains(err.Error(), "pull 1 MiB x16") || !strings.Contains(err.Error(), distName) {
			t.Errorf("smoke %v: a FAILED cell: err %v, want one naming its row and column", smoke, err)
		}
	}
}

func TestParseFlagsSmoke(t *testing.T) {
	o, err := parseFlags([]string{"-smoke"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.sizes, []int64{1 << 20}) || o.rounds != 2 || o.bigTags <= o.tags || o.bigTags > 1_000 || o.ops > 50 || o.gcBlobs > 1_000 || o.writeBytes > 64<<20 {
		t.Errorf("-smoke: %+v, want tiny sizes and counts", o)
	}
	for _, s := range allSuites {
		if !o.suites[s] {
			t.Errorf("-smoke: suite %s off", s)
		}
	}
	// What the suites check: the packs row a full first page of 100, the
	// bundle 8 packs of at least 1 MiB, the listing row more than one tag.
	if o.packVersions < 100 || o.bundleSize < bundleParts<<20 || o.listTags < 2 {
		t.Errorf("-smoke: %d pack versions, %d bundle bytes, %d listed tags", o.packVersions, o.bundleSize, o.listTags)
	}
	if o, err = parseFlags([]string{"-smoke", "-rounds", "3", "-sizes", "2", "-suites", "gc"}); err != nil || o.rounds != 3 || o.sizes[0] != 2<<20 || o.suites["blobs"] {
		t.Errorf("-smoke with -rounds, -sizes, -suites: %+v, %v", o, err)
	}
	if o, err = parseFlags(nil); err != nil || o.gcBlobs != 100_000 || o.listTags != 1_000 || o.writeBytes != 512<<20 || o.shaBytes != 256<<20 {
		t.Errorf("full run: %+v, %v", o, err)
	}
}
