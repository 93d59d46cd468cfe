package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The settings the comparison depends on are where Distribution reads
// them, and odd characters in paths and keys stay inside their strings.
func TestDistConfigSettings(t *testing.T) {
	var disk map[string]any
	if err := yaml.Unmarshal([]byte(distConfig("127.0.0.1:5001", distStorage{rootDir: "/tmp/a: b#c"})), &disk); err != nil {
		t.Fatal(err)
	}
	s3 := distS3{endpoint: "http://127.0.0.1:7070", region: "us-east-1", bucket: "packreg-test", prefix: "/ci/bench-1-distribution",
		accessKey: "packreg", secretKey: `se"cr: et`}
	var onS3 map[string]any
	if err := yaml.Unmarshal([]byte(distConfig("127.0.0.1:5002", distStorage{s3: &s3})), &onS3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  map[string]any
		path string
		want any
	}{
		{disk, "log.level", "error"},
		{disk, "http.addr", "127.0.0.1:5001"},
		{disk, "storage.delete.enabled", true},
		{disk, "storage.cache.blobdescriptor", "inmemory"},
		{disk, "storage.filesystem.rootdirectory", "/tmp/a: b#c"},
		{disk, "storage.s3", nil},
		{onS3, "storage.filesystem", nil},
		{onS3, "storage.redirect.disable", true},
		{onS3, "storage.delete.enabled", true},
		{onS3, "storage.s3.regionendpoint", "http://127.0.0.1:7070"},
		{onS3, "storage.s3.forcepathstyle", true},
		{onS3, "storage.s3.secure", false},
		{onS3, "storage.s3.bucket", "packreg-test"},
		{onS3, "storage.s3.rootdirectory", "/ci/bench-1-distribution"},
		{onS3, "storage.s3.region", "us-east-1"},
		{onS3, "storage.s3.accesskey", "packreg"},
		{onS3, "storage.s3.secretkey", `se"cr: et`},
	} {
		if got := lookup(c.cfg, c.path); got != c.want {
			t.Errorf("%s = %#v, want %#v", c.path, got, c.want)
		}
	}
}

func lookup(m map[string]any, path string) any {
	var v any = m
	for k := range strings.SplitSeq(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func TestDistS3FromURL(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "ak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "sk")
	s, err := distS3From("s3://bucket/ci?endpoint=http://127.0.0.1:7070", "/ci/run-distribution")
	if err != nil {
		t.Fatal(err)
	}
	want := distS3{endpoint: "http://127.0.0.1:7070", region: "us-east-1", bucket: "bucket", prefix: "/ci/run-distribution", accessKey: "ak", secretKey: "sk"}
	if *s != want {
		t.Errorf("distS3From = %+v, want %+v", *s, want)
	}
	if _, err := distS3From("s3://bucket/ci", "/p"); err == nil {
		t.Error("an S3 URL without endpoint= was accepted: Distribution would go to AWS")
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if _, err := distS3From("s3://bucket/ci?endpoint=http://127.0.0.1:7070", "/p"); err == nil {
		t.Error("missing credentials were accepted")
	}
}

// distributionBinary finds `registry` or skips; under CI=true, where
// .ci/tools.sh installs it, its absence fails.
func distributionBinary(t *testing.T) string {
	t.Helper()
	bin := findDistribution("")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but Distribution's `registry` is not on PATH nor in ~/go/bin: run .ci/tools.sh")
		}
		t.Skip("Distribution's `registry` binary not found (PATH, ~/go/bin): run .ci/tools.sh to compare with it")
	}
	return bin
}

// TestDistributionStartsWithGeneratedConfig starts the real `registry`
// with the config the bench writes, on disk and (when configured) on the
// S3 server, and pushes and pulls a blob through it: a config Distribution
// misreads fails here rather than as an empty column in a long run.
func TestDistributionStartsWithGeneratedConfig(t *testing.T) {
	bin := distributionBinary(t)
	dir := t.TempDir()
	stores := map[string]distStorage{"disk": {rootDir: filepath.Join(dir, "root")}}
	if raw := os.Getenv("PACKREG_TEST_S3"); raw != "" {
		prefix := "/bench-test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000")
		s3, err := distS3From(raw, prefix)
		if err != nil {
			t.Fatal(err)
		}
		stores["s3"] = distStorage{s3: s3}
		u := raw[:strings.Index(raw, "?")]
		clean := strings.TrimSuffix(u, "/") + prefix + raw[strings.Index(raw, "?"):]
		t.Cleanup(func() {
			if _, err := cleanS3Prefix(context.Background(), clean); err != nil {
				t.Errorf("cleaning %s: %v", prefix, err)
			}
		})
	} else if os.Getenv("CI") != "" {
		t.Fatal("CI is set but PACKREG_TEST_S3 is not: eval \"$(.ci/s3.sh)\"")
	} else {
		t.Log("PACKREG_TEST_S3 not set: the s3 driver config is not started")
	}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			srv, err := startDistribution(ctx, bin, filepath.Join(dir, name), st, filepath.Join(dir, name+".log"))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.stop()
			c, err := newClient(srv.base)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			body := genBytes(42, 4096)
			dg := sha256Digest(body)
			if _, err := c.pushSmall(ctx, "bench/check", body, dg); err != nil {
				t.Fatalf("push: %v\nlog:\n%s", err, srv.logTail(20))
			}
			resp, err := c.hc.Get(c.url("/v2/bench/check/blobs/" + dg))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
				t.Fatalf("GET the blob back: status %d, %d bytes (want %d), %v", resp.StatusCode, len(got), len(body), err)
			}
			if cfg, err := os.ReadFile(filepath.Join(dir, name, "config.yml")); err != nil {
				t.Fatal(err)
			} else if fi, _ := os.Stat(filepath.Join(dir, name, "config.yml")); fi.Mode().Perm() != 0o600 {
				t.Errorf("config.yml mode %v, want 0600 (it holds the S3 secret)", fi.Mode().Perm())
			} else if name == "disk" && !bytes.Contains(cfg, []byte(st.rootDir)) {
				t.Errorf("config.yml does not name the root dir %s", st.rootDir)
			}
			if name == "disk" {
				// The blob is in the filesystem driver's root, not somewhere else.
				if _, err := os.Stat(filepath.Join(st.rootDir, "docker", "registry", "v2", "blobs", "sha256", dg[7:9], dg[7:], "data")); err != nil {
					t.Errorf("blob not under the configured root: %v", err)
				}
			}
		})
	}
}
