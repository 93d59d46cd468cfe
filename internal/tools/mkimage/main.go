// Command mkimage writes packreg's container image as an OCI image layout
// (a directory crane, skopeo, oras and regctl push anywhere), without
// Docker: one layer holding the static binary, a non-root user and the
// data directory, built with go-containerregistry. `make image` runs it
// after building bin/image/packreg with CGO_ENABLED=0.
//
// The image:
//
//	/usr/local/bin/packreg          the binary (root-owned, 0755); the entrypoint
//	/etc/passwd, /etc/group         root and packreg (65532:65532)
//	/etc/packreg/config.yaml        addr :5000, data /var/lib/packreg, JSON logs
//	/etc/ssl/certs/ca-certificates.crt   the build machine's CA bundle, for S3 over https
//	/var/lib/packreg/               the data directory (65532, 0750): a volume
//	/tmp/                           1777
//
// It runs as 65532:65532 with `serve --config /etc/packreg/config.yaml`.
// Serving on :5000 needs authentication or allow_anonymous, as anywhere
// off loopback: the image does not choose for its operator.
//
// Times are SOURCE_DATE_EPOCH (default 0), so the same binary makes the
// same digest. mkimage is a build tool: nothing imports it.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// uid and gid of the packreg user: 65532 is the conventional "nonroot"
// of distroless images, so volume permissions carry over.
const uid, gid = 65532, 65532

const config = `# packreg in its container image. Mount another file over this one,
# or pass flags after "serve" (they override the file).
addr: ":5000"
data: /var/lib/packreg
log:
  format: json
`

func main() {
	binary := flag.String("binary", "bin/image/packreg", "the static packreg `binary` to put in the image")
	out := flag.String("out", "bin/packreg-oci", "the OCI layout `directory` to write (replaced)")
	version := flag.String("version", "devel", "image `version`: the tag (org.opencontainers.image.ref.name) and the version label")
	arch := flag.String("arch", runtime.GOARCH, "the binary's `GOARCH`")
	caBundle := flag.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates `file` to include (\"\" for none)")
	flag.Parse()
	if err := run(*binary, *out, *version, *arch, *caBundle); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(binary, out, version, arch, caBundle string) error {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	var ca []byte
	if caBundle != "" {
		if ca, err = os.ReadFile(caBundle); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if ca == nil {
			fmt.Fprintf(os.Stderr, "mkimage: no %s: the image has no CA bundle (mount one for S3 over https)\n", caBundle)
		}
	}
	created, err := sourceDate()
	if err != nil {
		return err
	}
	fsTar, err := rootfs(bin, ca, created)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(fsTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "mkimage: packreg " + version, Comment: "static binary, non-root user",
	}})
	if err != nil {
		return err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "packreg",
		"org.opencontainers.image.description": "OCI registry for packs, with signatures, mirroring and an audit trail",
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.source":      "https://github.com/packreg/packreg",
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", arch, v1.Time{Time: created}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", uid, gid),
		Entrypoint:   []string{"/usr/local/bin/packreg"},
		Cmd:          []string{"serve", "--config", "/etc/packreg/config.yaml"},
		WorkingDir:   "/var/lib/packreg",
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/var/lib/packreg"},
		ExposedPorts: map[string]struct{}{"5000/tcp": {}},
		Volumes:      map[string]struct{}{"/var/lib/packreg": {}},
		Labels:       labels,
		StopSignal:   "SIGTERM",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	img = mutate.Annotations(img, map[string]string{
		"org.opencontainers.image.version": version,
		"org.opencontainers.image.created": created.Format(time.RFC3339),
	}).(v1.Image)
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img,
		layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": version}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: arch})); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s (linux/%s, user %d:%d)\n", out, d, arch, uid, gid)
	return nil
}

// sourceDate is SOURCE_DATE_EPOCH, or the Unix epoch.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

// rootfs is the image's one layer, uncompressed.
func rootfs(bin, ca []byte, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dir := func(name string, mode int64, owner int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: owner, Gid: owner, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc/", 0o755, 0) },
		func() error {
			return file("etc/passwd", 0o644, fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\npackreg:x:%d:%d:packreg:/var/lib/packreg:/sbin/nologin\n", uid, gid))
		},
		func() error { return file("etc/group", 0o644, fmt.Appendf(nil, "root:x:0:\npackreg:x:%d:\n", gid)) },
		func() error { return dir("etc/packreg/", 0o755, 0) },
		func() error { return file("etc/packreg/config.yaml", 0o644, []byte(config)) },
		func() error { return dir("tmp/", 0o1777, 0) },
		func() error { return dir("usr/", 0o755, 0) },
		func() error { return dir("usr/local/", 0o755, 0) },
		func() error { return dir("usr/local/bin/", 0o755, 0) },
		func() error { return file("usr/local/bin/packreg", 0o755, bin) },
		func() error { return dir("var/", 0o755, 0) },
		func() error { return dir("var/lib/", 0o755, 0) },
		func() error { return dir("var/lib/packreg/", 0o750, uid) },
	}
	if ca != nil {
		steps = append(steps,
			func() error { return dir("etc/ssl/", 0o755, 0) },
			func() error { return dir("etc/ssl/certs/", 0o755, 0) },
			func() error { return file("etc/ssl/certs/ca-certificates.crt", 0o644, ca) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
