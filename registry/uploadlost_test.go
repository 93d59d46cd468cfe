package registry_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// TestUploadLostInMachineRestart: the disk store does not sync a PATCH's
// chunk (storage/fs durable.go). When the machine restarted before the
// closing PUT and the chunk changed on disk, the next PATCH, the closing
// PUT, or the status GET is answered BLOB_UPLOAD_UNKNOWN with the reason,
// the session is gone (its offset would claim the lost bytes), and no
// blob is published. TestUploadIntactAfterMachineRestart is the other
// side: intact bytes are proven and the upload goes on.
func TestUploadLostInMachineRestart(t *testing.T) {
	for _, next := range []string{"PATCH", "PUT", "GET"} {
		t.Run(next, func(t *testing.T) {
			blobs, meta, dir := teststores.Open(t)
			h := registry.New(blobs, meta)
			const repo = "lost/blob"
			first, second := bytes.Repeat([]byte("a"), 1<<20), []byte("the rest")
			loc, id := startWithChunk(t, h, repo, first)

			// The machine restarts, and the unsynced chunk came back as zeros.
			restartMachine(t, meta, id)
			if err := os.WriteFile(filepath.Join(dir, "blobs", "uploads", id), make([]byte, len(first)), 0o644); err != nil {
				t.Fatal(err)
			}

			d := sha(append(bytes.Clone(first), second...))
			var w *httptest.ResponseRecorder
			switch next {
			case "PUT":
				w = do(t, h, "PUT", loc+"?digest="+d.String(), second, "Content-Range", "1048576-1048583")
			case "PATCH":
				w = do(t, h, "PATCH", loc, second, "Content-Range", "1048576-1048583")
			default: // the client asks where to resume
				w = do(t, h, "GET", loc, nil)
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

// startWithChunk starts an upload in repo and PATCHes first (1 MiB) into
// it; it returns the upload's Location and id.
func startWithChunk(t *testing.T, h http.Handler, repo string, first []byte) (loc, id string) {
	t.Helper()
	w := do(t, h, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	expect(t, w, http.StatusAccepted, "")
	loc, id = w.Header().Get("Location"), w.Header().Get("Docker-Upload-Uuid")
	expect(t, do(t, h, "PATCH", loc, first, "Content-Range", "0-1048575"), http.StatusAccepted, "")
	return loc, id
}

// restartMachine makes upload id's durability mark (storage/fs) one that
// another boot of the kernel wrote, as after a restart of the machine.
func restartMachine(t *testing.T, meta *sqlmeta.Store, id string) {
	t.Helper()
	u, err := meta.GetUpload(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(u.Backend))
	if len(fields) != 5 || fields[0] != "fs2" {
		t.Fatalf("session Backend %q: the disk store records no durability mark", u.Backend)
	}
	fields[1] = "another-boot"
	u.Backend = []byte(strings.Join(fields, " "))
	if err := meta.UpdateUpload(t.Context(), u, u.Offset); err != nil {
		t.Fatal(err)
	}
}

// TestUploadIntactAfterMachineRestart: after a restart of the machine the
// status GET proves the unsynced bytes (they are intact), reports the
// offset, and the upload finishes as the right blob.
func TestUploadIntactAfterMachineRestart(t *testing.T) {
	blobs, meta, _ := teststores.Open(t)
	h := registry.New(blobs, meta)
	const repo = "kept/blob"
	first, second := bytes.Repeat([]byte("k"), 1<<20), []byte("the rest")
	loc, id := startWithChunk(t, h, repo, first)
	restartMachine(t, meta, id)
	w := do(t, h, "GET", loc, nil)
	expect(t, w, http.StatusNoContent, "")
	if got := w.Header().Get("Range"); got != "0-1048575" {
		t.Fatalf("status Range %q, want 0-1048575", got)
	}
	all := append(bytes.Clone(first), second...)
	expect(t, do(t, h, "PUT", loc+"?digest="+sha(all).String(), second, "Content-Range", "1048576-1048583"), http.StatusCreated, "")
	w = do(t, h, "GET", "/v2/"+repo+"/blobs/"+sha(all).String(), nil)
	expect(t, w, http.StatusOK, "")
	if !bytes.Equal(w.Body.Bytes(), all) {
		t.Fatalf("blob has %d bytes, not the %d pushed", w.Body.Len(), len(all))
	}
}
