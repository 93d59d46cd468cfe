package oci

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind is a sentinel error: one error code of the distribution spec with
// the HTTP status it is answered with. Code and status travel together, so
// the sentinels below are the one table from errors to answers; the /v2/
// edge (package registry) and the REST edge (package apierr) both read it,
// and no caller ever tells errors apart by status.
//
// Some codes are answered with more than one status (a manifest over the
// size cap is MANIFEST_INVALID with 413); each such case is a kind of its
// own that wraps the general one, so errors.Is(err, ErrManifestInvalid)
// holds for it too.
type Kind struct {
	code   string
	status int
	text   string
	parent *Kind
}

func (k *Kind) Error() string { return k.text }

// Code is the spec's error code (BLOB_UNKNOWN...).
func (k *Kind) Code() string { return k.code }

// Status is the HTTP status the kind is answered with.
func (k *Kind) Status() int { return k.status }

// Unwrap makes a narrower kind match its general one.
func (k *Kind) Unwrap() error {
	if k.parent == nil {
		return nil
	}
	return k.parent
}

func kind(code string, status int, text string) *Kind {
	return &Kind{code: code, status: status, text: text}
}

func narrower(parent *Kind, status int, text string) *Kind {
	return &Kind{code: parent.code, status: status, text: text, parent: parent}
}

// The distribution spec's error codes (its "Error Codes" section) with
// their usual status, and the narrower cases packreg answers differently.
var (
	ErrBlobUnknown         = kind("BLOB_UNKNOWN", http.StatusNotFound, "blob unknown to registry")
	ErrBlobUploadInvalid   = kind("BLOB_UPLOAD_INVALID", http.StatusBadRequest, "blob upload invalid")
	ErrBlobUploadUnknown   = kind("BLOB_UPLOAD_UNKNOWN", http.StatusNotFound, "blob upload unknown to registry")
	ErrDigestInvalid       = kind("DIGEST_INVALID", http.StatusBadRequest, "provided digest did not match uploaded content")
	ErrManifestBlobUnknown = kind("MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest, "manifest references a blob unknown to registry")
	ErrManifestInvalid     = kind("MANIFEST_INVALID", http.StatusBadRequest, "manifest invalid")
	ErrManifestUnknown     = kind("MANIFEST_UNKNOWN", http.StatusNotFound, "manifest unknown to registry")
	ErrNameInvalid         = kind("NAME_INVALID", http.StatusBadRequest, "invalid repository name")
	ErrNameUnknown         = kind("NAME_UNKNOWN", http.StatusNotFound, "repository name not known to registry")
	ErrSizeInvalid         = kind("SIZE_INVALID", http.StatusBadRequest, "provided length did not match content length")
	ErrDenied              = kind("DENIED", http.StatusForbidden, "requested access to the resource is denied")
	ErrUnsupported         = kind("UNSUPPORTED", http.StatusMethodNotAllowed, "the operation is unsupported")
	ErrUnauthorized        = kind("UNAUTHORIZED", http.StatusUnauthorized, "authentication required")
	ErrTooManyRequests     = kind("TOOMANYREQUESTS", http.StatusTooManyRequests, "too many requests")

	// ErrRangeNotSatisfiable: a blob GET whose Range the blob cannot serve.
	ErrRangeNotSatisfiable = narrower(ErrBlobUnknown, http.StatusRequestedRangeNotSatisfiable, "range not satisfiable")
	// ErrUploadRange: a chunk that does not continue the upload where it is.
	ErrUploadRange = narrower(ErrBlobUploadInvalid, http.StatusRequestedRangeNotSatisfiable, "chunk out of order")
	// ErrManifestTooLarge: a manifest body over the size cap.
	ErrManifestTooLarge = narrower(ErrManifestInvalid, http.StatusRequestEntityTooLarge, "manifest too large")
	// ErrBlobTooLarge: a blob over the configured maximum.
	ErrBlobTooLarge = narrower(ErrSizeInvalid, http.StatusRequestEntityTooLarge, "blob too large")
)

// Error is a Kind with the message a client reads: what went wrong, with
// the names and digests it is about.
type Error struct {
	Kind    *Kind
	Message string
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an error of kind k with a formatted message for the
// client. Its text is the message alone, so wrapping it with context
// ("pack config: %w") reads naturally.
func Errorf(k *Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind err carries, or nil: the outermost one, so a
// narrower kind wins over the one it wraps.
func KindOf(err error) *Kind {
	var k *Kind
	if errors.As(err, &k) {
		return k
	}
	return nil
}

// HeaderOf returns the response headers err asks its answer to carry (a
// 401's challenge, a 416's Range, a 429's Retry-After): those of the first
// error in its chain with a Header method, or nil.
func HeaderOf(err error) http.Header {
	var h interface{ Header() http.Header }
	if errors.As(err, &h) {
		return h.Header()
	}
	return nil
}
