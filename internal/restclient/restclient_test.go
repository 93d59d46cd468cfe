package restclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/internal/restclient"
)

// server answers each path as the test table says, and remembers the
// last request.
func server(t *testing.T, last *http.Request, lastBody *string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		*last, *lastBody = *req.Clone(context.Background()), string(b)
		switch req.URL.Path {
		case "/api/v1/echo":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			w.Write(b)
		case "/api/v1/refused":
			apierr.Write(w, req, nil, apierr.New(http.StatusConflict, apierr.VersionExists, "1.0.0 exists").
				WithDetails(map[string]string{"digest": "sha256:x"}))
		case "/api/v1/proxy":
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		case "/api/v1/big":
			io.WriteString(w, `{"pad":"`+strings.Repeat("x", 2000)+`"}`)
		case "/api/v1/garbage":
			io.WriteString(w, `{"a":`)
		case "/api/v1/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestClient(t *testing.T) {
	var last http.Request
	var lastBody string
	base := server(t, &last, &lastBody)
	ctx := t.Context()
	c := restclient.New(base+"/", nil, restclient.WithMaxAnswer(1024))

	// A JSON body goes out with its type; the answer comes back decoded.
	var out map[string]any
	if err := c.Do(ctx, "POST", "/api/v1/echo", url.Values{"a b": {"c&d"}}, map[string]any{"name": "x", "n": 2}, &out); err != nil {
		t.Fatal(err)
	}
	if out["name"] != "x" || out["n"] != float64(2) {
		t.Errorf("decoded %v", out)
	}
	if last.Method != "POST" || last.URL.RawQuery != "a+b=c%26d" || last.Header.Get("Content-Type") != "application/json" ||
		last.Header.Get("Accept") != "application/json" || lastBody != `{"n":2,"name":"x"}` {
		t.Errorf("sent %s %s %v %q", last.Method, last.URL, last.Header, lastBody)
	}
	// No body: no Content-Type, and nothing to decode into is fine.
	if err := c.Do(ctx, "DELETE", "/api/v1/empty", nil, nil, nil); err != nil || last.Header.Get("Content-Type") != "" || lastBody != "" {
		t.Errorf("DELETE: %v, %v %q", err, last.Header, lastBody)
	}

	// A refusal in the API's shape keeps status, code, message and details.
	err := c.Do(ctx, "GET", "/api/v1/refused", nil, nil, &out)
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != apierr.VersionExists || ae.Message != "1.0.0 exists" ||
		ae.Details.(map[string]any)["digest"] != "sha256:x" {
		t.Errorf("refusal: %#v", err)
	}
	// Anything else is a StatusError that says what answered.
	err = c.Do(ctx, "GET", "/api/v1/proxy", nil, nil, &out)
	var se *restclient.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadGateway || se.Method != "GET" || se.Path != "/api/v1/proxy" ||
		!strings.Contains(err.Error(), "502 Bad Gateway: <html>bad gateway</html>") {
		t.Errorf("proxy page: %#v (%v)", err, err)
	}
	// Answers past the cap, or not JSON, are malformed, not decoded in part.
	for _, p := range []string{"/api/v1/big", "/api/v1/garbage"} {
		if err := c.Do(ctx, "GET", p, nil, nil, &out); !errors.Is(err, restclient.ErrAnswer) {
			t.Errorf("%s: %v, want ErrAnswer", p, err)
		}
	}

	// Send takes a request built elsewhere and reports the status.
	req, err := c.NewRequest(ctx, "POST", "/api/v1/echo", nil, strings.NewReader(`{"ok":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if status, err := c.Send(req, &out); status != http.StatusCreated || err != nil || out["ok"] != true {
		t.Errorf("Send: %d %v %v", status, err, out)
	}
	if status, err := c.Send(must(c.NewRequest(ctx, "GET", "/api/v1/refused", nil, nil)), nil); status != http.StatusConflict || err == nil {
		t.Errorf("Send of a refusal: %d %v", status, err)
	}
}

// TestWithRefusal: a client of other servers reads their refusals its way.
func TestWithRefusal(t *testing.T) {
	var last http.Request
	var lastBody string
	base := server(t, &last, &lastBody)
	mine := errors.New("mine")
	var seen int
	c := restclient.New(base, http.DefaultClient, restclient.WithRefusal(func(resp *http.Response) error {
		seen = resp.StatusCode
		return mine
	}))
	if err := c.Do(t.Context(), "GET", "/api/v1/refused", nil, nil, nil); err != mine || seen != http.StatusConflict {
		t.Fatalf("refusal hook: %v, status %d", err, seen)
	}
	var out json.RawMessage
	if err := c.Do(t.Context(), "GET", "/api/v1/big", nil, nil, &out); err != nil || len(out) < 2000 {
		t.Fatalf("default cap: %v, %d bytes", err, len(out))
	}
}

func must(req *http.Request, err error) *http.Request {
	if err != nil {
		panic(err)
	}
	return req
}
