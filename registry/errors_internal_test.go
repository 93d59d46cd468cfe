package registry

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
)

// answer is what a client reads when a handler returns err: the status,
// the code in the envelope and the headers, as WriteError renders them.
func answer(err error) (status int, code string, h http.Header) {
	w := httptest.NewRecorder()
	WriteError(w, httptest.NewRequest(http.MethodGet, "/v2/", nil), err)
	var env envelope
	if json.Unmarshal(w.Body.Bytes(), &env) == nil && len(env.Errors) == 1 {
		code = env.Errors[0].Code
	}
	return w.Code, code, w.Header()
}
