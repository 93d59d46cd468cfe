package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// packregBin is the binary under test, built once by TestMain.
var packregBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "packreg-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	packregBin = filepath.Join(tmp, "packreg")
	args := []string{"build", "-o", packregBin}
	// PACKREG_CONFORMANCE_RACE=1 (make test-race-conformance) builds the
	// binary under test with the race detector: the servers and CLI runs
	// the suite starts (which inherit the environment) write any race
	// they see under tmp, and the run fails on it. This drives the
	// two-replica, PostgreSQL and S3 paths with real clients, which the
	// packages' own -race runs cannot.
	raceLog := ""
	if os.Getenv("PACKREG_CONFORMANCE_RACE") != "" {
		args = append(args, "-race")
		raceLog = filepath.Join(tmp, "race")
		os.Setenv("GORACE", "log_path="+raceLog)
	}
	build := exec.Command("go", append(args, "../cmd/packreg")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance: building packreg:", err)
		return 1
	}
	// The pinned tools live in $GOPATH/bin (.ci/tools.sh puts them there).
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			os.Setenv("PATH", filepath.Join(p, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
	}
	code := m.Run()
	if raceLog != "" && !raceFree(raceLog) {
		code = 1
	}
	return code
}

// raceFree prints the race reports written under prefix (the race
// detector's log_path, one file per process), false when there were any.
func raceFree(prefix string) bool {
	logs, _ := filepath.Glob(prefix + ".*")
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		fmt.Fprintf(os.Stderr, "conformance: the race detector reported, in %s:\n%s\n", l, b)
	}
	return len(logs) == 0
}

// inCI reports whether missing tools and services must fail instead of skip.
func inCI() bool { return os.Getenv("CI") != "" }

// needTool returns the path of a client, skipping the test when it is
// missing (failing in CI).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if inCI() {
			t.Fatalf("%s not installed (run bash .ci/tools.sh): %v", name, err)
		}
		t.Skipf("%s not installed (run bash .ci/tools.sh)", name)
	}
	return p
}

// needEnv returns the value of an environment variable naming a service,
// skipping the test when unset (failing in CI).
func needEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if inCI() {
			t.Fatalf("%s is not set; .ci/run starts the service and sets it", name)
		}
		t.Skipf("%s is not set (eval \"$(bash .ci/pg.sh)\"; eval \"$(bash .ci/s3.sh)\")", name)
	}
	return v
}

// server is one running `packreg serve` process.
type server struct {
	t       testing.TB
	Addr    string // 127.0.0.1:port it listens on
	URL     string // http://Addr
	Data    string
	args    []string // serve flags beyond --addr and --log-format
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
	stopped bool
}

// startServer starts packreg serve on a free loopback port with a fresh
// --data directory (unless args already choose the stores), waits until
// /readyz answers 200, and stops it (SIGTERM, expecting a clean exit) when
// the test ends.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	data := t.TempDir()
	return startServerAt(t, data, args...)
}

func startServerAt(t testing.TB, data string, args ...string) *server {
	t.Helper()
	s := &server{t: t, Data: data, args: args}
	s.start()
	t.Cleanup(func() {
		if !s.stopped {
			s.stop()
		}
		if !t.Failed() {
			os.Remove(s.logPath)
		}
	})
	return s
}

// restart starts a new process with the same flags and data directory (on a
// new port). The old process must have exited.
func (s *server) restart() *server {
	s.t.Helper()
	return startServerAt(s.t, s.Data, s.args...)
}

var logSeq struct {
	sync.Mutex
	n int
}

func (s *server) start() {
	t := s.t
	t.Helper()
	logSeq.Lock()
	logSeq.n++
	s.logPath = filepath.Join(os.TempDir(), fmt.Sprintf("packreg-conformance-%d-%d.log", os.Getpid(), logSeq.n))
	logSeq.Unlock()
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", s.Data, "--log-format", "json", "--shutdown-timeout", "20s"}, s.args...)
	s.cmd = exec.Command(packregBin, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = logFile
	s.cmd.Stderr = pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	s.done = make(chan struct{})
	addr := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		// Copy the log to its file, watching for the "listening" line.
		defer close(copied)
		defer logFile.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			logFile.Write(line)
			logFile.Write([]byte{'\n'})
			if !found {
				var rec struct {
					Msg  string `json:"msg"`
					Addr string `json:"addr"`
				}
				if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" && rec.Addr != "" {
					found = true
					addr <- rec.Addr
				}
			}
		}
		io.Copy(logFile, pr)
	}()
	go func() {
		s.waitErr = s.cmd.Wait()
		<-copied
		close(s.done)
	}()
	select {
	case a := <-addr:
		s.Addr = a
	case <-s.done:
		t.Fatalf("packreg serve exited before listening: %v\n%s", s.waitErr, s.logTail(4000))
	case <-time.After(60 * time.Second):
		s.kill()
		t.Fatalf("packreg serve did not listen within 60s\n%s", s.logTail(4000))
	}
	s.URL = "http://" + s.Addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			t.Fatalf("packreg not ready after 30s (last: %v)\n%s", err, s.logTail(4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("packreg serving on %s (data %s, log %s)", s.Addr, s.Data, s.logPath)
}

// stop sends SIGTERM and expects a clean exit within the shutdown timeout.
func (s *server) stop() {
	s.t.Helper()
	s.stopped = true
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.waitErr != nil {
			s.t.Errorf("packreg exited with %v after SIGTERM\n%s", s.waitErr, s.logTail(4000))
		}
	case <-time.After(40 * time.Second):
		s.kill()
		s.t.Errorf("packreg did not exit within 40s of SIGTERM\n%s", s.logTail(4000))
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.stopped = true
	_ = s.cmd.Process.Kill()
	<-s.done
}

// logTail returns the end of the server log, for failure messages.
func (s *server) logTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return "--- packreg log tail (" + s.logPath + ") ---\n" + string(b)
}

// logNow returns the server log with every line of what happened before
// the call: the server buffers its log (up to 100 ms), so it sends a
// request with an id of its own and waits until that request's line is
// written; the lines before it are out too.
func (s *server) logNow(t *testing.T) string {
	t.Helper()
	mark := fmt.Sprintf("logmark-%d", time.Now().UnixNano())
	req, err := http.NewRequest(http.MethodGet, s.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", mark)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("log mark: %v", err)
	}
	resp.Body.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(s.logPath)
		if strings.Contains(string(b), mark) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log has no line for request %s after 10s\n%s", mark, s.logTail(2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dumpLogOnFailure prints the server's warnings and errors when the test
// fails (the full log, one JSON line per request, stays in s.logPath).
func (s *server) dumpLogOnFailure() {
	s.t.Cleanup(func() {
		if !s.t.Failed() {
			return
		}
		b, _ := os.ReadFile(s.logPath)
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
				lines = append(lines, l)
			}
		}
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		s.t.Logf("packreg log %s, warnings and errors:\n%s", s.logPath, strings.Join(lines, "\n"))
	})
}

// cmdResult is the outcome of one client command.
type cmdResult struct {
	Stdout, Stderr string
}

// tool runs client commands in one working directory with one environment
// (a private HOME and client config dirs, so no user config leaks in).
type tool struct {
	t   testing.TB
	dir string
	env []string
}

func newTool(t testing.TB, extraEnv ...string) *tool {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_RUNTIME_DIR=" + filepath.Join(home, "run"),
		"REGISTRY_AUTH_FILE=" + filepath.Join(home, "auth.json"),
	}
	for _, d := range []string{".docker", ".config", ".cache", "run"} {
		os.MkdirAll(filepath.Join(home, d), 0o700)
	}
	return &tool{t: t, dir: t.TempDir(), env: append(env, extraEnv...)}
}

func (tl *tool) environ(extra []string) []string {
	override := map[string]bool{}
	for _, kv := range append(append([]string{}, tl.env...), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		override[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !override[k] {
			env = append(env, kv)
		}
	}
	return append(append(env, tl.env...), extra...)
}

// run runs name args in tl.dir and fails the test when it exits non-zero.
func (tl *tool) run(name string, args ...string) cmdResult {
	tl.t.Helper()
	r, err := tl.try(nil, name, args...)
	if err != nil {
		tl.t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, clip(r.Stdout), clip(r.Stderr))
	}
	return r
}

// runEnv is run with extra environment variables.
func (tl *tool) runEnv(env []string, name string, args ...string) cmdResult {
	tl.t.Helper()
	r, err := tl.try(env, name, args...)
	if err != nil {
		tl.t.Fatalf("%s %s %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(env, " "), name, strings.Join(args, " "), err, clip(r.Stdout), clip(r.Stderr))
	}
	return r
}

// try runs the command and returns its error instead of failing.
func (tl *tool) try(env []string, name string, args ...string) (cmdResult, error) {
	tl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = tl.dir
	cmd.Env = tl.environ(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	tl.t.Logf("$ %s %s (%v)", filepath.Base(name), strings.Join(args, " "), errOrOK(err))
	return cmdResult{Stdout: stdout.String(), Stderr: stderr.String()}, err
}

// path is a file path inside the tool's working directory.
func (tl *tool) path(elem ...string) string {
	return filepath.Join(append([]string{tl.dir}, elem...)...)
}

func (tl *tool) write(name string, data []byte) string {
	tl.t.Helper()
	p := tl.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tl.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tl.t.Fatal(err)
	}
	return p
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func clip(s string) string {
	const n = 6000
	if len(s) > n {
		return s[:n/2] + "\n...\n" + s[len(s)-n/2:]
	}
	return s
}
