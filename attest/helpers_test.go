package attest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/audit"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/sqlmeta"
)

// env is a registry on the real embedded stores (disk + SQLite) with
// attest wired the way serve wires it, and a clock the test moves.
type env struct {
	t     testing.TB
	reg   *registry.Registry
	svc   *attest.Service
	api   *httptest.Server // attest's API
	oci   *httptest.Server // the registry's /v2/
	src   *tamperSource
	clk   *testClock
	audit storage.AuditLog
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

// with returns e reporting failures to t (a subtest).
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func newEnv(t testing.TB, cfg attest.Config) *env { return newEnvWorker(t, cfg, true) }

// newEnvWorker is newEnv, without the indexing worker when worker is
// false: pushes are then indexed only when something asks (wait hangs).
func newEnvWorker(t testing.TB, cfg attest.Config, worker bool) *env {
	t.Helper()
	blobs, meta, _ := teststores.Open(t)
	return envOn(t, blobs, meta, cfg, worker)
}

// envOn is an env over existing stores, with its indexing worker running
// or not (a process whose worker is stuck, or that dies before it ran).
func envOn(t testing.TB, blobs storage.BlobStore, meta *sqlmeta.Store, cfg attest.Config, run bool) *env {
	t.Helper()
	e := &env{t: t, clk: &testClock{now: time.Now().UTC().Truncate(time.Second)}}
	e.svc = attest.New(meta, attest.WithConfig(cfg), attest.WithClock(e.clock),
		attest.WithGatedTypes(func(at string) bool { return at == packType }))
	// Key changes reach the trail the way serve wires it: through the outbox.
	audit.NewRecorder(meta, slog.New(slog.DiscardHandler)).Watch()
	e.audit = meta
	e.reg = registry.New(blobs, meta, append(e.svc.RegistryOptions(), registry.WithClock(e.clock))...)
	e.src = &tamperSource{Source: e.reg, bad: map[digest.Digest]bool{}}
	e.svc.Attach(e.src, e.reg)
	if err := e.svc.Subscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	// As serve does: the trusted root files are read before the worker runs.
	if _, err := e.svc.ReloadTrustedRoots(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if run {
		go func() { e.svc.Run(ctx); close(done) }()
	} else {
		close(done)
	}
	e.api = httptest.NewServer(e.svc.Handler())
	e.oci = httptest.NewServer(e.reg)
	t.Cleanup(func() {
		e.api.Close()
		e.oci.Close()
		cancel()
		<-done
		meta.Close()
	})
	return e
}

func (e *env) clock() time.Time {
	e.clk.mu.Lock()
	defer e.clk.mu.Unlock()
	return e.clk.now
}

// advance moves the clock; pending indexing finishes first, so records
// are stamped with the time they were pushed at.
func (e *env) advance(d time.Duration) {
	e.wait()
	e.clk.mu.Lock()
	e.clk.now = e.clk.now.Add(d)
	e.clk.mu.Unlock()
}

func (e *env) wait() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.svc.Wait(ctx); err != nil {
		e.t.Fatalf("indexing did not finish: %v", err)
	}
}

// tamperSource serves altered bytes for the blobs in bad: content changed
// at rest, under the digest it was stored as.
type tamperSource struct {
	attest.Source
	mu  sync.Mutex
	bad map[digest.Digest]bool
}

func (s *tamperSource) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	rc, n, err := s.Source.OpenBlob(ctx, repo, d)
	s.mu.Lock()
	bad := s.bad[d]
	s.mu.Unlock()
	if err != nil || !bad {
		return rc, n, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, 0, err
	}
	b[len(b)/2] ^= 1
	return io.NopCloser(bytes.NewReader(b)), n, nil
}

func (s *tamperSource) corrupt(d digest.Digest) {
	s.mu.Lock()
	s.bad[d] = true
	s.mu.Unlock()
}

// signer is a private key that signs the way cosign v2.6.5 does with it.
type signer struct {
	name   string
	pubPEM string
	id     string
	sign   func(msg []byte) []byte
}

func newSigner(t testing.TB, kind string) *signer {
	t.Helper()
	var (
		pub  crypto.PublicKey
		sign func([]byte) []byte
	)
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	switch kind {
	case "ecdsa-p256", "ecdsa-p384":
		curve, h := elliptic.P256(), crypto.SHA256
		if kind == "ecdsa-p384" {
			curve, h = elliptic.P384(), crypto.SHA384
		}
		k, _ := ecdsa.GenerateKey(curve, rand.Reader)
		pub = &k.PublicKey
		sign = func(m []byte) []byte {
			hh := h.New()
			hh.Write(m)
			return must(ecdsa.SignASN1(rand.Reader, k, hh.Sum(nil)))
		}
	case "rsa-2048", "rsa-3072-pss", "rsa-4096":
		bits := map[string]int{"rsa-2048": 2048, "rsa-3072-pss": 3072, "rsa-4096": 4096}[kind]
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
		sign = func(m []byte) []byte {
			sum := sha256.Sum256(m)
			if kind == "rsa-3072-pss" {
				return must(rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], nil))
			}
			return must(rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:]))
		}
	case "ed25519ph", "ed25519":
		p, k, _ := ed25519.GenerateKey(rand.Reader)
		pub = p
		sign = func(m []byte) []byte {
			if kind == "ed25519" {
				return ed25519.Sign(k, m)
			}
			sum := sha512.Sum512(m)
			return must(k.Sign(nil, sum[:], &ed25519.Options{Hash: crypto.SHA512}))
		}
	default:
		t.Fatalf("no signer %q", kind)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return &signer{name: kind, sign: sign, id: hex.EncodeToString(sum[:]),
		pubPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
}

// hint is the bundle publicKey hint cosign writes for the key.
func (s *signer) hint() string {
	b, _ := hex.DecodeString(s.id)
	return base64.StdEncoding.EncodeToString(b)
}

func (e *env) pushBlob(repo string, b []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(digest.SHA256, b)
	if err := e.reg.PushBlob(context.Background(), repo, d, bytes.NewReader(b)); err != nil {
		e.t.Fatalf("push blob: %v", err)
	}
	return d
}

type (
	desc     = oci.Descriptor
	manifest = oci.Manifest
)

const (
	mtManifest = oci.MediaTypeImageManifest
	packType   = oci.ArtifactTypePack
)

// layer pushes b and describes it.
func (e *env) layer(repo, mediaType string, b []byte, ann map[string]string) desc {
	d := oci.NewDescriptor(mediaType, e.pushBlob(repo, b), int64(len(b)))
	d.Annotations = ann
	return d
}

// encode completes m (schema version, media type, empty config) and
// returns its bytes; the config blob is pushed to repo.
func (e *env) encode(repo string, m manifest) []byte {
	e.t.Helper()
	m.SchemaVersion, m.MediaType = 2, mtManifest
	if m.Config.MediaType == "" {
		m.Config = e.layer(repo, "application/vnd.oci.empty.v1+json", []byte("{}"), nil)
	}
	b, err := json.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) pushManifest(repo, ref string, m manifest) digest.Digest {
	e.t.Helper()
	b := e.encode(repo, m)
	if ref == "" {
		ref = digest.FromBytes(digest.SHA256, b).String() // an untagged referrer
	}
	d, err := e.reg.PushManifest(context.Background(), repo, ref, mtManifest, b)
	if err != nil {
		e.t.Fatalf("push manifest %s:%s: %v", repo, ref, err)
	}
	return d
}

// pushPack pushes a small pack version and returns its digest.
var packSeq struct {
	sync.Mutex
	n int
}

func (e *env) pushPack(repo, version string) digest.Digest {
	packSeq.Lock()
	packSeq.n++
	n := packSeq.n
	packSeq.Unlock()
	l := e.layer(repo, "application/vnd.packreg.pack.file.v1", []byte(fmt.Sprintf("pack %s %s %d\n", repo, version, n)),
		map[string]string{"org.opencontainers.image.title": "pack.yaml"})
	return e.pushManifest(repo, version, manifest{ArtifactType: packType, Layers: []desc{l}})
}

func (e *env) subjectDesc(repo string, d digest.Digest) *desc {
	m, err := e.reg.Manifest(context.Background(), repo, d.String())
	if err != nil {
		e.t.Fatal(err)
	}
	sd := oci.NewDescriptor(m.MediaType, d, m.Size)
	return &sd
}

// simplePayload is what `cosign sign` signs for repo@d.
func simplePayload(repo string, d digest.Digest) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/` + repo + `"},"image":{"docker-manifest-digest":"` +
		string(d) + `"},"type":"cosign container image signature"},"optional":null}`)
}

// sigLayer is one simple-signing layer over payload, signed by s.
func (e *env) sigLayer(repo string, payload []byte, sig []byte) desc {
	return e.layer(repo, oci.MediaTypeCosignSimpleSigning, payload,
		map[string]string{oci.AnnotationCosignSignature: base64.StdEncoding.EncodeToString(sig)})
}

// signTag is `cosign sign`: a .sig manifest tagged sha256-<hex>.sig.
func (e *env) signTag(repo string, subject digest.Digest, layers ...desc) digest.Digest {
	return e.pushManifest(repo, attest.SchemaTag(subject, attest.KindSignature),
		manifest{Config: e.layer(repo, "application/vnd.oci.image.config.v1+json", []byte(`{"rootfs":{}}`), nil), Layers: layers})
}

// signOCI11 is `cosign sign --registry-referrers-mode=oci-1-1`.
func (e *env) signOCI11(repo string, subject digest.Digest, l desc) digest.Digest {
	return e.pushManifest(repo, "", manifest{ArtifactType: oci.ArtifactTypeCosignSignature,
		Config: e.layer(repo, oci.ArtifactTypeCosignSignature, []byte("{}"), nil), Layers: []desc{l}, Subject: e.subjectDesc(repo, subject)})
}

// statement is an in-toto statement about the digests.
func statement(predicateType string, ds ...digest.Digest) []byte {
	var subs []string
	for _, d := range ds {
		subs = append(subs, `{"name":"x","digest":{"`+d.Algorithm()+`":"`+d.Hex()+`"}}`)
	}
	return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[` + strings.Join(subs, ",") + `],"predicateType":"` +
		predicateType + `","predicate":{"builder":"test"}}`)
}

// envelope signs body as a DSSE envelope of payloadType with s.
func envelope(s *signer, payloadType string, body []byte, keyid string) []byte {
	pae := "DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(body)) + " " + string(body)
	b, _ := json.Marshal(map[string]any{
		"payloadType": payloadType,
		"payload":     base64.StdEncoding.EncodeToString(body),
		"signatures":  []map[string]string{{"keyid": keyid, "sig": base64.StdEncoding.EncodeToString(s.sign([]byte(pae)))}},
	})
	return b
}

// attestTag is `cosign attest`: a .att manifest of DSSE layers.
func (e *env) attestTag(repo string, subject digest.Digest, predicateType string, envs ...[]byte) digest.Digest {
	var layers []desc
	for _, env := range envs {
		layers = append(layers, e.layer(repo, oci.MediaTypeDSSE, env,
			map[string]string{attest.AnnotationPredicateType: predicateType, oci.AnnotationCosignSignature: ""}))
	}
	return e.pushManifest(repo, attest.SchemaTag(subject, attest.KindAttestation),
		manifest{Config: e.layer(repo, "application/vnd.oci.image.config.v1+json", []byte(`{"rootfs":{}}`), nil), Layers: layers})
}

// bundle is `cosign sign|attest --new-bundle-format`: a referrer holding
// one sigstore bundle, with content either a DSSE envelope or a message
// signature.
func (e *env) bundle(repo string, subject digest.Digest, content map[string]any, hint string) digest.Digest {
	b := map[string]any{"mediaType": oci.MediaTypeSigstoreBundle}
	if hint != "" {
		b["verificationMaterial"] = map[string]any{"publicKey": map[string]string{"hint": hint}}
	}
	for k, v := range content {
		b[k] = v
	}
	raw, _ := json.Marshal(b)
	return e.pushManifest(repo, "", manifest{ArtifactType: oci.MediaTypeSigstoreBundle,
		Layers: []desc{e.layer(repo, oci.MediaTypeSigstoreBundle, raw, nil)}, Subject: e.subjectDesc(repo, subject)})
}

func dsseContent(env []byte) map[string]any {
	return map[string]any{"dsseEnvelope": json.RawMessage(env)}
}

func messageContent(s *signer, subjectBytes []byte) map[string]any {
	sum := sha256.Sum256(subjectBytes)
	return map[string]any{"messageSignature": map[string]any{
		"messageDigest": map[string]string{"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(sum[:])},
		"signature":     base64.StdEncoding.EncodeToString(s.sign(subjectBytes)),
	}}
}

// call sends a request to the attest API and decodes the JSON answer.
func (e *env) call(method, path string, body any, want int) map[string]any {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.api.URL+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("%s %s: not JSON: %s", method, path, raw)
	}
	return out
}

func (e *env) addKey(s *signer) string {
	e.t.Helper()
	out := e.call("POST", "/api/v1/keys", map[string]string{"name": s.name + "-" + s.id[:8], "pem": s.pubPEM}, http.StatusCreated)
	if out["id"] != s.id {
		e.t.Fatalf("key id %v, want %s", out["id"], s.id)
	}
	return s.id
}

// report waits for indexing and returns the verification report of repo:version.
func (e *env) report(repo, version string) *attest.Report {
	e.t.Helper()
	e.wait()
	req, _ := http.NewRequest("GET", e.api.URL+"/api/v1/packs/"+repo+"/versions/"+version+"/verification", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep attest.Report
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&rep) != nil {
		e.t.Fatalf("report %s:%s: %d", repo, version, resp.StatusCode)
	}
	return &rep
}

// statuses lists "kind status key-prefix" of the current findings.
func statuses(rep *attest.Report) []string {
	var out []string
	for _, f := range append(append([]attest.Finding{}, rep.Signatures...), rep.Attestations...) {
		if f.Superseded != nil {
			continue
		}
		k := f.KeyID
		if len(k) > 8 {
			k = k[:8]
		}
		out = append(out, f.Kind+" "+f.Status+" "+k)
	}
	return out
}
