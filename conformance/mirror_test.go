package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Mirroring with real processes: packreg A mirrors into packreg B and into
// the CNCF Distribution registry, packreg C pulls from A as an upstream,
// and the reference clients (cosign, oras, skopeo, regctl) judge the
// copies. TestMirrorInterrupted kills processes mid-blob.

const mirrorPackType = "application/vnd.packreg.pack.v1"

// mirrorConfig lets versions move (parity needs a re-push) and makes the
// worker quick to notice work and to take over a dead worker's run.
const mirrorConfig = `packs:
  policy:
    immutable_versions: false
mirrors:
  tick: 1s
  lease_ttl: 3s
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "packreg.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// exitCode runs a command and returns its exit status and output.
func exitCode(tl *tool, name string, args ...string) (int, cmdResult) {
	tl.t.Helper()
	r, err := tl.try(nil, name, args...)
	if err == nil {
		return 0, r
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), r
	}
	tl.t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	return -1, r
}

// packreg runs the CLI against server and wants exit status want.
func packregCLI(t *testing.T, tl *tool, server string, want int, args ...string) string {
	t.Helper()
	code, r := exitCode(tl, packregBin, append(args, "--server", server)...)
	if code != want {
		t.Fatalf("packreg %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, clip(r.Stdout), clip(r.Stderr))
	}
	return r.Stdout
}

// runCounts is the part of a run the tests read.
type runCounts struct {
	ID       int64    `json:"id"`
	State    string   `json:"state"`
	Attempts int      `json:"attempts"`
	Errors   []string `json:"errors"`
	Counts   struct {
		VersionsDone    int64 `json:"versionsDone"`
		ManifestsCopied int64 `json:"manifestsCopied"`
		BlobsCopied     int64 `json:"blobsCopied"`
		BlobsMounted    int64 `json:"blobsMounted"`
		TagsMoved       int64 `json:"tagsMoved"`
		ReferrersCopied int64 `json:"referrersCopied"`
		Lifecycle       int64 `json:"lifecycleChanged"`
	} `json:"counts"`
}

// syncWait runs `packreg mirror sync --wait --json` and decodes the run.
func syncWait(t *testing.T, tl *tool, server, remote string, want int, extra ...string) runCounts {
	t.Helper()
	out := packregCLI(t, tl, server, want, append([]string{"mirror", "sync", "--wait", "--json", remote}, extra...)...)
	var r runCounts
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("sync output: %v\n%s", err, out)
	}
	return r
}

// parityResult is `packreg parity --json`.
type parityResult struct {
	InParity bool `json:"inParity"`
	Reports  []struct {
		Entries []struct {
			Name, Version, Status, Detail string
		} `json:"entries"`
	} `json:"reports"`
}

func parityOf(t *testing.T, tl *tool, server, remote string, want int) parityResult {
	t.Helper()
	out := packregCLI(t, tl, server, want, "parity", "--mirror", remote, "--json")
	var p parityResult
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Reports) != 1 {
		t.Fatalf("parity output (%v):\n%s", err, out)
	}
	return p
}

func TestMirror(t *testing.T) {
	oras := needTool(t, "oras")
	cosign := needTool(t, "cosign")
	cfg := writeConfig(t, mirrorConfig)
	a := startServer(t, "--config", cfg)
	b := startServer(t, "--config", cfg)
	a.dumpLogOnFailure()
	b.dumpLogOnFailure()
	ca, cb := newClient(t, a.URL), newClient(t, b.URL)
	tl := newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+filepath.Join(t.TempDir(), "tuf"))
	tl.run(cosign, "generate-key-pair")
	tl.write("rules.yaml", []byte("rules:\n  - deny: all\n"))
	tl.write("sbom.json", []byte(`{"sbom":"mirror"}`))

	// A pack version on A, signed with cosign (tag schema) and with an
	// OCI 1.1 referrer.
	tl.run(oras, "push", "--plain-http", a.Addr+"/acme/rules:1.0.0", "--artifact-type", mirrorPackType, "rules.yaml:application/vnd.packreg.pack.file.v1")
	d := ca.manifestDigest("acme/rules", "1.0.0")
	tl.run(cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", a.Addr+"/acme/rules@"+d)
	tl.run(oras, "attach", "--plain-http", a.Addr+"/acme/rules:1.0.0", "--artifact-type", "application/vnd.packreg.sbom.v1+json", "sbom.json:application/json")
	sigTag := strings.Replace(d, ":", "-", 1) + ".sig"

	t.Run("cosign", func(t *testing.T) {
		packregCLI(t, tl, a.URL, 0, "mirror", "add", "--name", "eu", "--url", b.URL, "--include", "acme/*")
		run := syncWait(t, tl, a.URL, "eu", 0)
		if run.State != "succeeded" {
			t.Fatalf("sync: %+v", run)
		}
		if got := cb.manifestDigest("acme/rules", "1.0.0"); got != d {
			t.Fatalf("B has acme/rules:1.0.0 at %s, A at %s", got, d)
		}
		if !slices.Contains(cb.tags("acme/rules"), sigTag) {
			t.Fatalf("no %s on B: %q", sigTag, cb.tags("acme/rules"))
		}
		tl.run(cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", b.Addr+"/acme/rules@"+d)
		if types := cb.referrerTypes("acme/rules", d); !slices.Contains(types, "application/vnd.packreg.sbom.v1+json") {
			t.Fatalf("referrers on B: %q", types)
		}
		// Nothing left to copy.
		again := syncWait(t, tl, a.URL, "eu", 0)
		if again.Counts.ManifestsCopied+again.Counts.BlobsCopied+again.Counts.TagsMoved+again.Counts.BlobsMounted != 0 || again.Counts.VersionsDone != 1 {
			t.Fatalf("second sync copied again: %+v", again)
		}
		// Lifecycle travels.
		packregCLI(t, tl, a.URL, 0, "pack", "deprecate", "acme/rules:1.0.0", "--reason", "superseded")
		if run := syncWait(t, tl, a.URL, "eu", 0); run.Counts.Lifecycle != 1 {
			t.Fatalf("sync after deprecate: %+v", run)
		}
		if out := packregCLI(t, tl, b.URL, 0, "pack", "show", "acme/rules:1.0.0", "--json"); !strings.Contains(out, `"deprecated"`) {
			t.Fatalf("B's version after deprecation on A:\n%s", out)
		}
	})

	t.Run("parity", func(t *testing.T) {
		tl.write("v1.yaml", []byte("version: one\n"))
		tl.write("v2.yaml", []byte("version: two\n"))
		push := func(file string) {
			tl.run(oras, "push", "--plain-http", a.Addr+"/parity/demo:1.0.0", "--artifact-type", mirrorPackType, file+":application/vnd.packreg.pack.file.v1")
		}
		push("v1.yaml")
		packregCLI(t, tl, a.URL, 0, "mirror", "add", "--name", "parity", "--url", b.URL, "--include", "parity/*", "--no-on-publish")
		syncWait(t, tl, a.URL, "parity", 0)
		if p := parityOf(t, tl, a.URL, "parity", 0); !p.InParity {
			t.Fatalf("parity after sync: %+v", p)
		}
		push("v2.yaml")
		p := parityOf(t, tl, a.URL, "parity", 1)
		if p.InParity || len(p.Reports[0].Entries) != 1 || p.Reports[0].Entries[0].Status != "out_of_sync" {
			t.Fatalf("parity after re-push: %+v", p)
		}
		syncWait(t, tl, a.URL, "parity", 0)
		if p := parityOf(t, tl, a.URL, "parity", 0); !p.InParity || p.Reports[0].Entries[0].Status != "in_sync" {
			t.Fatalf("parity after the next sync: %+v", p)
		}
		// --status narrows the JSON entries as it does the text.
		out := packregCLI(t, tl, a.URL, 0, "parity", "--mirror", "parity", "--json", "--status", "missing")
		var p2 parityResult
		if err := json.Unmarshal([]byte(out), &p2); err != nil || len(p2.Reports) != 1 || len(p2.Reports[0].Entries) != 0 {
			t.Fatalf("parity --status missing --json (%v):\n%s", err, out)
		}
		if cb.manifestDigest("parity/demo", "1.0.0") != ca.manifestDigest("parity/demo", "1.0.0") {
			t.Fatal("digests differ after the sync")
		}
	})

	t.Run("upstream", func(t *testing.T) {
		ccfg := writeConfig(t, mirrorConfig+fmt.Sprintf(`  remotes:
    - {name: hq, kind: upstream, url: %q, include: ["acme/*"], prefix: hq}
`, a.URL))
		c := startServer(t, "--config", ccfg)
		c.dumpLogOnFailure()
		cc := newClient(t, c.URL)
		if _, _, code := cc.getManifest("hq/acme/rules", "1.0.0"); code != http.StatusOK {
			t.Fatalf("pull-through GET: %d", code)
		}
		if got := cc.manifestDigest("hq/acme/rules", "1.0.0"); got != d {
			t.Fatalf("C has %s, A %s", got, d)
		}
		tl.run(oras, "pull", "--plain-http", "-o", "from-c", c.Addr+"/hq/acme/rules:1.0.0")
		equalFile(t, tl.path("from-c", "rules.yaml"), []byte("rules:\n  - deny: all\n"))
		tl.run(cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", c.Addr+"/hq/acme/rules@"+d)
		if _, _, code := cc.getManifest("hq/acme/nothing", "1.0.0"); code != http.StatusNotFound {
			t.Fatalf("pull-through of an unknown pack: %d", code)
		}
		out := packregCLI(t, tl, c.URL, 0, "mirror", "list", "--upstream", "--json")
		if !strings.Contains(out, `"hq"`) {
			t.Fatalf("configured upstream not listed:\n%s", out)
		}
	})

	t.Run("clients", func(t *testing.T) {
		skopeo := needTool(t, "skopeo")
		regctl := needTool(t, "regctl")
		policy := tl.write("policy.json", []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
		tl.run(oras, "push", "--plain-http", a.Addr+"/tools/pack:2.0.0", "--artifact-type", mirrorPackType, "rules.yaml:application/vnd.packreg.pack.file.v1")
		pd := ca.manifestDigest("tools/pack", "2.0.0")
		// skopeo 1.9.3 copies packs (not referrers): digests are kept.
		tl.run(skopeo, "--policy", policy, "sync", "--src-tls-verify=false", "--dest-tls-verify=false",
			"--src", "docker", "--dest", "docker", a.Addr+"/tools/pack", b.Addr+"/skosync")
		if got := cb.manifestDigest("skosync/pack", "2.0.0"); got != pd {
			t.Fatalf("skopeo sync: %s, want %s", got, pd)
		}
		// regctl copies the pack and its referrers.
		tl.run(regctl, "registry", "set", "--tls", "disabled", a.Addr)
		tl.run(regctl, "registry", "set", "--tls", "disabled", b.Addr)
		tl.run(regctl, "image", "copy", "--referrers", a.Addr+"/acme/rules:1.0.0", b.Addr+"/regctl/rules:1.0.0")
		if got := cb.manifestDigest("regctl/rules", "1.0.0"); got != d {
			t.Fatalf("regctl copy: %s, want %s", got, d)
		}
		if types := cb.referrerTypes("regctl/rules", d); !slices.Contains(types, "application/vnd.packreg.sbom.v1+json") {
			t.Fatalf("regctl copy referrers: %q", types)
		}
	})

	t.Run("distribution", func(t *testing.T) {
		reg := needTool(t, "registry")
		addr := startDistribution(t, reg)
		packregCLI(t, tl, a.URL, 0, "mirror", "add", "--name", "dist", "--url", "http://"+addr, "--include", "acme/*", "--no-on-publish")
		run := syncWait(t, tl, a.URL, "dist", 0)
		if run.State != "succeeded" || run.Counts.ReferrersCopied < 2 {
			t.Fatalf("sync into Distribution: %+v", run)
		}
		cd := newClient(t, "http://"+addr)
		if got := cd.manifestDigest("acme/rules", "1.0.0"); got != d {
			t.Fatalf("Distribution has %s, A %s", got, d)
		}
		tl.run(cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", addr+"/acme/rules@"+d)
		// No referrers API there: the OCI 1.1 referrer is in the tag schema.
		out := tl.run(oras, "discover", "--plain-http", "--format", "json", addr+"/acme/rules:1.0.0").Stdout
		var disc orasDiscover
		if err := json.Unmarshal([]byte(out), &disc); err != nil || len(disc.Referrers) != 1 || disc.Referrers[0].ArtifactType != "application/vnd.packreg.sbom.v1+json" {
			t.Fatalf("oras discover on Distribution (%v):\n%s", err, out)
		}
		if again := syncWait(t, tl, a.URL, "dist", 0); again.Counts.ManifestsCopied+again.Counts.TagsMoved+again.Counts.BlobsCopied != 0 {
			t.Fatalf("second sync into Distribution: %+v", again)
		}
		if p := parityOf(t, tl, a.URL, "dist", 0); !p.InParity {
			t.Fatalf("parity with Distribution: %+v", p)
		}
	})
}

// startDistribution runs the CNCF Distribution registry (config of
// CLIENTS.md §2) on a free loopback port until the test ends.
func startDistribution(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: %s
  secret: packreg-conformance
`, filepath.Join(dir, "data"), addr)), 0o600)
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("Distribution registry not up on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// killProxy forwards TCP connections to a server, and once armed, kills a
// process (with SIGKILL) when more than limit bytes have gone through
// towards the server: a kill in the middle of a blob upload.
type killProxy struct {
	t      *testing.T
	ln     net.Listener
	target atomic.Value // string: host:port
	mu     sync.Mutex
	armed  func() // the kill, once
	limit  atomic.Int64
	sent   atomic.Int64
}

func newKillProxy(t *testing.T, target string) *killProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &killProxy{t: t, ln: ln}
	p.target.Store(target)
	go p.serve()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *killProxy) URL() string { return "http://" + p.ln.Addr().String() }

// arm kills with kill once more than limit more bytes have been sent.
func (p *killProxy) arm(limit int64, kill func()) {
	p.mu.Lock()
	p.sent.Store(0)
	p.limit.Store(limit)
	p.armed = kill
	p.mu.Unlock()
}

func (p *killProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *killProxy) pipe(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target.Load().(string))
	if err != nil {
		return
	}
	defer s.Close()
	go func() {
		io.Copy(c, s)
		c.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if p.sent.Add(int64(n)) > p.limit.Load() {
				p.mu.Lock()
				kill := p.armed
				p.armed = nil
				p.mu.Unlock()
				if kill != nil {
					kill()
					return
				}
			}
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestMirrorInterrupted kills the target mid-blob, then the primary
// mid-blob: each time the next run completes and nothing is missing.
func TestMirrorInterrupted(t *testing.T) {
	oras := needTool(t, "oras")
	cfg := writeConfig(t, mirrorConfig)
	a := startServer(t, "--config", cfg)
	b := startServer(t, "--config", cfg)
	a.dumpLogOnFailure()
	tl := newTool(t)
	big := randomBytes(t, 48<<20)
	tl.write("big.bin", big)
	tl.run(oras, "push", "--plain-http", a.Addr+"/acme/big:1.0.0", "--artifact-type", mirrorPackType, "big.bin:application/vnd.packreg.pack.file.v1")

	proxy := newKillProxy(t, b.Addr)
	packregCLI(t, tl, a.URL, 0, "mirror", "add", "--name", "eu", "--url", proxy.URL(), "--no-on-publish")

	// 1. The target dies 16 MiB into the blob: the run fails.
	proxy.arm(16<<20, b.kill)
	run := syncWait(t, tl, a.URL, "eu", 1)
	if run.State != "failed" || len(run.Errors) == 0 {
		t.Fatalf("sync into a killed target: %+v", run)
	}
	b2 := b.restart()
	proxy.target.Store(b2.Addr)
	run = syncWait(t, tl, a.URL, "eu", 0)
	if run.State != "succeeded" || run.Counts.BlobsCopied == 0 {
		t.Fatalf("sync after the target came back: %+v", run)
	}
	checkBig(t, newClient(t, b2.URL), "acme/big", "1.0.0", newClient(t, a.URL).manifestDigest("acme/big", "1.0.0"), big)
	if p := parityOf(t, tl, a.URL, "eu", 0); !p.InParity {
		t.Fatalf("parity: %+v", p)
	}

	// 2. The primary dies 16 MiB into the next blob; restarted, its worker
	// takes the run over (after the lease expires) and completes it.
	big2 := randomBytes(t, 48<<20)
	tl.write("big2.bin", big2)
	tl.run(oras, "push", "--plain-http", a.Addr+"/acme/big:2.0.0", "--artifact-type", mirrorPackType, "big2.bin:application/vnd.packreg.pack.file.v1")
	d2 := newClient(t, a.URL).manifestDigest("acme/big", "2.0.0")
	proxy.arm(16<<20, a.kill)
	out := packregCLI(t, tl, a.URL, 0, "mirror", "sync", "--json", "eu")
	var started struct{ Run int64 }
	json.Unmarshal([]byte(out), &started)
	select {
	case <-a.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the primary was not killed mid-sync")
	}
	a2 := a.restart()
	a2.dumpLogOnFailure()
	deadline := time.Now().Add(90 * time.Second)
	var r runCounts
	for {
		out := packregCLI(t, tl, a2.URL, 0, "mirror", "status", "--json", "eu", fmt.Sprint(started.Run))
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.State != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted run was never carried on: %+v", r)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if r.State != "succeeded" || r.Attempts != 2 {
		t.Fatalf("resumed run: %+v", r)
	}
	checkBig(t, newClient(t, b2.URL), "acme/big", "2.0.0", d2, big2)
	if p := parityOf(t, tl, a2.URL, "eu", 0); !p.InParity {
		t.Fatalf("parity after the resumed run: %+v", p)
	}
}

// checkBig asserts that the copy has the version at d and its file byte
// for byte.
func checkBig(t *testing.T, c *client, repo, version, d string, content []byte) {
	t.Helper()
	if got := c.manifestDigest(repo, version); got != d {
		t.Fatalf("%s:%s on the target: %s, want %s", repo, version, got, d)
	}
	body, _, _ := c.getManifest(repo, d)
	var m manifest
	json.Unmarshal(body, &m)
	for _, l := range append(m.Layers, *m.Config) {
		if st := c.blobStatus(repo, l.Digest); st != http.StatusOK {
			t.Fatalf("blob %s on the target: HEAD %d", l.Digest, st)
		}
	}
	if got := c.getBlob(repo, m.Layers[0].Digest); sha256Digest(got) != sha256Digest(content) {
		t.Fatal("the big file differs on the target")
	}
}

// TestMirrorReplicasS3Postgres: two replicas over S3 and PostgreSQL share
// one mirror: syncs asked of either run under one lease and the second
// copies nothing; an upstream reading them follows presigned blob
// redirects to S3 without sending credentials there.
func TestMirrorReplicasS3Postgres(t *testing.T) {
	oras := needTool(t, "oras")
	s3URL := needEnv(t, "PACKREG_TEST_S3")
	pgURL := needEnv(t, "PACKREG_TEST_POSTGRES")
	cfg := writeConfig(t, mirrorConfig)
	storage := isolatedS3(t, s3URL)
	if strings.Contains(storage, "?") {
		storage += "&presign=true"
	} else {
		storage += "?presign=true"
	}
	stores := []string{"--config", cfg, "--storage", storage, "--database", isolatedPostgres(t, pgURL)}
	a1 := startServer(t, stores...)
	a2 := startServer(t, stores...)
	b := startServer(t, "--config", cfg)
	a1.dumpLogOnFailure()
	a2.dumpLogOnFailure()
	tl := newTool(t)
	payload := randomBytes(t, 3<<20)
	tl.write("payload.bin", payload)
	tl.run(oras, "push", "--plain-http", a1.Addr+"/acme/s3pack:1.0.0", "--artifact-type", mirrorPackType, "payload.bin:application/vnd.packreg.pack.file.v1")
	d := newClient(t, a1.URL).manifestDigest("acme/s3pack", "1.0.0")

	packregCLI(t, tl, a2.URL, 0, "mirror", "add", "--name", "eu", "--url", b.URL, "--no-on-publish")
	var runs [2]runCounts
	var wg sync.WaitGroup
	for i, s := range []*server{a1, a2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = syncWait(t, tl, s.URL, "eu", 0)
		}()
	}
	wg.Wait()
	first, second := runs[0], runs[1]
	if first.ID > second.ID {
		first, second = second, first
	}
	if first.State != "succeeded" || second.State != "succeeded" || first.Counts.BlobsCopied != 2 {
		t.Fatalf("runs: %+v", runs)
	}
	// Under one lease the runs go one after the other: the second finds
	// everything there (unless both started before the first copied).
	if second.Counts.BlobsCopied != 0 {
		t.Logf("the second run copied %d blobs: it ran before the first finished?", second.Counts.BlobsCopied)
	}
	checkBig(t, newClient(t, b.URL), "acme/s3pack", "1.0.0", d, payload)

	// An upstream reading a1: blobs come by presigned redirect.
	ccfg := writeConfig(t, mirrorConfig+fmt.Sprintf(`  remotes:
    - {name: s3, kind: upstream, url: %q, credentials: {username: u, password: never-to-s3}}
`, a1.URL))
	c := startServer(t, "--config", ccfg)
	c.dumpLogOnFailure()
	checkBig(t, newClient(t, c.URL), "acme/s3pack", "1.0.0", d, payload)
	log := a1.logNow(t)
	if !strings.Contains(log, `"status":307`) {
		t.Error("a1 never redirected a blob GET to S3: the redirect path went untested")
	}
}
