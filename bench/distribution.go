package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// distName is what the table calls the registry packreg is compared with.
const distName = "Distribution"

// findDistribution returns the path of CNCF Distribution's `registry`
// binary: the -distribution flag, else PATH, else where .ci/tools.sh
// installs it ($GOPATH/bin, /root/go/bin). Empty when it is nowhere: the
// side-by-side columns then say so instead of failing the run.
func findDistribution(flagPath string) string {
	if flagPath != "" {
		return flagPath
	}
	return findTool("registry")
}

// distVersion is what `registry --version` says (its module version), for
// the report's header: the columns are only as good as knowing which
// Distribution they measured.
func distVersion(ctx context.Context, binary string) string {
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return "version unknown: " + err.Error()
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return "version unknown"
	}
	return strings.Join(f[1:], " ")
}

// distStorage is the storage half of a Distribution config.
type distStorage struct {
	rootDir string // filesystem driver's root, for the disk backend
	// s3, for the S3 backend: the same versitygw bucket packreg uses, under
	// a prefix of the run's own.
	s3 *distS3
}

type distS3 struct {
	endpoint, region, bucket, prefix, accessKey, secretKey string
}

// distS3From reads the S3 location the way packreg's s3:// URL gives it
// (s3://bucket/prefix?endpoint=...&region=...) and the credentials from
// the AWS_* variables .ci/s3.sh exports. prefix is the run's own.
func distS3From(raw, prefix string) (*distS3, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	s := &distS3{
		endpoint: q.Get("endpoint"), region: q.Get("region"), bucket: u.Host, prefix: prefix,
		accessKey: os.Getenv("AWS_ACCESS_KEY_ID"), secretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	switch {
	case s.endpoint == "":
		return nil, errors.New("PACKREG_TEST_S3 has no endpoint=: Distribution needs regionendpoint")
	case s.accessKey == "" || s.secretKey == "":
		return nil, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set for Distribution's s3 driver")
	}
	return s, nil
}

// distConfig is Distribution's config.yml for one run. Quoted scalars
// (%q) keep paths and keys from being read as YAML syntax. Settings, and
// why:
//   - log level error: packreg logs at info by default but the figures
//     should not be Distribution's logger; its access log stays on, as
//     packreg's does;
//   - the in-memory blob descriptor cache: every deployment guide and the
//     project's own sample config turn it on, and without it every HEAD
//     reads the storage;
//   - delete enabled, so both servers do the same bookkeeping;
//   - on S3, redirect disabled: blobs go through the registry, as
//     packreg's do unless presign is on.
func distConfig(addr string, st distStorage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: error\n")
	fmt.Fprintf(&b, "http:\n  addr: %q\n", addr)
	fmt.Fprintf(&b, "storage:\n  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\n")
	if s := st.s3; s != nil {
		fmt.Fprintf(&b, "  redirect:\n    disable: true\n")
		fmt.Fprintf(&b, "  s3:\n    accesskey: %q\n    secretkey: %q\n    region: %q\n    regionendpoint: %q\n",
			s.accessKey, s.secretKey, s.region, s.endpoint)
		fmt.Fprintf(&b, "    forcepathstyle: true\n    secure: false\n    bucket: %q\n    rootdirectory: %q\n",
			s.bucket, "/"+strings.Trim(s.prefix, "/"))
	} else {
		fmt.Fprintf(&b, "  filesystem:\n    rootdirectory: %q\n", st.rootDir)
	}
	return b.String()
}

// startDistribution writes config.yml into dir and runs `registry serve`
// on a free loopback port.
func startDistribution(ctx context.Context, binary, dir string, st distStorage, logPath string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "config.yml")
	// 0600: on S3 it holds the secret key.
	if err := os.WriteFile(cfg, []byte(distConfig(addr, st)), 0o600); err != nil {
		return nil, err
	}
	return startProcess(ctx, binary, []string{"serve", cfg}, addr, logPath)
}
