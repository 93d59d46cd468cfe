package pack_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/pack"
)

// fakeReporter says every version of pack "hidden" is pending.
type fakeReporter struct{}

func (fakeReporter) SignatureReport(_ context.Context, name string, d digest.Digest) (*pack.SignatureReport, error) {
	return &pack.SignatureReport{Verification: "unsigned", Signatures: []string{string(d)}, Attestations: []string{},
		Pending: name == "hidden"}, nil
}

// With a VerificationReporter, versions carry its report, and pending
// versions stay out of the listings but not out of a direct GET.
func TestVerificationReporter(t *testing.T) {
	e := newEnv(t, pack.DefaultPolicy(), pack.WithVerificationReporter(fakeReporter{}))
	f := file{name: "a.yaml", contentType: "text/yaml", data: []byte("a: 1\n")}
	shown := e.mustPublish(pack.Metadata{Name: "shown", Version: "1.0.0"}, f)
	if shown.SignatureReport == nil || shown.Verification != "unsigned" {
		t.Fatalf("published version without its report: %+v", shown)
	}
	e.mustPublish(pack.Metadata{Name: "hidden", Version: "1.0.0"}, f)

	v := decode[pack.Version](t, e.do("GET", pack.Prefix+"/shown/versions/1.0.0", nil))
	if v.Verification != "unsigned" || !strings.Contains(string(e.do("GET", pack.Prefix+"/shown/versions/1.0.0", nil).Body.Bytes()), `"signatures": [`) {
		t.Fatalf("GET version: %+v", v)
	}
	if w := e.do("GET", pack.Prefix+"/hidden/versions/1.0.0", nil); w.Code != http.StatusOK {
		t.Fatalf("GET pending version: %d", w.Code)
	}
	list := decode[pack.VersionList](t, e.do("GET", pack.Prefix, nil))
	if len(list.Items) != 1 || list.Items[0].Name != "shown" {
		t.Fatalf("listing shows %+v", list.Items)
	}
	if vs := decode[pack.Versions](t, e.do("GET", pack.Prefix+"/hidden/versions", nil)); len(vs.Versions) != 0 {
		t.Fatalf("versions of a pending pack: %+v", vs.Versions)
	}
}
