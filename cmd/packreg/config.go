package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/packreg/packreg/attest"
	"github.com/packreg/packreg/compliance"
	"github.com/packreg/packreg/retention"
	"github.com/packreg/packreg/storage/s3"
)

// maxPageSizeCap is the largest registry.max_page_size accepted.
const maxPageSizeCap = 100000

// Config is everything `packreg serve` needs. It is built in three layers:
// DefaultConfig, then the YAML file given with --config (strictly decoded:
// an unknown key is an error), then the flags the user actually set. Resolve
// fills what is derived from other fields; Validate says whether the result
// can start.
type Config struct {
	// Addr is the HOST:PORT to listen on.
	Addr string `yaml:"addr"`
	// Data is the directory of the embedded defaults: the disk blob store
	// rooted at DATA (blobs in DATA/blobs, upload data in DATA/uploads) and
	// SQLite metadata at DATA/packreg.db; and, whatever the stores, of the
	// publish spool (DATA/spool).
	Data string `yaml:"data"`
	// Storage is the blob store URL: file:///path or
	// s3://bucket/prefix?endpoint=...&region=... Empty means file://DATA.
	Storage string `yaml:"storage"`
	// Database is the metadata store URL: sqlite:///path or postgres://...
	// Empty means sqlite://DATA/packreg.db.
	Database string `yaml:"database"`
	// AllowAnonymous permits listening on a non-loopback address without
	// authentication (anyone who can reach the port may pull, push and delete).
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// ShutdownTimeout bounds the graceful drain of in-flight requests on
	// SIGTERM/SIGINT; connections still open after it are closed.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// StartupTimeout bounds the start-up checks: both stores opened,
	// reachable and writable (startup.go), or serve exits.
	StartupTimeout time.Duration  `yaml:"startup_timeout"`
	Server         ServerConfig   `yaml:"server"`
	Log            LogConfig      `yaml:"log"`
	Registry       RegistryConfig `yaml:"registry"`
	Packs          PacksConfig    `yaml:"packs"`   // packs.go
	Attest         attest.Config  `yaml:"attest"`  // signature policies (attest.go)
	Mirrors        MirrorsConfig  `yaml:"mirrors"` // mirrors.go
	Bundles        BundlesConfig  `yaml:"bundles"` // bundles.go
	Auth           AuthConfig     `yaml:"auth"`    // authconfig.go
	TLS            TLSConfig      `yaml:"tls"`
	// InsecureHTTP accepts credentials over plain HTTP beyond loopback
	// (a TLS-terminating proxy in front).
	InsecureHTTP bool          `yaml:"insecure_http"`
	Metrics      MetricsConfig `yaml:"metrics"` // observe.go
	Tracing      TracingConfig `yaml:"tracing"` // observe.go
	// Compliance rules that report (compliance.go)
	Compliance compliance.Config `yaml:"compliance"`
	GC         GCConfig          `yaml:"gc"`    // gc.go
	Scrub      ScrubConfig       `yaml:"scrub"` // scrub.go
	// Retention rules for pack versions (retention.go)
	Retention retention.Config `yaml:"retention"`
	// Debug is pprof, off by default (debug.go)
	Debug DebugConfig `yaml:"debug"`
}

// ServerConfig is the `server:` section: the HTTP edge (edge.go).
type ServerConfig struct {
	// Hosts are the host names (no port) a request's Host may carry besides
	// localhost and loopback addresses while the server is anonymous on
	// loopback; any other Host is refused (DNS rebinding). Empty by default.
	Hosts []string `yaml:"hosts"`
}

// LogConfig selects the slog handler writing to stderr.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// RegistryConfig holds the OCI registry's own knobs.
type RegistryConfig struct {
	DeleteEnabled bool          `yaml:"delete_enabled"` // DELETE of blobs, manifests and tags
	MaxBlobSize   int64         `yaml:"max_blob_size"`  // bytes; 0 means no cap
	UploadTTL     time.Duration `yaml:"upload_ttl"`     // idle upload sessions expire after this
	MaxPageSize   int           `yaml:"max_page_size"`  // clamp for n on tags list and _catalog
	// JanitorInterval is how often idle upload sessions are looked for (one
	// replica at a time does it, under a lease).
	JanitorInterval time.Duration `yaml:"janitor_interval"`
}

// DefaultConfig is the embedded, loopback-only default.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:5000",
		Data:            "./packreg-data",
		ShutdownTimeout: 30 * time.Second,
		StartupTimeout:  time.Minute,
		// Empty, not nil: `config print` shows the key, and what it prints
		// decodes back to the same value.
		Server: ServerConfig{Hosts: []string{}},
		Log:    LogConfig{Level: "info", Format: "text"},
		Registry: RegistryConfig{
			DeleteEnabled:   true,
			UploadTTL:       24 * time.Hour,
			MaxPageSize:     1000,
			JanitorInterval: time.Minute,
		},
		Packs:      defaultPacksConfig(),
		Attest:     defaultAttestConfig(),
		Mirrors:    defaultMirrorsConfig(),
		Bundles:    defaultBundlesConfig(),
		Auth:       defaultAuthConfig(),
		Metrics:    MetricsConfig{Enabled: true},
		Tracing:    defaultTracingConfig(),
		Compliance: defaultComplianceConfig(),
		GC:         defaultGCConfig(),
		Scrub:      defaultScrubConfig(),
		Retention:  retention.Config{Rules: []retention.Rule{}},
	}
}

// decodeConfig strictly decodes one YAML document onto c, so the keys the
// document leaves out keep c's values (the defaults). Unknown keys, wrong
// types and a second document are errors.
func decodeConfig(r io.Reader, c *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file means "all defaults"
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return errors.New("more than one YAML document")
	}
	return nil
}

// loadConfigFile decodes the file at path onto c.
func loadConfigFile(path string, c *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if err := decodeConfig(f, c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// configFlags are the flags shared by `serve` and `config print`. Only the
// flags the user set override the file; unset flags leave it alone.
type configFlags struct {
	fs         *flag.FlagSet
	configFile string
	c          Config // flag values; read only for flags that were set
}

func newConfigFlags(name string, out io.Writer) *configFlags {
	f := &configFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError), c: DefaultConfig()}
	f.fs.SetOutput(out)
	fs := f.fs
	fs.StringVar(&f.configFile, "config", "", "YAML config `file` (strict: unknown keys are errors); flags override it")
	fs.StringVar(&f.c.Addr, "addr", f.c.Addr, "listen address `HOST:PORT` (non-loopback needs auth with TLS, or --allow-anonymous)")
	fs.StringVar(&f.c.Data, "data", f.c.Data, "data `DIR` for the embedded defaults: blobs under DIR/blobs, metadata in DIR/packreg.db")
	fs.StringVar(&f.c.Storage, "storage", "", "blob store `URL`: file:///path or s3://bucket/prefix?endpoint=...&region=... (default file://DATA)")
	fs.StringVar(&f.c.Database, "database", "", "metadata store `URL`: sqlite:///path or postgres://user:pass@host/db (default sqlite://DATA/packreg.db)")
	fs.BoolVar(&f.c.AllowAnonymous, "allow-anonymous", false, "allow unauthenticated access when listening on a non-loopback address")
	fs.BoolVar(&f.c.InsecureHTTP, "insecure-http", false, "accept credentials over plain HTTP on a non-loopback address (TLS terminated by a proxy in front)")
	fs.DurationVar(&f.c.ShutdownTimeout, "shutdown-timeout", f.c.ShutdownTimeout, "how long to drain requests on SIGTERM/SIGINT")
	fs.DurationVar(&f.c.StartupTimeout, "startup-timeout", f.c.StartupTimeout, "how long the start-up checks wait for the stores")
	fs.StringVar(&f.c.Log.Level, "log-level", f.c.Log.Level, "log `level`: debug, info, warn, error")
	fs.StringVar(&f.c.Log.Format, "log-format", f.c.Log.Format, "log `format` on stderr: text or json")
	return f
}

// config parses args and returns the resolved, validated configuration.
func (f *configFlags) config(args []string) (Config, error) {
	if err := f.fs.Parse(args); err != nil {
		return Config{}, err
	}
	if f.fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
	}
	c := DefaultConfig()
	if f.configFile != "" {
		if err := loadConfigFile(f.configFile, &c); err != nil {
			return Config{}, err
		}
	}
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "addr":
			c.Addr = f.c.Addr
		case "data":
			c.Data = f.c.Data
		case "storage":
			c.Storage = f.c.Storage
		case "database":
			c.Database = f.c.Database
		case "allow-anonymous":
			c.AllowAnonymous = f.c.AllowAnonymous
		case "insecure-http":
			c.InsecureHTTP = f.c.InsecureHTTP
		case "shutdown-timeout":
			c.ShutdownTimeout = f.c.ShutdownTimeout
		case "startup-timeout":
			c.StartupTimeout = f.c.StartupTimeout
		case "log-level":
			c.Log.Level = f.c.Log.Level
		case "log-format":
			c.Log.Format = f.c.Log.Format
		}
	})
	if err := c.Resolve(); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Resolve makes Data absolute and fills Storage and Database from it when
// they are empty, so the effective config names every location explicitly.
// Data is needed even when both are set: it holds the publish spool.
func (c *Config) Resolve() error {
	if c.Data == "" {
		return errors.New("config: data is empty: it holds the publish spool (DATA/spool) and the embedded stores")
	}
	abs, err := filepath.Abs(c.Data)
	if err != nil {
		return fmt.Errorf("config: data: %w", err)
	}
	c.Data = abs
	if c.Storage == "" {
		// The disk store keeps blobs/, uploads/ and tmp/ under its root.
		c.Storage = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	}
	if c.Database == "" {
		c.Database = (&url.URL{Scheme: "sqlite", Path: filepath.ToSlash(filepath.Join(abs, "packreg.db"))}).String()
	}
	return nil
}

// Validate reports every problem at once, joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		bad("addr %q: want HOST:PORT: %v", c.Addr, err)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("addr %q: bad port %q", c.Addr, port)
	} else {
		errs = append(errs, c.validateAuth(host)...)
	}
	if _, err := ParseStorageURL(c.Storage); err != nil {
		bad("storage: %v", err)
	}
	if _, err := ParseDatabaseURL(c.Database); err != nil {
		bad("database: %v", err)
	}
	for _, h := range c.Server.Hosts {
		if !validHostName(h) {
			bad("server.hosts: %q is not a host name or IP address (no scheme, port or wildcard)", h)
		}
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout must be positive, got %s", c.ShutdownTimeout)
	}
	if c.StartupTimeout < time.Second {
		bad("startup_timeout must be at least 1s, got %s", c.StartupTimeout)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format %q: want text or json", c.Log.Format)
	}
	if c.Registry.MaxBlobSize < 0 {
		bad("registry.max_blob_size must be >= 0, got %d", c.Registry.MaxBlobSize)
	}
	if c.Registry.UploadTTL <= 0 {
		bad("registry.upload_ttl must be positive, got %s", c.Registry.UploadTTL)
	}
	if c.Registry.JanitorInterval <= 0 {
		bad("registry.janitor_interval must be positive, got %s", c.Registry.JanitorInterval)
	}
	// The cap bounds one listing's read: on SQLite a tags page is read
	// under a context that cannot be cancelled (sqlmeta, Dialect.InProcess).
	if c.Registry.MaxPageSize <= 0 || c.Registry.MaxPageSize > maxPageSizeCap {
		bad("registry.max_page_size must be between 1 and %d, got %d", maxPageSizeCap, c.Registry.MaxPageSize)
	}
	if c.Packs.MaxPublishSize <= 0 {
		bad("packs.max_publish_size must be positive, got %d", c.Packs.MaxPublishSize)
	}
	if err := c.Packs.Policy.policy().Validate(); err != nil {
		bad("packs.policy: %v", err)
	}
	if err := c.Attest.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Mirrors.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Bundles.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Tracing.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Compliance.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.GC.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Scrub.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Retention.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Debug.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// isLoopback reports whether host only ever means this machine. An empty
// host (":5000") listens on every interface; a host name other than
// localhost may resolve anywhere, so both count as non-loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validHostName accepts an IP address or a DNS name: dot-separated labels
// of letters, digits and '-', at most 253 bytes.
func validHostName(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// StorageURL is a parsed --storage value.
type StorageURL struct {
	Kind string // "file" or "s3"
	Path string // file: the directory
	Raw  string // s3: the URL, for s3.ParseURL
}

// ParseStorageURL accepts file:///abs/path, file:rel/path and
// s3://bucket[/prefix][?query].
func ParseStorageURL(s string) (StorageURL, error) {
	u, err := parseURL(s)
	if err != nil {
		return StorageURL{}, err
	}
	switch u.Scheme {
	case "file":
		p, err := localPath(u)
		if err != nil {
			return StorageURL{}, err
		}
		return StorageURL{Kind: "file", Path: p}, nil
	case "s3":
		if u.Host == "" {
			return StorageURL{}, fmt.Errorf("%s: no bucket (want s3://bucket/prefix?endpoint=...&region=...)", redact(s))
		}
		// The store's own parser is strict (unknown parameters are errors),
		// so a typo fails here, before anything starts.
		if _, err := s3.ParseURL(s); err != nil {
			return StorageURL{}, fmt.Errorf("%s: %w", redact(s), err)
		}
		return StorageURL{Kind: "s3", Raw: s}, nil
	}
	return StorageURL{}, fmt.Errorf("%s: unsupported scheme %q (want file:// or s3://)", redact(s), u.Scheme)
}

// DatabaseURL is a parsed --database value.
type DatabaseURL struct {
	Kind string // "sqlite" or "postgres"
	Path string // sqlite: the file
	DSN  string // postgres: the URL or keyword/value DSN as given
}

// ParseDatabaseURL accepts sqlite:///abs/path, sqlite:rel/path,
// postgres:// or postgresql:// URLs, and PostgreSQL keyword/value DSNs
// (host=... dbname=...).
func ParseDatabaseURL(s string) (DatabaseURL, error) {
	if _, ok := parseKeywordValue(s); ok {
		return DatabaseURL{Kind: "postgres", DSN: s}, nil
	}
	u, err := parseURL(s)
	if err != nil {
		return DatabaseURL{}, err
	}
	switch u.Scheme {
	case "sqlite":
		p, err := localPath(u)
		if err != nil {
			return DatabaseURL{}, err
		}
		return DatabaseURL{Kind: "sqlite", Path: p}, nil
	case "postgres", "postgresql":
		if u.Host == "" {
			return DatabaseURL{}, fmt.Errorf("%s: no host (want postgres://user:password@host:port/db)", redact(s))
		}
		return DatabaseURL{Kind: "postgres", DSN: s}, nil
	}
	return DatabaseURL{}, fmt.Errorf("%s: unsupported scheme %q (want sqlite:// or postgres://)", redact(s), u.Scheme)
}

func parseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("empty URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url's error quotes the input, which may hold a password.
		return nil, fmt.Errorf("%s: not a URL", redact(s))
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%s: no scheme", redact(s))
	}
	return u, nil
}

// localPath is the file path of a file: or sqlite: URL: scheme:///abs/path
// (or scheme://localhost/abs/path) or scheme:relative/path.
func localPath(u *url.URL) (string, error) {
	if u.Opaque != "" {
		return filepath.FromSlash(u.Opaque), nil
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("%s: host %q is not allowed, want %s:///absolute/path or %s:relative/path",
			u.Redacted(), u.Host, u.Scheme, u.Scheme)
	}
	if u.Path == "" || u.Path == "/" {
		return "", fmt.Errorf("%s: no path", u.Redacted())
	}
	if len(u.RawQuery) > 0 {
		return "", fmt.Errorf("%s: query parameters are not supported", u.Redacted())
	}
	return filepath.FromSlash(u.Path), nil
}

// Redacted returns a copy of c safe to print or log.
func (c Config) Redacted() Config {
	c.Storage = redact(c.Storage)
	c.Database = redact(c.Database)
	c.Mirrors = c.Mirrors.redacted()
	c.Tracing = c.Tracing.redacted()
	return c
}

// YAML renders c (redacted) in the same shape the config file takes.
func (c Config) YAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c.Redacted()); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
