package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveLine is one JSON log line of packreg serve.
type serveLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Err   string `json:"err"`
}

// refusal is what a serve that did not start left behind.
type refusal struct {
	code  int
	lines []serveLine
	raw   string
}

// startProcess starts packreg serve with env changes (KEY=VALUE; KEY= to
// remove), stderr collected. The hang guard only stops a test that would
// otherwise hang: nothing here is timed.
func startProcess(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-format", "json"}, args...)
	cmd := exec.Command(packregBin, all...)
	drop := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// wait waits for the process (at most guard, then kills it and fails).
func waitRefusal(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer, guard time.Duration) refusal {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(guard):
		cmd.Process.Kill()
		<-done
		t.Fatalf("packreg serve still running after %s (hang guard)\n%s", guard, stderr)
	}
	r := refusal{raw: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(r.raw))
	for sc.Scan() {
		var l serveLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			l = serveLine{Level: "RAW", Msg: sc.Text()}
		}
		r.lines = append(r.lines, l)
	}
	return r
}

// check asserts the refusal: exit 1, never listening, one error line
// "cannot start" that contains every want.
func (r refusal) check(t *testing.T, want ...string) {
	t.Helper()
	var errs []serveLine
	for _, l := range r.lines {
		if l.Msg == "listening" {
			t.Errorf("serve listened before refusing")
		}
		if l.Level == "ERROR" || l.Level == "RAW" {
			errs = append(errs, l)
		}
	}
	if r.code != 1 || len(errs) != 1 || errs[0].Msg != "cannot start" {
		t.Fatalf("exit %d, error lines %+v, want exit 1 and one \"cannot start\"\n%s", r.code, errs, r.raw)
	}
	for _, w := range want {
		if !strings.Contains(errs[0].Err, w) {
			t.Errorf("the line %q does not say %q", errs[0].Err, w)
		}
	}
	t.Logf("refused: %s", errs[0].Err)
}

// deafListener accepts connections and never answers: a database or S3
// endpoint that hangs. accepted is closed at the first connection.
func deafListener(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if conns = append(conns, c); len(conns) == 1 {
				close(ch)
			}
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), ch
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestStartupChecks: a store that cannot serve stops `packreg serve`
// before it listens, with exit 1 and one line naming the store and the
// cause; a SIGTERM or SIGINT while the checks wait on a backend that hangs
// stops it too.
func TestStartupChecks(t *testing.T) {
	// No credentials from a metadata service, ever: tests contact loopback only.
	noIMDS := "AWS_EC2_METADATA_DISABLED=true"
	t.Run("database down", func(t *testing.T) {
		dsn := "postgres://packreg:secret-pw@" + closedPort(t) + "/packreg?sslmode=disable"
		cmd, stderr := startProcess(t, nil, "--database", dsn)
		r := waitRefusal(t, cmd, stderr, 2*time.Minute)
		r.check(t, "database postgres://packreg:xxxxx@", "connection refused")
		if strings.Contains(r.raw, "secret-pw") {
			t.Error("the password reached the log")
		}
	})
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run("database hangs, "+sig.String(), func(t *testing.T) {
			addr, accepted := deafListener(t)
			// connect_timeout beyond the hang guard: only the signal can end it.
			dsn := "postgres://packreg@" + addr + "/packreg?sslmode=disable&connect_timeout=600"
			cmd, stderr := startProcess(t, nil, "--database", dsn, "--startup-timeout", "10m")
			awaitAccept(t, accepted, cmd, stderr)
			cmd.Process.Signal(sig)
			waitRefusal(t, cmd, stderr, time.Minute).check(t, "interrupted while starting", "database")
		})
	}
	t.Run("s3 endpoint hangs, SIGINT", func(t *testing.T) {
		addr, accepted := deafListener(t)
		cmd, stderr := startProcess(t, []string{noIMDS, "AWS_ACCESS_KEY_ID=packreg", "AWS_SECRET_ACCESS_KEY=packregsecret"},
			"--storage", "s3://packreg-test/p?endpoint=http://"+addr+"&region=us-east-1", "--startup-timeout", "10m")
		awaitAccept(t, accepted, cmd, stderr)
		cmd.Process.Signal(syscall.SIGINT)
		waitRefusal(t, cmd, stderr, time.Minute).check(t, "interrupted while starting", "storage s3://packreg-test/p")
	})
	t.Run("s3 endpoint hangs past startup_timeout", func(t *testing.T) {
		addr, _ := deafListener(t)
		cmd, stderr := startProcess(t, []string{noIMDS, "AWS_ACCESS_KEY_ID=packreg", "AWS_SECRET_ACCESS_KEY=packregsecret"},
			"--storage", "s3://packreg-test/p?endpoint=http://"+addr+"&region=us-east-1", "--startup-timeout", "2s")
		waitRefusal(t, cmd, stderr, 2*time.Minute).check(t, "did not answer within startup_timeout (2s)", "storage s3://packreg-test/p")
	})

	base := needEnv(t, "PACKREG_TEST_S3")
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	missing := fmt.Sprintf("s3://packreg-missing-%s/p?endpoint=%s&region=%s", randomName("b"), url.QueryEscape(q.Get("endpoint")), q.Get("region"))
	t.Run("s3 bucket missing", func(t *testing.T) {
		cmd, stderr := startProcess(t, []string{noIMDS}, "--storage", missing)
		waitRefusal(t, cmd, stderr, 2*time.Minute).check(t, "does not exist", "packreg-missing-")
	})
	t.Run("s3 credentials refused", func(t *testing.T) {
		cmd, stderr := startProcess(t, []string{noIMDS, "AWS_SECRET_ACCESS_KEY=not-the-secret"}, "--storage", isolatedS3(t, base))
		r := waitRefusal(t, cmd, stderr, 2*time.Minute)
		r.check(t, "credentials were refused", u.Host)
		if strings.Contains(r.raw, "not-the-secret") {
			t.Error("the secret reached the log")
		}
	})
	t.Run("s3 credentials missing", func(t *testing.T) {
		dir := t.TempDir()
		cmd, stderr := startProcess(t, []string{noIMDS, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=",
			"AWS_PROFILE=", "AWS_CONFIG_FILE=" + dir + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + dir + "/none",
			"AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_WEB_IDENTITY_TOKEN_FILE="},
			"--storage", isolatedS3(t, base))
		waitRefusal(t, cmd, stderr, 2*time.Minute).check(t, "no AWS credentials found")
	})
}

// awaitAccept waits until the process has connected to the deaf backend.
func awaitAccept(t *testing.T, accepted <-chan struct{}, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	select {
	case <-accepted:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("packreg never connected to the backend (hang guard)\n%s", stderr)
	}
}
