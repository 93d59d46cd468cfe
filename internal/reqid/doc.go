// Package reqid is packreg's one request-id mechanism. Every answer carries
// an X-Request-Id, every log line about a request names it, and a 5xx
// message quotes it, so an operator can go from a client's error to the
// log. Accept is the one place an id is made or taken from the client; it
// puts the id in the request's context and on the answer, and everybody
// (the request log, the registry, the REST APIs' error writer) reads it
// back with From.
//
// reqid is a leaf: it imports the standard library only.
package reqid
