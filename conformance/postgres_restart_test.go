package conformance

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pgCluster is a throwaway PostgreSQL server of the test's own, under
// t.TempDir(), so the test can stop and start it without touching the
// shared server other tests use. As .ci/pg.sh does, it runs the server as
// the postgres user when the tests run as root (the server refuses root).
type pgCluster struct {
	t    testing.TB
	bin  string // directory of initdb and pg_ctl
	dir  string
	port int
	as   *syscall.Credential // nil: run as ourselves
	DSN  string
}

// pgBinDir finds initdb and pg_ctl: $PACKREG_PG_BIN, the Debian layout
// .ci/pg.sh installs, or PATH.
func pgBinDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PACKREG_PG_BIN"); d != "" {
		return d
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		slices.Sort(m)
		return filepath.Dir(m[len(m)-1])
	}
	return filepath.Dir(needTool(t, "initdb"))
}

func startPGCluster(t testing.TB) *pgCluster {
	t.Helper()
	c := &pgCluster{t: t, bin: pgBinDir(t), dir: t.TempDir()}
	for _, tool := range []string{"initdb", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(c.bin, tool)); err != nil {
			if inCI() {
				t.Fatalf("PostgreSQL server binaries missing in %s (set PACKREG_PG_BIN): %v", c.bin, err)
			}
			t.Skipf("PostgreSQL server binaries missing in %s (set PACKREG_PG_BIN): %v", c.bin, err)
		}
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user for the server: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.as = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// t.TempDir's parent is private to root; the server only needs
		// to pass through it.
		if err := os.Chmod(filepath.Dir(c.dir), 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(c.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	t.Cleanup(func() { c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop") })
	c.start()
	c.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	return c
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

func (c *pgCluster) run(tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, tool), args...)
	cmd.Dir = c.dir
	if c.as != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.as}
	}
	return cmd.CombinedOutput()
}

// start starts the server and waits until it accepts connections.
func (c *pgCluster) start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=50 -c shared_buffers=16MB", c.port, c.dir)
	if out, err := c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, clip(string(log)))
	}
}

// stop stops the server: "fast" ends sessions and checkpoints, "immediate"
// is a crash (recovery runs at the next start).
func (c *pgCluster) stop(mode string) {
	c.t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		c.t.Fatalf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
}

// TestPostgresRestart restarts PostgreSQL, twice (a clean fast shutdown and
// a crash), under a packreg on S3 and that database while clients push
// blobs and manifests in a loop. While the database is down every request
// must answer promptly with 503 UNAVAILABLE and Retry-After, never a 500
// or a hang, and /readyz must say 503; once it is back the same process
// serves pushes and pulls again, and everything it acknowledged, before,
// during and after, is there byte-exact.
func TestPostgresRestart(t *testing.T) {
	s3URL := needEnv(t, "PACKREG_TEST_S3")
	pg := startPGCluster(t)
	s := startServer(t, "--storage", isolatedS3(t, s3URL), "--database", pg.DSN)
	s.dumpLogOnFailure()
	c := newOutageClient(s.URL)

	const workers = 3
	var (
		stop      atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		blobs     []pushed
		manifests = map[string]string{} // repo:tag -> digest
		acked     [workers]atomic.Int64 // manifests acknowledged per worker
	)
	layerSizes := []int{1 << 10, 200 << 10, 1<<20 + 12345}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("restart/w%d", w)
			for i := 0; !stop.Load(); i++ {
				seed := uint64(w)<<40 | uint64(i)<<1
				cfgData := fmt.Appendf(nil, `{"worker":%d,"i":%d,"pad":%q}`, w, i, blobData(seed, 16))
				layer := pushed{repo: repo, seed: seed | 1, size: layerSizes[i%len(layerSizes)], mode: pushMode(i % int(pushModes))}
				data := blobData(layer.seed, layer.size)
				layer.digest = sha256Digest(data)
				cfgOK := c.pushBlob(repo, cfgData, pushMonolithic, 0, 0)
				layer.acked = c.pushBlob(repo, data, layer.mode, 256<<10, 15*time.Second)
				mu.Lock()
				blobs = append(blobs, layer)
				mu.Unlock()
				if !cfgOK || !layer.acked {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
					mtOCIManifest, mtOCIConfig, sha256Digest(cfgData), len(cfgData), layer.digest, layer.size)
				tag := fmt.Sprintf("v%d", i)
				a := c.send("PUT", "/v2/"+repo+"/manifests/"+tag, http.Header{"Content-Type": {mtOCIManifest}}, m)
				if a.status == http.StatusCreated {
					mu.Lock()
					manifests[repo+":"+tag] = sha256Digest(m)
					mu.Unlock()
					acked[w].Add(1)
				}
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	// progress waits until every worker has n more manifests acknowledged.
	progress := func(what string, n int64) {
		t.Helper()
		var base [workers]int64
		for w := range workers {
			base[w] = acked[w].Load()
		}
		deadline := time.Now().Add(60 * time.Second)
		for w := range workers {
			for acked[w].Load() < base[w]+n {
				if time.Now().After(deadline) {
					problems, _ := c.report()
					t.Fatalf("%s: worker %d acknowledged %d manifests in 60s, want %d; problems: %q",
						what, w, acked[w].Load()-base[w], n, problems)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	readyz := func() int {
		a := c.send("GET", "/readyz", nil, nil)
		return a.status
	}
	// await polls /readyz until it answers want.
	await := func(what string, want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := readyz()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz still %d after %s, want %d", what, got, within, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	progress("before any restart", 3)
	for _, mode := range []string{"fast", "immediate"} {
		_, before503 := c.report()
		pg.stop(mode)
		down := time.Now()
		await("database stopped ("+mode+")", http.StatusServiceUnavailable, 10*time.Second)
		// Keep it down until the workers' pushes have met the outage, a
		// few times each on average (nothing polls /readyz meanwhile, so
		// every 503 counted now answered a push).
		_, atDown := c.report()
		waitFor(t, 60*time.Second, "the pushes to meet the outage ("+mode+")", func() bool {
			_, n := c.report()
			return n >= atDown+3*workers
		})
		_, during503 := c.report()
		pg.start()
		t.Logf("PostgreSQL stopped (-m %s) for %s; %d requests answered 503 meanwhile",
			mode, time.Since(down).Round(100*time.Millisecond), during503-before503)
		if during503 == before503 {
			t.Errorf("no request met the outage (-m %s): the test proved nothing", mode)
		}
		await("database back ("+mode+")", http.StatusOK, 30*time.Second)
		progress("after the restart (-m "+mode+")", 3)
	}
	stop.Store(true)
	wg.Wait()

	select {
	case <-s.done:
		t.Fatalf("packreg exited: %v", s.waitErr)
	default:
	}
	problems, n503 := c.report()
	for _, p := range problems {
		t.Error(p)
	}

	// Everything acknowledged is there, byte-exact, from the same process.
	v := newClient(t, s.URL)
	okBlobs := 0
	for _, b := range blobs {
		if !b.acked {
			continue
		}
		okBlobs++
		if got := v.getBlob(b.repo, b.digest); !bytes.Equal(got, blobData(b.seed, b.size)) {
			t.Errorf("blob %s (%s, %d bytes) acknowledged but served %d other bytes", b.digest, b.mode, b.size, len(got))
		}
	}
	for ref, d := range manifests {
		repo, tag, _ := cutLast(ref, ":")
		if got := v.manifestDigest(repo, tag); got != d {
			t.Errorf("%s resolves to %s, acknowledged as %s", ref, got, d)
		}
		if got := v.manifestDigest(repo, d); got != d {
			t.Errorf("%s@%s not served by digest", repo, d)
		}
	}
	t.Logf("%d of %d layer pushes (%d of them chunked pushes resumed after a 503) and %d manifests acknowledged, all served; %d clean 503s",
		okBlobs, len(blobs), c.resumedPushes(), len(manifests), n503)
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}
