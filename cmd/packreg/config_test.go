package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/auth"
	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/mirror"
	"github.com/packreg/packreg/retention"
)

// parse runs the serve flag parser over args, with an optional config file.
func parse(t *testing.T, file string, args ...string) (Config, error) {
	t.Helper()
	if file != "" {
		p := filepath.Join(t.TempDir(), "packreg.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", p}, args...)
	}
	var out bytes.Buffer
	return newConfigFlags("test", &out).config(args)
}

func TestDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := parse(t, "")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	data := filepath.Join(wd, "packreg-data")
	want := DefaultConfig()
	want.Data = data
	want.Storage = "file://" + filepath.ToSlash(data)
	want.Database = "sqlite://" + filepath.ToSlash(filepath.Join(data, "packreg.db"))
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if c.Addr != "127.0.0.1:5000" || !c.Registry.DeleteEnabled || c.Registry.UploadTTL != 24*time.Hour {
		t.Fatalf("unexpected defaults %+v", c)
	}
	su, err := ParseStorageURL(c.Storage)
	if err != nil || su.Kind != "file" || su.Path != data {
		t.Fatalf("storage %q -> %+v, %v", c.Storage, su, err)
	}
	du, err := ParseDatabaseURL(c.Database)
	if err != nil || du.Kind != "sqlite" || du.Path != filepath.Join(data, "packreg.db") {
		t.Fatalf("database %q -> %+v, %v", c.Database, du, err)
	}
}

func TestFileDecoding(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		wantErr    string // substring; "" means success
		check      func(*testing.T, Config)
	}{
		{name: "empty file is all defaults", file: "", check: func(t *testing.T, c Config) {
			if c.Addr != "127.0.0.1:5000" {
				t.Errorf("addr %q", c.Addr)
			}
		}},
		{name: "comment only", file: "# nothing\n", check: func(t *testing.T, c Config) {
			if c.Log.Level != "info" {
				t.Errorf("level %q", c.Log.Level)
			}
		}},
		{name: "every key", file: `
addr: 127.0.0.1:6000
data: /srv/packreg
storage: s3://bucket/prefix?endpoint=http://127.0.0.1:7070&region=us-east-1
database: postgres://packreg:pw@127.0.0.1:5432/packreg?sslmode=disable
allow_anonymous: true
shutdown_timeout: 5s
startup_timeout: 20s
server: {hosts: [registry.example, 10.0.0.5]}
log: {level: debug, format: json}
registry:
  delete_enabled: false
  max_blob_size: 1048576
  upload_ttl: 1h30m
  max_page_size: 50
  janitor_interval: 10s
packs:
  policy:
    immutable_versions: false
    require_semver: false
    max_pack_size: 1000
    allowed_layer_media_types: [text/yaml, application/vnd.acme.*]
    allow_archived_pulls: true
  max_publish_size: 5000000
attest:
  queue_size: 64
  max_referrers_per_subject: 16
  max_records_per_subject: 100
  policies:
    - repositories: ["secure/*", "prod/**"]
      require_signature: true
      signing_window: 10m
      verify_before_visible: true
      required_attestations: [https://slsa.dev/provenance/v1]
      identities:
        - issuer: https://token.actions.githubusercontent.com
          subject_regexp: ^https://github.com/acme/.+/.github/workflows/release.yml@refs/tags/v.*$
          source_repository_uri: https://github.com/acme/rules
          source_repository_ref: refs/heads/main
          build_trigger: push
  trusted_roots:
    - {name: public-good, path: /etc/packreg/trusted_root.json}
mirrors:
  worker: false
  tick: 2s
  lease_ttl: 10s
  run_timeout: 1h
  remotes:
    - {name: eu, kind: mirror, url: "https://eu.example:5000", include: [acme/*], schedule: 15m,
       auth_realms: ["https://auth.example:8443"], credentials: {username: u, password: p}}
bundles: {source: site-a, max_import_size: 1000, max_import_entries: 10}
auth:
  htpasswd: /etc/packreg/htpasswd
  admins: [root]
  rules:
    - {repositories: ["acme/**"], users: [alice, "robot:ci"], actions: [pull, push, overwrite, delete, lifecycle]}
  anonymous: [pull]
  token: {key: /etc/packreg/token.pem, ttl: 10m, realm: "https://reg.example/token", service: reg.example}
  login: {max_failures: 5, window: 2m}
tls: {cert: /etc/packreg/cert.pem, key: /etc/packreg/key.pem}
insecure_http: true
metrics: {enabled: false}
tracing:
  endpoint: http://127.0.0.1:4318
  sample_ratio: 0.25
  headers: {x-api-key: k}
  service_name: packreg-eu
compliance:
  reevaluate_every: 1m
  snapshot_every: 15m
  rules:
    - name: provenance
      repositories: ["acme/**"]
      require_signature: true
      required_attestations: ["*"]
      max_age: 720h
      lifecycle: [active, deprecated]
      parity_mirrors: [eu]
gc: {grace: 2m, schedule: 24h}
scrub: {schedule: 168h, rate: 1048576}
retention:
  schedule: 6h
  rules:
    - repositories: ["acme/pinned/**"]
    - repositories: ["acme/**", "legacy"]
      keep_active: 3
      keep_active_action: archive
      deprecate_after: 720h
      archive_after: 2160h
      delete_archived_after: 4320h
      force: true
`, check: func(t *testing.T, c Config) {
			want := Config{
				Addr: "127.0.0.1:6000", Data: "/srv/packreg",
				Storage:         "s3://bucket/prefix?endpoint=http://127.0.0.1:7070&region=us-east-1",
				Database:        "postgres://packreg:pw@127.0.0.1:5432/packreg?sslmode=disable",
				AllowAnonymous:  true,
				ShutdownTimeout: 5 * time.Second,
				StartupTimeout:  20 * time.Second,
				Server:          ServerConfig{Hosts: []string{"registry.example", "10.0.0.5"}},
				Log:             LogConfig{Level: "debug", Format: "json"},
				Registry:        RegistryConfig{MaxBlobSize: 1 << 20, UploadTTL: 90 * time.Minute, MaxPageSize: 50, JanitorInterval: 10 * time.Second},
				Packs: PacksConfig{MaxPublishSize: 5000000, Policy: PolicyConfig{MaxPackSize: 1000, AllowArchivedPulls: true,
					AllowedLayerMediaTypes: []string{"text/yaml", "application/vnd.acme.*"}}},
				Attest: attest.Config{QueueSize: 64, MaxReferrersPerSubject: 16, MaxRecordsPerSubject: 100, Policies: []attest.Policy{{
					Repositories: []string{"secure/*", "prod/**"}, RequireSignature: true, SigningWindow: 10 * time.Minute,
					VerifyBeforeVisible: true, RequiredAttestations: []string{"https://slsa.dev/provenance/v1"},
					Identities: []attest.Identity{{Issuer: "https://token.actions.githubusercontent.com",
						SubjectRegexp:       "^https://github.com/acme/.+/.github/workflows/release.yml@refs/tags/v.*$",
						SourceRepositoryURI: "https://github.com/acme/rules", SourceRepositoryRef: "refs/heads/main", BuildTrigger: "push"}}}},
					TrustedRoots: []attest.RootConfig{{Name: "public-good", Path: "/etc/packreg/trusted_root.json"}}},
				Mirrors: MirrorsConfig{Tick: 2 * time.Second, LeaseTTL: 10 * time.Second, RunTimeout: time.Hour, Remotes: []mirror.Settings{{
					Name: "eu", Kind: "mirror", URL: "https://eu.example:5000", Include: []string{"acme/*"},
					Schedule: mirror.Duration(15 * time.Minute), AuthRealms: []string{"https://auth.example:8443"},
					Credentials: &mirror.Credentials{Username: "u", Password: "p"}}}},
				Bundles: BundlesConfig{Source: "site-a", MaxImportSize: 1000, MaxImportEntries: 10},
				Auth: AuthConfig{
					Config: auth.Config{Htpasswd: "/etc/packreg/htpasswd", Admins: []string{"root"}, Anonymous: []string{"pull"},
						Rules: []auth.Rule{{Repositories: []string{"acme/**"}, Users: []string{"alice", "robot:ci"},
							Actions: []string{"pull", "push", "overwrite", "delete", "lifecycle"}}}},
					Token: TokenConfig{Key: "/etc/packreg/token.pem", TTL: 10 * time.Minute, Realm: "https://reg.example/token", Service: "reg.example"},
					Login: LoginConfig{MaxFailures: 5, Window: 2 * time.Minute},
				},
				TLS:          TLSConfig{Cert: "/etc/packreg/cert.pem", Key: "/etc/packreg/key.pem"},
				InsecureHTTP: true,
				Tracing: TracingConfig{Endpoint: "http://127.0.0.1:4318", SampleRatio: 0.25,
					Headers: map[string]string{"x-api-key": "k"}, ServiceName: "packreg-eu"},
				Compliance: compliance.Config{ReevaluateEvery: time.Minute, SnapshotEvery: 15 * time.Minute, Rules: []compliance.Rule{{
					Name: "provenance", Repositories: []string{"acme/**"}, RequireSignature: true, RequiredAttestations: []string{"*"},
					MaxAge: compliance.Duration(720 * time.Hour), Lifecycle: []string{"active", "deprecated"}, ParityMirrors: []string{"eu"}}}},
				GC:    GCConfig{Grace: 2 * time.Minute, Schedule: 24 * time.Hour},
				Scrub: ScrubConfig{Schedule: 168 * time.Hour, Rate: 1 << 20},
				Retention: retention.Config{Schedule: 6 * time.Hour, Rules: []retention.Rule{{Repositories: []string{"acme/pinned/**"}},
					{Repositories: []string{"acme/**", "legacy"}, KeepActive: ptr(3), KeepActiveAction: "archive",
						DeprecateAfter: ptr(720 * time.Hour), ArchiveAfter: ptr(2160 * time.Hour), DeleteArchivedAfter: ptr(4320 * time.Hour),
						Force: true}}},
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("\n got %+v\nwant %+v", c, want)
			}
		}},
		{name: "partial nested keeps other defaults", file: "log:\n  format: json\n", check: func(t *testing.T, c Config) {
			if c.Log.Format != "json" || c.Log.Level != "info" {
				t.Errorf("log %+v", c.Log)
			}
		}},
		{name: "unknown top-level key", file: "adress: 127.0.0.1:5000\n", wantErr: "field adress not found"},
		{name: "unknown nested key", file: "log:\n  colour: true\n", wantErr: "field colour not found"},
		{name: "unknown registry key", file: "registry:\n  deletes: true\n", wantErr: "field deletes not found"},
		{name: "wrong type", file: "allow_anonymous: maybe\n", wantErr: "cannot unmarshal"},
		{name: "bad duration", file: "registry:\n  upload_ttl: 5 parsecs\n", wantErr: "into time.Duration"},
		{name: "two documents", file: "addr: 127.0.0.1:1\n---\naddr: 127.0.0.1:2\n", wantErr: "more than one YAML document"},
		{name: "not a mapping", file: "- a\n- b\n", wantErr: "cannot unmarshal"},
		{name: "zero ttl", file: "registry: {upload_ttl: 0s}\n", wantErr: "upload_ttl must be positive"},
		{name: "negative blob size", file: "registry: {max_blob_size: -1}\n", wantErr: "max_blob_size"},
		{name: "bad attest pattern", file: "attest: {policies: [{repositories: [\"a/**/b\"], require_signature: true}]}\n", wantErr: "attest.policies[0]"},
		{name: "unknown attest key", file: "attest: {policies: [{repositories: [a], require_signatures: true}]}\n", wantErr: "field require_signatures not found"},
		{name: "identity without a subject", file: "attest: {policies: [{repositories: [a], identities: [{issuer: https://x}]}]}\n",
			wantErr: "attest.policies[0].identities[0]: an identity needs subject or subject_regexp"},
		{name: "identity with a bad regexp", file: "attest: {policies: [{repositories: [a], identities: [{issuer: https://x, subject_regexp: \"(\"}]}]}\n",
			wantErr: "subject_regexp: error parsing regexp"},
		{name: "unknown identity key", file: "attest: {policies: [{repositories: [a], identities: [{issuer: x, subject: y, source_repo: z}]}]}\n",
			wantErr: "field source_repo not found"},
		{name: "trusted root twice", file: "attest: {trusted_roots: [{name: a, path: /x}, {name: a, path: /y}]}\n", wantErr: `attest.trusted_roots[1]: name "a" twice`},
		{name: "trusted root without path", file: "attest: {trusted_roots: [{name: a}]}\n", wantErr: "attest.trusted_roots[0]: no path"},
		{name: "zero page size", file: "registry: {max_page_size: 0}\n", wantErr: "registry.max_page_size must be between 1 and 100000, got 0"},
		{name: "page size over the cap", file: "registry: {max_page_size: 100001}\n", wantErr: "registry.max_page_size must be between 1 and 100000, got 100001"},
		{name: "zero janitor interval", file: "registry: {janitor_interval: 0s}\n", wantErr: "janitor_interval"},
		{name: "gc grace below a second", file: "gc: {grace: 10ms}\n", wantErr: "gc: grace"},
		{name: "negative gc schedule", file: "gc: {schedule: -1h}\n", wantErr: "gc: grace"},
		{name: "zero scrub rate", file: "scrub: {rate: 0}\n", wantErr: "scrub:"},
		{name: "bad retention pattern", file: "retention: {rules: [{repositories: [\"a/**/b\"], keep_active: 1}]}\n", wantErr: `retention.rules[0]: repositories: pattern "a/**/b"`},
		{name: "negative keep_active", file: "retention: {rules: [{repositories: [a], keep_active: -1}]}\n", wantErr: "retention.rules[0]: keep_active: 0 or more"},
		{name: "zero retention duration", file: "retention: {rules: [{repositories: [a], archive_after: 0s}]}\n", wantErr: "retention.rules[0]: archive_after: a positive duration"},
		{name: "negative retention duration", file: "retention: {rules: [{repositories: [a], delete_archived_after: -24h}]}\n", wantErr: "delete_archived_after: a positive duration"},
		{name: "unknown retention key", file: "retention: {rules: [{repositories: [a], keep: 1}]}\n", wantErr: "field keep not found"},
		{name: "negative retention schedule", file: "retention: {schedule: -1h}\n", wantErr: "retention.schedule"},
		{name: "bad log level", file: "log: {level: loud}\n", wantErr: "log.level"},
		{name: "bad log format", file: "log: {format: xml}\n", wantErr: "log.format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(t, tc.file, "--data", t.TempDir())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				// --data was given on the command line; the file's data
				// key (when present) is overridden, which "every key"
				// does not care about.
				if strings.Contains(tc.file, "data: /srv/packreg") {
					c.Data = "/srv/packreg"
				}
				tc.check(t, c)
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	_, err := newConfigFlags("test", &bytes.Buffer{}).config([]string{"--config", filepath.Join(t.TempDir(), "nope.yaml")})
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	dir := t.TempDir()
	file := `
addr: 127.0.0.1:6000
data: ` + dir + `/from-file
log: {level: debug}
allow_anonymous: true
`
	// Flags set override; flags not set leave the file's values alone.
	c, err := parse(t, file, "--addr", "127.0.0.1:7000", "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7000" {
		t.Errorf("addr %q: flag should win", c.Addr)
	}
	if c.Data != dir+"/from-file" {
		t.Errorf("data %q: file value should stay", c.Data)
	}
	if c.Log.Level != "debug" || c.Log.Format != "json" {
		t.Errorf("log %+v", c.Log)
	}
	if !c.AllowAnonymous {
		t.Error("allow_anonymous from file lost")
	}
	// An explicit --flag=false overrides a true in the file.
	c, err = parse(t, file, "--allow-anonymous=false")
	if err != nil {
		t.Fatal(err)
	}
	if c.AllowAnonymous {
		t.Error("--allow-anonymous=false should override the file")
	}

	// --data moves the derived stores; explicit --storage/--database win.
	c, err = parse(t, "", "--data", dir+"/d", "--database", "postgres://u@127.0.0.1/db")
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage != "file://"+dir+"/d" || c.Database != "postgres://u@127.0.0.1/db" {
		t.Errorf("storage %q database %q", c.Storage, c.Database)
	}
	// Explicit stores still need the data dir: it holds the publish spool.
	_, err = parse(t, "", "--storage", "file://"+dir+"/b", "--database", "sqlite://"+dir+"/m.db", "--data", "")
	if err == nil || !strings.Contains(err.Error(), "spool") {
		t.Fatalf("empty data dir with explicit stores: %v", err)
	}
	t.Chdir(dir)
	c, err = parse(t, "", "--storage", "file://"+dir+"/b", "--database", "sqlite://"+dir+"/m.db", "--data", "rel")
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != filepath.Join(dir, "rel") {
		t.Errorf("data %q, want it absolute", c.Data)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--nope"},
		{"--shutdown-timeout", "soon"},
		{"extra-arg"},
	} {
		if _, err := parse(t, "", args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestListenAddress(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		anon  bool
		valid bool
	}{
		{"127.0.0.1:5000", false, true},
		{"127.0.0.2:5000", false, true},
		{"[::1]:5000", false, true},
		{"localhost:5000", false, true},
		{"127.0.0.1:0", false, true},
		{"0.0.0.0:5000", false, false},
		{":5000", false, false},
		{"[::]:5000", false, false},
		{"10.1.2.3:5000", false, false},
		{"registry.example.com:5000", false, false},
		{"0.0.0.0:5000", true, true},
		{":5000", true, true},
		{"127.0.0.1", false, false},
		{"127.0.0.1:99999", false, false},
		{"127.0.0.1:http", false, false},
	} {
		args := []string{"--addr", tc.addr, "--data", t.TempDir()}
		if tc.anon {
			args = append(args, "--allow-anonymous")
		}
		_, err := parse(t, "", args...)
		if (err == nil) != tc.valid {
			t.Errorf("addr %q anon=%v: err = %v, want valid=%v", tc.addr, tc.anon, err, tc.valid)
		}
		if !tc.valid && !tc.anon && err != nil && strings.Contains(tc.addr, "5000") && tc.addr != "127.0.0.1:99999" &&
			!strings.Contains(err.Error(), "--allow-anonymous") {
			t.Errorf("addr %q: message should tell about --allow-anonymous: %v", tc.addr, err)
		}
	}
}

func TestBadURLs(t *testing.T) {
	for _, tc := range []struct {
		flag, url, wantErr string
	}{
		{"--storage", "ftp://host/x", "unsupported scheme"},
		{"--storage", "file://otherhost/x", "host \"otherhost\" is not allowed"},
		{"--storage", "file:///", "no path"},
		{"--storage", "file:///x?sync=0", "query parameters"},
		{"--storage", "s3:///prefix", "no bucket"},
		{"--storage", "/just/a/path", "no scheme"},
		{"--storage", "s3://bu cket", "not a URL"},
		{"--storage", "s3://bucket/p?endpont=http://127.0.0.1:7070", "unknown parameter"},
		{"--storage", "s3://Bad_Bucket/p", "bucket"},
		{"--database", "mysql://u:p@h/db", "unsupported scheme"},
		{"--database", "postgres:///db", "no host"},
		{"--database", "sqlite://host/db", "not allowed"},
		{"--database", "%zz", "not a URL"},
	} {
		_, err := parse(t, "", "--data", t.TempDir(), tc.flag, tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s %q: err = %v, want %q", tc.flag, tc.url, err, tc.wantErr)
		}
	}
	// Errors must not echo a password.
	_, err := parse(t, "", "--database", "mysql://u:hunter2@h/db", "--data", t.TempDir())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	_, err = parse(t, "", "--database", "postgres://u:hunter2@[::1/db", "--data", t.TempDir())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}

	// Good forms.
	for _, tc := range []struct{ flag, url string }{
		{"--storage", "file:///var/lib/packreg/blobs"},
		{"--storage", "file:relative/blobs"},
		{"--storage", "s3://bucket"},
		{"--storage", "s3://bucket/some/prefix?endpoint=http://127.0.0.1:7070&region=us-east-1"},
		{"--database", "sqlite:///var/lib/packreg/packreg.db"},
		{"--database", "sqlite:packreg.db"},
		{"--database", "postgres://u:p@127.0.0.1:5432/packreg?sslmode=disable"},
		{"--database", "postgresql://127.0.0.1/packreg"},
	} {
		if _, err := parse(t, "", "--data", t.TempDir(), tc.flag, tc.url); err != nil {
			t.Errorf("%s %q: %v", tc.flag, tc.url, err)
		}
	}
	if su, _ := ParseStorageURL("file:relative/blobs"); su.Path != "relative/blobs" {
		t.Errorf("relative file path %q", su.Path)
	}
}

func TestRedaction(t *testing.T) {
	c, err := parse(t, "", "--data", t.TempDir(),
		"--database", "postgres://packreg:hunter2@127.0.0.1:5432/packreg?sslmode=disable&password=hunter3",
		"--storage", "s3://bucket/p?endpoint=http://127.0.0.1:7070&region=us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, secret := range []string{"hunter2", "hunter3"} {
		if strings.Contains(out, secret) {
			t.Errorf("config print leaks %q:\n%s", secret, out)
		}
	}
	for _, keep := range []string{"packreg:xxxxx@127.0.0.1:5432", "sslmode=disable", "region=us-east-1"} {
		if !strings.Contains(out, keep) {
			t.Errorf("config print lost %q:\n%s", keep, out)
		}
	}
	// Redaction must not touch the config in use.
	if !strings.Contains(c.Database, "hunter2") {
		t.Error("Redacted modified the original")
	}
	// The exporter's headers (an API key) are secrets too.
	c.Tracing.Endpoint = "https://otel.example:4318"
	c.Tracing.Headers = map[string]string{"x-api-key": "hunter4"}
	if b, err = c.YAML(); err != nil || strings.Contains(string(b), "hunter4") ||
		!strings.Contains(string(b), "x-api-key: xxxxx") || c.Tracing.Headers["x-api-key"] != "hunter4" {
		t.Errorf("tracing headers in config print (err %v):\n%s", err, b)
	}
	for in, want := range map[string]string{
		"":                              "",
		"sqlite:///x/y.db":              "sqlite:///x/y.db",
		"postgres://u@h/db":             "postgres://u@h/db",
		"postgres://u:@h/db":            "postgres://u:xxxxx@h/db",
		"postgres://u:p%40ss@h/db":      "postgres://u:xxxxx@h/db",
		"postgres://u:p@[::1/db":        "xxxxx",
		"s3://b/p?session_token=abc&x=": "s3://b/p?session_token=xxxxx&x=",
		"s3://b/p?region=r&secret_access_key=k&access_key_id=AKID": "s3://b/p?access_key_id=AKID&region=r&secret_access_key=xxxxx",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// The printed config is itself a valid config file that decodes (strictly)
// to the same configuration.
func TestPrintRoundTrip(t *testing.T) {
	c, err := parse(t, "registry: {upload_ttl: 90m, max_page_size: 7}\nshutdown_timeout: 3s\n"+
		"retention: {rules: [{repositories: [\"**\"], keep_active: 0, archive_after: 48h}]}\n", "--data", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "upload_ttl: 1h30m0s") {
		t.Errorf("durations should print as text:\n%s", b)
	}
	back := Config{}
	if err := decodeConfig(bytes.NewReader(b), &back); err != nil {
		t.Fatalf("printed config does not decode: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, c)
	}
}

func TestRunCommands(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{args: nil, code: 2, inStderr: "Usage"},
		{args: []string{"help"}, code: 0, inStdout: "packreg serve"},
		{args: []string{"version"}, code: 0, inStdout: "packreg "},
		{args: []string{"bogus"}, code: 2, inStderr: `unknown command "bogus"`},
		{args: []string{"config"}, code: 2, inStderr: "config print"},
		{args: []string{"config", "print", "--data", dir, "--database", "postgres://u:hunter2@127.0.0.1/db"},
			code: 0, inStdout: "database: postgres://u:xxxxx@127.0.0.1/db"},
		{args: []string{"config", "print", "--addr", "0.0.0.0:5000", "--data", dir}, code: 2, inStderr: "--allow-anonymous"},
		{args: []string{"serve", "--addr", "0.0.0.0:5000", "--data", dir}, code: 2, inStderr: "--allow-anonymous"},
		{args: []string{"serve", "--bogus"}, code: 2, inStderr: "flag provided but not defined"},
		{args: []string{"serve", "-h"}, code: 0, inStderr: "-allow-anonymous"},
		// -h is help, not a usage error, on every client command too.
		{args: []string{"parity", "-h"}, code: 0, inStderr: "packreg parity [flags]"},
		{args: []string{"mirror", "add", "-h"}, code: 0, inStderr: "packreg mirror add"},
		{args: []string{"mirror", "list", "-h"}, code: 0, inStderr: "packreg mirror list"},
		{args: []string{"mirror", "sync", "-h"}, code: 0, inStderr: "packreg mirror sync"},
		{args: []string{"mirror", "status", "--help"}, code: 0, inStderr: "packreg mirror status"},
		{args: []string{"parity", "extra"}, code: 2, inStderr: "parity takes flags only"},
		// Flags after the version, as pack publish takes them: the server is asked.
		{args: []string{"verify", "acme/rules:1.0.0", "--json", "--server", "http://127.0.0.1:1"}, code: 3, inStderr: "packreg verify:"},
		// The server refuses an unknown status with 400; the CLI says so before asking.
		{args: []string{"parity", "--status", "insync", "--server", "http://127.0.0.1:1"}, code: 2, inStderr: `--status "insync"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.inStdout) || !strings.Contains(stderr.String(), tc.inStderr) {
			t.Errorf("run %q = %d, want %d\nstdout: %s\nstderr: %s", tc.args, code, tc.code, stdout.String(), stderr.String())
		}
		if strings.Contains(stdout.String()+stderr.String(), "hunter2") {
			t.Errorf("run %q leaks a password", tc.args)
		}
	}
}

func TestServerHosts(t *testing.T) {
	for _, h := range []string{"http://registry.example", "registry.example:5000", "*.example", "", "a..b", "-a.example",
		"a_b.example", "registry.example/", strings.Repeat("a", 64) + ".example"} {
		_, err := parse(t, "server: {hosts: ['"+h+"']}\n", "--data", t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "server.hosts") {
			t.Errorf("server.hosts %q: err = %v", h, err)
		}
	}
	c, err := parse(t, "server: {hosts: [registry.example, 10.0.0.1, '::1', Registry.Example.]}\n", "--data", t.TempDir())
	if err == nil {
		t.Fatalf("a trailing dot is not a configured name: %+v", c.Server)
	}
	c, err = parse(t, "server: {hosts: [registry.example, 10.0.0.1, '::1', Registry-2.Example]}\n", "--data", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := newEdgeSettings(c)
	if !e.checkHost || !e.hostAllowed("registry-2.example:443") || !e.hostAllowed("[::1]:1") || e.hostAllowed("registry.example.evil") {
		t.Errorf("edge settings %+v", e)
	}
}

func ptr[T any](v T) *T { return &v }
