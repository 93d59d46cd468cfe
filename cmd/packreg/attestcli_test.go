package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/teststores"
	"github.com/packreg/packreg/registry"
)

// TestKeysAndVerifyCLI drives `packreg keys` and `packreg verify` against
// an attest API over a real registry: exit codes and what they print.
func TestKeysAndVerifyCLI(t *testing.T) {
	blobs, meta, dir := teststores.Open(t)
	svc := attest.New(meta, attest.WithConfig(attest.Config{Policies: []attest.Policy{
		{Repositories: []string{"strict/*"}, RequireSignature: true}}}))
	reg := registry.New(blobs, meta, svc.RegistryOptions()...)
	svc.Attach(reg, reg)
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	ctx := context.Background()
	t.Setenv("PACKREG_URL", srv.URL)

	run := func(want int, stdin string, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run2(ctx, args, strings.NewReader(stdin), &out, &errb); code != want {
			t.Fatalf("packreg %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	file := filepath.Join(dir, "cosign.pub")
	os.WriteFile(file, []byte(pub), 0o600)

	out := run(0, "", "keys", "add", "--name", "release", file)
	if !strings.Contains(out, "added ") || !strings.Contains(out, "ecdsa-p256") {
		t.Fatalf("keys add: %s", out)
	}
	id := strings.Fields(out)[1]
	run(1, pub, "keys", "add", "--name", "again", "-") // the same key twice: CONFLICT
	run(2, "", "keys", "add", file)                    // no --name
	k2, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der2, _ := x509.MarshalPKIXPublicKey(&k2.PublicKey)
	bundlePub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der2}))
	if out := run(0, bundlePub, "keys", "add", "--name", "site-a", "--usage", "bundles", "-"); !strings.Contains(out, "for bundles") {
		t.Fatalf("keys add --usage bundles: %s", out)
	}
	run(1, bundlePub, "keys", "add", "--name", "bogus", "--usage", "everything", "-") // refused by the server: INVALID
	if out := run(0, "", "keys", "list"); !strings.Contains(out, id) || !strings.Contains(out, "active") ||
		!strings.Contains(out, " signatures ") || !strings.Contains(out, " bundles ") {
		t.Fatalf("keys list: %s", out)
	}
	if out := run(0, "", "keys", "retire", id); !strings.HasPrefix(out, "retired "+id) {
		t.Fatalf("keys retire: %s", out)
	}
	run(0, "", "keys", "signed", id)
	run(2, "", "keys", "bogus")

	// A plain manifest tagged 1.0.0 in a strict and in an open repository.
	for _, repo := range []string{"strict/app", "open/app"} {
		cfg := []byte("{}")
		d := "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" // of "{}"
		if err := reg.PushBlob(ctx, repo, digest.Digest(d), bytes.NewReader(cfg)); err != nil {
			t.Fatal(err)
		}
		m := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + d + `","size":2},"layers":[]}`
		if _, err := reg.PushManifest(ctx, repo, "1.0.0", "application/vnd.oci.image.manifest.v1+json", []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if out := run(1, "", "verify", "strict/app:1.0.0"); !strings.Contains(out, "verification: unsigned") || !strings.Contains(out, "NOT satisfied") {
		t.Fatalf("verify strict: %s", out)
	}
	if out := run(0, "", "verify", "open/app:1.0.0"); !strings.Contains(out, "permissive") {
		t.Fatalf("verify open: %s", out)
	}
	run(3, "", "verify", "open/app:9.9.9")
	run(2, "", "verify", "open/app")
	if out := run(0, "", "verify", "--json", "--cached", "open/app:1.0.0"); !strings.Contains(out, `"verification": "unsigned"`) {
		t.Fatalf("verify --json: %s", out)
	}
}

// run2 is run with a chosen stdin.
func run2(ctx context.Context, args []string, stdin *strings.Reader, stdout, stderr *bytes.Buffer) int {
	switch args[0] {
	case "keys":
		return runKeys(ctx, args[1:], stdin, stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], stdout, stderr)
	}
	return run(ctx, args, stdout, stderr)
}

// packreg verify names the signer of a keyless signature: who, from what
// source, when, proven how, verified by which root.
func TestVerifyPrintsKeylessSigners(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rep := &attest.Report{Repository: "acme/rules", Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)), Verification: attest.Verified,
		Signatures: []attest.Finding{{Kind: attest.KindSignature, Status: "verified", Format: attest.FormatBundle, Algorithm: "ecdsa-p256",
			Identity: &attest.Signer{Issuer: "https://token.actions.githubusercontent.com",
				Subject:             "https://github.com/acme/rules/.github/workflows/release.yml@refs/tags/v1.2.0",
				SourceRepositoryURI: "https://github.com/acme/rules", SourceRepositoryRef: "refs/tags/v1.2.0", BuildTrigger: "push",
				SignedAt: &at, TimeSource: attest.TimeFromLog, TrustedRoot: "public-good"}}},
		Policy: attest.PolicyResult{Matched: true, Satisfied: true}}
	var b bytes.Buffer
	printReport(&b, "acme/rules", "1.2.0", rep)
	for _, want := range []string{"keyless #1", "keyless signers:", "#1 https://github.com/acme/rules/.github/workflows/release.yml@refs/tags/v1.2.0",
		"issuer https://token.actions.githubusercontent.com", "source https://github.com/acme/rules refs/tags/v1.2.0",
		"trigger push", "signed 2026-11-30T12:00:00Z (transparency-log), trusted root public-good"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("no %q in:\n%s", want, b.String())
		}
	}
}
