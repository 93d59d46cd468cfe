package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"go.yaml.in/yaml/v3"
)

// openAPIYAML describes every /api/v1 route: hand-written, and held true
// by TestOpenAPIMatchesRoutes, which compares its paths and methods with
// the route table both ways.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIDocument is the document as JSON, as GET /api/v1/openapi.json
// serves it.
func openAPIDocument() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return append(b, '\n'), nil
}

// openAPIHandler serves the document. It is converted once, on the first
// request, not at start: most servers never serve it, and the conversion
// (a YAML parse) grew the heap of every server as it started, about 3 MiB
// of idle RSS, and kept 0.3 MB of it live for good. A document that does
// not convert fails the tests, never a request.
func openAPIHandler(log *slog.Logger) http.Handler {
	document := sync.OnceValues(openAPIDocument)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		doc, err := document()
		if err != nil {
			log.Error("openapi document", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(doc)
	})
}
