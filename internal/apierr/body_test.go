package apierr_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/apierr"
)

// TestDecodeJSON: one strict reading of JSON bodies for every API.
func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	for _, tc := range []struct {
		in     string
		status int // 0: accepted
	}{
		{`{"name":"a"}`, 0},
		{" {\"name\":\"a\"}\n\t ", 0},
		{`{"name":"a"}}`, 400},
		{`{"name":"a"}]`, 400},
		{`{"name":"a"} {"name":"b"}`, 400},
		{`{"name":"a"} x`, 400},
		{`{"nmae":"a"}`, 400},
		{`{"name":"a"`, 400},
		{`["a"]`, 400},
		{``, 400},
		{`{"name":"` + strings.Repeat("x", 100) + `"}`, 413},
	} {
		var v body
		err := apierr.DecodeJSON(strings.NewReader(tc.in), &v, 64)
		if got := status(t, err); got != tc.status {
			t.Errorf("%.40q: %d (%v), want %d", tc.in, got, err, tc.status)
		}
		if tc.status == 0 && v.Name != "a" {
			t.Errorf("%.40q: decoded %+v", tc.in, v)
		}
	}
	// An optional body may be empty; a present one is read as strictly.
	for in, want := range map[string]bool{"": false, " \n": false, `{"name":"a"}`: true} {
		var v body
		got, err := apierr.DecodeOptionalJSON(strings.NewReader(in), &v, 64)
		if err != nil || got != want {
			t.Errorf("optional %q: %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := apierr.DecodeOptionalJSON(strings.NewReader(`{}]`), &body{}, 64); !errors.Is(err, apierr.ErrBody) {
		t.Errorf("optional body with trailing data: %v", err)
	}
	// A read error is a bad body, not an internal error.
	if err := apierr.DecodeJSON(io.MultiReader(strings.NewReader(`{"na`), errReader{}), &body{}, 64); status(t, err) != 400 {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// status is what Write answers for err, 0 for nil.
func status(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	w := httptest.NewRecorder()
	apierr.Write(w, httptest.NewRequest("POST", "/api/v1/x", nil), slog.New(slog.DiscardHandler), err)
	if w.Code == http.StatusInternalServerError {
		t.Errorf("%v: answered 500", err)
	}
	return w.Code
}
