package oci_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/packreg/packreg/oci"
)

// The kinds are the one table from errors to answers: each names a code
// of the spec's list with its status, a narrower kind matches the general
// one, and a message wrapped around a kind keeps it however it is wrapped.
func TestErrorKinds(t *testing.T) {
	spec := map[string]bool{"BLOB_UNKNOWN": true, "BLOB_UPLOAD_INVALID": true, "BLOB_UPLOAD_UNKNOWN": true,
		"DIGEST_INVALID": true, "MANIFEST_BLOB_UNKNOWN": true, "MANIFEST_INVALID": true, "MANIFEST_UNKNOWN": true,
		"NAME_INVALID": true, "NAME_UNKNOWN": true, "SIZE_INVALID": true, "UNAUTHORIZED": true, "DENIED": true,
		"UNSUPPORTED": true, "TOOMANYREQUESTS": true}
	for _, tc := range []struct {
		kind, general *oci.Kind
		code          string
		status        int
	}{
		{oci.ErrBlobUnknown, nil, "BLOB_UNKNOWN", http.StatusNotFound},
		{oci.ErrManifestUnknown, nil, "MANIFEST_UNKNOWN", http.StatusNotFound},
		{oci.ErrManifestBlobUnknown, nil, "MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest},
		{oci.ErrDenied, nil, "DENIED", http.StatusForbidden},
		{oci.ErrUnsupported, nil, "UNSUPPORTED", http.StatusMethodNotAllowed},
		{oci.ErrManifestTooLarge, oci.ErrManifestInvalid, "MANIFEST_INVALID", http.StatusRequestEntityTooLarge},
		{oci.ErrBlobTooLarge, oci.ErrSizeInvalid, "SIZE_INVALID", http.StatusRequestEntityTooLarge},
		{oci.ErrRangeNotSatisfiable, oci.ErrBlobUnknown, "BLOB_UNKNOWN", http.StatusRequestedRangeNotSatisfiable},
		{oci.ErrUploadRange, oci.ErrBlobUploadInvalid, "BLOB_UPLOAD_INVALID", http.StatusRequestedRangeNotSatisfiable},
	} {
		err := fmt.Errorf("context: %w", oci.Errorf(tc.kind, "blob %s is gone", "x"))
		k := oci.KindOf(err)
		if k != tc.kind || k.Code() != tc.code || k.Status() != tc.status || !spec[k.Code()] {
			t.Errorf("%v: kind %v %s %d, want %s %d", tc.kind, k, k.Code(), k.Status(), tc.code, tc.status)
		}
		if err.Error() != "context: blob x is gone" {
			t.Errorf("%v: text %q", tc.kind, err)
		}
		if tc.general != nil && (!errors.Is(err, tc.general) || errors.Is(err, oci.ErrDenied)) {
			t.Errorf("%v does not match only its general kind %v", tc.kind, tc.general)
		}
	}
	if oci.KindOf(errors.New("plain")) != nil {
		t.Error("a plain error has a kind")
	}
}
