package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// limits are what this machine can do at best for a blob push: hash it and
// write it durably; and for a pull: send a cached file over loopback. The
// registry cannot beat them, so its figures read best as a fraction of them.
//
// The machine is shared and its disk's speed swings by several times from
// one minute to the next, so sha256 and the disk are measured at the start
// and again right before and right after the largest pushes; the table
// shows every run so the reader can see the spread. A push row is compared
// with its own write limit, sampled right before each of its samples
// (writeBeside); only a row without such samples falls back to the better
// of the two runs that bracket it in time.
type limits struct {
	shaRuns   []float64 // MB/s, one core
	writeRuns []float64 // MB/s, 1 MiB writes then one fsync, into fresh pages (first pass)
	// writeReuse is the second pass of each run, right after the first
	// file was deleted: for reference only, never a limit (see measure).
	writeReuse []float64
	// reportedKiB is how much free memory the kernel gave back to the
	// host (free page reporting) during each run's first pass; -1 when
	// the kernel does not report.
	reportedKiB []int64
	runNames    []string // when each run above was taken
	loopback    float64  // MB/s, best of 3: the written file served by net/http (sendfile) to the bench client
	// beside holds, per blob row, its limit sampled right before each of
	// the row's samples: for a pull row the same transfers from a file of
	// the row's size through net/http's ServeFile (pullBeside), for a push
	// row the same bytes written and fsynced into new files (writeBeside).
	beside map[string]*[]float64
	dir    string
	// shaBytes and writeBytes are what each run hashes and writes
	// (opt.shaBytes, opt.writeBytes: far less in a -smoke run).
	shaBytes, writeBytes int64
}

// latest is the index of the most recent run: a push measured now sits
// between it and the next run, if any.
func (l *limits) latest() int { return len(l.shaRuns) - 1 }

// bracket is the better of run and the run after it, by f.
func (l *limits) bracket(run int, f func(int) float64) float64 {
	v := f(run)
	if run+1 < len(l.shaRuns) {
		v = max(v, f(run+1))
	}
	return v
}

// serial is the limit when one core hashes then writes each byte:
// 1/(1/write + 1/sha).
func (l *limits) serial(run int) float64 { return 1 / (1/l.writeRuns[run] + 1/l.shaRuns[run]) }

// overlapped is the limit when hashing and writing run on different cores
// at the same time: whichever is slower.
func (l *limits) overlapped(run int) float64 { return min(l.writeRuns[run], l.shaRuns[run]) }

// measure takes one more sha256 and disk-write run, named when; with
// loopback it also measures the pull limit on the file it wrote.
func (l *limits) measure(dir, when string, loopback bool) error {
	// 16 MiB of generator output, larger than any CPU cache, hashed 16 times:
	// the hash reads memory the way it reads socket buffers in the server.
	buf := genBytes(0xfeed, 16<<20)
	h := sha256.New()
	start := time.Now()
	for done := int64(0); done < l.shaBytes; done += int64(len(buf)) {
		h.Write(buf)
	}
	h.Sum(nil)
	sha := float64(l.shaBytes) / 1e6 / time.Since(start).Seconds()

	// Two passes; the first is the limit. On a VM with free page reporting
	// (virtio-balloon: free memory goes back to the host) every new page of
	// the page cache for a large file is first faulted back in from the
	// host: a 512 MiB write costs 0.4-1.6 s of system CPU that way, 0.1 s
	// when it reuses pages just freed. A push writes a new file into fresh
	// pages, like the first pass. The second pass reuses the pages the
	// first one freed by deleting its file, which no push does; it is
	// printed beside, labelled, to show what the page faults cost.
	reported0 := reportedKiB()
	fresh, err := writeFile(dir, buf, false, l)
	if err != nil {
		return err
	}
	reported := int64(-1)
	if r1 := reportedKiB(); reported0 >= 0 && r1 >= 0 {
		reported = r1 - reported0
	}
	reuse, err := writeFile(dir, buf, loopback, l)
	if err != nil {
		return err
	}
	l.writeReuse = append(l.writeReuse, reuse)
	l.reportedKiB = append(l.reportedKiB, reported)
	write := fresh
	l.shaRuns = append(l.shaRuns, sha)
	l.writeRuns = append(l.writeRuns, write)
	l.runNames = append(l.runNames, when)
	l.dir, _ = filepath.Abs(dir)
	return nil
}

// reportedKiB is the kernel's running total of free memory reported to the
// host (page_reporting), or -1 without it.
func reportedKiB() int64 {
	b, err := os.ReadFile("/sys/module/page_reporting/parameters/reported_kib")
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// writeFile writes l.writeBytes of buf, in 1 MiB blocks, to a new file next to
// the server's blobs, with the fsync that makes a push durable inside the
// timing, and returns MB/s. With loopback it then measures the pull limit on
// that (page-cached) file before removing it.
func writeFile(dir string, buf []byte, loopback bool, l *limits) (float64, error) {
	path, took, err := writeSynced(dir, buf, l.writeBytes)
	if path != "" {
		defer os.Remove(path)
	}
	if err != nil {
		return 0, err
	}
	if loopback {
		if l.loopback, err = measureLoopback(path); err != nil {
			return 0, fmt.Errorf("loopback: %w", err)
		}
	}
	return float64(l.writeBytes) / 1e6 / took.Seconds(), nil
}

// writeSynced writes size bytes of buf (cycled), in 1 MiB blocks, to a new
// file in dir and fsyncs it, as a push stores a blob; it returns the file
// (the caller removes it) and the time from the first write to the end of
// the fsync.
func writeSynced(dir string, buf []byte, size int64) (string, time.Duration, error) {
	f, err := os.CreateTemp(dir, "write-limit-")
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	start := time.Now()
	for done := int64(0); done < size; {
		off := int(done % int64(len(buf)))
		n := int(min(1<<20, size-done, int64(len(buf)-off)))
		if _, err := f.Write(buf[off : off+n]); err != nil {
			return f.Name(), 0, err
		}
		done += int64(n)
	}
	if err := f.Sync(); err != nil {
		return f.Name(), 0, err
	}
	took := time.Since(start)
	return f.Name(), took, f.Close()
}

// measureLoopback serves the just-written (page-cached) file with
// http.ServeFile, which uses sendfile, and reads it with the bench's own
// client, three times: the best of them is what a blob pull can do on
// this machine through loopback HTTP, client costs included. Best, not
// mean: other work on the machine only ever makes a run slower.
func measureLoopback(path string) (float64, error) {
	fs, err := serveFile(path)
	if err != nil {
		return 0, err
	}
	defer fs.close()
	buf := make([]byte, 1<<20)
	best := 0.0
	for range 3 {
		mbps, err := fs.get(context.Background(), 1, buf)
		if err != nil {
			return 0, err
		}
		best = max(best, mbps)
	}
	return best, nil
}

// fileServer sends one file with http.ServeFile (sendfile) to the bench's
// own client, over loopback: what a pull of those bytes costs without a
// registry.
type fileServer struct {
	srv  *http.Server
	c    *client
	size int64
}

func serveFile(path string) (*fileServer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, path)
	})}
	go srv.Serve(ln)
	c, err := newClient("http://" + ln.Addr().String())
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &fileServer{srv: srv, c: c, size: fi.Size()}, nil
}

func (s *fileServer) close() {
	s.c.close()
	s.srv.Close()
}

// get reads the whole file n times, one after the other, as a pull row
// reads its blobs, and returns MB/s.
func (s *fileServer) get(ctx context.Context, n int, buf []byte) (float64, error) {
	start := time.Now()
	for range n {
		got, err := s.c.getDiscard(ctx, "/limit", buf)
		if err != nil {
			return 0, err
		}
		if got != s.size {
			return 0, fmt.Errorf("pull limit: read %d bytes of %d", got, s.size)
		}
	}
	return float64(n) * float64(s.size) / 1e6 / time.Since(start).Seconds(), nil
}

// pullBeside is the pull limit of one pull row: a file of the row's blob
// size in the data dir, served by a fileServer and read the way the row
// reads its blobs right before each of the row's samples, so the limit and
// the registries meet the same moments of a shared machine. The figure at
// the start (best of 3, idle) is no fair measure for a median taken
// minutes later under other load: a 512 MiB pull read 45% of it while the
// same bytes through ServeFile, interleaved, did no better than packreg.
type pullBeside struct {
	fs   *fileServer
	path string
	n    int
	buf  []byte
	runs *[]float64
}

func (b *bench) startPullBeside(label string, size int64, n int) (*pullBeside, error) {
	f, err := os.CreateTemp(b.diskData, "pull-limit-")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	_, err = io.Copy(f, newGen(0xbeef, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var fs *fileServer
	if err == nil {
		fs, err = serveFile(path)
	}
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	runs := b.rep.limits.besideRuns(label)
	return &pullBeside{fs: fs, path: path, n: n, buf: make([]byte, 1<<20), runs: runs}, nil
}

func (p *pullBeside) sample(ctx context.Context) error {
	mbps, err := p.fs.get(ctx, p.n, p.buf)
	if err != nil {
		return fmt.Errorf("pull limit: %w", err)
	}
	*p.runs = append(*p.runs, mbps)
	return nil
}

func (p *pullBeside) close() {
	p.fs.close()
	os.Remove(p.path)
}

// besideRuns is where the limit samples of the row label go.
func (l *limits) besideRuns(label string) *[]float64 {
	if l.beside == nil {
		l.beside = map[string]*[]float64{}
	}
	if l.beside[label] == nil {
		l.beside[label] = new([]float64)
	}
	return l.beside[label]
}

// pullLimit is the limit a pull row is compared with: the median of the
// samples taken beside it, else the figure from the start.
func (l *limits) pullLimit(label string) (float64, string) {
	if r := l.beside[label]; r != nil && len(*r) > 0 {
		return statsOf(*r).median, "of sendfile beside it"
	}
	return l.loopback, "of pull limit"
}

// writeBeside is the write limit of one push row: the row's bytes (n files
// of its blob size, one after the other, each fsynced as a push stores a
// blob) written into new files in the data dir right before each of the
// row's samples, after the same settling. The runs at the start and around
// the largest pushes were minutes away from the samples: after four
// 512 MiB pushes the disk took new writes at a third of its speed, so a
// row's place in the run decided its share of a limit measured elsewhere.
type writeBeside struct {
	dir  string
	size int64
	n    int
	buf  []byte
	runs *[]float64
}

func (b *bench) startWriteBeside(label string, size int64, n int) *writeBeside {
	return &writeBeside{dir: b.diskData, size: size, n: n, buf: genBytes(0xfeed, 16<<20), runs: b.rep.limits.besideRuns(label)}
}

// sample writes the row's files and removes them once timed; the removal
// is outside the timing, as a registry's own deletes are outside a push.
func (w *writeBeside) sample() error {
	var took time.Duration
	var paths []string
	defer func() {
		for _, p := range paths {
			os.Remove(p)
		}
	}()
	for range w.n {
		p, d, err := writeSynced(w.dir, w.buf, w.size)
		if p != "" {
			paths = append(paths, p)
		}
		if err != nil {
			return fmt.Errorf("write limit: %w", err)
		}
		took += d
	}
	*w.runs = append(*w.runs, float64(w.n)*float64(w.size)/1e6/took.Seconds())
	return nil
}

// writeLimit is the median of the write limit samples beside the push row
// label, or 0 without any.
func (l *limits) writeLimit(label string) float64 {
	if r := l.beside[label]; r != nil && len(*r) > 0 {
		return statsOf(*r).median
	}
	return 0
}
