package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildBinary compiles ./cmd/packreg into dir, so a plain `go run ./bench`
// measures the tree as it is now.
func buildBinary(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "packreg")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/packreg")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/packreg: %w", err)
	}
	return out, nil
}

// server is one `packreg serve` child process.
type server struct {
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:PORT
	logPath string
	done    chan struct{}
	waitErr error
	// hwmKB is the largest VmHWM seen before a resetHWM, so the peak over
	// the whole run survives the resets that attribute a peak to one push.
	hwmKB int64
	// windowKB is the same since startWindow: the peak of one suite.
	windowKB int64
}

// freePort asks the kernel for an unused loopback port. Another process may
// take it before the server binds; startServer then fails loudly, which is
// better than a retry loop that hides it.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs `binary serve --addr 127.0.0.1:PORT extra...` with its
// log in logPath and waits until GET /v2/ answers 200.
func startServer(ctx context.Context, binary string, extra []string, logPath string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return startProcess(ctx, binary, append([]string{"serve", "--addr", addr}, extra...), addr, logPath)
}

// startProcess runs binary args, a registry that listens on addr (packreg,
// or Distribution whose address is in its config file), with its log in
// logPath, and waits until GET /v2/ answers.
func startProcess(ctx context.Context, binary string, args []string, addr, logPath string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(binary, args...)
	// The server's log goes to a file, not a pipe we would have to drain:
	// a full pipe would stall the server and show up as latency.
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the bench dies (Ctrl-C, panic), the server goes with it rather than
	// holding a port and a data dir on a shared machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	s := &server{cmd: cmd, base: "http://" + addr, logPath: logPath, done: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.done) }()

	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("server exited during startup (%v); log:\n%s", s.waitErr, s.logTail(20))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := hc.Get(s.base + "/v2/")
		if err == nil {
			resp.Body.Close()
			// 401: up, with auth on (the auth suite's server).
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("server not ready after 60s (last: %v); log:\n%s", err, s.logTail(20))
		}
	}
}

// stop sends SIGTERM (the server drains and closes its stores) and kills it
// if it has not exited after 15 s.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// logTail returns the last n lines of the server log, for error messages.
func (s *server) logTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// memKB reads VmRSS and VmHWM (KiB) from /proc/PID/status.
func (s *server) memKB() (rss, hwm int64, err error) {
	v, err := statusKB(s.pid(), "VmRSS", "VmHWM")
	return v[0], v[1], err
}

// statusKB reads the values (KiB) of keys from /proc/PID/status, in the
// order of keys; a key the file does not have is an error.
func statusKB(pid int, keys ...string) ([]int64, error) {
	name := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(name)
	if err != nil {
		return make([]int64, len(keys)), err
	}
	defer f.Close()
	return parseKB(f, name, keys...)
}

// parseKB reads the values of keys from a /proc text of "Key:  1234 kB"
// lines (status, meminfo), in the order of keys. A key missing or a value
// that is not a number is an error, so a report row is never a silent zero.
func parseKB(r io.Reader, name string, keys ...string) ([]int64, error) {
	out := make([]int64, len(keys))
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		i := slices.Index(keys, k)
		if !ok || i < 0 {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", name, k, err)
		}
		out[i] = n
		found++
	}
	if err := sc.Err(); err != nil {
		return out, err
	}
	if found != len(keys) {
		return out, fmt.Errorf("%s: want %v, found %d of them", name, keys, found)
	}
	return out, nil
}

// resetHWM sets VmHWM back to the current RSS (clear_refs value 5), so the
// high-water mark read after a push belongs to that push and not to startup
// or an earlier test. It needs to own the process, which we do.
func (s *server) resetHWM() error {
	if _, hwm, err := s.memKB(); err == nil {
		s.hwmKB = max(s.hwmKB, hwm)
		s.windowKB = max(s.windowKB, hwm)
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid()), []byte("5"), 0)
}

// peakKB is the process's peak RSS since it started, across resets.
func (s *server) peakKB() (int64, error) {
	_, hwm, err := s.memKB()
	return max(hwm, s.hwmKB), err
}

// startWindow starts measuring one suite's peak RSS (windowPeakKB): it
// resets VmHWM, so the suite's peak is not an earlier suite's.
func (s *server) startWindow() error {
	err := s.resetHWM()
	s.windowKB = 0
	return err
}

// windowPeakKB is the process's peak RSS since startWindow, across the
// resets in between.
func (s *server) windowPeakKB() (int64, error) {
	_, hwm, err := s.memKB()
	return max(hwm, s.windowKB), err
}

// cpu returns the user+system CPU time the server has used so far. Read
// before and after a test it says how many cores the server kept busy.
func (s *server) cpu() time.Duration { return procCPU(s.pid()) }

// procCPU returns the user+system CPU time process pid has used so far,
// in 10 ms ticks (0 when it cannot be read).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name, which may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ: 100 on every Linux the bench runs on
	return time.Duration(ut+st) * time.Second / clkTck
}

// switches returns the context switches (voluntary and not) that the
// server's threads have made so far: on a machine where each switch is
// dear it tracks a request's cost more steadily than CPU time, which
// moves with everything else running.
func (s *server) switches() int64 {
	n, _ := taskSwitches(fmt.Sprintf("/proc/%d/task", s.pid()))
	return n
}

// taskSwitches sums voluntary_ctxt_switches and nonvoluntary_ctxt_switches
// over the status files of every thread under dir (/proc/PID/task). The
// process's own status counts its main thread only. A thread that exits
// between the listing and the read is skipped (its switches go with it:
// the Go runtime keeps its threads, so a batch loses few if any).
func taskSwitches(dir string) (int64, error) {
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		name := filepath.Join(dir, t.Name(), "status")
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return sum, err
		}
		v, err := parseKB(f, name, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
		f.Close()
		if err != nil {
			return sum, err
		}
		sum += v[0] + v[1]
	}
	return sum, nil
}

// rssSampler polls VmRSS every 50 ms in the background; stop returns the
// peak and the number of samples taken.
type rssSampler struct {
	stopc   chan struct{}
	wg      sync.WaitGroup
	peak    int64
	samples int
}

func (s *server) sampleRSS() *rssSampler {
	r := &rssSampler{stopc: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := s.memKB(); err == nil {
				r.peak = max(r.peak, rss)
				r.samples++
			}
			select {
			case <-r.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

func (r *rssSampler) stop() (peakKB int64, samples int) {
	close(r.stopc)
	r.wg.Wait()
	return r.peak, r.samples
}

var errServerGone = errors.New("server exited")

// alive reports errServerGone (with the log tail) once the child has exited.
func (s *server) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("%w (%v); log:\n%s", errServerGone, s.waitErr, s.logTail(20))
	default:
		return nil
	}
}

// logFor returns the server's own account of a failed request: the first
// log line other than the access log that carries request id (a 5xx names
// its id and hides the cause; the log has it).
func (s *server) logFor(id string) string {
	b, _ := os.ReadFile(s.logPath)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, id) && !strings.Contains(line, "msg=request ") {
			if len(line) > 400 {
				line = line[:400] + "..."
			}
			return line
		}
	}
	return ""
}
