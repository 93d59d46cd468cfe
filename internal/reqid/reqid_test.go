package reqid_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
	"github.com/packreg/packreg/internal/reqid"
)

func TestAccept(t *testing.T) {
	for _, tc := range []struct {
		sent string
		kept bool
	}{
		{"lb-1234_abc.def", true},
		{"", false},
		{`evil" id`, false},
		{"a\r\nX-Injected: 1", false},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(reqid.Header, tc.sent)
		w := httptest.NewRecorder()
		req2, id := reqid.Accept(w, req)
		if kept := id == tc.sent; kept != tc.kept {
			t.Errorf("%q: id %q, kept %v, want kept %v", tc.sent, id, kept, tc.kept)
		}
		if !tc.kept && len(id) != 16 {
			t.Errorf("%q: new id %q is not 16 hex digits", tc.sent, id)
		}
		if reqid.From(req2.Context()) != id || w.Header().Get(reqid.Header) != id {
			t.Errorf("%q: context %q, answer %q, want %q", tc.sent, reqid.From(req2.Context()), w.Header().Get(reqid.Header), id)
		}
		// A second Accept (a handler behind the request log) keeps it.
		w2 := httptest.NewRecorder()
		req2.Header.Set(reqid.Header, "other")
		if _, again := reqid.Accept(w2, req2); again != id {
			t.Errorf("%q: second Accept made %q, want %q", tc.sent, again, id)
		}
	}
	if reqid.From(httptest.NewRequest("GET", "/", nil).Context()) != "" {
		t.Error("an id without Accept")
	}
	if a, b := reqid.New(), reqid.New(); a == b {
		t.Errorf("two new ids are equal: %s", a)
	}
}

func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".")
}
