package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"
)

// s3Backend builds the server flags for S3 + PostgreSQL from
// PACKREG_TEST_S3 and PACKREG_TEST_POSTGRES (the same variables the storage
// tests read). Each run gets its own S3 prefix and its own PostgreSQL schema,
// so the figures never include an earlier run's rows and two engineers
// benchmarking at once do not collide. note is set, and the section skipped,
// when the variables are not set.
func s3Backend(ctx context.Context) (s backendSpec, note string, err error) {
	s3u, pg := os.Getenv("PACKREG_TEST_S3"), os.Getenv("PACKREG_TEST_POSTGRES")
	if s3u == "" || pg == "" {
		return s, "s3+postgres: skipped (set PACKREG_TEST_S3 and PACKREG_TEST_POSTGRES, e.g. eval \"$(.ci/s3.sh)\" \"$(.ci/pg.sh)\")", nil
	}
	id := fmt.Sprintf("bench_%d_%d", time.Now().Unix(), os.Getpid())

	u, err := url.Parse(s3u)
	if err != nil {
		return s, "", fmt.Errorf("PACKREG_TEST_S3: %w", err)
	}
	u.Path = "/" + path.Join(strings.Trim(u.Path, "/"), strings.ReplaceAll(id, "_", "-"))
	// Distribution stores under a prefix of its own next to packreg's, in
	// the same bucket of the same server, and is cleaned the same way.
	distURL := *u
	distURL.Path += "-distribution"
	dist, distErr := distS3From(s3u, distURL.Path)

	dsn := pg
	var dropSchema func()
	if psql, err := exec.LookPath("psql"); err != nil {
		// Without a client to create a schema, share the default one: the
		// tag and manifest rows of earlier runs then add to the tables.
		logf("s3+postgres: psql not found; using the database's default schema")
	} else {
		if err := runPSQL(ctx, psql, pg, "CREATE SCHEMA "+id); err != nil {
			return s, "", fmt.Errorf("create schema %s: %w", id, err)
		}
		dsn = withSearchPath(pg, id)
		dropSchema = func() {
			if err := runPSQL(context.WithoutCancel(ctx), psql, pg, "DROP SCHEMA "+id+" CASCADE"); err != nil {
				logf("s3+postgres: drop schema %s: %v", id, err)
			}
		}
	}
	cleanup := func() {
		if dropSchema != nil {
			dropSchema()
		}
		for _, p := range []string{u.String(), distURL.String()} {
			n, err := cleanS3Prefix(context.WithoutCancel(ctx), p)
			if err != nil {
				logf("s3+postgres: cleaning %s: %v", redactURL(p), err)
			}
			logf("s3+postgres: deleted %d objects under %s", n, redactURL(p))
		}
	}
	return backendSpec{
		name:    "s3+postgres",
		args:    []string{"--storage", u.String(), "--database", dsn},
		cleanup: cleanup,
		dist:    distStorage{s3: dist},
		distErr: distErr,
	}, "", nil
}

func runPSQL(ctx context.Context, psql, dsn, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// withSearchPath points a postgres:// URL or key=value DSN at schema; pgx
// passes unknown parameters to the server as run-time settings.
func withSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// redactURL hides a password in a URL argument before it is printed.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
