package pack

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http/httptest"
	"testing"
)

// TestPublishMemoryBudget: many small files share one memory budget per
// request; what does not fit waits in the spool, byte-exact.
func TestPublishMemoryBudget(t *testing.T) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("metadata", `{"name":"mem/pack","version":"1.0.0"}`)
	var files [][]byte
	for i := range 20 {
		data := bytes.Repeat([]byte{byte('a' + i)}, memSpool-1) // each under the per-file buffer
		files = append(files, data)
		w, _ := mw.CreateFormFile("file", fmt.Sprintf("f%02d.bin", i))
		w.Write(data)
	}
	mw.Close()
	req := httptest.NewRequest("POST", Prefix, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	s := New(nil, WithSpoolDir(t.TempDir()))
	_, ups, sp, err := s.readPublish(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var inMem, total int64
	for i, u := range ups {
		inMem += int64(len(u.mem))
		total += u.size
		rc, err := u.open()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, files[i]) {
			t.Fatalf("file %d: read back %d bytes, differs", i, len(got))
		}
	}
	if inMem > memBudget {
		t.Errorf("%d bytes of one request held in memory, budget %d", inMem, memBudget)
	}
	if sp.size != total-inMem || sp.size == 0 {
		t.Errorf("spool holds %d bytes, want %d", sp.size, total-inMem)
	}
}
