package pack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/storage"
)

// listPage is a page of n versions shaped as the bench's: a file, a
// signature report, labels on some.
func listPage(n int, next string) *pack.VersionList {
	l := &pack.VersionList{Items: make([]pack.Version, n), Next: next}
	for i := range l.Items {
		v := &l.Items[i]
		*v = pack.Version{Name: fmt.Sprintf("bench/packs/p%03d", i%100), Version: fmt.Sprintf("1.0.%d", i),
			Digest: "sha256:" + strings.Repeat(fmt.Sprintf("%02x", i%256), 32), MediaType: "application/vnd.oci.image.manifest.v1+json",
			ArtifactType: "application/vnd.packreg.pack.v1", Size: 600, TotalSize: 4000, Status: storage.PackActive,
			StatusReason: "<&>", Description: "é\"\\", CreatedAt: pack.Timestamp(time.Unix(int64(i), int64(i)).UTC()),
			UpdatedAt:       pack.Timestamp(time.Unix(int64(i), 0).UTC()),
			Files:           []storage.PackFile{{Name: "rules.yaml", Digest: digest.Digest("sha256:" + strings.Repeat("cd", 32)), Size: 1024, MediaType: "application/vnd.packreg.pack.file.v1"}},
			SignatureReport: &pack.SignatureReport{Verification: "unsigned", Signatures: []string{}, Attestations: []map[string]any{{"status": "missing"}}}}
		if i%10 == 0 {
			v.Labels = map[string]string{"tier": "gold", "team": "ops"}
		}
	}
	return l
}

// A page is streamed a version at a time (VersionList.StreamJSON), in the
// bytes the Encoder writes for the whole value: every layout a client
// may see, empty and nil included.
func TestListPageStreamedIsTheEncoders(t *testing.T) {
	for name, l := range map[string]*pack.VersionList{
		"nil items":  {Next: "c"},
		"no items":   {Items: []pack.Version{}},
		"one":        listPage(1, ""),
		"one, next":  listPage(1, "djE6MTox"),
		"many, next": listPage(3000, "djE6MTox"), // several of the indenter's chunks
		"odd next":   {Items: []pack.Version{}, Next: "<\"&\\>"},
	} {
		t.Run(name, func(t *testing.T) { sameAsEncoder(t, l) })
	}
}

// The unpaged list of a pack's versions is streamed too.
func TestVersionsStreamedIsTheEncoders(t *testing.T) {
	for name, v := range map[string]*pack.Versions{
		"nil":  {Name: "acme/rules"},
		"none": {Name: "acme/<rules>", Versions: []pack.Version{}},
		"many": {Name: "bench/packs/p001", Versions: listPage(3000, "").Items},
	} {
		t.Run(name, func(t *testing.T) { sameAsEncoder(t, v) })
	}
}

// sameAsEncoder checks that apierr.JSON writes v in the
// bytes the indenting Encoder writes for it whole.
func sameAsEncoder(t *testing.T, v any) {
	t.Helper()
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	apierr.JSON(w, 200, v)
	if !bytes.Equal(w.Body.Bytes(), want.Bytes()) {
		t.Fatalf("streamed answer (%d bytes) differs from the Encoder's (%d bytes)", w.Body.Len(), want.Len())
	}
}

// Writing a page holds one version's JSON at a time, not the page's: the
// Encoder marshaled the whole page into a buffer first, which it grew by
// doubling (and its pool then kept), so a 1,000-version page allocated
// more than twice its compact JSON. What is left grows with the page is
// each version's own garbage (its times' text, its labels' sorted keys).
func TestListPageMemoryPerVersion(t *testing.T) {
	if raceOn {
		t.Skip("allocation figures under the race detector: its sync.Pool drops what the Encoder keeps")
	}
	compact, _ := json.Marshal(listPage(1, ""))
	for name, answer := range map[string]func(n int) any{
		"page":     func(n int) any { return listPage(n, "next") },
		"versions": func(n int) any { return &pack.Versions{Name: "p", Versions: listPage(n, "").Items} },
	} {
		perVersion := func(n int) float64 {
			v := answer(n)
			w := discard{h: map[string][]string{}}
			var before, after runtime.MemStats
			runtime.GC() // twice: the Encoder's pool keeps its buffers one collection
			runtime.GC()
			runtime.ReadMemStats(&before)
			apierr.JSON(w, 200, v)
			runtime.ReadMemStats(&after)
			return float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
		}
		small, large := perVersion(10), perVersion(1000)
		t.Logf("%s: bytes allocated per version: 10 versions %.0f, 1,000 %.0f; a version's compact JSON %d", name, small, large, len(compact))
		if large > float64(len(compact))/2 {
			t.Errorf("%s: 1,000 versions allocated %.0f bytes per version, over half a version's JSON (%d): the answer is built whole", name, large, len(compact))
		}
	}
}
