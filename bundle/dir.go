package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// The directory form of a bundle is the same OCI image layout, unpacked:
// what `oras cp --from-oci-layout` and `regctl image copy ocidir://`
// read. WriteDir makes it from an archive, with go-containerregistry's
// layout package (which writes a layout's files and sha256 blobs where
// they belong); DirArchive turns it back into an archive, in the order an
// import reads.

// Written counts what WriteDir or a progress meter has seen go by.
type Written struct {
	Items int
	Bytes int64
}

// WriteDir unpacks a bundle archive from r into dir, which must not exist
// or be empty: a failure leaves nothing to mistake for a bundle (the
// caller removes dir). Every blob is checked against its name as it is
// written; the import checks the rest. progress, when not nil, is called
// after each file.
func WriteDir(ctx context.Context, r io.Reader, dir string, progress func(Written)) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty: a bundle is written to a new directory", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	tr := newTarReader(r)
	var w Written
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := tr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name, err := entryName(e)
		if err != nil {
			return fmt.Errorf("entry %q: %v", clip(e.Name), err)
		}
		if e.Type == entryDir {
			continue
		}
		switch {
		case name == "oci-layout" || name == "index.json":
			b, err := readAll(tr, e.Size, maxIndexJSON)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := p.WriteFile(name, b, 0o644); err != nil {
				return err
			}
		default:
			d, err := digest.Parse(filepath.Base(filepath.Dir(name)) + ":" + filepath.Base(name))
			if err != nil || name != blobPath(d) {
				return fmt.Errorf("entry %q is not a blob of a layout", clip(name))
			}
			if err := writeBlob(p, d, tr); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		w.Items++
		w.Bytes += e.Size
		if progress != nil {
			progress(w)
		}
	}
}

// writeBlob writes blob d from r, checking its digest; go-containerregistry
// writes sha256 blobs, and knows no other algorithm.
func writeBlob(p layout.Path, d digest.Digest, r io.Reader) error {
	h := digest.NewHash(d.Algorithm())
	tee := io.TeeReader(r, h)
	if d.Algorithm() == digest.SHA256 {
		hash, err := v1.NewHash(d.String())
		if err != nil {
			return err
		}
		if err := p.WriteBlob(hash, io.NopCloser(tee)); err != nil {
			return err
		}
	} else {
		dir := filepath.Join(string(p), "blobs", d.Algorithm())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(dir, d.Hex()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tee)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if got := digest.FromHash(d.Algorithm(), h); got != d {
		return fmt.Errorf("its bytes hash to %s", got)
	}
	return nil
}

// DirArchive streams the layout in dir as an archive an import reads:
// oci-layout, index.json, the bundle's manifest, document and signature,
// then every other blob. Only regular files are read (a symbolic link is
// refused); whatever they hold, the import checks.
func DirArchive(dir string) (io.ReadCloser, int64, error) {
	files, err := dirFiles(dir)
	if err != nil {
		return nil, 0, err
	}
	sizes := make([]int64, len(files))
	for i, f := range files {
		sizes[i] = f.size
	}
	pr, pw := io.Pipe()
	go func() {
		tw := newTarWriter(pw, time.Unix(0, 0))
		for _, f := range files {
			if err := writeDirFile(tw, dir, f); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.close())
	}()
	return pr, tarSize(sizes), nil
}

type dirFile struct {
	name string
	size int64
}

func writeDirFile(tw *tarWriter, dir string, f dirFile) error {
	file, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.name)))
	if err != nil {
		return err
	}
	defer file.Close()
	return tw.file(f.name, f.size, file)
}

// dirFiles lists the layout's files in archive order.
func dirFiles(dir string) ([]dirFile, error) {
	stat := func(name string) (dirFile, error) {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return dirFile{}, err
		}
		if !fi.Mode().IsRegular() {
			return dirFile{}, fmt.Errorf("%s is not a regular file (%s)", name, fi.Mode().Type())
		}
		return dirFile{name, fi.Size()}, nil
	}
	var out []dirFile
	for _, n := range []string{"oci-layout", "index.json"} {
		f, err := stat(n)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	index, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	first, err := headerBlobs(index, func(d digest.Digest) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, filepath.FromSlash(blobPath(d))))
	})
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for _, d := range first {
		f, err := stat(blobPath(d))
		if err != nil {
			return nil, err
		}
		if !done[f.name] {
			done[f.name] = true
			out = append(out, f)
		}
	}
	var rest []string
	for _, alg := range []string{digest.SHA256, digest.SHA512} {
		entries, err := os.ReadDir(filepath.Join(dir, "blobs", alg))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if n := "blobs/" + alg + "/" + e.Name(); !done[n] {
				rest = append(rest, n)
			}
		}
	}
	slices.Sort(rest)
	for _, n := range rest {
		f, err := stat(n)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// headerBlobs are the blobs of the bundle's manifest and signature, which
// an import reads first, in the order it reads them.
func headerBlobs(index []byte, read func(digest.Digest) ([]byte, error)) ([]digest.Digest, error) {
	bundle, sig, err := readLayoutIndex(index)
	if err != nil {
		return nil, err
	}
	var out, named []digest.Digest
	for _, m := range []*oci.Descriptor{&bundle, sig} {
		if m == nil {
			continue
		}
		d := digest.Digest(m.Digest)
		out = append(out, d)
		b, err := read(d)
		if err != nil {
			return nil, err
		}
		var doc oci.Manifest
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %v", blobPath(d), err)
		}
		for _, x := range append([]oci.Descriptor{doc.Config}, doc.Layers...) {
			if xd, err := digest.Parse(string(x.Digest)); err == nil {
				named = append(named, xd)
			}
		}
	}
	return append(out, named...), nil
}

// ReadHeader reads the header of a bundle (an archive, or a directory
// when path is one): what `packreg export --since PREVIOUS` continues
// from. It checks no signature: the import does.
func ReadHeader(ctx context.Context, path string) (*Header, error) {
	var r io.ReadCloser
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if fi.IsDir() {
		if r, _, err = DirArchive(path); err != nil {
			return nil, err
		}
	} else if r, err = os.Open(path); err != nil {
		return nil, err
	}
	defer r.Close()
	var h *Header
	_, err := readBundle(ctx, r, newSpool(&memFile{}), readOptions{Limits: Limits{MaxSize: 1 << 62, MaxEntries: 1 << 30},
		admit: func(got *Header) error { h = got; return errHeaderRead }})
	if h != nil {
		return h, nil
	}
	return nil, err
}

var errHeaderRead = errors.New("header read")
