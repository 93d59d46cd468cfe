package s3

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestImports keeps the promise of doc.go: s3 imports only storage,
// digest, the AWS SDK and the standard library; s3fault only the standard
// library, and its command only s3fault.
func TestImports(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/packreg/packreg/storage", "github.com/packreg/packreg/digest",
		"github.com/aws/aws-sdk-go-v2/", "github.com/aws/smithy-go", "github.com/aws/smithy-go/")
	depcheck.Allow(t, "s3fault")
	depcheck.Allow(t, "s3fault/cmd/s3fault", "github.com/packreg/packreg/storage/s3/s3fault")
}
