package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/packreg/packreg/internal/reqid"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Codes. A client tells errors apart by code; the message is for people.
const (
	BadRequest           = "BAD_REQUEST"
	NameInvalid          = "NAME_INVALID"
	VersionInvalid       = "VERSION_INVALID"
	PackEmpty            = "PACK_EMPTY"
	NotFound             = "NOT_FOUND"
	Conflict             = "CONFLICT"
	VersionExists        = "VERSION_EXISTS"
	TransitionInvalid    = "TRANSITION_INVALID"
	TooLarge             = "TOO_LARGE"
	Denied               = "DENIED"
	UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	MethodNotAllowed     = "METHOD_NOT_ALLOWED"
	Internal             = "INTERNAL"
	Unavailable          = "UNAVAILABLE"
)

// Error is an API error: HTTP status, code, a message safe to show, and
// optional structured details.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an error with a formatted message.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Bad is a 400 BAD_REQUEST.
func Bad(format string, args ...any) *Error {
	return New(http.StatusBadRequest, BadRequest, format, args...)
}

// WithDetails returns e with details attached.
func (e *Error) WithDetails(d any) *Error {
	c := *e
	c.Details = d
	return &c
}

// Envelope is the body of every error answer.
type Envelope struct {
	Error *Error `json:"error"`
}

// Write answers err. log receives the cause of 5xx answers, with the
// request id the client sees.
func Write(w http.ResponseWriter, req *http.Request, log *slog.Logger, err error) {
	var (
		e  *Error
		mb *http.MaxBytesError
	)
	switch {
	case errors.As(err, &e):
	case oci.KindOf(err) != nil:
		// The registry's errors (a publish refused by admission, say)
		// keep the status and code of their kind, the /v2/ answer's, and
		// its headers (the auth gate's challenge, Retry-After).
		k := oci.KindOf(err)
		for name, v := range oci.HeaderOf(err) {
			w.Header()[name] = v
		}
		e = &Error{Status: k.Status(), Code: k.Code(), Message: err.Error()}
	case errors.As(err, &mb):
		e = New(http.StatusRequestEntityTooLarge, TooLarge, "request body exceeds %d bytes", mb.Limit)
	case errors.Is(err, ErrBodyTooLarge):
		e = New(http.StatusRequestEntityTooLarge, TooLarge, "%s", err.Error())
	case errors.Is(err, ErrBody):
		e = Bad("%s", err.Error())
	case errors.Is(err, storage.ErrNotFound):
		e = New(http.StatusNotFound, NotFound, "not found")
	case errors.Is(err, storage.ErrConflict):
		e = New(http.StatusConflict, Conflict, "changed concurrently by another request; read it again and retry")
	case errors.Is(err, storage.ErrUnavailable):
		id := requestID(w, req)
		log.WarnContext(req.Context(), "storage unavailable", "request_id", id, "err", err)
		w.Header().Set("Retry-After", "1")
		e = New(http.StatusServiceUnavailable, Unavailable, "%s, retry later (request %s)", storage.UnavailableMessage(err), id)
	case errors.Is(err, context.Canceled) && req.Context().Err() != nil:
		return // the client is gone
	default:
		id := requestID(w, req)
		log.ErrorContext(req.Context(), "internal error", "request_id", id,
			"method", req.Method, "path", req.URL.Path, "err", err)
		e = New(http.StatusInternalServerError, Internal, "internal error (request %s)", id)
	}
	JSON(w, e.Status, Envelope{Error: e})
}

// JSON writes v as the answer.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// Indented for people with curl; clients in this repository
	// (conformance greps it) rely on the layout, so changing it is a
	// coordinated change. The indenter writes the layout the Encoder's
	// SetIndent("", "  ") would, streaming (indent.go).
	in := newIndenter(w)
	defer in.release()
	if s, ok := v.(Streamer); ok {
		stream(in, s)
		return
	}
	// The Encoder marshals the whole value before its one Write: a value
	// that fails writes nothing, as before.
	if err := json.NewEncoder(in).Encode(v); err == nil {
		_ = in.finish()
	}
}

// requestID is the request's id (reqid): the server's request log has
// given it one; a handler mounted without that log (tests) makes it here.
func requestID(w http.ResponseWriter, req *http.Request) string {
	_, id := reqid.Accept(w, req)
	return id
}

// ParseLimit reads a page size parameter: 1 and up, clamped to max (asking
// for more than a server gives is not an error, as with OCI's n).
func ParseLimit(s string, max int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, Bad("limit %q: want a number from 1 to %d", Clip(s), max)
	}
	return min(n, max), nil
}

// Printable reports whether s is 1 to 512 bytes of printable ASCII
// without spaces: what names, targets and prefixes in a query are, and
// what the stores' byte-order prefix ranges rely on.
func Printable(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Clip shortens client input quoted back in a message.
func Clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Query parses a query string strictly: every parameter at most once and
// one of known, so a typo is an error instead of a silently wider answer.
func Query(raw string, known ...string) (map[string]string, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, Bad("malformed query string: %v", err)
	}
	out := make(map[string]string, len(v))
	for k, vals := range v {
		switch {
		case !slices.Contains(known, k):
			return nil, Bad("unknown parameter %q (want %s)", Clip(k), strings.Join(known, ", "))
		case len(vals) != 1:
			return nil, Bad("parameter %q given %d times", k, len(vals))
		}
		out[k] = vals[0]
	}
	return out, nil
}
