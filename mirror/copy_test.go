package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/mirror"
)

// fixture is a pack version with an OCI 1.1 referrer (which has a
// referrer of its own) and a cosign tag-schema signature.
type fixture struct {
	pack, sbom, sbomSig, sig desc
	content                  []byte
}

func publish(r *testReg, repo, version string) fixture {
	var f fixture
	f.content = []byte("rules for " + repo + ":" + version)
	f.pack = r.pack(repo, version, f.content)
	f.sbom = r.referrer(repo, f.pack, "application/vnd.example.sbom", []byte(`{"sbom":"`+version+`"}`))
	f.sbomSig = r.referrer(repo, f.sbom, "application/vnd.example.sig", []byte(`{"sig":"`+version+`"}`))
	f.sig = r.cosignSig(repo, f.pack)
	return f
}

// checkCopied asserts that dst holds everything of f, byte for byte.
func checkCopied(t *testing.T, dst *testReg, repo, version string, f fixture) {
	t.Helper()
	if got := dst.resolve(repo, version); got != dg(f.pack) {
		t.Fatalf("%s:%s on the sink is %q, want %s", repo, version, got, f.pack.Digest)
	}
	for _, d := range []desc{f.sbom, f.sbomSig, f.sig} {
		if got := dst.resolve(repo, d.Digest.String()); got != dg(d) {
			t.Fatalf("manifest %s missing on the sink", d.Digest)
		}
	}
	if got := dst.resolve(repo, "sha256-"+f.pack.Digest.Encoded()+".sig"); got != dg(f.sig) {
		t.Fatalf("cosign tag on the sink points at %q, want %s", got, f.sig.Digest)
	}
	refs, err := dst.Reg.Referrers(context.Background(), repo, dg(f.pack), "")
	if err != nil || len(refs) != 1 || refs[0].Digest != f.sbom.Digest || refs[0].ArtifactType != "application/vnd.example.sbom" {
		t.Fatalf("referrers on the sink: %+v, %v", refs, err)
	}
	rc, _, err := dst.Reg.OpenBlob(context.Background(), repo, sha(f.content))
	if err != nil {
		t.Fatalf("pack file on the sink: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, f.content) {
		t.Fatalf("pack file on the sink: %q", b)
	}
}

func TestCopyPushPullIdempotent(t *testing.T) {
	ctx := context.Background()
	a, b, c := newTestReg(t), newTestReg(t), newTestReg(t)
	fx := publish(a, "acme/rules", "1.0.0")
	fx2 := publish(a, "acme/rules", "1.1.0")

	// Push: local A to remote B.
	e := mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{Concurrency: 3})
	res := e.Run(ctx, []mirror.Job{{"acme/rules", "acme/rules", "1.0.0"}, {"acme/rules", "acme/rules", "1.1.0"}}, nil)
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("copy %s: %v", r.Ref, r.Err)
		}
	}
	checkCopied(t, b, "acme/rules", "1.0.0", fx)
	checkCopied(t, b, "acme/rules", "1.1.0", fx2)
	if b.resolve("acme/rules", "sha256-"+fx.pack.Digest.Hex()) != "" {
		t.Fatal("a tag-schema index was written on a sink with the referrers API")
	}
	st := e.Counts.Snapshot()
	// 2 packs, 2 sboms, 2 sbom signatures, 2 cosign signatures.
	if st.ManifestsCopied != 8 || st.ReferrersCopied != 6 || st.VersionsDone != 2 {
		t.Fatalf("first copy: %+v", st)
	}
	// Shared blobs (the empty config, cosign's config) are sent once:
	// 2 x (pack file, sbom, sbom signature, cosign payload) + 2.
	if st.BlobsCopied != 10 || st.BlobsSkipped != 0 {
		t.Fatalf("first copy blobs: %+v", st)
	}

	// A second run copies nothing.
	e2 := mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{})
	for _, r := range e2.Run(ctx, []mirror.Job{{"acme/rules", "acme/rules", "1.0.0"}, {"acme/rules", "acme/rules", "1.1.0"}}, nil) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if st := e2.Counts.Snapshot(); st.Copied() {
		t.Fatalf("second copy wrote something: %+v", st)
	}

	// Pull: remote B to local C, into another repository name.
	e3 := mirror.NewEngine(b.remote(), c.local(), mirror.EngineOptions{})
	if _, err := e3.Copy(ctx, mirror.Job{SrcRepo: "acme/rules", DstRepo: "mirror/acme/rules", Ref: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	checkCopied(t, c, "mirror/acme/rules", "1.0.0", fx)
	// A second version in the same run mounts the shared blobs locally.
	if _, err := e3.Copy(ctx, mirror.Job{SrcRepo: "acme/rules", DstRepo: "other/rules", Ref: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	if st := e3.Counts.Snapshot(); st.BlobsMounted == 0 {
		t.Fatalf("no mount into the local sink: %+v", st)
	}
}

// TestCopyMovesTag: a version re-pushed on the source moves on the sink,
// and only after its new closure is there.
func TestCopyMovesTag(t *testing.T) {
	ctx := context.Background()
	a, b := newTestReg(t), newTestReg(t)
	publish(a, "acme/rules", "1.0.0")
	e := mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{})
	if _, err := e.Copy(ctx, mirror.Job{"acme/rules", "acme/rules", "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	again := a.pack("acme/rules", "1.0.0", []byte("changed rules"))
	e = mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{})
	if _, err := e.Copy(ctx, mirror.Job{"acme/rules", "acme/rules", "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if got := b.resolve("acme/rules", "1.0.0"); got != dg(again) {
		t.Fatalf("tag on the sink: %s, want %s", got, again.Digest)
	}
	if st := e.Counts.Snapshot(); st.ManifestsCopied != 1 || st.TagsMoved != 1 || st.BlobsCopied != 1 {
		t.Fatalf("re-push copy: %+v", st)
	}
}

// TestCopyToRegistryWithoutReferrersAPI: the sink gets the tag-schema
// index, which is what clients read there, and a second run leaves it be.
func TestCopyToRegistryWithoutReferrersAPI(t *testing.T) {
	ctx := context.Background()
	a, b := newTestReg(t), newTestReg(t)
	b.Handler = noReferrersAPI
	fx := publish(a, "acme/rules", "1.0.0")
	e := mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{})
	if _, err := e.Copy(ctx, mirror.Job{"acme/rules", "acme/rules", "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	idx, err := b.Reg.Manifest(ctx, "acme/rules", "sha256-"+fx.pack.Digest.Hex())
	if err != nil {
		t.Fatalf("no tag-schema index on the sink: %v", err)
	}
	var doc struct{ Manifests []desc }
	json.Unmarshal(idx.Payload, &doc)
	if len(doc.Manifests) != 1 || doc.Manifests[0].Digest != fx.sbom.Digest || doc.Manifests[0].ArtifactType != "application/vnd.example.sbom" {
		t.Fatalf("tag-schema index: %s", idx.Payload)
	}
	if b.resolve("acme/rules", "sha256-"+fx.sbom.Digest.Hex()) == "" {
		t.Fatal("no tag-schema index for the referrer's own referrer")
	}
	e = mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{})
	if _, err := e.Copy(ctx, mirror.Job{"acme/rules", "acme/rules", "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if st := e.Counts.Snapshot(); st.Copied() {
		t.Fatalf("second copy wrote something: %+v", st)
	}

	// And back: a source without the API is read through its index.
	c := newTestReg(t)
	if _, err := mirror.NewEngine(b.remote(), c.local(), mirror.EngineOptions{}).Copy(ctx, mirror.Job{"acme/rules", "acme/rules", "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	checkCopied(t, c, "acme/rules", "1.0.0", fx)
}

// TestCopyRetriesTransientErrors: 503s and a connection cut mid-blob are
// retried; the copy completes.
func TestCopyRetriesTransientErrors(t *testing.T) {
	ctx := context.Background()
	a, b := newTestReg(t), newTestReg(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	p := a.pack("acme/big", "1.0.0", big)
	var fails atomic.Int32
	b.Handler = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			switch {
			case req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/") && fails.Add(1) <= 2:
				// Read half the body, then drop the connection.
				io.CopyN(io.Discard, req.Body, 512<<10)
				panic(http.ErrAbortHandler)
			case req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/") && fails.Add(1) <= 4:
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	e := mirror.NewEngine(a.local(), b.remote(), mirror.EngineOptions{Retry: mirror.Retry{Attempts: 6, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}})
	if _, err := e.Copy(ctx, mirror.Job{"acme/big", "acme/big", "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if got := b.resolve("acme/big", "1.0.0"); got != dg(p) {
		t.Fatalf("sink has %q", got)
	}
}

// TestCopyRefusesAlteredBlob: a source serving other bytes than the digest
// names fails the copy, and nothing is stored.
func TestCopyRefusesAlteredBlob(t *testing.T) {
	ctx := context.Background()
	a, b := newTestReg(t), newTestReg(t)
	a.pack("acme/evil", "1.0.0", []byte("honest content"))
	a.Handler = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") && !strings.Contains(req.URL.Path, sha([]byte("{}")).Hex()) {
				w.Write([]byte("evilish content"))
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	_, err := mirror.NewEngine(a.remote(), b.local(), mirror.EngineOptions{}).Copy(ctx, mirror.Job{"acme/evil", "acme/evil", "1.0.0"})
	if err == nil {
		t.Fatal("copy of altered content succeeded")
	}
	if b.resolve("acme/evil", "1.0.0") != "" {
		t.Fatal("altered pack was tagged on the sink")
	}
	if _, err := b.Reg.StatBlob(ctx, "acme/evil", digest.FromBytes(digest.SHA256, []byte("evilish content"))); err == nil {
		t.Fatal("altered blob stored")
	}
}
