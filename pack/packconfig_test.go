package pack

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/oci"
)

// FuzzPackConfig: whatever a pushed pack config or its annotations say,
// the facts indexed from them (description, labels, created) obey the
// rules a REST publish is held to; an accepted config is what
// encoding/json reads, and an annotation is either kept as it is or named
// among the problems.
func FuzzPackConfig(f *testing.F) {
	f.Add([]byte(`{"name":"acme/rules","version":"1.0.0","description":"d","labels":{"team":"sec"},"created":"2026-01-01T00:00:00Z"}`),
		"a description", `{"team":"sec"}`, "2026-01-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, config []byte, description, labels, created string) {
		valid := func(cfg Config) {
			t.Helper()
			md := Metadata{Name: "acme/rules", Version: "1.0.0", Description: cfg.Description, Labels: cfg.Labels}
			if err := md.check(); err != nil {
				t.Fatalf("indexed %+v, which publish refuses: %v", cfg, err)
			}
			if _, err := time.Parse(time.RFC3339, cfg.Created); cfg.Created != "" && err != nil {
				t.Fatalf("indexed created %q: %v", cfg.Created, err)
			}
		}
		if cfg, err := decodeConfig(config); err == nil {
			valid(cfg)
			var plain Config
			if json.Unmarshal(config, &plain) != nil || plain.Description != cfg.Description ||
				!maps.Equal(plain.Labels, cfg.Labels) || plain.Created != cfg.Created {
				t.Fatalf("encoding/json reads %q differently from %+v", config, cfg)
			}
		}
		cfg, problems := configFromAnnotations(map[string]string{
			oci.AnnotationDescription: description, oci.AnnotationPackLabels: labels, oci.AnnotationCreated: created})
		valid(cfg)
		var want map[string]string
		labelsKept := labels == "" && cfg.Labels == nil ||
			json.Unmarshal([]byte(labels), &want) == nil && maps.Equal(want, cfg.Labels)
		for _, c := range []struct {
			key  string
			kept bool
		}{{oci.AnnotationDescription, cfg.Description == description}, {oci.AnnotationCreated, cfg.Created == created}, {oci.AnnotationPackLabels, labelsKept}} {
			named := slices.ContainsFunc(problems, func(err error) bool { return strings.HasPrefix(err.Error(), c.key+":") })
			if c.kept == named {
				t.Fatalf("annotation %s: kept %v, named among the problems %v: %+v", c.key, c.kept, problems, cfg)
			}
		}
	})
}
