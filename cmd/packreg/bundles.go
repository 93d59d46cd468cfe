package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/packreg/packreg/bundle"
	"github.com/packreg/packreg/registry"
)

// BundlesConfig is the `bundles:` section: offline bundles (package
// bundle), exported from this registry and imported into it.
type BundlesConfig struct {
	// SigningKey is the path of the PEM private key this registry signs
	// the bundles it exports with (ECDSA P-256/P-384, RSA, Ed25519, or an
	// encrypted cosign key, its password in $PACKREG_BUNDLES_KEY_PASSWORD).
	// Empty: bundles are exported unsigned, and an import of one must
	// allow that.
	SigningKey string `yaml:"signing_key"`
	// Source names this registry in the bundles it exports (default: the
	// host name).
	Source string `yaml:"source"`
	// MaxImportSize bounds the bytes of one imported bundle (after gzip
	// when it is compressed); MaxImportEntries its archive's entries.
	MaxImportSize    int64 `yaml:"max_import_size"`
	MaxImportEntries int   `yaml:"max_import_entries"`
}

// bundleKeyPasswordEnv holds the password of an encrypted signing key.
const bundleKeyPasswordEnv = "PACKREG_BUNDLES_KEY_PASSWORD"

func defaultBundlesConfig() BundlesConfig {
	return BundlesConfig{MaxImportSize: bundle.DefaultLimits.MaxSize, MaxImportEntries: bundle.DefaultLimits.MaxEntries}
}

func (c BundlesConfig) validate() error {
	var errs []error
	if c.MaxImportSize <= 0 || c.MaxImportEntries <= 0 {
		errs = append(errs, fmt.Errorf("bundles: max_import_size and max_import_entries must be positive"))
	}
	if c.SigningKey != "" {
		if _, err := c.signer(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// signer loads the signing key, or nil when there is none.
func (c BundlesConfig) signer() (*bundle.Signer, error) {
	if c.SigningKey == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("bundles.signing_key: %w", err)
	}
	s, err := bundle.LoadSigner(b, []byte(os.Getenv(bundleKeyPasswordEnv)))
	if err != nil {
		return nil, fmt.Errorf("bundles.signing_key %s: %w", c.SigningKey, err)
	}
	return s, nil
}

// bundles is the bundle service wired around the registry.
type bundles struct {
	svc *bundle.Service
}

// newBundles builds the bundle service once the registry exists: it
// exports from and imports into the registry through the copy engine,
// checks signatures with attest's key ring and applies lifecycle states
// through the pack service. Imports stage in DATA/staging/bundles.
func newBundles(st *stores, c Config, log *slog.Logger, reg *registry.Registry, packs *packs, att *attests) (*bundles, error) {
	sg, err := c.Bundles.signer()
	if err != nil {
		return nil, err
	}
	// Its own directory, not under DATA/spool: the publish spool is kept
	// empty between requests, and a test holds it to that.
	dir := filepath.Join(c.Data, "staging", "bundles")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bundle spool: %w", err)
	}
	opts := []bundle.Option{bundle.WithLogger(log), bundle.WithVerifier(att.svc), bundle.WithSpoolDir(dir),
		bundle.WithLifecycleSetter(packLifecycle{svc: packs.svc}),
		bundle.WithLimits(bundle.Limits{MaxSize: c.Bundles.MaxImportSize, MaxEntries: c.Bundles.MaxImportEntries})}
	if sg != nil {
		log.Info("bundles are signed", "key", sg.KeyID, "algorithm", sg.Algorithm)
		opts = append(opts, bundle.WithSigner(sg))
	}
	if c.Bundles.Source != "" {
		opts = append(opts, bundle.WithSource(c.Bundles.Source))
	}
	return &bundles{svc: bundle.New(reg, st.meta, st.meta, opts...)}, nil
}

// start gives imports that publish after their request a context that
// ends with the server's background work.
func (b *bundles) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.svc.Run(ctx)
	}()
}
