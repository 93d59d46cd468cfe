package conformance

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// TestS3SplicedPull: blobs pulled from a registry on a plain http:// S3
// endpoint (where packreg splices the S3 body to the client's socket)
// reach crane and a ranged GET byte-exact; with splice=false too. When S3
// cuts every GET mid-body, the client's read fails: a cut connection,
// never a short body passed off as complete.
func TestS3SplicedPull(t *testing.T) {
	crane := needTool(t, "crane")
	direct, endpoint := s3ForProxy(t)
	pgURL := needEnv(t, "PACKREG_TEST_POSTGRES")
	proxy := startS3Fault(t, endpoint)
	db := isolatedPostgres(t, pgURL)
	a := startServer(t, "--storage", withQuery(t, direct, "endpoint", proxy.URL, "max_attempts", "2", "max_backoff", "10ms"), "--database", db)
	off := startServer(t, "--storage", withQuery(t, direct, "splice", "false"), "--database", db)
	a.dumpLogOnFailure()
	data := randomBytes(t, 9<<20+123)
	d := newClient(t, a.URL).pushBlob("splice/blob", data)
	pullsExact(t, crane, "splice/blob", d, data, a, off)

	proxy.setFaults(t, `{"cut":1,"methods":["GET"]}`)
	resp, err := http.Get(a.URL + "/v2/splice/blob/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && (!errors.Is(err, io.ErrUnexpectedEOF) || len(body) >= len(data)) {
		t.Fatalf("S3 cutting every GET: status 200, %d of %d bytes, error %v; want a cut connection", len(body), len(data), err)
	}
	if resp.StatusCode == http.StatusOK && len(body) == 0 {
		t.Fatal("S3 cutting every GET: no byte reached the client; the cut was not mid-body")
	}
}

// TestDiskPullToLoopbackClient: a disk blob pulled by a client on the
// server's host (sent with sendfile, whole or a range) reaches crane and
// ranged GETs byte-exact.
func TestDiskPullToLoopbackClient(t *testing.T) {
	crane := needTool(t, "crane")
	s := startServer(t)
	data := randomBytes(t, 9<<20+123)
	d := newClient(t, s.URL).pushBlob("local/blob", data)
	pullsExact(t, crane, "local/blob", d, data, s)
}

// pullsExact pulls blob d of repo from each server with crane and with
// ranged GETs (from an offset, a span, a suffix), all byte-exact.
func pullsExact(t *testing.T, crane, repo, d string, data []byte, servers ...*server) {
	t.Helper()
	tl := newTool(t)
	for _, s := range servers {
		got := tl.run(crane, "blob", "--insecure", s.Addr+"/"+repo+"@"+d).Stdout
		if got != string(data) {
			t.Fatalf("%s: crane blob: %d bytes that differ from the %d pushed", s.URL, len(got), len(data))
		}
		n := len(data)
		for _, c := range []struct {
			rg   string
			want []byte
		}{{"bytes=1000-", data[1000:]}, {"bytes=5-" + strconv.Itoa(n/2), data[5 : n/2+1]}, {"bytes=-77", data[n-77:]}} {
			req, _ := http.NewRequest("GET", s.URL+"/v2/"+repo+"/blobs/"+d, nil)
			req.Header.Set("Range", c.rg)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusPartialContent || err != nil || !bytes.Equal(body, c.want) {
				t.Fatalf("%s: range %s: status %d, %d bytes (%v), want %d", s.URL, c.rg, resp.StatusCode, len(body), err, len(c.want))
			}
		}
	}
}
