// Package apierr is the one error shape of packreg's REST API (/api/v1/):
//
//	{"error": {"code": "VERSION_INVALID", "message": "...", "details": {...}}}
//
// Handlers return errors; Write is the one function that turns them into
// answers: *Error as it is, errors of an oci kind (the registry's) with
// the status and code of their kind, storage sentinels and the body
// sentinels (ErrBody, ErrBodyTooLarge) by meaning, anything else as a 500
// that names the request id (reqid) and hides the cause (which goes to the
// log). The rest of what every API shares is here too: the one strict
// reading of JSON bodies (body.go: DecodeJSON, ReadBody) and the answers
// (reply.go: JSON, Reply, Handler, and the 404 and 405 of the route table;
// stream.go: a page of many items written an item at a time).
//
// apierr imports oci (whose error kinds carry their status and code) and
// storage, never registry; it must not import pack, attest, mirror,
// compliance or cmd, so every API package can use it.
package apierr
