package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	godigest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	secMirror    = "Mirroring signed pack versions packreg → packreg over HTTP (real processes; each version has one ECDSA cosign signature as a referrer)"
	mirrorPrefix = "bench/mirror/"
	// regctlParallel is how many `regctl image copy` run at once: a
	// script's xargs -P 8.
	regctlParallel = 8
	// mirrorConcurrency is the mirror's versions in flight, the same 8.
	mirrorConcurrency = 8
)

// mirrorSuite pushes 1,000 signed pack versions (-quick: 100) to the
// server under test, then copies them with their signatures to two fresh
// packreg servers: one by packreg's own mirror sync (POST
// /api/v1/mirrors/{id}/sync, timed until the run has succeeded), the other
// by `regctl image copy --referrers`, 8 at a time. Both copies are checked
// on the sink (the last version and its referrer).
func (b *bench) mirrorSuite(ctx context.Context) error {
	n := b.opt.mirrorVersions
	regctl := findTool("regctl")
	if regctl == "" {
		b.rep.skip("mirror: regctl not found (PATH, ~/go/bin): install it with .ci/tools.sh; the mirror rows are skipped")
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	label := fmt.Sprintf("setup: push %s pack versions, each signed (%d packs), 16 clients", fmtCount(n), packNames)
	logf("%s: mirror: %s", b.backend, label)
	host := strings.TrimPrefix(b.srv.base, "http://")
	empty, file := []byte("{}"), genBytes(6_100_000_000, 1024)
	for p := range packNames {
		for _, blob := range [][]byte{empty, file} {
			if _, err := b.c.pushSmall(ctx, mirrorRepo(p), blob, sha256Digest(blob)); err != nil {
				return b.failed(ctx, secMirror, "setup", err)
			}
		}
	}
	push, err := b.load(ctx, n, 16, func(ctx context.Context, i int) error {
		repo, version := mirrorRepo(i%packNames), mirrorVersion(i)
		m := packManifest(empty, file, 70_000_000+i)
		if err := b.c.putManifest(ctx, repo, version, m); err != nil {
			return err
		}
		return b.pushSignature(ctx, key, host+"/"+repo, repo, m)
	})
	if err != nil {
		return b.failed(ctx, secMirror, label, err)
	}
	b.set(secMirror, label, rateCell(push))

	sinks := map[string]*target{}
	for _, name := range []string{"mirror-sink", "regctl-sink"} {
		dir := filepath.Join(b.work, name)
		srv, err := startServer(ctx, b.bin, []string{"--data", dir}, filepath.Join(b.work, "server-"+name+".log"))
		t, err := asTarget(name, srv, err)
		if err != nil {
			return b.failed(ctx, secMirror, "start "+name, err)
		}
		defer os.RemoveAll(dir)
		defer t.stop()
		sinks[name] = t
	}

	logf("%s: mirror: packreg sync of %d versions", b.backend, n)
	ms, err := b.mirrorSync(ctx, sinks["mirror-sink"].srv.base)
	if err == nil {
		err = checkCopied(ctx, sinks["mirror-sink"].c, n)
	}
	if err != nil {
		return b.failed(ctx, secMirror, "packreg mirror sync", err)
	}
	logf("%s: mirror: regctl image copy --referrers of %d versions, %d at a time", b.backend, n, regctlParallel)
	rs, err := b.regctlCopy(ctx, regctl, host, strings.TrimPrefix(sinks["regctl-sink"].srv.base, "http://"), n)
	if err == nil {
		err = checkCopied(ctx, sinks["regctl-sink"].c, n)
	}
	if err != nil {
		return b.failed(ctx, secMirror, "regctl image copy --referrers", err)
	}
	b.set(secMirror, fmt.Sprintf("packreg mirror sync (concurrency %d)", mirrorConcurrency), fmt.Sprintf("%s  %.0f versions/s", fmtSecs(ms), float64(n)/ms.Seconds()))
	b.set(secMirror, fmt.Sprintf("regctl image copy --referrers, %d at a time", regctlParallel), fmt.Sprintf("%s  %.0f versions/s", fmtSecs(rs), float64(n)/rs.Seconds()))
	b.set(secMirror, "ratio (regctl time / packreg time; >1: packreg faster)", fmtRatio(rs.Seconds()/ms.Seconds()))
	return nil
}

func mirrorRepo(p int) string        { return fmt.Sprintf("%sp%03d", mirrorPrefix, p) }
func mirrorVersion(i int) string     { return fmt.Sprintf("1.0.%d", i/packNames) }
func fmtSecs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// pushSignature signs the manifest the way cosign does (a simple-signing
// payload naming the manifest's digest, ECDSA P-256 over its SHA-256, the
// signature base64 in the layer's annotation) and pushes it as an OCI 1.1
// referrer of that manifest.
func (b *bench) pushSignature(ctx context.Context, key *ecdsa.PrivateKey, ref, repo string, manifest []byte) error {
	dg := sha256Digest(manifest)
	payload, _ := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": ref},
			"image":    map[string]string{"docker-manifest-digest": dg},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	h := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		return err
	}
	if _, err := b.c.pushSmall(ctx, repo, payload, sha256Digest(payload)); err != nil {
		return err
	}
	empty := []byte("{}")
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
		Config:       ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: godigest.Digest(sha256Digest(empty)), Size: 2},
		Layers: []ocispec.Descriptor{{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: godigest.Digest(sha256Digest(payload)),
			Size: int64(len(payload)), Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}}},
		Subject: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: godigest.Digest(dg), Size: int64(len(manifest))},
	}
	body, _ := json.Marshal(m)
	return b.c.putManifest(ctx, repo, sha256Digest(body), body)
}

// mirrorSync creates a mirror of every bench/mirror/** pack on sink and
// times one sync from the request until its run has succeeded.
func (b *bench) mirrorSync(ctx context.Context, sink string) (time.Duration, error) {
	spec, _ := json.Marshal(map[string]any{"name": "bench", "url": sink, "include": []string{mirrorPrefix + "**"},
		"concurrency": mirrorConcurrency, "onPublish": false, "lifecycle": false})
	var created struct {
		ID json.RawMessage `json:"id"`
	}
	if err := b.apiJSON(ctx, http.MethodPost, "/api/v1/mirrors", spec, http.StatusCreated, &created); err != nil {
		return 0, err
	}
	id := strings.Trim(string(created.ID), `"`)
	start := time.Now()
	var run struct {
		Run json.RawMessage `json:"run"`
	}
	if err := b.apiJSON(ctx, http.MethodPost, "/api/v1/mirrors/"+id+"/sync", nil, http.StatusAccepted, &run); err != nil {
		return 0, err
	}
	runID := strings.Trim(string(run.Run), `"`)
	err := poll(ctx, 20*time.Millisecond, 30*time.Minute, func() error {
		var st struct {
			State  string          `json:"state"`
			Errors json.RawMessage `json:"errors"`
			Counts json.RawMessage `json:"counts"`
		}
		if err := b.apiJSON(ctx, http.MethodGet, "/api/v1/mirrors/"+id+"/runs/"+runID, nil, http.StatusOK, &st); err != nil {
			return err
		}
		switch st.State {
		case "succeeded":
			return nil
		case "running":
			return pending("sync run %s running", runID)
		}
		return fmt.Errorf("sync run %s: state %s, counts %s, errors %.300s", runID, st.State, st.Counts, st.Errors)
	})
	return time.Since(start), err
}

// apiJSON sends body to the server's REST API and decodes the answer.
func (b *bench) apiJSON(ctx context.Context, method, path string, body []byte, want int, out any) error {
	req, _ := http.NewRequestWithContext(ctx, method, b.c.url(path), bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, strings.TrimSpace(string(msg)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// regctlCopy runs `regctl image copy --referrers` for every version, 8 at
// a time, with a config of its own that marks both registries plain HTTP.
func (b *bench) regctlCopy(ctx context.Context, regctl, src, dst string, n int) (time.Duration, error) {
	env := append(os.Environ(), "REGCTL_CONFIG="+filepath.Join(b.work, "regctl.json"))
	for _, host := range []string{src, dst} {
		cmd := exec.CommandContext(ctx, regctl, "registry", "set", "--tls", "disabled", host)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("regctl registry set: %w: %s", err, out)
		}
	}
	// load's workers are the 8 parallel copies; its figures (the source
	// server's CPU) are not used, only the wall clock.
	r, err := b.load(ctx, n, regctlParallel, func(ctx context.Context, i int) error {
		ref := mirrorRepo(i%packNames) + ":" + mirrorVersion(i)
		cmd := exec.CommandContext(ctx, regctl, "image", "copy", "--referrers", src+"/"+ref, dst+"/"+ref)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("regctl image copy %s: %w: %s", ref, err, firstLine(string(out)))
		}
		return nil
	})
	return r.elapsed, err
}

// checkCopied asks the sink for the last version and its referrers: a
// copy without the signature would be a faster, wrong copy.
func checkCopied(ctx context.Context, c *client, n int) error {
	repo, version := mirrorRepo((n-1)%packNames), mirrorVersion(n-1)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v2/"+repo+"/manifests/"+version), nil)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	dg := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != http.StatusOK || dg == "" {
		return fmt.Errorf("sink: %s:%s: status %d", repo, version, resp.StatusCode)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v2/"+repo+"/referrers/"+dg), nil)
	resp, err = c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var idx ocispec.Index
	if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil || len(idx.Manifests) != 1 {
		return fmt.Errorf("sink: %s:%s has %d referrers, want its signature (%v)", repo, version, len(idx.Manifests), err)
	}
	return nil
}

// findTool finds a client on PATH, else where .ci/tools.sh installs them
// ($GOPATH/bin, ~/go/bin, /root/go/bin); "" when it is nowhere.
func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range append(dirs, "/root/go/bin") {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
