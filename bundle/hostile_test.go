package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
)

// tarFile is one entry of an archive a test builds.
type tarFile struct {
	name string
	flag byte
	data []byte
	link string
}

// entriesOf reads the files of a bundle archive, in order.
func entriesOf(t testing.TB, b []byte) []tarFile {
	t.Helper()
	tr := newTarReader(bytes.NewReader(b))
	var out []tarFile
	for {
		e, err := tr.next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarFile{name: e.Name, flag: tar.TypeReg, data: data})
	}
}

// build writes an archive of files with archive/tar, as other tools do.
func build(t testing.TB, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.flag, Mode: 0o644, Size: int64(len(f.data)), Linkname: f.link,
			ModTime: time.Unix(1700000000, 0), Format: tar.FormatGNU}
		if f.flag != tar.TypeReg {
			h.Size = 0
		}
		if f.flag == tar.TypeChar || f.flag == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if f.flag == tar.TypeReg {
			tw.Write(f.data)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// smallBundle is a signed bundle of one pack with a referrer, and a site
// trusting its key.
func smallBundle(t *testing.T) ([]byte, *Signer) {
	t.Helper()
	sg := newTestSigner(t)
	a := newSite(t, WithSigner(sg))
	p := a.pack("acme/rules", "1.0.0", 600)
	a.referrer("acme/rules", p, "application/vnd.example.sbom", `{"sbom":true}`)
	_, b := a.export(ExportRequest{})
	return b, sg
}

func indexOf(files []tarFile, name string) int {
	for i, f := range files {
		if f.name == name {
			return i
		}
	}
	return -1
}

// firstContentBlob is the first entry after the header: a manifest of
// the content (packreg writes those before blobs).
func firstContentBlob(t *testing.T, files []tarFile) int {
	t.Helper()
	byName := map[string][]byte{}
	for _, f := range files {
		byName[f.name] = f.data
	}
	head, err := headerBlobs(byName["index.json"], func(d digest.Digest) ([]byte, error) { return byName[blobPath(d)], nil })
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]bool{"oci-layout": true, "index.json": true}
	for _, d := range head {
		in[blobPath(d)] = true
	}
	for i, f := range files {
		if !in[f.name] {
			return i
		}
	}
	t.Fatal("no content blob")
	return -1
}

// TestHostileArchives: what an archive may not do, each refused with the
// entry it is about, nothing published, nothing left in staging, nothing
// written anywhere a name in the archive points.
func TestHostileArchives(t *testing.T) {
	good, sg := smallBundle(t)
	files := entriesOf(t, good)
	content := firstContentBlob(t, files)
	last := len(files) - 1 // a blob: packreg writes blobs last
	with := func(mod func([]tarFile) []tarFile) []byte {
		c := make([]tarFile, len(files))
		copy(c, files)
		return build(t, mod(c))
	}
	insertAt := func(i int, f tarFile) func([]tarFile) []tarFile {
		return func(c []tarFile) []tarFile { return append(c[:i], append([]tarFile{f}, c[i:]...)...) }
	}
	flipped := func(i int) func([]tarFile) []tarFile {
		return func(c []tarFile) []tarFile {
			d := bytes.Clone(c[i].data)
			d[len(d)/2] ^= 1
			c[i].data = d
			return c
		}
	}
	escape := filepath.Join(t.TempDir(), "escaped")
	rows := []struct {
		name    string
		archive []byte
		limits  Limits
		kind    error
		says    string
	}{
		{"absolute path", with(insertAt(content, tarFile{name: "/tmp/packreg-abs", flag: tar.TypeReg, data: []byte("x")})), Limits{}, ErrInvalid, "absolute path"},
		{"dot-dot", with(insertAt(content, tarFile{name: "blobs/../../" + escape, flag: tar.TypeReg, data: []byte("x")})), Limits{}, ErrInvalid, `".."`},
		{"symbolic link", with(insertAt(content, tarFile{name: "blobs/sha256/" + strings.Repeat("a", 64), flag: tar.TypeSymlink, link: "/etc/passwd"})), Limits{}, ErrInvalid, "symbolic link"},
		{"hard link", with(insertAt(content, tarFile{name: "blobs/sha256/" + strings.Repeat("b", 64), flag: tar.TypeLink, link: "oci-layout"})), Limits{}, ErrInvalid, "hard link"},
		{"device", with(insertAt(content, tarFile{name: "blobs/sha256/" + strings.Repeat("c", 64), flag: tar.TypeChar})), Limits{}, ErrInvalid, "character device"},
		{"fifo", with(insertAt(content, tarFile{name: "fifo", flag: tar.TypeFifo})), Limits{}, ErrInvalid, "FIFO"},
		{"duplicate entry", with(func(c []tarFile) []tarFile { return append(c, c[last]) }), Limits{}, ErrInvalid, "appears twice"},
		{"a blob that is not its digest", with(flipped(last)), Limits{}, ErrInvalid, "hash to"},
		{"a manifest that is not its digest", with(flipped(content)), Limits{}, ErrInvalid, "hash to"},
		{"index.json names a blob that is missing", with(func(c []tarFile) []tarFile { return c[:last] }), Limits{}, ErrInvalid, "missing"},
		{"a tag that is not a valid tag", with(func(c []tarFile) []tarFile {
			i := indexOf(c, "index.json")
			c[i].data = bytes.Replace(c[i].data, []byte(`"acme..rules_1.0.0"`), []byte(`"-acme/rules:1.0.0"`), 1)
			return c
		}), Limits{}, ErrInvalid, "not a valid tag"},
		{"an extra blob", with(func(c []tarFile) []tarFile {
			return append(c, tarFile{name: blobPath(digest.FromBytes(digest.SHA256, []byte("extra"))), flag: tar.TypeReg, data: []byte("extra")})
		}), Limits{}, ErrInvalid, "not part of the bundle"},
		{"a blob before index.json", build(t, append([]tarFile{files[last]}, files...)), Limits{}, ErrInvalid, "before index.json"},
		{"an unknown file", with(insertAt(content, tarFile{name: "manifest.json", flag: tar.TypeReg, data: []byte("[]")})), Limits{}, ErrInvalid, "a file a bundle does not have"},
		{"a truncated archive", good[:len(good)-2048], Limits{}, ErrInvalid, "ends"},
		{"data after the end", append(bytes.Clone(good), []byte("trailing")...), Limits{}, ErrInvalid, "after the end"},
		{"too many entries", with(func(c []tarFile) []tarFile {
			var dirs []tarFile
			for range 100 {
				dirs = append(dirs, tarFile{name: "blobs/", flag: tar.TypeDir})
			}
			return append(dirs, c...)
		}), Limits{MaxSize: 1 << 30, MaxEntries: 50}, errTooLarge, "more than 50 entries"},
		{"a gzip that expands without bound", gzipBomb(t, files), Limits{MaxSize: 4 << 20, MaxEntries: 1000}, errTooLarge, "expands beyond"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			b := newSite(t)
			b.trust(sg, "bundles")
			if r.limits != (Limits{}) {
				b.svc.limits = r.limits
			}
			_, err := b.importBundle(r.archive, ImportOptions{})
			var p *Problem
			if !errors.As(err, &p) || !errors.Is(err, r.kind) || !strings.Contains(err.Error(), r.says) {
				t.Fatalf("got %v, want %v saying %q", err, r.kind, r.says)
			}
			if repos := b.repos(); len(repos) != 0 {
				t.Fatalf("a refused bundle published %v", repos)
			}
			b.spoolEmpty()
			if _, err := os.Stat(escape); err == nil {
				t.Fatal("a name in the archive was written to")
			}
			if rep, err := b.svc.Get(context.Background(), p.Details["importId"].(string)); err != nil || rep.State != "refused" || rep.Error == nil {
				t.Fatalf("the import's record: %+v %v", rep, err)
			}
		})
	}
}

// TestLegitimateEntries: what `tar -C dir .` writes (a "./" prefix and
// directory entries) is a bundle too, and gzip of one.
func TestLegitimateEntries(t *testing.T) {
	good, sg := smallBundle(t)
	files := entriesOf(t, good)
	dotted := []tarFile{{name: "./", flag: tar.TypeDir}}
	for i, f := range files {
		if i == 2 {
			dotted = append(dotted, tarFile{name: "./blobs/", flag: tar.TypeDir}, tarFile{name: "./blobs/sha256/", flag: tar.TypeDir})
		}
		f.name = "./" + f.name
		dotted = append(dotted, f)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(good)
	zw.Close()
	for name, archive := range map[string][]byte{"dot-slash and directories": build(t, dotted), "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			b := newSite(t)
			b.trust(sg, "bundles")
			b.mustImport(archive, ImportOptions{})
			if got := b.version("acme/rules", "1.0.0"); got.Status != "active" {
				t.Fatalf("imported: %+v", got)
			}
		})
	}
}

// gzipBomb is a compressed archive that would expand far beyond the
// limit: the bundle's header, then a blob of zeros.
func gzipBomb(t *testing.T, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for _, f := range files[:firstContentBlob(t, files)] {
		tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data))})
		tw.Write(f.data)
	}
	const huge = 1 << 40 // a terabyte of zeros, if anyone read it all
	tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + strings.Repeat("0", 64), Typeflag: tar.TypeReg, Mode: 0o644, Size: huge})
	zero := make([]byte, 1<<20)
	for range 64 { // 64 MiB written, about 64 KiB compressed
		tw.Write(zero)
	}
	zw.Flush()
	return buf.Bytes()
}
