package conformance

import (
	"bytes"
	"errors"
	"io"
	"net/http"
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
	tl := newTool(t)
	for _, s := range []*server{a, off} {
		got := tl.run(crane, "blob", "--insecure", s.Addr+"/splice/blob@"+d).Stdout
		if got != string(data) {
			t.Fatalf("%s: crane blob: %d bytes that differ from the %d pushed", s.URL, len(got), len(data))
		}
		req, _ := http.NewRequest("GET", s.URL+"/v2/splice/blob/blobs/"+d, nil)
		req.Header.Set("Range", "bytes=1000-")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || err != nil || !bytes.Equal(body, data[1000:]) {
			t.Fatalf("%s: range from 1000: status %d, %d bytes (%v), want %d", s.URL, resp.StatusCode, len(body), err, len(data)-1000)
		}
	}

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
