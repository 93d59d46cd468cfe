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

// batchReporter is fakeReporter with the batch ability, counting how
// often each way is asked.
type batchReporter struct {
	fakeReporter
	single, batches *int
}

func (b batchReporter) SignatureReport(ctx context.Context, name string, d digest.Digest) (*pack.SignatureReport, error) {
	*b.single++
	return b.fakeReporter.SignatureReport(ctx, name, d)
}

func (b batchReporter) SignatureReports(ctx context.Context, vs []pack.VersionRef) ([]*pack.SignatureReport, error) {
	*b.batches++
	out := make([]*pack.SignatureReport, len(vs))
	for i, v := range vs {
		out[i], _ = b.fakeReporter.SignatureReport(ctx, v.Name, v.Digest)
	}
	return out, nil
}

// With a VerificationReporter, versions carry its report, and pending
// versions stay out of the listings but not out of a direct GET.
func TestVerificationReporter(t *testing.T) {
	testVerificationReporter(t, fakeReporter{})
}

// A reporter that can report on a page at once is asked once per
// listing, never once per row, and the listings are the same.
func TestBatchVerificationReporter(t *testing.T) {
	var single, batches int
	e := testVerificationReporter(t, batchReporter{single: &single, batches: &batches})
	single, batches = 0, 0
	e.do("GET", pack.Prefix, nil)
	e.do("GET", pack.Prefix+"/shown/versions", nil)
	if single != 0 || batches != 2 {
		t.Fatalf("two listings asked %d single reports and %d batches, want 0 and 2", single, batches)
	}
}

func testVerificationReporter(t *testing.T, r pack.VerificationReporter) *env {
	e := newEnv(t, pack.DefaultPolicy(), pack.WithVerificationReporter(r))
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
	if vs := decode[pack.Versions](t, e.do("GET", pack.Prefix+"/shown/versions", nil)); len(vs.Versions) != 1 || vs.Versions[0].Verification != "unsigned" {
		t.Fatalf("versions of a shown pack: %+v", vs.Versions)
	}
	return e
}
