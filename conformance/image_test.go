package conformance

import (
	"archive/tar"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestImage builds the container image the way an operator does (`make
// image`: Go only, no Docker), pushes the OCI layout to a running packreg
// with crane, pulls it back, and checks what a runtime would run: a
// non-root user, the entrypoint, and a static binary that runs (`packreg
// version`) taken out of the pulled layer.
func TestImage(t *testing.T) {
	crane := needTool(t, "crane")
	makeBin := needTool(t, "make")
	layoutDir := filepath.Join(t.TempDir(), "packreg-oci")
	build := exec.Command(makeBin, "-C", "..", "image", "IMAGE_DIR="+layoutDir, "VERSION=v0.0.0-imagetest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(layoutDir, "index.json"))
	if err != nil || json.Unmarshal(b, &idx) != nil || len(idx.Manifests) != 1 {
		t.Fatalf("layout index.json: %v\n%s", err, b)
	}
	if tag := idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; tag != "v0.0.0-imagetest" {
		t.Errorf("layout tag %q", tag)
	}
	built := idx.Manifests[0].Digest

	s := startServer(t)
	tl := newTool(t)
	ref := s.Addr + "/packreg/server:v0.0.0-imagetest"
	tl.run(crane, "push", "--insecure", layoutDir, ref)
	if d := strings.TrimSpace(tl.run(crane, "digest", "--insecure", ref).Stdout); d != built {
		t.Fatalf("pushed digest %s, layout has %s", d, built)
	}

	var cfg struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Config       struct {
			User         string              `json:"User"`
			Entrypoint   []string            `json:"Entrypoint"`
			Cmd          []string            `json:"Cmd"`
			ExposedPorts map[string]struct{} `json:"ExposedPorts"`
			Labels       map[string]string   `json:"Labels"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(tl.run(crane, "config", "--insecure", ref).Stdout), &cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if c.User != "65532:65532" || strings.HasPrefix(c.User, "0") || c.User == "root" {
		t.Errorf("image user %q, want 65532:65532 (non-root)", c.User)
	}
	if strings.Join(c.Entrypoint, " ") != "/usr/local/bin/packreg" || strings.Join(c.Cmd, " ") != "serve --config /etc/packreg/config.yaml" {
		t.Errorf("entrypoint %q, cmd %q", c.Entrypoint, c.Cmd)
	}
	if _, ok := c.ExposedPorts["5000/tcp"]; !ok || cfg.OS != "linux" || c.Labels["org.opencontainers.image.version"] != "v0.0.0-imagetest" {
		t.Errorf("config: os %s, ports %v, labels %v", cfg.OS, c.ExposedPorts, c.Labels)
	}

	// What a runtime unpacks: the filesystem of the pulled image.
	tl.run(crane, "export", "--insecure", ref, "rootfs.tar")
	files := untar(t, tl.path("rootfs.tar"), tl.path("rootfs"))
	for name, want := range map[string]int{
		"usr/local/bin/packreg":   0,
		"var/lib/packreg":         65532,
		"etc/packreg/config.yaml": 0,
		"etc/passwd":              0,
	} {
		h, ok := files[name]
		if !ok {
			t.Errorf("the image has no %s", name)
			continue
		}
		if h.Uid != want {
			t.Errorf("%s owned by %d, want %d", name, h.Uid, want)
		}
	}
	passwd, _ := os.ReadFile(tl.path("rootfs", "etc", "passwd"))
	if !strings.Contains(string(passwd), "packreg:x:65532:65532:") {
		t.Errorf("/etc/passwd has no packreg user:\n%s", passwd)
	}
	bin := tl.path("rootfs", "usr", "local", "bin", "packreg")
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader: not static")
		}
	}
	ef.Close()
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "packreg v0.0.0-imagetest" {
		t.Fatalf("packreg version from the image: %v: %q", err, out)
	}
}

// untar writes an exported filesystem under dir and returns its headers.
func untar(t *testing.T, tarPath, dir string) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		out[name] = h
		p := filepath.Join(dir, filepath.FromSlash(name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("tar entry %q leaves the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
	}
}
