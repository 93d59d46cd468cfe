package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/mux"
	"github.com/packreg/packreg/internal/routes"
)

// TestOpenAPIMatchesRoutes: the document has an operation for every
// /api/v1 route the server registers, and a route for every operation.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	// With authentication on, so the robots API is routed too.
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a := testApp(t, func(c *Config) { c.Auth.Htpasswd = htpasswd })
	registered := map[string]bool{}
	err := a.routes.Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := r.GetPathTemplate()
		if err != nil || !strings.HasPrefix(tpl, "/api/") {
			return nil
		}
		for _, m := range routes.Methods(r) {
			registered[m+" "+routes.StripPatterns(tpl)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(registered) < 40 {
		t.Fatalf("only %d /api routes registered: %v", len(registered), registered)
	}
	documented := map[string]bool{}
	for p, item := range loadOpenAPI(t)["paths"].(map[string]any) {
		for m := range item.(map[string]any) {
			if slices.Contains(httpMethods, m) {
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	for _, op := range sortedKeys(registered) {
		if !documented[op] {
			t.Errorf("route %s is not in openapi.yaml", op)
		}
	}
	for _, op := range sortedKeys(documented) {
		if !registered[op] {
			t.Errorf("openapi.yaml documents %s, which the server does not route", op)
		}
	}
}

// TestOpenAPIServed: GET /api/v1/openapi.json is the document, as JSON.
func TestOpenAPIServed(t *testing.T) {
	w := send(edgeApp(t, nil), "GET", "/api/v1/openapi.json", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
	}
	var served any
	if err := json.Unmarshal(w.Body.Bytes(), &served); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(loadOpenAPI(t))
	got, _ := json.Marshal(served)
	if string(got) != string(want) {
		t.Error("the served document is not openapi.yaml")
	}
}

// TestOpenAPIServedOnFirstUse: the document is converted on the first
// request, so a fresh server's first requests, arriving together, all get
// the whole document (run with -race).
func TestOpenAPIServedOnFirstUse(t *testing.T) {
	want, err := openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	h := edgeApp(t, nil)
	const clients = 8
	bodies := make([][]byte, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			w := send(h, "GET", "/api/v1/openapi.json", nil)
			if w.Code != 200 {
				t.Errorf("client %d: %d %s", i, w.Code, w.Body)
			}
			bodies[i] = w.Body.Bytes()
		})
	}
	wg.Wait()
	for i, b := range bodies {
		if !bytes.Equal(b, want) {
			t.Errorf("client %d: %d bytes, not the %d-byte document", i, len(b), len(want))
		}
	}
}

// TestOpenAPIWellFormed checks the document's structure as OpenAPI 3.1
// lays it out: what every operation must have, that every $ref resolves,
// that path parameters are declared both ways, and that every error
// answer is the one envelope.
func TestOpenAPIWellFormed(t *testing.T) {
	doc := loadOpenAPI(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	if s, _ := info["title"].(string); s == "" {
		t.Error("info.title missing")
	}
	if s, _ := info["version"].(string); s == "" {
		t.Error("info.version missing")
	}
	env := resolve(t, doc, "#/components/schemas/ErrorEnvelope")
	errProps := dig(env, "properties", "error", "properties")
	for _, f := range []string{"code", "message", "details"} {
		if dig(errProps, f) == nil {
			t.Errorf("ErrorEnvelope lacks error.%s", f)
		}
	}
	// Every $ref anywhere resolves.
	walkJSON(doc, func(m map[string]any) {
		if ref, ok := m["$ref"].(string); ok {
			resolve(t, doc, ref)
		}
	})
	ids := map[string]string{}
	paramRE := regexp.MustCompile(`\{([^}]+)\}`)
	for p, rawItem := range doc["paths"].(map[string]any) {
		item := rawItem.(map[string]any)
		if !strings.HasPrefix(p, "/api/v1/") {
			t.Errorf("path %s is not under /api/v1/", p)
		}
		var inPath []string
		for _, m := range paramRE.FindAllStringSubmatch(p, -1) {
			inPath = append(inPath, m[1])
		}
		ops := 0
		for m, rawOp := range item {
			if !slices.Contains(httpMethods, m) {
				if m != "parameters" && m != "summary" && m != "description" {
					t.Errorf("%s: unknown key %q in a path item", p, m)
				}
				continue
			}
			ops++
			op := rawOp.(map[string]any)
			where := strings.ToUpper(m) + " " + p
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s: no operationId", where)
			} else if other, dup := ids[id]; dup {
				t.Errorf("%s: operationId %s also names %s", where, id, other)
			}
			ids[id] = where
			if s, _ := op["summary"].(string); s == "" {
				t.Errorf("%s: no summary", where)
			}
			// Path parameters: declared for every {x} of the path, and
			// none that the path lacks.
			declared := map[string]bool{}
			for _, list := range []any{item["parameters"], op["parameters"]} {
				ps, _ := list.([]any)
				for _, rp := range ps {
					pm := rp.(map[string]any)
					if ref, ok := pm["$ref"].(string); ok {
						pm = resolve(t, doc, ref)
					}
					if pm["in"] == "path" {
						if pm["required"] != true {
							t.Errorf("%s: path parameter %v is not required", where, pm["name"])
						}
						declared[pm["name"].(string)] = true
					}
				}
			}
			for _, name := range inPath {
				if !declared[name] {
					t.Errorf("%s: {%s} is not declared", where, name)
				}
				delete(declared, name)
			}
			for name := range declared {
				t.Errorf("%s: declares path parameter %s, which the path lacks", where, name)
			}
			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s: no responses", where)
			}
			success := false
			for code, rawResp := range responses {
				resp := rawResp.(map[string]any)
				if ref, ok := resp["$ref"].(string); ok {
					resp = resolve(t, doc, ref)
				}
				if s, _ := resp["description"].(string); s == "" {
					t.Errorf("%s %s: no description", where, code)
				}
				switch {
				case code >= "200" && code < "300":
					success = true
				case code >= "400" && code < "600":
					ref, _ := dig(resp, "content", "application/json", "schema", "$ref").(string)
					if ref != "#/components/schemas/ErrorEnvelope" {
						t.Errorf("%s %s: not the error envelope", where, code)
					}
				default:
					t.Errorf("%s: response %q", where, code)
				}
			}
			if !success {
				t.Errorf("%s: no 2xx response", where)
			}
		}
		if ops == 0 {
			t.Errorf("%s: no operations", p)
		}
	}
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// resolve follows a local JSON pointer ("#/components/schemas/X").
func resolve(t *testing.T, doc map[string]any, ref string) map[string]any {
	t.Helper()
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		t.Fatalf("$ref %q is not local", ref)
	}
	var cur any = doc
	for _, k := range strings.Split(p, "/") {
		cur = dig(cur, k)
	}
	m, ok := cur.(map[string]any)
	if !ok {
		t.Errorf("$ref %q does not resolve", ref)
		return map[string]any{}
	}
	return m
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func walkJSON(v any, f func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		f(x)
		for _, c := range x {
			walkJSON(c, f)
		}
	case []any:
		for _, c := range x {
			walkJSON(c, f)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
