package s3

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the promise of doc.go: s3 imports only storage,
// digest, the AWS SDK and the standard library; s3fault only the standard
// library.
func TestImports(t *testing.T) {
	for dir, allowed := range map[string][]string{
		".": {"github.com/packreg/packreg/storage", "github.com/packreg/packreg/digest",
			"github.com/aws/aws-sdk-go-v2/", "github.com/aws/smithy-go", "github.com/aws/smithy-go/"},
		"s3fault": nil,
	} {
		// A trailing slash allows a whole tree; other entries are exact.
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
		imports:
			for _, im := range ast.Imports {
				p, _ := strconv.Unquote(im.Path.Value)
				if !strings.Contains(strings.Split(p, "/")[0], ".") {
					continue // standard library
				}
				for _, a := range allowed {
					if p == a || strings.HasSuffix(a, "/") && strings.HasPrefix(p, a) {
						continue imports
					}
				}
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
