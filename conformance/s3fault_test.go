package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var s3faultBuild struct {
	once sync.Once
	bin  string
	err  error
}

// s3faultProxy is a running storage/s3/s3fault/cmd/s3fault process: the
// fault-injecting S3 proxy, run as a binary because this package imports
// nothing of packreg.
type s3faultProxy struct {
	URL  string // http://host:port, to use as the S3 endpoint
	cmd  *exec.Cmd
	done chan struct{}
}

// s3ForProxy returns an isolated storage URL on PACKREG_TEST_S3 and its
// endpoint, for a proxy to stand in front of; it skips without one.
func s3ForProxy(t testing.TB) (storage, endpoint string) {
	t.Helper()
	direct := isolatedS3(t, needEnv(t, "PACKREG_TEST_S3"))
	loc := parseS3Location(t, direct)
	if loc.endpoint == "" {
		t.Skip("PACKREG_TEST_S3 has no endpoint to put a proxy in front of")
	}
	return direct, loc.endpoint
}

// startS3Fault builds (once) and starts the proxy in front of target with
// the fault flags given. PACKREG_S3FAULT_SEED replays a run; the seed used
// is logged.
func startS3Fault(t testing.TB, target string, flags ...string) *s3faultProxy {
	t.Helper()
	s3faultBuild.once.Do(func() {
		s3faultBuild.bin = filepath.Join(filepath.Dir(packregBin), "s3fault")
		out, err := exec.Command("go", "build", "-o", s3faultBuild.bin, "../storage/s3/s3fault/cmd/s3fault").CombinedOutput()
		if err != nil {
			s3faultBuild.err = fmt.Errorf("building s3fault: %v\n%s", err, out)
		}
	})
	if s3faultBuild.err != nil {
		t.Fatal(s3faultBuild.err)
	}
	args := append([]string{"-target", target}, flags...)
	if seed := os.Getenv("PACKREG_S3FAULT_SEED"); seed != "" {
		args = append(args, "-seed", seed)
	}
	p := &s3faultProxy{cmd: exec.Command(s3faultBuild.bin, args...), done: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	p.cmd.Stderr = &stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case l := <-line:
		var addr string
		var seed uint64
		if _, err := fmt.Sscanf(l, "listening %s seed %d", &addr, &seed); err != nil {
			t.Fatalf("s3fault said %q: %v", l, err)
		}
		p.URL = "http://" + addr
		t.Logf("s3fault on %s in front of %s (%s), seed %d (PACKREG_S3FAULT_SEED replays it)", p.URL, target, strings.Join(flags, " "), seed)
	case <-p.done:
		t.Fatalf("s3fault exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("s3fault did not start within 30s")
	}
	return p
}

// setFaults changes the proxy's faults (JSON as cmd/s3fault documents).
func (p *s3faultProxy) setFaults(t testing.TB, faults string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", p.URL+"/-/faults", strings.NewReader(faults))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("s3fault PUT /-/faults: %s %s", resp.Status, b)
	}
}

// stats returns the proxy's counters.
func (p *s3faultProxy) stats(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(p.URL + "/-/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// s3Location splits a storage URL made by isolatedS3 into what an SDK
// client needs.
type s3Location struct {
	bucket, prefix, endpoint, region string
}

func parseS3Location(t testing.TB, raw string) s3Location {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	return s3Location{bucket: u.Host, prefix: strings.Trim(u.Path, "/"), endpoint: q.Get("endpoint"), region: q.Get("region")}
}

// withQuery returns the storage URL raw with query keys set.
func withQuery(t testing.TB, raw string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// client is an SDK client straight to the S3 server (credentials from the
// standard AWS environment, as the server's).
func (l s3Location) client(t testing.TB) *s3.Client {
	t.Helper()
	opts := []func(*awsconfig.LoadOptions) error{}
	if l.region != "" {
		opts = append(opts, awsconfig.WithRegion(l.region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		if l.endpoint != "" {
			o.BaseEndpoint = aws.String(l.endpoint)
		}
	})
}

// eachObject calls fn with the key and size of every object under prefix.
func (l s3Location) eachObject(t testing.TB, cl *s3.Client, prefix string, fn func(key string, size int64)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: &l.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		for _, o := range page.Contents {
			fn(aws.ToString(o.Key), aws.ToInt64(o.Size))
		}
	}
}

// keys lists the object keys and the multipart uploads under prefix.
func (l s3Location) keys(t testing.TB, cl *s3.Client, prefix string) (objects, multipart []string) {
	t.Helper()
	l.eachObject(t, cl, prefix, func(key string, _ int64) { objects = append(objects, key) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := &s3.ListMultipartUploadsInput{Bucket: &l.bucket, Prefix: &prefix}
	for {
		out, err := cl.ListMultipartUploads(ctx, in)
		if err != nil {
			t.Fatalf("list multipart uploads %s: %v", prefix, err)
		}
		for _, m := range out.Uploads {
			multipart = append(multipart, aws.ToString(m.Key))
		}
		if !aws.ToBool(out.IsTruncated) {
			return objects, multipart
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// TestS3Faults runs packreg on S3 through the fault-injecting proxy (500
// and 503 answers, answers lost after S3 acted, responses and request
// bodies cut halfway) with few retries, so some pushes fail, while clients
// push blobs of every shape: monolithic, POST+PUT and chunked, below and
// across the 5 MiB part size. The registry answers every request with
// success or a clean 503; every blob it acknowledged is served
// byte-exact afterwards, by another replica that talks to S3 directly and
// by itself through cut connections; no blob whose push failed is visible;
// and every object under blobs/ in the bucket holds exactly the bytes its
// digest names.
func TestS3Faults(t *testing.T) {
	direct, endpoint := s3ForProxy(t)
	pgURL := needEnv(t, "PACKREG_TEST_POSTGRES")
	proxy := startS3Fault(t, endpoint, "-reject", "0.05", "-lose", "0.04", "-cut", "0.04", "-cut-request", "0.03")
	// Two attempts per S3 call with short backoffs: most pushes get
	// through, some fail, and the test sees both.
	faulty := withQuery(t, direct, "endpoint", proxy.URL, "part_size", "5MiB", "max_attempts", "2", "max_backoff", "50ms")
	db := isolatedPostgres(t, pgURL)
	a := startServer(t, "--storage", faulty, "--database", db)
	b := startServer(t, "--storage", withQuery(t, direct, "part_size", "5MiB"), "--database", db)
	a.dumpLogOnFailure()
	c := newOutageClient(a.URL)

	type job struct {
		size  int
		mode  pushMode
		chunk int
	}
	shapes := []job{
		{1 << 10, pushMonolithic, 0},
		{64 << 10, pushPostPut, 0},
		{700 << 10, pushChunked, 300 << 10},
		{5<<20 + 7, pushChunked, 2 << 20},
		{6<<20 + 123, pushPostPut, 0},
		{300 << 10, pushMonolithic, 0},
		{11<<20 + 5, pushChunked, 4 << 20},
	}
	const n = 28
	results := make([]pushed, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				sh := shapes[i%len(shapes)]
				p := pushed{repo: "faults/blobs", seed: uint64(7000 + i), size: sh.size, mode: sh.mode}
				data := blobData(p.seed, p.size)
				p.digest = sha256Digest(data)
				p.acked = c.pushBlob(p.repo, data, sh.mode, sh.chunk, 0)
				results[i] = p
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("proxy: %s", proxy.stats(t))
	problems, n503 := c.report()
	for _, p := range problems {
		t.Error(p)
	}

	// Reads: through the other replica (straight to S3) and through the
	// faulty one with cut GET responses only, which the store resumes (up
	// to its attempts; past them the client sees a short body, never
	// other bytes).
	proxy.setFaults(t, `{"cut":0.1,"methods":["GET"]}`)
	cb := newClient(t, b.URL)
	shortReads := 0
	acked := map[string]bool{}
	for _, r := range results {
		acked[r.digest] = acked[r.digest] || r.acked
	}
	ok := 0
	for _, r := range results {
		if !r.acked {
			if !acked[r.digest] {
				if code := cb.blobStatus(r.repo, r.digest); code != http.StatusNotFound {
					t.Errorf("%s push of %d bytes failed, yet HEAD %s answers %d", r.mode, r.size, r.digest, code)
				}
			}
			continue
		}
		ok++
		want := blobData(r.seed, r.size)
		if got := cb.getBlob(r.repo, r.digest); !bytes.Equal(got, want) {
			t.Errorf("%s push of %d bytes acknowledged; the direct replica serves %d other bytes", r.mode, r.size, len(got))
		}
		got, complete := readThrough(t, a.URL+"/v2/"+r.repo+"/blobs/"+r.digest, len(want))
		switch {
		case !complete:
			shortReads++
		case !bytes.Equal(got, want):
			t.Errorf("%s push of %d bytes acknowledged; served through cut connections as %d other bytes", r.mode, r.size, len(got))
		}
	}
	t.Logf("%d of %d pushes acknowledged, %d answered 503; %d reads through cut connections ended short (the client saw it); proxy: %s",
		ok, n, n503, shortReads, proxy.stats(t))
	if shortReads > ok/4 {
		t.Errorf("%d of %d reads through cut connections ended short: the store does not resume", shortReads, ok)
	}
	if ok < n/2 {
		t.Errorf("only %d of %d pushes got through 2 attempts per S3 call", ok, n)
	}
	if ok == n && n503 == 0 {
		t.Log("every push got through: the failure path went untested this run")
	}

	// Nothing in the bucket's blobs/ holds bytes other than its name says.
	loc := parseS3Location(t, direct)
	cl := loc.client(t)
	objects, _ := loc.keys(t, cl, loc.prefix+"/blobs/")
	for _, key := range objects {
		out, err := cl.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &loc.bucket, Key: &key})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); path.Base(key) != got {
			t.Errorf("S3 object %s holds bytes hashing to %s", key, got)
		}
	}
	if len(objects) < ok {
		t.Errorf("%d blobs acknowledged but %d objects under blobs/", ok, len(objects))
	}
}

// readThrough GETs a blob of size bytes. complete is false when the
// answer was cut short: the server had started a 200 when its S3 reads
// gave up, and the client can tell from the length.
func readThrough(t testing.TB, url string, size int) (body []byte, complete bool) {
	t.Helper()
	resp, err := (&http.Client{Timeout: time.Minute}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, clip(string(b)))
	}
	if resp.ContentLength != int64(size) {
		t.Fatalf("GET %s: Content-Length %d, want %d", url, resp.ContentLength, size)
	}
	body, err = io.ReadAll(resp.Body)
	return body, err == nil && len(body) == size
}

// TestS3JanitorPurgesLeftovers: with a short upload TTL, the background
// janitor of packreg on S3 expires an idle session (record and data) and
// purges what no session names: an orphaned multipart upload and a staged
// segment, as crashed attempts leave them. Committed blobs stay.
func TestS3JanitorPurgesLeftovers(t *testing.T) {
	s3URL := needEnv(t, "PACKREG_TEST_S3")
	storage := isolatedS3(t, s3URL)
	loc := parseS3Location(t, storage)
	cfg := filepath.Join(t.TempDir(), "packreg.yaml")
	if err := os.WriteFile(cfg, []byte("registry:\n  upload_ttl: 1s\n  janitor_interval: 500ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--config", cfg, "--storage", storage)
	s.dumpLogOnFailure()
	c := newClient(t, s.URL)

	kept := c.pushBlob("janitor/blob", []byte("a committed blob stays"))
	resp, body := c.do("POST", "/v2/janitor/blob/blobs/uploads/", nil, nil)
	expect(t, resp, body, http.StatusAccepted, "start upload")
	idle := resp.Header.Get("Location")
	resp, body = c.do("PATCH", idle, http.Header{"Content-Type": {"application/octet-stream"}}, []byte("never finished"))
	expect(t, resp, body, http.StatusAccepted, "PATCH")

	cl := loc.client(t)
	ctx := context.Background()
	uploads := loc.prefix + "/uploads/"
	orphanMP := uploads + "orphan-multipart/data"
	if _, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &loc.bucket, Key: &orphanMP}); err != nil {
		t.Fatal(err)
	}
	orphanTail := uploads + "orphan-tail/tail-0-0123456789ab"
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &loc.bucket, Key: &orphanTail, Body: strings.NewReader("staged")}); err != nil {
		t.Fatal(err)
	}
	objects, multipart := loc.keys(t, cl, uploads)
	if len(objects) < 2 || len(multipart) < 1 {
		t.Fatalf("before the janitor: objects %q, multipart uploads %q; want the session's tail and both orphans", objects, multipart)
	}

	// Leftovers go once older than twice the TTL (S3 times are whole
	// seconds), on the janitor's next round after that.
	deadline := time.Now().Add(30 * time.Second)
	for {
		objects, multipart = loc.keys(t, cl, uploads)
		if len(objects) == 0 && len(multipart) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the janitor left objects %q and multipart uploads %q", objects, multipart)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if resp, _ := c.do("GET", idle, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("idle upload session status %d after expiry, want 404", resp.StatusCode)
	}
	if got := c.getBlob("janitor/blob", kept); string(got) != "a committed blob stays" {
		t.Errorf("committed blob reads %q after the janitor ran", got)
	}
	log := s.logNow(t)
	if !strings.Contains(log, "purged upload leftovers") {
		t.Error(`no "purged upload leftovers" line in the server log`)
	}
}
