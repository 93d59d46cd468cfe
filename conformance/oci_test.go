package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
)

// ociSwitches turns on every API and every data set of the suite
// (github.com/opencontainers/distribution-spec/conformance config.go), so
// nothing is left to the suite's per-version defaults, with one exception:
// OCI_DATA_SPARSE (off in the suite's defaults too) expects manifests whose
// layers or child manifests were never pushed to be accepted. The spec lets a
// registry refuse them, and packreg does (MANIFEST_BLOB_UNKNOWN): a tag must
// never point at content that cannot be pulled (registry's TestBadManifests
// pins that choice).
var ociSwitches = []string{
	"OCI_API_PING", "OCI_API_PULL", "OCI_API_PUSH",
	"OCI_API_BLOBS_ATOMIC", "OCI_API_BLOBS_DELETE", "OCI_API_BLOBS_DIGEST_HEADER",
	"OCI_API_BLOBS_MOUNT_ANONYMOUS", "OCI_API_BLOBS_UPLOAD_CANCEL",
	"OCI_API_MANIFESTS_ATOMIC", "OCI_API_MANIFESTS_DELETE", "OCI_API_MANIFESTS_DIGEST_HEADER",
	"OCI_API_MANIFESTS_TAG_PARAM",
	"OCI_API_TAGS_ATOMIC", "OCI_API_TAGS_DELETE", "OCI_API_TAGS_LIST",
	"OCI_API_REFERRER",
	"OCI_DATA_IMAGE", "OCI_DATA_INDEX", "OCI_DATA_INDEX_LIST",
	"OCI_DATA_ARTIFACT", "OCI_DATA_SUBJECT", "OCI_DATA_SUBJECT_MISSING",
	"OCI_DATA_ARTIFACT_LIST", "OCI_DATA_SUBJECT_LIST", "OCI_DATA_DATA_FIELD",
	"OCI_DATA_NONDISTRIBUTABLE", "OCI_DATA_CUSTOM_FIELDS", "OCI_DATA_NO_LAYERS",
	"OCI_DATA_EMPTY_BLOB", "OCI_DATA_SHA512",
}

// TestOCIConformance runs the OCI distribution-spec conformance suite
// against packreg on its embedded defaults (disk + SQLite), once for spec
// 1.1 and once for the development version.
func TestOCIConformance(t *testing.T) {
	bin := needTool(t, "conformance")
	for _, version := range []string{"1.1", "dev"} {
		t.Run(version, func(t *testing.T) {
			s := startServer(t)
			runOCIConformance(t, bin, s, "disk-sqlite-"+version, version, nil)
		})
	}
}

// TestOCIConformanceS3Postgres runs the same suite with packreg on S3 and
// PostgreSQL (.ci/run starts both and sets the variables).
func TestOCIConformanceS3Postgres(t *testing.T) {
	bin := needTool(t, "conformance")
	s3URL := needEnv(t, "PACKREG_TEST_S3")
	pgURL := needEnv(t, "PACKREG_TEST_POSTGRES")
	for _, version := range []string{"1.1", "dev"} {
		t.Run(version, func(t *testing.T) {
			s := startServer(t, "--storage", isolatedS3(t, s3URL), "--database", isolatedPostgres(t, pgURL))
			runOCIConformance(t, bin, s, "s3-postgres-"+version, version, nil)
		})
	}
}

// TestOCIConformanceAuth runs the suite with auth on (disk + SQLite, spec
// 1.1): no anonymous action, the suite logs in as an htpasswd user with
// every right on its repositories and none elsewhere (OCI_USERNAME and
// OCI_PASSWORD; it takes the Bearer token flow the 401 challenge offers).
// Only the mount without "from" may skip: with rights in play it is an
// ordinary upload (202, which the spec allows), since "the blob is
// somewhere in this registry" could be in a repository the caller cannot
// read.
func TestOCIConformanceAuth(t *testing.T) {
	bin := needTool(t, "conformance")
	a := startAuthServerWith(t, `
auth:
  htpasswd: %s
  rules:
    - {repositories: ["conformance/**"], users: [oci], actions: [pull, push, overwrite, delete]}
`, "oci")
	wantAnswer(t, "no credentials", a.call("", "GET", "/v2/conformance/repo1/tags/list", nil), 401, "UNAUTHORIZED")
	runOCIConformance(t, bin, a.server, "disk-sqlite-auth-1.1", "1.1",
		[]string{"OCI Conformance Test/sha256 blobs/mount anonymous/blob-mount-anonymous",
			"OCI Conformance Test/sha512 blobs/mount anonymous/blob-mount-anonymous"},
		"OCI_USERNAME=oci", "OCI_PASSWORD=oci-pw")
}

// junitSuites is the part of the suite's junit.xml the test reads.
type junitSuites struct {
	Tests    int `xml:"tests,attr"`
	Errors   int `xml:"errors,attr"`
	Failures int `xml:"failures,attr"`
	Skipped  int `xml:"skipped,attr"`
	Disabled int `xml:"disabled,attr"`
	Suites   []struct {
		Cases []struct {
			Name      string `xml:"name,attr"`
			Status    string `xml:"status,attr"` // passed, skipped, failure, error
			SystemOut string `xml:"system-out"`  // the suite's reason for the status
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// runOCIConformance runs the suite against s; every test must run and
// pass, but for the names in mayskip, which may be skipped.
func runOCIConformance(t *testing.T, bin string, s *server, name, version string, mayskip []string, extraEnv ...string) {
	t.Helper()
	s.dumpLogOnFailure()
	results, err := filepath.Abs(filepath.Join("results", name))
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(results)
	env := []string{
		"OCI_REGISTRY=" + s.Addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_CONFIGURATION=", // never load a stray oci-conformance.yaml
		"OCI_RESULTS_DIR=" + results,
		"OCI_VERSION=" + version,
		"OCI_LOG=warn",
	}
	for _, k := range ociSwitches {
		env = append(env, k+"=true")
	}
	env = append(env, extraEnv...)
	// Drop any OCI_* the caller's environment has, so the run is exactly this.
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCI_") {
			base = append(base, kv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append(base, env...)
	start := time.Now()
	out, runErr := cmd.CombinedOutput()
	os.WriteFile(filepath.Join(results, "output.txt"), out, 0o644)
	t.Logf("conformance %s (OCI_VERSION=%s) took %s, exit: %v; reports in %s", name, version, time.Since(start).Round(time.Second), errOrOK(runErr), results)

	raw, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("no junit.xml (%v); suite output:\n%s", err, clip(string(out)))
	}
	var ju junitSuites
	if err := xml.Unmarshal(raw, &ju); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	failed := ju.Failures + ju.Errors
	passed := ju.Tests - failed - ju.Skipped - ju.Disabled
	t.Logf("OCI conformance %s: %d passed, %d failed, %d skipped, %d disabled (of %d)",
		name, passed, failed, ju.Skipped, ju.Disabled, ju.Tests)
	var lines []string
	skipped := 0 // not in mayskip
	for _, su := range ju.Suites {
		for _, c := range su.Cases {
			if c.Status == "skipped" && !slices.Contains(mayskip, c.Name) {
				skipped++
			}
			switch c.Status {
			case "passed":
			case "failure", "error":
				lines = append(lines, fmt.Sprintf("%-7s %s: %s", c.Status, c.Name, firstLine(c.SystemOut)))
			default:
				lines = append(lines, fmt.Sprintf("%-7s %s", c.Status, c.Name))
			}
		}
	}
	if len(lines) > 0 {
		t.Logf("not passed:\n  %s", strings.Join(lines, "\n  "))
	}
	if failed > 0 {
		t.Errorf("OCI conformance %s: %d failed; see %s/report.html", name, failed, results)
	}
	if skipped > 0 || ju.Disabled > 0 {
		t.Errorf("OCI conformance %s: %d skipped (%d allowed) and %d disabled, want every test to run", name, ju.Skipped, ju.Skipped-skipped, ju.Disabled)
	}
	if passed == 0 {
		t.Errorf("OCI conformance %s: nothing passed:\n%s", name, clip(string(out)))
	}
	if runErr != nil && failed == 0 {
		t.Errorf("conformance exited with %v but reports no failure:\n%s", runErr, clip(string(out)))
	}
}

func firstLine(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			l, _, _ := strings.Cut(s, "\n")
			if len(l) > 300 {
				l = l[:300] + "..."
			}
			return l
		}
	}
	return ""
}

func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// isolatedS3 gives the test its own key prefix under the CI bucket, and
// deletes what is under it when the test ends.
func isolatedS3(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		t.Fatalf("PACKREG_TEST_S3 %q: want s3://bucket/prefix?...", base)
	}
	prefix := path.Join(strings.Trim(u.Path, "/"), randomName("conformance-"))
	u.Path = "/" + prefix
	bucket, q := u.Host, u.Query()
	t.Cleanup(func() {
		if err := deletePrefix(bucket, prefix+"/", q.Get("endpoint"), q.Get("region")); err != nil {
			t.Logf("cleaning s3://%s/%s: %v", bucket, prefix, err)
		}
	})
	return u.String()
}

// deletePrefix removes every object under prefix (credentials from the
// standard AWS environment, as the server uses).
func deletePrefix(bucket, prefix, endpoint, region string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := []func(*awsconfig.LoadOptions) error{}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return err
	}
	cl := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
				return err
			}
		}
	}
	return nil
}

// isolatedPostgres creates a fresh database for the test (dropped after it)
// on the PACKREG_TEST_POSTGRES server, so tests never see each other's rows.
func isolatedPostgres(t testing.TB, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to PACKREG_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(context.Background())
	name := randomName("packreg_conf_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
