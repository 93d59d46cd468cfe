// Package routes is the shape of packreg's one route table. A Route is a
// row: one method, one gorilla/mux path template, one handler. Each package
// that serves HTTP (registry, pack, attest, mirror, audit) lists its rows
// in a Routes function; cmd/packreg/routes.go registers all of them on one
// router, so every route, method and handler can be read (and grepped) in
// one place, and tests enumerate them with mux's Walk (the OpenAPI
// document is checked against that list).
//
// The router matches a path as the client sent it: never cleaned, never
// redirected (SkipClean), and on the escaped path (UseEncodedPath), so a
// percent-encoded slash stays inside its component and "a%2F..%2Fb" is one
// (bad) name, never another route. Handlers read path variables with
// req.PathValue, already unescaped, but for a value holding an encoded
// slash, left as sent: "a%2Fb" is a bad name, never repository a/b
// (RFC 3986 §2.2: "%2F" is no separator). What a variable must look like is
// checked by the handler, so a bad name is a 400 with the right code, not a
// 404 from a template that did not match.
//
// Every row declares what it asks of its caller with With: an Access of
// AdminOnly (the zero value, so a row that says nothing is for admins
// only), Public (no check: health, the token endpoint), AnyCaller (the
// handler shows only what the caller may pull, or checks a repository it
// reads from the body, through registry.Allowed), Authenticated, or
// CanPull, CanPush, CanDelete, CanLifecycle on the repository in the
// row's {name} variable. With authentication on, cmd/packreg wraps every
// row (Guard) in its check; a new API adds .With(...) to its rows and is
// enforced the day it is registered.
//
// Register adds, after a batch of rows, one row per path that answers every
// other method with the batch's 405 (in its own error shape, with Allow).
//
// Fast serves a batch of rows whose templates have the /v2/ API's shapes
// (a literal, or prefix {name:.+} literal [{ref}]) without mux: it matches
// from the end of the path by hand, as the templates' regexps would (a
// differential test and fuzz target against mux keep it so), sets the
// variables on the request itself and copies nothing. Handler uses it when
// every row has such a shape; cmd/packreg asks it before the router for
// the registry's rows, which stay registered on the router too.
//
// StripPatterns writes a template without its variables' patterns: the
// path the OpenAPI document lists and the route label of the metrics.
//
// routes imports gorilla/mux and the standard library only.
package routes
