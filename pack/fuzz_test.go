package pack

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
)

// Native fuzz targets for the pack package's parsers of outside input: the
// multipart publish request here, the facts of a pushed pack in
// packconfig_test.go. They check what is accepted and what is left behind,
// not only that nothing panics. Seeds are in testdata/fuzz; `go test` runs
// them as ordinary tests and `make fuzz-short` fuzzes briefly.

// padMark in a seed body is replaced (everywhere) by pad*64 bytes, so that
// small seeds reach the paths where file parts outgrow the memory of a
// part or of the request and are spooled.
const padMark = "@PAD@"

// FuzzReadPublish: a publish request is accepted with exactly the files an
// independent multipart reading finds, byte for byte, under valid names and
// metadata, within max_pack_size and the memory budget, or refused with a
// 4xx API error; and in neither case is a file left open or in the spool
// directory once the spool is closed.
func FuzzReadPublish(f *testing.F) {
	f.Add("multipart/form-data; boundary=B", []byte("--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n"+
		`{"name":"acme/rules","version":"1.0.0"}`+"\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.yaml\"\r\n\r\n"+
		padMark+"\r\n--B--\r\n"), uint16(0), int64(0))
	f.Fuzz(func(t *testing.T, ct string, body []byte, pad uint16, maxPack int64) {
		body = bytes.ReplaceAll(body, []byte(padMark), bytes.Repeat([]byte("p"), int(pad)*64))
		if maxPack < 0 {
			maxPack = ^maxPack
		}
		maxPack %= 4 << 20 // 0: no cap
		dir := t.TempDir()
		pol := DefaultPolicy()
		pol.MaxPackSize = maxPack
		s := New(nil, WithPolicy(pol), WithSpoolDir(dir))
		req := httptest.NewRequest(http.MethodPost, "/api/v1/packs", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)

		fds := openFiles(t)
		md, ups, sp, err := s.readPublish(req)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("refused with %v, want a 4xx API error", err)
			}
			if n := spooled(t, dir); n != 0 || openFiles(t) != fds {
				t.Fatalf("a refused request left %d bytes in the spool directory, %d files open (%d before)", n, openFiles(t), fds)
			}
			return
		}
		defer func() {
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			if n := spooled(t, dir); n != 0 || openFiles(t) != fds {
				t.Fatalf("closing the spool left %d bytes in the spool directory, %d files open (%d before)", n, openFiles(t), fds)
			}
		}()
		if n := spooled(t, dir); n != 0 {
			t.Fatalf("%d bytes visible in the spool directory: the spool should be unlinked", n)
		}
		if maxPack > 0 && sp.size > maxPack {
			t.Fatalf("%d bytes spooled under a cap of %d", sp.size, maxPack)
		}
		if err := md.check(); err != nil {
			t.Fatalf("accepted metadata %+v: %v", md, err)
		}
		want := multipartFiles(t, ct, body)
		if len(ups) == 0 || len(ups) > maxFiles || len(ups) != len(want) {
			t.Fatalf("accepted %d files, the body has %d", len(ups), len(want))
		}
		var total, mem int64
		for i, u := range ups {
			if err := checkFileName(u.name); err != nil || u.name != want[i].name {
				t.Fatalf("file %d named %q, the body says %q (%v)", i, u.name, want[i].name, err)
			}
			if mem += int64(len(u.mem)); len(u.mem) > memSpool || mem > memBudget || u.spool != nil && u.spool != sp {
				t.Fatalf("file %q held in %d bytes of memory (%d for the request so far)", u.name, len(u.mem), mem)
			}
			rc, err := u.open()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, want[i].data) || int64(len(got)) != u.size || digest.FromBytes(digest.SHA256, got) != u.digest {
				t.Fatalf("file %q: %d bytes, %s; the body has %d bytes", u.name, u.size, u.digest, len(want[i].data))
			}
			total += u.size
		}
		if maxPack > 0 && total > maxPack {
			t.Fatalf("accepted %d bytes of files under a cap of %d", total, maxPack)
		}
	})
}

type filePart struct {
	name string
	data []byte
}

// multipartFiles reads the file parts of an accepted body with mime/multipart
// alone.
func multipartFiles(t *testing.T, ct string, body []byte) []filePart {
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out []filePart
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("accepted a body mime/multipart cannot read: %v", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if p.FormName() == "file" {
			_, dp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
			out = append(out, filePart{dp["filename"], data})
		}
	}
}

// openFiles counts this process's open file descriptors (0 where /proc is
// not there to count them).
func openFiles(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}

// spooled is the size of everything in dir.
func spooled(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
