package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Helpers for the tests that break a backend under a running server
// (postgres_restart_test.go, s3fault_test.go): raw requests that report
// instead of failing the test, so many goroutines can push at once, and
// the contract every answer must keep while a backend is down.

// answer is one request and what came back.
type answer struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
	err          error // transport error (the server hung up, a timeout)
	took         time.Duration
}

// maxAnswerTime bounds every request during an outage: a backend that is
// down must make requests fail, not wait.
const maxAnswerTime = 20 * time.Second

// outageClient sends requests from many goroutines and keeps every answer
// that breaks the outage contract.
type outageClient struct {
	base string
	hc   *http.Client

	mu       sync.Mutex
	problems []string
	count503 int
	resumed  int // chunked pushes that went through a 503 and completed
}

func newOutageClient(base string) *outageClient {
	// The client timeout is above maxAnswerTime so a slow answer is
	// reported as such rather than as a client-side timeout.
	return &outageClient{base: base, hc: &http.Client{Timeout: maxAnswerTime + 10*time.Second}}
}

// send makes one request and checks its answer against the contract: an
// answer (no dropped connection) within maxAnswerTime, and a 5xx only as
// 503 UNAVAILABLE with Retry-After and no internals in the message.
func (c *outageClient) send(method, path string, hdr http.Header, body []byte) answer {
	a := answer{method: method, path: path}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url(path), rd)
	if err != nil {
		a.err = err
		c.problem(a, "bad request")
		return a
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err == nil {
		a.body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		a.status, a.header = resp.StatusCode, resp.Header
	}
	a.took = time.Since(start)
	a.err = err
	switch {
	case a.err != nil:
		c.problem(a, "no answer")
	case a.took > maxAnswerTime:
		c.problem(a, fmt.Sprintf("answered after %s", a.took.Round(time.Millisecond)))
	case a.status >= 500:
		if why := unavailableProblem(a); why != "" {
			c.problem(a, why)
		} else {
			c.mu.Lock()
			c.count503++
			c.mu.Unlock()
		}
	}
	return a
}

// unavailableProblem says what is wrong with a 5xx answer, "" when it is
// the retryable 503 UNAVAILABLE the outage contract allows.
func unavailableProblem(a answer) string {
	if a.status != http.StatusServiceUnavailable {
		return fmt.Sprintf("status %d, want 503 for a backend outage", a.status)
	}
	if !strings.HasPrefix(a.path, "/v2/") {
		return "" // /readyz: for load balancers, a plain 503 is the answer
	}
	if a.header.Get("Retry-After") == "" {
		return "503 without Retry-After"
	}
	if a.method == http.MethodHead {
		return ""
	}
	var env struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(a.body, &env); err != nil || len(env.Errors) == 0 {
		return "503 without an OCI error envelope"
	}
	if env.Errors[0].Code != "UNAVAILABLE" {
		return fmt.Sprintf("503 with code %s, want UNAVAILABLE", env.Errors[0].Code)
	}
	low := strings.ToLower(env.Errors[0].Message)
	for _, leak := range []string{"postgres", "pgx", "sql", "s3:", "dial", "tcp", "127.0.0.1", "bucket", "/uploads/"} {
		if strings.Contains(low, leak) {
			return fmt.Sprintf("503 message leaks internals (%q)", leak)
		}
	}
	return ""
}

func (c *outageClient) problem(a answer, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msg := fmt.Sprintf("%s %s: %s", a.method, a.path, why)
	if a.err != nil {
		msg += ": " + a.err.Error()
	} else if len(a.body) > 0 {
		msg += ": " + clip(strings.TrimSpace(string(a.body)))
	}
	c.problems = append(c.problems, msg)
}

// report returns the problems so far and the number of clean 503s.
func (c *outageClient) report() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.problems...), c.count503
}

// resumedPushes is how many chunked pushes completed after a 503.
func (c *outageClient) resumedPushes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resumed
}

func (c *outageClient) url(pathOrLoc string) string {
	if strings.HasPrefix(pathOrLoc, "http://") || strings.HasPrefix(pathOrLoc, "https://") {
		if i := strings.Index(pathOrLoc[len("https://"):], "/"); i >= 0 {
			pathOrLoc = pathOrLoc[len("https://")+i:]
		}
	}
	return c.base + pathOrLoc
}

// pushMode is how a blob goes up.
type pushMode int

const (
	pushMonolithic pushMode = iota // POST ?digest= with the body
	pushPostPut                    // POST, then PUT ?digest= with the body
	pushChunked                    // POST, PATCHes, then an empty PUT ?digest=
	pushModes
)

func (m pushMode) String() string {
	return [...]string{"monolithic", "POST+PUT", "chunked"}[m]
}

// blobData returns size deterministic bytes for seed, so acknowledged
// blobs can be checked later without keeping them in memory.
func blobData(seed uint64, size int) []byte {
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), byte(seed >> 32), 'o', 'u', 't'}).Read(b)
	return b
}

// pushed is a blob push and whether the registry acknowledged it.
type pushed struct {
	repo   string
	digest string
	seed   uint64
	size   int
	mode   pushMode
	acked  bool
}

// pushBlob pushes data in mode. A chunked push retries its PATCHes and the
// closing PUT through 503s for up to retryFor, resuming from the offset the
// registry reports, as real clients do; the other modes make one attempt.
// It reports whether the registry answered 201 with the right digest.
func (c *outageClient) pushBlob(repo string, data []byte, mode pushMode, chunk int, retryFor time.Duration) bool {
	d := sha256Digest(data)
	octet := http.Header{"Content-Type": {"application/octet-stream"}}
	created := func(a answer) bool {
		return a.status == http.StatusCreated && a.header.Get("Docker-Content-Digest") == d
	}
	if mode == pushMonolithic {
		return created(c.send("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, octet, data))
	}
	a := c.send("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if a.status != http.StatusAccepted {
		return false
	}
	loc := a.header.Get("Location")
	if mode == pushPostPut {
		return created(c.send("PUT", addQuery(loc, "digest", d), octet, data))
	}
	deadline := time.Now().Add(retryFor)
	// resync asks where the upload stands after a failed step.
	resync := func() (string, int, bool) {
		for time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			st := c.send("GET", loc, nil, nil)
			switch st.status {
			case http.StatusNoContent:
				rg := st.header.Get("Range")
				_, end, ok := strings.Cut(rg, "-")
				n, err := strconv.Atoi(end)
				if !ok || err != nil {
					return "", 0, false
				}
				if rg == "0-0" {
					// What an empty upload reports; this client's chunks
					// are larger than one byte.
					return st.header.Get("Location"), 0, true
				}
				return st.header.Get("Location"), n + 1, true
			case http.StatusServiceUnavailable:
				continue
			default:
				return "", 0, false
			}
		}
		return "", 0, false
	}
	off, resyncs := 0, 0
	done := func() bool {
		if resyncs > 0 {
			c.mu.Lock()
			c.resumed++
			c.mu.Unlock()
		}
		return true
	}
	for off < len(data) {
		end := min(off+chunk, len(data))
		p := c.send("PATCH", loc, http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", off, end-1)},
		}, data[off:end])
		switch p.status {
		case http.StatusAccepted:
			loc, off = p.header.Get("Location"), end
			continue
		case http.StatusServiceUnavailable, http.StatusRequestedRangeNotSatisfiable:
			// Unavailable, or a replayed chunk the first attempt did record.
		default:
			return false
		}
		resyncs++
		var ok bool
		if loc, off, ok = resync(); !ok {
			return false
		}
		if off > len(data) || (off > 0 && off%chunk != 0 && off != len(data)) {
			return false // an offset this client never sent: the next PATCH would say so too
		}
	}
	for {
		a := c.send("PUT", addQuery(loc, "digest", d), nil, nil)
		if created(a) {
			return done()
		}
		resyncs++
		if a.status != http.StatusServiceUnavailable || !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
		// A PUT whose commit went through but whose answer was a 503
		// (the link or the session delete failed) leaves the upload
		// there to be committed again, or already gone with the blob
		// linked: then the blob answers.
		if h := c.send("HEAD", "/v2/"+repo+"/blobs/"+d, nil, nil); h.status == http.StatusOK {
			return done()
		}
	}
}
