package apierr

import (
	"log/slog"
	"net/http"
)

// Reply returns a function that answers a service result as JSON with
// status, or returns its error for the handler to return:
//
//	return apierr.Reply(w, http.StatusOK)(s.Version(ctx, name, version))
func Reply(w http.ResponseWriter, status int) func(any, error) error {
	return func(v any, err error) error {
		if err != nil {
			return err
		}
		JSON(w, status, v)
		return nil
	}
}

// Handler adapts an API handler that returns its error: Write answers it.
func Handler(log *slog.Logger, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := h(w, req); err != nil {
			Write(w, req, log, err)
		}
	})
}

// NotFound answers a path no API route has: 404 NOT_FOUND.
func NotFoundHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		JSON(w, http.StatusNotFound, Envelope{Error: New(http.StatusNotFound, NotFound, "no such endpoint")})
	})
}

// NotAllowed answers a method an API path does not have: 405
// METHOD_NOT_ALLOWED, with Allow (routes.Register's rows for other methods).
func NotAllowedHandler(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", allow)
		JSON(w, http.StatusMethodNotAllowed, Envelope{Error: New(http.StatusMethodNotAllowed, MethodNotAllowed,
			"%s is not allowed here (allowed: %s)", req.Method, allow)})
	})
}
