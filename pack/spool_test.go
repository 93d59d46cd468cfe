package pack_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/pack"
)

// openFilesUnder lists this process's open files below dir (Linux: the
// links of /proc/self/fd), "(deleted)" suffix included.
func openFilesUnder(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(os.PathSeparator)) {
			out = append(out, target)
		}
	}
	return out
}

// watchedBody is a request body that runs check once after at least
// after bytes have been read: the server is then mid-request.
type watchedBody struct {
	r       io.Reader
	read    int
	after   int
	check   func()
	checked bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if !b.checked && b.read >= b.after {
		b.checked = true
		b.check()
	}
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

// TestPublishSpool: file parts that do not fit the request's memory
// budget wait in one temporary file under the configured spool directory
// (never $TMPDIR), unlinked while it is open, so nothing is left behind on
// any exit path, a crash included.
func TestPublishSpool(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("watches open files through /proc/self/fd")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	spool := t.TempDir()
	e := newEnv(t, pack.DefaultPolicy(), pack.WithSpoolDir(spool))
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	body, ct := multipartBody(t, metaPart(t, pack.Metadata{Name: "spool/pack", Version: "1.0.0"}),
		part{form: "file", filename: "big.bin", data: big})
	var during []string
	wb := &watchedBody{r: bytes.NewReader(body), after: 7 << 20, check: func() { during = openFilesUnder(t, spool) }}
	req := httptest.NewRequest("POST", pack.Prefix, wb)
	req.Header.Set("Content-Type", ct)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if w.Code != http.StatusCreated {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}
	if len(during) != 1 || !strings.HasSuffix(during[0], " (deleted)") {
		t.Fatalf("while reading the request, open files under the spool directory: %q; want one, unlinked", during)
	}
	if got := openFilesUnder(t, spool); len(got) != 0 {
		t.Errorf("spool files still open after the request: %q", got)
	}
	for _, dir := range []string{spool, tmp} {
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%s holds %d entries after the request", dir, len(left))
		}
	}
	// The file was stored byte-exact from the spool.
	v := decode[pack.Version](t, e.do("GET", pack.Prefix+"/spool/pack/versions/1.0.0", nil))
	if len(v.Files) != 1 || v.Files[0].Size != int64(len(big)) {
		t.Fatalf("files %+v", v.Files)
	}

	// Failing exits close the spool too: a body cut short, a bad part
	// after a spooled one, and the size cap.
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"cut short", body[:len(body)/2]},
		{"bad part after a spooled file", func() []byte {
			b, _ := multipartBody(t, metaPart(t, pack.Metadata{Name: "spool/pack", Version: "2.0.0"}),
				part{form: "file", filename: "big.bin", data: big}, part{form: "other", data: []byte("x")})
			return b
		}()},
	} {
		req := httptest.NewRequest("POST", pack.Prefix, bytes.NewReader(c.body))
		req.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", c.name, w.Code, w.Body)
		}
		if got := openFilesUnder(t, spool); len(got) != 0 {
			t.Errorf("%s: spool files still open: %q", c.name, got)
		}
		if left, _ := os.ReadDir(spool); len(left) != 0 {
			t.Errorf("%s: the spool directory holds %d entries", c.name, len(left))
		}
	}
}

// TestPublishSizeCap: the request is capped even when max_pack_size is 0
// (no pack size policy): 413 as soon as the cap is crossed, nothing stored,
// nothing left in the spool.
func TestPublishSizeCap(t *testing.T) {
	if pack.DefaultMaxPublishSize <= 0 {
		t.Fatalf("DefaultMaxPublishSize = %d: a publish must be capped by default", pack.DefaultMaxPublishSize)
	}
	spool := t.TempDir()
	pol := pack.DefaultPolicy()
	pol.MaxPackSize = 0
	e := newEnv(t, pol, pack.WithSpoolDir(spool), pack.WithMaxPublishSize(3<<20))
	md := pack.Metadata{Name: "cap/pack", Version: "1.0.0"}
	w := e.publish(md, file{name: "a.bin", data: bytes.Repeat([]byte{'a'}, 2<<20)}, file{name: "b.bin", data: bytes.Repeat([]byte{'b'}, 2<<20)})
	if msg := expectError(t, w, http.StatusRequestEntityTooLarge, apierr.TooLarge); !strings.Contains(msg, fmt.Sprint(3<<20)) {
		t.Errorf("the refusal does not say the cap: %s", msg)
	}
	if w := e.do("GET", pack.Prefix+"/cap/pack/versions/1.0.0", nil); w.Code != http.StatusNotFound {
		t.Errorf("refused version exists: %d %s", w.Code, w.Body)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("the spool directory holds %d entries", len(left))
	}
	// Under the cap it publishes; a pack size policy lowers the cap further.
	e.mustPublish(md, file{name: "a.bin", data: bytes.Repeat([]byte{'a'}, 2<<20)})
	pol.MaxPackSize = 1 << 20
	e = newEnv(t, pol, pack.WithSpoolDir(spool), pack.WithMaxPublishSize(3<<20))
	if w := e.publish(md, file{name: "a.bin", data: bytes.Repeat([]byte{'a'}, 2<<20)}); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MiB under max_pack_size 1 MiB: %d %s", w.Code, w.Body)
	}
}
