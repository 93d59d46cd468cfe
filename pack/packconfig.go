package pack

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/oci"
)

// A pack pushed over OCI brings its own description, labels and creation
// time, in its config blob or in its manifest annotations. They are indexed,
// listed and filtered on like those of a REST publish, so they are held to
// the same rules: a config that breaks them is read as unreadable (the
// annotations then say what the pack is), and an annotation that breaks
// them is left out.

// decodeConfig reads a pack config blob.
func decodeConfig(b []byte) (Config, error) {
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Config{}, err
	}
	if err := checkDescription(cfg.Description); err != nil {
		return Config{}, err
	}
	if err := checkLabels(cfg.Labels); err != nil {
		return Config{}, err
	}
	if err := checkCreated(cfg.Created); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// configFromAnnotations reads a pack's facts from its manifest annotations;
// problems says what was left out and why.
func configFromAnnotations(a map[string]string) (cfg Config, problems []error) {
	if d := a[oci.AnnotationDescription]; d != "" {
		if err := checkDescription(d); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", oci.AnnotationDescription, err))
		} else {
			cfg.Description = d
		}
	}
	if c := a[oci.AnnotationCreated]; c != "" {
		if err := checkCreated(c); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", oci.AnnotationCreated, err))
		} else {
			cfg.Created = c
		}
	}
	if raw := a[oci.AnnotationPackLabels]; raw != "" {
		var labels map[string]string
		err := json.Unmarshal([]byte(raw), &labels)
		if err == nil {
			err = checkLabels(labels)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", oci.AnnotationPackLabels, err))
		} else {
			cfg.Labels = labels
		}
	}
	return cfg, problems
}

// checkCreated: empty, or an RFC 3339 time (what publish writes).
func checkCreated(c string) error {
	if c == "" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339, c); err != nil {
		return fmt.Errorf("created %q is not an RFC 3339 time", apierr.Clip(c))
	}
	return nil
}
