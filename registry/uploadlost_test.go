package registry_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
)

// TestUploadLostInMachineRestart: the disk store does not sync a PATCH's
// chunk (storage/fs durable.go). When the machine restarted before the
// closing PUT and the chunk changed on disk, the next PATCH, or the
// closing PUT, is answered BLOB_UPLOAD_UNKNOWN with the reason, the
// session is gone (its offset would claim the lost bytes), and no blob is
// published.
func TestUploadLostInMachineRestart(t *testing.T) {
	for _, closing := range []bool{false, true} {
		name := map[bool]string{false: "next PATCH", true: "closing PUT"}[closing]
		t.Run(name, func(t *testing.T) {
			blobs, meta, dir := teststores.Open(t)
			h := registry.New(blobs, meta)
			const repo = "lost/blob"
			first, second := bytes.Repeat([]byte("a"), 1<<20), []byte("the rest")
			w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
			expect(t, w, http.StatusAccepted, "")
			loc := w.Header().Get("Location")
			id := w.Header().Get("Docker-Upload-Uuid")
			expect(t, do(t, h, "PATCH", loc, first, "Content-Range", "0-1048575"), http.StatusAccepted, "")

			// The machine restarts: another boot wrote the session's mark,
			// and the unsynced chunk came back as zeros.
			u, err := meta.GetUpload(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(u.Backend, []byte("fs1 ")) {
				t.Fatalf("session Backend %q: the disk store records no durability mark", u.Backend)
			}
			fields := strings.Fields(string(u.Backend))
			u.Backend = []byte("fs1 another-boot " + fields[2])
			if err := meta.UpdateUpload(t.Context(), u, u.Offset); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "blobs", "uploads", id), make([]byte, len(first)), 0o644); err != nil {
				t.Fatal(err)
			}

			d := sha(append(bytes.Clone(first), second...))
			if closing {
				w = do(t, h, "PUT", loc+"?digest="+d.String(), second, "Content-Range", "1048576-1048583")
			} else {
				w = do(t, h, "PATCH", loc, second, "Content-Range", "1048576-1048583")
			}
			expect(t, w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
			if !strings.Contains(w.Body.String(), "machine restarted") {
				t.Fatalf("answer does not say why: %s", w.Body.String())
			}
			expect(t, do(t, h, "GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
			expect(t, do(t, h, "HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil), http.StatusNotFound, "")
			if _, err := os.Stat(filepath.Join(dir, "blobs", "uploads", id)); !os.IsNotExist(err) {
				t.Fatalf("the lost upload's data is still there: %v", err)
			}
		})
	}
}
