package attest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// A complete Sigstore, offline and in process: sigstore-go's virtual
// Sigstore (pkg/testing/ca) is the Rekor log (signed entry timestamps,
// inclusion proofs and checkpoints) and the RFC 3161 timestamp authority,
// and a Fulcio built from its CA generators issues the certificates a CI
// job gets: a workflow URI as the subject, the OIDC issuer and the
// source repository, ref and trigger as Fulcio's extensions.

// ci is an identity a CI system's OIDC token carries into a certificate.
type ci struct {
	issuer, subject, repo, ref, trigger string
}

const ghIssuer = "https://token.actions.githubusercontent.com"

var (
	releaseWF = ci{ghIssuer, "https://github.com/acme/rules/.github/workflows/release.yml@refs/tags/v1.2.0",
		"https://github.com/acme/rules", "refs/tags/v1.2.0", "push"}
	otherWF = ci{ghIssuer, "https://github.com/mallory/fork/.github/workflows/release.yml@refs/heads/main",
		"https://github.com/mallory/fork", "refs/heads/main", "pull_request_target"}
)

// releasePolicy trusts acme's release workflow on tags, pinned to its
// repository and trigger as teams do.
func releasePolicy() attest.Identity {
	return attest.Identity{Issuer: ghIssuer,
		SubjectRegexp:       `^https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/tags/v.*$`,
		SourceRepositoryURI: "https://github.com/acme/rules", BuildTrigger: "push"}
}

type fulcio struct {
	root, inter *x509.Certificate
	interKey    *ecdsa.PrivateKey
}

func newFulcio(t testing.TB) *fulcio {
	t.Helper()
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Valid for hours either way, so that certificates from an hour ago
	// chain (ca's own intermediate starts two minutes back).
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "fulcio-intermediate"},
		NotBefore: time.Now().Add(-4 * time.Hour), NotAfter: time.Now().Add(4 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, rootCert, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &fulcio{root: rootCert, inter: inter, interKey: key}
}

func utf8Ext(t testing.TB, oid asn1.ObjectIdentifier, v string) pkix.Extension {
	b, err := asn1.MarshalWithParams(v, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oid, Value: b}
}

// leaf is the certificate Fulcio issues to id, valid ten minutes from
// notBefore.
func (f *fulcio) leaf(t testing.TB, id ci, notBefore time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	san, err := url.Parse(id.subject)
	if err != nil {
		t.Fatal(err)
	}
	fx := func(n int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, n} }
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, URIs: []*url.URL{san},
		NotBefore: notBefore, NotAfter: notBefore.Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{utf8Ext(t, fx(8), id.issuer), utf8Ext(t, fx(12), id.repo),
			utf8Ext(t, fx(14), id.ref), utf8Ext(t, fx(20), id.trigger)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.inter, &key.PublicKey, f.interKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// sigstore is the virtual deployment: Rekor and the TSA from
// VirtualSigstore, certificates from fulcio.
type sigstore struct {
	t      testing.TB
	vs     *ca.VirtualSigstore
	fulcio *fulcio
}

func newSigstore(t testing.TB) *sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return &sigstore{t: t, vs: vs, fulcio: newFulcio(t)}
}

// trustedRoot is the deployment's trusted_root.json.
func (s *sigstore) trustedRoot() []byte {
	s.t.Helper()
	fca := &root.FulcioCertificateAuthority{Root: s.fulcio.root, Intermediates: []*x509.Certificate{s.fulcio.inter},
		ValidityPeriodStart: time.Now().Add(-5 * time.Hour), ValidityPeriodEnd: time.Now().Add(5 * time.Hour), URI: "https://fulcio.test"}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fca},
		rawIDs(s.vs.CTLogs()), s.vs.TimestampingAuthorities(), rawIDs(s.vs.RekorLogs()))
	if err != nil {
		s.t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// rawIDs gives the logs their raw key ids: VirtualSigstore keeps the hex
// text as the id, which only its in-memory lookups understand, and a
// trusted_root.json holds the raw bytes.
func rawIDs(logs map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
	out := map[string]*root.TransparencyLog{}
	for k, l := range logs {
		c := *l
		c.ID, _ = hex.DecodeString(k)
		out[k] = &c
	}
	return out
}

// rootFile writes the trusted root into a file of dir and returns the config naming it.
func (s *sigstore) rootFile(name string) attest.RootConfig {
	s.t.Helper()
	p := filepath.Join(s.t.TempDir(), name+".json")
	if err := os.WriteFile(p, s.trustedRoot(), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return attest.RootConfig{Name: name, Path: p}
}

// how a signature is made: when (the certificate's start; the log's
// time is a minute later), and with what evidence of time.
type how struct {
	at      time.Time // zero: now
	noLog   bool      // no Rekor entry
	noTSA   bool      // no RFC 3161 timestamp
	proof   bool      // the Rekor entry carries an inclusion proof and checkpoint
	fulcio  *fulcio   // another CA
	payload []byte    // sign this instead of what is stored (a tampered payload)
}

// signed is one keyless signature and its evidence.
type signed struct {
	cert  *x509.Certificate
	sig   []byte
	entry *protorekor.TransparencyLogEntry
	tsr   []byte
}

func (s *sigstore) sign(id ci, payload []byte, h how) signed {
	s.t.Helper()
	if h.at.IsZero() {
		h.at = time.Now().Add(-time.Minute)
	}
	f := s.fulcio
	if h.fulcio != nil {
		f = h.fulcio
	}
	if h.payload != nil {
		payload = h.payload
	}
	cert, key := f.leaf(s.t, id, h.at)
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		s.t.Fatal(err)
	}
	out := signed{cert: cert, sig: sig}
	if !h.noLog {
		body, _ := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": map[string]any{
			"data":      map[string]any{"hash": map[string]string{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}},
			"signature": map[string]any{"content": sig, "publicKey": map[string]any{"content": certPEM(cert)}}}})
		out.entry = s.logEntry("hashedrekord", body, h.at.Add(time.Minute), h.proof)
	}
	if !h.noTSA {
		if out.tsr, err = s.vs.TimestampResponse(sig); err != nil {
			s.t.Fatal(err)
		}
	}
	return out
}

// attest signs statement as a DSSE envelope (cosign attest, or cosign
// sign --new-bundle-format) and returns the envelope and its evidence.
func (s *sigstore) attest(id ci, statement []byte, h how) ([]byte, signed) {
	s.t.Helper()
	if h.at.IsZero() {
		h.at = time.Now().Add(-time.Minute)
	}
	cert, key := s.fulcio.leaf(s.t, id, h.at)
	const pt = oci.PayloadTypeInToto
	pae := "DSSEv1 " + strconv.Itoa(len(pt)) + " " + pt + " " + strconv.Itoa(len(statement)) + " " + string(statement)
	sum := sha256.Sum256([]byte(pae))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		s.t.Fatal(err)
	}
	de := &dsse.Envelope{PayloadType: pt, Payload: base64.StdEncoding.EncodeToString(statement),
		Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}}
	env, _ := json.Marshal(de)
	// The virtual Rekor writes the dsse entry body; logEntry adds the
	// evidence a bundle or annotation carries.
	te, err := s.vs.GenerateTlogEntry(cert, de, sig, h.at.Unix(), false)
	if err != nil {
		s.t.Fatal(err)
	}
	out := signed{cert: cert, sig: sig, entry: s.logEntry("dsse", te.TransparencyLogEntry().CanonicalizedBody, h.at.Add(time.Minute), h.proof)}
	if !h.noTSA {
		if out.tsr, err = s.vs.TimestampResponse(sig); err != nil {
			s.t.Fatal(err)
		}
	}
	return env, out
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// logEntry puts body in the virtual Rekor: its signed entry timestamp,
// and an inclusion proof with a signed checkpoint when proof is set.
func (s *sigstore) logEntry(kind string, body []byte, at time.Time, proof bool) *protorekor.TransparencyLogEntry {
	s.t.Helper()
	logID, err := s.vs.RekorLogID()
	if err != nil {
		s.t.Fatal(err)
	}
	rawID, _ := hex.DecodeString(logID)
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(body),
		IntegratedTime: at.Unix(), LogIndex: 0, LogID: logID})
	if err != nil {
		s.t.Fatal(err)
	}
	e := &protorekor.TransparencyLogEntry{LogIndex: 0, LogId: &protocommon.LogId{KeyId: rawID},
		KindVersion: &protorekor.KindVersion{Kind: kind, Version: "0.0.1"}, IntegratedTime: at.Unix(),
		InclusionPromise: &protorekor.InclusionPromise{SignedEntryTimestamp: set}, CanonicalizedBody: body}
	if proof {
		p, err := s.vs.GetInclusionProof(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rootHash, _ := hex.DecodeString(*p.RootHash)
		e.InclusionProof = &protorekor.InclusionProof{LogIndex: *p.LogIndex, RootHash: rootHash, TreeSize: *p.TreeSize,
			Hashes: [][]byte{}, Checkpoint: &protorekor.Checkpoint{Envelope: *p.Checkpoint}}
	}
	return e
}

// annotations are what cosign writes on a keyless layer.
func (sg signed) annotations(t testing.TB) map[string]string {
	t.Helper()
	a := map[string]string{oci.AnnotationCosignSignature: base64.StdEncoding.EncodeToString(sg.sig),
		oci.AnnotationCosignCertificate: string(certPEM(sg.cert))}
	if sg.entry != nil {
		b, _ := json.Marshal(map[string]any{"SignedEntryTimestamp": sg.entry.InclusionPromise.SignedEntryTimestamp,
			"Payload": map[string]any{"body": sg.entry.CanonicalizedBody, "integratedTime": sg.entry.IntegratedTime,
				"logIndex": sg.entry.LogIndex, "logID": hex.EncodeToString(sg.entry.LogId.KeyId)}})
		a[oci.AnnotationCosignBundle] = string(b)
	}
	if sg.tsr != nil {
		b, _ := json.Marshal(map[string]any{"SignedRFC3161Timestamp": sg.tsr})
		a[oci.AnnotationCosignTimestamp] = string(b)
	}
	return a
}

// bundleJSON is a sigstore bundle v0.3 of the signature: content is
// {"messageSignature":...} or {"dsseEnvelope":...}.
func (sg signed) bundleJSON(t testing.TB, content map[string]any) []byte {
	t.Helper()
	vm := map[string]any{"certificate": map[string]any{"rawBytes": sg.cert.Raw}}
	if sg.entry != nil {
		e, err := protojson.Marshal(sg.entry)
		if err != nil {
			t.Fatal(err)
		}
		vm["tlogEntries"] = []json.RawMessage{e}
	}
	if sg.tsr != nil {
		vm["timestampVerificationData"] = map[string]any{"rfc3161Timestamps": []map[string]any{{"signedTimestamp": sg.tsr}}}
	}
	b := map[string]any{"mediaType": oci.MediaTypeSigstoreBundle, "verificationMaterial": vm}
	for k, v := range content {
		b[k] = v
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// messageSig is a bundle's messageSignature over b.
func (sg signed) messageSig(b []byte) map[string]any {
	return map[string]any{"messageSignature": map[string]any{
		"messageDigest": map[string]string{"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(sha256Of(b))},
		"signature":     base64.StdEncoding.EncodeToString(sg.sig)}}
}

// keylessSigLayer is a simple-signing layer signed keyless.
func (e *env) keylessSigLayer(repo string, payload []byte, sg signed) desc {
	return e.layer(repo, oci.MediaTypeCosignSimpleSigning, payload, sg.annotations(e.t))
}

// bundleReferrer pushes a bundle v0.3 referrer of subject.
func (e *env) bundleReferrer(repo string, subject digest.Digest, raw []byte) digest.Digest {
	return e.pushManifest(repo, "", manifest{ArtifactType: oci.MediaTypeSigstoreBundle,
		Layers: []desc{e.layer(repo, oci.MediaTypeSigstoreBundle, raw, nil)}, Subject: e.subjectDesc(repo, subject)})
}

// manifestBytes returns the stored bytes of repo@d.
func (e *env) manifestBytes(repo string, d digest.Digest) []byte {
	e.t.Helper()
	m, err := e.reg.Manifest(e.t.Context(), repo, d.String())
	if err != nil {
		e.t.Fatal(err)
	}
	return m.Payload
}
