package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/storage"
)

// OCI error codes (distribution-spec "Error Codes"), plus the two a 5xx may carry.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeUnknown             = "UNKNOWN"
	codeUnavailable         = "UNAVAILABLE"
)

// Error is an OCI error answer: status, code and a message safe to show the
// client. Handlers return it; writeError renders it.
type Error struct {
	Status  int
	Code    string
	Message string
	Detail  any
	// header is extra response headers (Range and Location on a 416).
	header http.Header
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func ociErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Denied is returned by an Admitter or a pull gate to refuse a request with
// 403 DENIED and a message the client sees.
func Denied(format string, args ...any) error {
	return ociErr(http.StatusForbidden, codeDenied, format, args...)
}

type envelope struct {
	Errors []envelopeErr `json:"errors"`
}

type envelopeErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError is the one place errors become HTTP answers. Internal failures
// are logged with the request id and answered without their text.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	var oe *Error
	id := reqid.From(req.Context())
	switch {
	case errors.As(err, &oe):
	case errors.Is(err, storage.ErrUnavailable):
		oe = &Error{Status: http.StatusServiceUnavailable, Code: codeUnavailable,
			Message: "storage temporarily unavailable, retry later (request " + id + ")"}
		w.Header().Set("Retry-After", "1")
		r.log.WarnContext(req.Context(), "storage unavailable", "request_id", id, "err", err)
	case errors.Is(err, context.Canceled) && req.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		r.log.DebugContext(req.Context(), "client gone", "request_id", id, "err", err)
		return
	default:
		oe = &Error{Status: http.StatusInternalServerError, Code: codeUnknown,
			Message: "internal error (request " + id + ")"}
		r.log.ErrorContext(req.Context(), "internal error", "request_id", id,
			"method", req.Method, "path", req.URL.Path, "err", err)
	}
	writeEnvelope(w, req, oe)
}

// WriteError answers err in the OCI error envelope: an *Error (Denied) as
// it is, anything else as a 500 without its text. The HTTP edge in front of
// the registry uses it to refuse a request (cross-origin, foreign Host)
// before the registry sees it, in the shape OCI clients read.
func WriteError(w http.ResponseWriter, req *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: codeUnknown, Message: "internal error"}
	}
	writeEnvelope(w, req, e)
}

func writeEnvelope(w http.ResponseWriter, req *http.Request, e *Error) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	if req.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(envelope{Errors: []envelopeErr{{Code: e.Code, Message: e.Message, Detail: e.Detail}}})
}
