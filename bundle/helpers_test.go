package bundle

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/pack"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// site is one registry in a test: the embedded stores, the registry with
// the pack service and the audit recorder wired as serve wires them, a
// key ring, and the bundle service.
type site struct {
	t     testing.TB
	reg   *registry.Registry
	meta  *sqlmeta.Store
	blobs storage.BlobStore
	packs *pack.Service
	keys  *attest.Service
	svc   *Service
	spool string
}

var quiet = slog.New(slog.DiscardHandler)

func newSite(t testing.TB, opts ...Option) *site {
	t.Helper()
	blobs, meta, dir := teststores.Open(t)
	s := &site{t: t, meta: meta, blobs: blobs, spool: dir + "/spool"}
	audit.NewRecorder(meta, quiet).Watch()
	s.packs = pack.New(meta, pack.WithLogger(quiet))
	s.keys = attest.New(meta, attest.WithLogger(quiet))
	s.reg = registry.New(blobs, meta, append(s.packs.RegistryOptions(), registry.WithLogger(quiet))...)
	s.packs.Attach(s.reg)
	s.keys.Attach(s.reg, s.reg)
	all := append([]Option{WithVerifier(s.keys), WithLifecycleSetter(lifecycle{s.packs}), WithSpoolDir(s.spool),
		WithLogger(quiet), WithSource("site-test")}, opts...)
	s.svc = New(s.reg, meta, meta, all...)
	return s
}

// lifecycle is cmd's adapter of the pack service, as serve wires it.
type lifecycle struct{ p *pack.Service }

func (l lifecycle) SetPackState(ctx context.Context, name, version, state, reason string) error {
	_, err := l.p.SetLifecycle(ctx, name, version, pack.LifecycleRequest{State: state, Reason: reason, Force: true})
	return err
}

func (s *site) ctx() context.Context { return registry.WithActor(context.Background(), "tester") }

// push stores b as a blob of repo.
func (s *site) push(repo string, b []byte) oci.Descriptor {
	s.t.Helper()
	d := digest.FromBytes(digest.SHA256, b)
	if err := s.reg.PushBlob(s.ctx(), repo, d, bytes.NewReader(b)); err != nil {
		s.t.Fatal(err)
	}
	return oci.NewDescriptor("application/octet-stream", d, int64(len(b)))
}

// manifest pushes m to repo under ref (a tag, or "" for its digest).
func (s *site) manifest(repo, ref string, m oci.Manifest) oci.Descriptor {
	s.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		s.t.Fatal(err)
	}
	d := digest.FromBytes(digest.SHA256, b)
	if ref == "" {
		ref = d.String()
	}
	if _, err := s.reg.PushManifest(s.ctx(), repo, ref, m.MediaType, b); err != nil {
		s.t.Fatalf("push %s:%s: %v", repo, ref, err)
	}
	desc := oci.NewDescriptor(m.MediaType, d, int64(len(b)))
	desc.ArtifactType = m.ArtifactType
	return desc
}

var packSeq struct {
	sync.Mutex
	n int
}

// pack pushes a pack version with one file of size bytes.
func (s *site) pack(repo, version string, size int) oci.Descriptor {
	s.t.Helper()
	packSeq.Lock()
	packSeq.n++
	n := packSeq.n
	packSeq.Unlock()
	body := bytes.Repeat([]byte(fmt.Sprintf("%s %s %d\n", repo, version, n)), 1+size/16)[:max(size, 1)]
	layer := s.push(repo, body)
	layer.MediaType = oci.MediaTypePackFile
	layer.Annotations = map[string]string{oci.AnnotationTitle: "rules.yaml"}
	cfg := s.push(repo, []byte("{}"))
	cfg.MediaType = oci.MediaTypeEmptyJSON
	m := oci.NewManifest(cfg, []oci.Descriptor{layer})
	m.ArtifactType = oci.ArtifactTypePack
	return s.manifest(repo, version, m)
}

// referrer pushes an artifact whose subject is subject.
func (s *site) referrer(repo string, subject oci.Descriptor, artifactType, body string) oci.Descriptor {
	s.t.Helper()
	layer := s.push(repo, []byte(body))
	cfg := s.push(repo, []byte("{}"))
	cfg.MediaType = oci.MediaTypeEmptyJSON
	m := oci.NewManifest(cfg, []oci.Descriptor{layer})
	m.ArtifactType = artifactType
	sub := subject
	sub.Annotations = nil
	m.Subject = &sub
	return s.manifest(repo, "", m)
}

// cosignSig pushes a tag-schema signature manifest (sha256-<hex>.sig) of
// subject, as `cosign sign` does.
func (s *site) cosignSig(repo string, subject oci.Descriptor, body string) oci.Descriptor {
	s.t.Helper()
	layer := s.push(repo, []byte(body))
	layer.MediaType = oci.MediaTypeCosignSimpleSigning
	layer.Annotations = map[string]string{oci.AnnotationCosignSignature: "c2ln"}
	cfg := s.push(repo, []byte(`{"rootfs":{}}`))
	cfg.MediaType = "application/vnd.oci.image.config.v1+json"
	return s.manifest(repo, oci.CosignTag(digest.Digest(subject.Digest), oci.SuffixSignature), oci.NewManifest(cfg, []oci.Descriptor{layer}))
}

func (s *site) setState(repo, version, state string) {
	s.t.Helper()
	if _, err := s.packs.SetLifecycle(s.ctx(), repo, version, pack.LifecycleRequest{State: state, Reason: "test " + state, Force: true}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) version(repo, version string) *storage.PackVersion {
	s.t.Helper()
	v, err := s.meta.GetPackVersion(context.Background(), repo, version)
	if err != nil {
		s.t.Fatalf("version %s:%s: %v", repo, version, err)
	}
	return v
}

// export plans and writes a bundle.
func (s *site) export(req ExportRequest) (*Export, []byte) {
	s.t.Helper()
	x, err := s.svc.PlanExport(s.ctx(), req)
	if err != nil {
		s.t.Fatalf("plan export: %v", err)
	}
	var buf bytes.Buffer
	if err := x.Write(s.ctx(), &buf, "tester"); err != nil {
		s.t.Fatalf("write export: %v", err)
	}
	if x.Size >= 0 && int64(buf.Len()) != x.Size {
		s.t.Fatalf("archive of %d bytes, announced %d", buf.Len(), x.Size)
	}
	return x, buf.Bytes()
}

// importBundle imports b and waits for it to be published.
func (s *site) importBundle(b []byte, o ImportOptions) (*Report, error) {
	s.t.Helper()
	if o.Actor == "" {
		o.Actor = "tester"
	}
	rep, err := s.svc.Import(s.ctx(), bytes.NewReader(b), o)
	if err != nil {
		return nil, err
	}
	s.svc.Wait()
	return s.svc.Get(context.Background(), rep.ID)
}

// mustImport imports b and wants it succeeded.
func (s *site) mustImport(b []byte, o ImportOptions) *Report {
	s.t.Helper()
	rep, err := s.importBundle(b, o)
	if err != nil {
		s.t.Fatalf("import: %v", err)
	}
	if rep.State != storage.ImportSucceeded && rep.State != storage.ImportAlreadyApplied {
		s.t.Fatalf("import %s: %+v (error %+v)", rep.State, rep.Versions, rep.Error)
	}
	return rep
}

// repos lists the repositories of the registry: what is visible.
func (s *site) repos() []string {
	s.t.Helper()
	r, err := s.reg.Repositories(context.Background(), "", 1000)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// trust adds the signer's public key to s's key ring for usage.
func (s *site) trust(sg *Signer, usage ...string) {
	s.t.Helper()
	if _, err := s.keys.AddKey(s.ctx(), attest.KeyInput{Name: "key-" + sg.KeyID[:8] + fmt.Sprint(usage), PEM: sg.PublicPEM, Usage: usage}); err != nil {
		s.t.Fatal(err)
	}
}

// newSigner makes a bundle key.
func newTestSigner(t testing.TB) *Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// audits lists "action target" of the trail, oldest first, for actions
// with the prefix.
func (s *site) audits(prefix string) []storage.AuditRecord {
	s.t.Helper()
	recs, err := s.meta.ListAudit(context.Background(), storage.AuditQuery{})
	if err != nil {
		s.t.Fatal(err)
	}
	var out []storage.AuditRecord
	for i := len(recs) - 1; i >= 0; i-- {
		if len(recs[i].Action) >= len(prefix) && recs[i].Action[:len(prefix)] == prefix {
			out = append(out, recs[i])
		}
	}
	return out
}

// spoolEmpty checks that no staging file is left.
func (s *site) spoolEmpty() {
	s.t.Helper()
	entries, err := os.ReadDir(s.spool)
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	if len(entries) > 0 {
		s.t.Fatalf("staging left %d file(s) behind: %s", len(entries), entries[0].Name())
	}
}
