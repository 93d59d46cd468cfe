package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Errors are oci's sentinel kinds (oci.ErrBlobUnknown, oci.ErrDenied...),
// wrapped with the message the client reads (oci.Errorf). The service
// methods return them, the handlers pass them on, and writeError is the
// one place they become answers, with the status and code each kind
// carries. Nothing here or above tells errors apart by status: callers
// ask errors.Is(err, oci.ErrManifestUnknown).

// Codes of the answers that are no client error.
const (
	codeUnknown     = "UNKNOWN"
	codeUnavailable = "UNAVAILABLE"
)

// withHeader adds response headers to an error's answer (Range and
// Location on a 416 of an upload, Content-Range on a 416 of a blob GET).
type withHeader struct {
	error
	header http.Header
}

func (e *withHeader) Unwrap() error { return e.error }

// Header is what WriteError adds to the answer (oci.HeaderOf).
func (e *withHeader) Header() http.Header { return e.header }

type envelope struct {
	Errors []envelopeErr `json:"errors"`
}

type envelopeErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError is the one place errors become HTTP answers. Internal failures
// are logged with the request id and answered without their text.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	id := reqid.From(req.Context())
	switch {
	case oci.KindOf(err) != nil:
	case errors.Is(err, storage.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		r.log.WarnContext(req.Context(), "storage unavailable", "request_id", id, "err", err)
		writeEnvelope(w, req, http.StatusServiceUnavailable, codeUnavailable,
			storage.UnavailableMessage(err)+", retry later (request "+id+")")
		return
	case errors.Is(err, context.Canceled) && req.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		r.log.DebugContext(req.Context(), "client gone", "request_id", id, "err", err)
		return
	default:
		r.log.ErrorContext(req.Context(), "internal error", "request_id", id,
			"method", req.Method, "path", req.URL.Path, "err", err)
		writeEnvelope(w, req, http.StatusInternalServerError, codeUnknown, "internal error (request "+id+")")
		return
	}
	WriteError(w, req, err)
}

// WriteError answers err in the OCI error envelope: an error of an oci
// kind with its status, code and text, anything else as a 500 without its
// text. The HTTP edge in front of the registry uses it to refuse a request
// (cross-origin, foreign Host) before the registry sees it, in the shape
// OCI clients read.
func WriteError(w http.ResponseWriter, req *http.Request, err error) {
	k := oci.KindOf(err)
	if k == nil {
		writeEnvelope(w, req, http.StatusInternalServerError, codeUnknown, "internal error")
		return
	}
	for name, v := range oci.HeaderOf(err) {
		w.Header()[name] = v
	}
	writeEnvelope(w, req, k.Status(), k.Code(), err.Error())
}

func writeEnvelope(w http.ResponseWriter, req *http.Request, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if req.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(envelope{Errors: []envelopeErr{{Code: code, Message: msg}}})
}
