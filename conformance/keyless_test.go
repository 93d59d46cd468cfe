package conformance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// TestKeylessCosign: the real cosign signs keyless as a CI job's
// identity would, in a private Sigstore that runs here, offline: a
// Fulcio CA whose certificate carries the job's workflow URI, OIDC issuer
// and source repository, and an RFC 3161 timestamp authority on loopback
// that proves when cosign signed. packreg, given that deployment's
// trusted_root.json and an identity policy, verifies the release
// workflow's signature (tag schema, OCI 1.1 and bundle), shows who signed on the
// API and in packreg verify, refuses another identity's version on pull,
// and lists the root.
func TestKeylessCosign(t *testing.T) {
	cosign := needTool(t, "cosign")
	crane := needTool(t, "crane")
	oras := needTool(t, "oras")
	pki := newPrivateSigstore(t)
	tl := newTool(t, "COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_ROOT="+t.TempDir())
	tl.write("trusted_root.json", pki.trustedRoot(t))
	tl.write("chain.pem", append(pemCert(pki.inter), pemCert(pki.root)...))
	const release = "https://github.com/acme/rules/.github/workflows/release.yml@refs/tags/v1.0.0"
	const fork = "https://github.com/mallory/rules/.github/workflows/release.yml@refs/heads/main"
	for name, subject := range map[string]string{"release": release, "fork": fork} {
		cert, key := pki.issue(t, subject, "https://github.com/"+strings.Split(subject, "/")[3]+"/rules")
		tl.write(name+".crt", pemCert(cert))
		writePKCS8(t, tl.path(name+".pem"), key)
		tl.run(cosign, "import-key-pair", "--key", name+".pem", "--output-key-prefix", name)
	}
	cfg := tl.write("packreg.yaml", []byte(`attest:
  trusted_roots:
    - {name: private-ci, path: `+tl.path("trusted_root.json")+`}
  policies:
    - repositories: ["keyless/*"]
      require_signature: true
      signing_window: 10m
      identities:
        - issuer: https://token.actions.githubusercontent.com
          subject_regexp: ^https://github\.com/acme/rules/\.github/workflows/release\.yml@refs/tags/v
          source_repository_uri: https://github.com/acme/rules
`))
	s := startServer(t, "--config", cfg)
	s.dumpLogOnFailure()
	tl.env = append(tl.env, "PACKREG_URL="+s.URL)
	a := &attestRun{t: t, s: s, c: newClient(t, s.URL), cosign: cosign, oras: oras, tl: tl}
	sign := func(who, ref string, extra ...string) {
		args := append([]string{"sign", "--key", who + ".key", "--certificate", who + ".crt", "--certificate-chain", "chain.pem",
			"--tlog-upload=false", "--timestamp-server-url", pki.tsa.URL, "-y"}, extra...)
		tl.runEnv([]string{"COSIGN_EXPERIMENTAL=1"}, cosign, append(args, ref)...)
	}

	for _, c := range []struct {
		repo, format string
		extra        []string
	}{{"keyless/tag", "cosign-tag", nil}, {"keyless/oci11", "cosign-oci11", []string{"--registry-referrers-mode=oci-1-1"}},
		{"keyless/bundle", "sigstore-bundle", []string{"--new-bundle-format", "--use-signing-config=false"}}} {
		t.Run(c.format, func(t *testing.T) {
			ref, _ := a.pushPack(t, c.repo, "1.0.0")
			sign("release", ref, c.extra...)
			a.await(t, c.repo, "1.0.0", "verified", 1, 0)
			var rep struct {
				Signatures []struct {
					Format   string
					Identity struct {
						Issuer, Subject, SourceRepositoryURI, TimeSource, TrustedRoot string
						SignedAt                                                      time.Time
					} `json:"identity"`
				} `json:"signatures"`
			}
			a.c.apiJSON("GET", "/api/v1/packs/"+c.repo+"/versions/1.0.0/verification", nil, nil, http.StatusOK, &rep)
			id := rep.Signatures[0].Identity
			if rep.Signatures[0].Format != c.format || id.Subject != release || id.Issuer != "https://token.actions.githubusercontent.com" ||
				id.SourceRepositoryURI != "https://github.com/acme/rules" || id.TimeSource != "timestamp-authority" ||
				id.TrustedRoot != "private-ci" || time.Since(id.SignedAt) > time.Hour {
				t.Fatalf("finding: %+v", rep.Signatures[0])
			}
			a.verifyExit(t, c.repo+":1.0.0", 0, "keyless signers:\n  #1 "+release)
			tl.run(crane, "manifest", s.Addr+"/"+c.repo+":1.0.0")
		})
	}

	t.Run("another identity", func(t *testing.T) {
		ref, _ := a.pushPack(t, "keyless/fork", "1.0.0")
		sign("fork", ref)
		rep := a.await(t, "keyless/fork", "1.0.0", "untrusted", 1, 0)
		if !strings.Contains(rep.Signatures[0].Reason, "does not name") {
			t.Fatalf("finding: %+v", rep.Signatures[0])
		}
		a.verifyExit(t, "keyless/fork:1.0.0", 1, fork)
		if res, err := tl.try(nil, crane, "manifest", s.Addr+"/keyless/fork:1.0.0"); err == nil || !strings.Contains(res.Stderr, "DENIED") {
			t.Fatalf("pull of the fork's version: %v\n%s", err, res.Stderr)
		}
	})

	t.Run("trusted roots", func(t *testing.T) {
		var out struct {
			TrustedRoots []struct {
				Name, Source, Path      string
				CertificateAuthorities  int
				TimestampingAuthorities int
			} `json:"trustedRoots"`
		}
		a.c.apiJSON("GET", "/api/v1/trusted-roots", nil, nil, http.StatusOK, &out)
		if len(out.TrustedRoots) != 1 || out.TrustedRoots[0].Name != "private-ci" || out.TrustedRoots[0].Source != "config" ||
			out.TrustedRoots[0].CertificateAuthorities != 1 || out.TrustedRoots[0].TimestampingAuthorities != 1 {
			t.Fatalf("trusted roots: %+v", out)
		}
		a.c.apiJSON("DELETE", "/api/v1/trusted-roots/private-ci", nil, nil, http.StatusConflict, nil)
	})
}

// privateSigstore is a Fulcio CA and an RFC 3161 timestamp authority, made
// with sigstore-go's testing CA, the TSA serving on loopback.
type privateSigstore struct {
	root, inter *x509.Certificate
	interKey    crypto.Signer
	tsaChain    []*x509.Certificate // leaf, intermediate
	tsaRoot     *x509.Certificate
	tsa         *httptest.Server
}

func newPrivateSigstore(t *testing.T) *privateSigstore {
	t.Helper()
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	tsaInter, tsaInterKey, err := ca.GenerateTSAIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	tsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tsaLeaf, err := ca.GenerateTSALeafCert(time.Now().Add(-time.Minute), tsaKey, tsaInter, tsaInterKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &privateSigstore{root: rootCert, inter: inter, interKey: interKey, tsaChain: []*x509.Certificate{tsaLeaf, tsaInter}, tsaRoot: rootCert}
	p.tsa = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 64<<10))
		q, err := timestamp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ts := timestamp.Timestamp{HashAlgorithm: q.HashAlgorithm, HashedMessage: q.HashedMessage, Time: time.Now(),
			Nonce: q.Nonce, Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2}, AddTSACertificate: q.Certificates,
			ExtraExtensions: q.Extensions}
		resp, err := ts.CreateResponseWithOpts(tsaLeaf, tsaKey, crypto.SHA256)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.Write(resp)
	}))
	t.Cleanup(p.tsa.Close)
	return p
}

// issue is the certificate Fulcio gives a GitHub Actions job: its
// workflow URI as the subject, the OIDC issuer and source repository as
// Fulcio's extensions (1.3.6.1.4.1.57264.1.8 and .12), ten minutes long.
func (p *privateSigstore) issue(t *testing.T, subject, repo string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	san, _ := url.Parse(subject)
	ext := func(n int, v string) pkix.Extension {
		b, _ := asn1.MarshalWithParams(v, "utf8")
		return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, n}, Value: b}
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, URIs: []*url.URL{san},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(9 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{ext(8, "https://token.actions.githubusercontent.com"), ext(12, repo)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.inter, &key.PublicKey, p.interKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// trustedRoot is the deployment's trusted_root.json: the Fulcio CA and
// the timestamp authority, no logs.
func (p *privateSigstore) trustedRoot(t *testing.T) []byte {
	t.Helper()
	start, end := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: p.root, Intermediates: []*x509.Certificate{p.inter},
			ValidityPeriodStart: start, ValidityPeriodEnd: end, URI: "https://fulcio.ci.example"}},
		map[string]*root.TransparencyLog{},
		[]root.TimestampingAuthority{&root.SigstoreTimestampingAuthority{Root: p.tsaRoot, Intermediates: p.tsaChain[1:],
			Leaf: p.tsaChain[0], ValidityPeriodStart: start, ValidityPeriodEnd: end, URI: p.tsa.URL}},
		map[string]*root.TransparencyLog{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
