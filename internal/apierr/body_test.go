package apierr_test

import (
	"encoding/json"
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

// TestDecodeJSONExactKeys: Go's decoder matches keys to fields
// case-insensitively, so {"dryrun":true} set dryRun; a key must name its
// field exactly, at any depth, and the answer names both.
func TestDecodeJSONExactKeys(t *testing.T) {
	type inner struct {
		Kind string `json:"kind"`
	}
	type Embedded struct {
		Note string `json:"note"`
	}
	type body struct {
		Embedded
		DryRun bool             `json:"dryRun"`
		Plain  string           // no tag: the Go name
		In     *inner           `json:"in"`
		List   []inner          `json:"list"`
		Map    map[string]inner `json:"map"`
		Free   map[string]any   `json:"free"`
		Raw    json.RawMessage  `json:"raw"`
		Skip   string           `json:"-"`
	}
	for in, bad := range map[string]string{
		`{"dryRun":true,"Plain":"x","note":"n","in":{"kind":"a"},"list":[{"kind":"a"}],"map":{"Any":{"kind":"a"}},` +
			`"free":{"DryRun":1,"x":[{"KIND":2}]},"raw":{"DRYRUN":true}}`: "",
		`{"dryrun":true}`:                      `"dryrun"`,
		`{"DRYRUN":true}`:                      `"DRYRUN"`,
		`{"plain":"x"}`:                        `"plain"`,
		`{"Note":"n"}`:                         `"Note"`,
		`{"in":{"Kind":"a"}}`:                  `"Kind"`,
		`{"list":[{"kind":"a"},{"KIND":"b"}]}`: `"KIND"`,
		`{"map":{"a":{"kinD":"a"}}}`:           `"kinD"`,
		"{\"in\":{\"\u212aind\":\"a\"}}":       "\"\u212aind\"", // KELVIN SIGN folds to k
	} {
		var v body
		err := apierr.DecodeJSON(strings.NewReader(in), &v, 1<<10)
		switch {
		case bad == "" && err != nil:
			t.Errorf("%s: %v", in, err)
		case bad != "" && (status(t, err) != 400 || !strings.Contains(err.Error(), bad)):
			t.Errorf("%s: %v, want 400 naming %s", in, err, bad)
		}
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
