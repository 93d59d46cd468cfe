package main

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies keeps the bench outside packreg: it measures the binary
// over the wire and imports nothing of it, only image-spec for the
// manifests it pushes, the AWS SDK to clean its S3 prefix, and bcrypt for
// the auth suite's htpasswd.
func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/opencontainers/image-spec/specs-go", "github.com/opencontainers/image-spec/specs-go/v1",
		"github.com/opencontainers/go-digest", "github.com/aws/aws-sdk-go-v2/", "golang.org/x/crypto/bcrypt")
}
