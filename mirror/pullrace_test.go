package mirror_test

import (
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/storage"
)

// TestPullThroughManyAtOnce: clients miss the same versions at once (a
// fleet starting) while a pull sync of the same upstream runs: the
// pull-throughs share their fetches, the sync copies the same content
// meanwhile, and every client gets the upstream's manifest.
func TestPullThroughManyAtOnce(t *testing.T) {
	a := newPackReg(t, mutable)
	fxs := []fixture{publish(a, "acme/rules", "1.0.0"), publish(a, "acme/rules", "1.1.0"), publish(a, "acme/tools", "1.0.0")}
	c := newPrimary(t)
	var v mirror.View
	c.call(t, "POST", "/api/v1/upstreams", map[string]any{"name": "hq", "url": a.Srv.URL, "include": []string{"acme/*"}, "prefix": "hq"},
		http.StatusCreated, &v)
	var started struct{ Run int64 }
	c.call(t, "POST", "/api/v1/upstreams/"+v.ID+"/sync", nil, http.StatusAccepted, &started)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			name, version := "acme/rules", "1.0.0"
			switch i % 3 {
			case 1:
				version = "1.1.0"
			case 2:
				name = "acme/tools"
			}
			resp, err := http.Get(c.Srv.URL + "/v2/hq/" + name + "/manifests/" + version)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := dg(fxs[i%3].pack); resp.StatusCode != http.StatusOK || sha(body) != want {
				t.Errorf("client %d, %s:%s: %d %s, want %s", i, name, version, resp.StatusCode, sha(body), want)
			}
		})
	}
	wg.Wait()
	if run := c.waitRun(t, "upstream", v.ID, started.Run); run.State != storage.RunSucceeded || run.Counts.VersionsDone != 3 {
		t.Fatalf("the sync beside the pull-throughs: %+v", run)
	}
	for i, version := range []string{"1.0.0", "1.1.0"} {
		checkCopied(t, c.testReg, "hq/acme/rules", version, fxs[i])
	}
	checkCopied(t, c.testReg, "hq/acme/tools", "1.0.0", fxs[2])
}
