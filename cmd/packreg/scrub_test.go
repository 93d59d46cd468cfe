package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/registry"
)

// TestScrubNow: POST /api/v1/scrub (and `packreg scrub`) re-hashes the
// stored blobs now and answers what it found; a flipped byte is found,
// and the blob is refused from then on, until a scrub finds its bytes
// restored. A scrub while another holds the lease is refused with 409.
func TestScrubNow(t *testing.T) {
	dir := t.TempDir()
	h := edgeApp(t, func(c *Config) { c.Data = dir })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	good, rot := []byte("stays good"), []byte("will rot, will rot")
	for _, b := range [][]byte{good, rot} {
		d := digest.FromBytes(digest.SHA256, b)
		if w := send(h, http.MethodPost, "/v2/scrub/app/blobs/uploads/?digest="+d.String(), b, "Content-Type", "application/octet-stream"); w.Code != 201 {
			t.Fatalf("push: %d %s", w.Code, w.Body)
		}
	}
	code, out, errOut := cliRun("scrub", "--server", srv.URL, "--json")
	var rep registry.ScrubReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Blobs != 2 || len(rep.Bad) != 0 {
		t.Fatalf("scrub of good blobs: exit %d %v %s %s", code, err, out, errOut)
	}

	bad := digest.FromBytes(digest.SHA256, rot)
	var path string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && e.Name() == bad.Hex() {
			path = p
		}
		return err
	})
	if path == "" {
		t.Fatalf("no file of %s under %s", bad, dir)
	}
	flip := func() {
		b, _ := os.ReadFile(path)
		b[3] ^= 1
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flip()
	code, out, errOut = cliRun("scrub", "--server", srv.URL)
	if code != 1 || !strings.Contains(out, bad.String()) || !strings.Contains(out, "1 found bad") {
		t.Fatalf("scrub of a flipped byte: exit %d\n%s%s", code, out, errOut)
	}
	if w := send(h, http.MethodGet, "/v2/scrub/app/blobs/"+bad.String(), nil); w.Code != 500 || strings.Contains(w.Body.String(), "will") {
		t.Fatalf("GET of the bad blob: %d %s", w.Code, w.Body)
	}
	code, out, errOut = cliRun("scrub", "--server", srv.URL, "--json")
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Bad) != 0 || len(rep.Repaired) != 0 {
		t.Fatalf("scrub of a blob still bad: exit %d %v %s %s", code, err, out, errOut)
	}

	// The file restored, the next scrub clears the finding.
	flip()
	code, out, errOut = cliRun("scrub", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, "1 found sound again") {
		t.Fatalf("scrub of the restored blob: exit %d\n%s%s", code, out, errOut)
	}
	if w := send(h, http.MethodGet, "/v2/scrub/app/blobs/"+bad.String(), nil); w.Code != 200 || w.Body.String() != string(rot) {
		t.Fatalf("GET of the restored blob: %d %s", w.Code, w.Body)
	}

	if w := send(h, http.MethodPost, "/api/v1/scrub", []byte(`{"rate":1}`), "Content-Type", "application/json"); w.Code != 400 {
		t.Errorf("unknown key: %d %s", w.Code, w.Body)
	}
	if w := send(h, http.MethodPost, "/api/v1/scrub?x=1", nil); w.Code != 400 {
		t.Errorf("a query: %d %s", w.Code, w.Body)
	}
}

// TestScrubBusy: a scrub while another replica holds the lease is 409.
func TestScrubBusy(t *testing.T) {
	a := testApp(t, nil)
	if ok, err := a.scrub.excl.leases.AcquireLease(t.Context(), scrubLease, "another replica", time.Minute); err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	if _, err := a.scrub.run(t.Context()); err != errScrubBusy {
		t.Fatalf("scrub under another's lease: %v", err)
	}
}
