package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/packreg/packreg/storage"
	"github.com/packreg/packreg/storage/fs"
	"github.com/packreg/packreg/storage/postgres"
	"github.com/packreg/packreg/storage/s3"
	"github.com/packreg/packreg/storage/sqlite"
)

// stores are the opened blob and metadata stores. meta is the whole
// storage.Store: every role the services need, checked by the compiler.
type stores struct {
	blobs storage.BlobStore
	meta  storage.Store
	// release gives up the claim on a SQLite database (sqlite.Claim).
	release func()
}

// openStores opens the stores named by c.Storage and c.Database.
func openStores(ctx context.Context, c Config, log *slog.Logger) (*stores, error) {
	su, err := ParseStorageURL(c.Storage)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	du, err := ParseDatabaseURL(c.Database)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	st := &stores{}
	switch su.Kind {
	case "file":
		if err := os.MkdirAll(su.Path, 0o750); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		b, err := fs.New(su.Path)
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", su.Path, err)
		}
		st.blobs = b
	case "s3":
		cfg, err := s3.ParseURL(su.Raw)
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", redact(su.Raw), err)
		}
		b, err := s3.New(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", redact(su.Raw), err)
		}
		st.blobs = b
	}
	switch du.Kind {
	case "sqlite":
		if err := os.MkdirAll(filepath.Dir(du.Path), 0o750); err != nil {
			st.Close()
			return nil, fmt.Errorf("database: %w", err)
		}
		if st.release, err = sqlite.Claim(du.Path); err != nil {
			st.Close()
			return nil, fmt.Errorf("database: %w", err)
		}
		m, err := sqlite.Open(ctx, du.Path)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("database %s: %w", du.Path, err)
		}
		st.meta = m
	case "postgres":
		m, err := postgres.Open(ctx, du.DSN)
		if err != nil {
			st.Close()
			// pgx errors may quote the DSN; report the redacted one only.
			return nil, fmt.Errorf("database %s: %w", redact(du.DSN), scrub(err, du.DSN))
		}
		st.meta = m
	}
	log.Debug("stores open", "storage", su.Kind, "database", du.Kind)
	return st, nil
}

// Close closes the metadata store and, when it has a Close, the blob store.
func (s *stores) Close() error {
	var errs []error
	if s.meta != nil {
		errs = append(errs, s.meta.Close())
	}
	if c, ok := s.blobs.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if s.release != nil {
		s.release() // after the database is closed
	}
	return errors.Join(errs...)
}
