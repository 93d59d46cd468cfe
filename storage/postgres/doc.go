// Package postgres is the shared metadata store: storage/sqlmeta over
// PostgreSQL through pgx/v5 (pgxpool, exposed to database/sql with
// stdlib.OpenDBFromPool). Several packreg replicas point at one database;
// migrations take an advisory lock so replicas starting together apply
// each step once.
//
// It owns only what is PostgreSQL-specific: the pool, the dialect (numbered
// placeholders, COLLATE "C" name columns, clock_timestamp for leases) and
// the SQLSTATE classes and connection losses (a server restart drops the
// pool's sockets mid-statement) that mean "unavailable" or "retry". A new
// connection gets DefaultConnectTimeout unless the DSN sets
// connect_timeout, so a hung server fails requests instead of holding them.
//
// Its tests run the shared storage/metatest suite against
// $PACKREG_TEST_POSTGRES (.ci/pg.sh starts a throwaway server); without it
// they skip, except under CI where they fail.
//
// It must not import registry, pack, attest, mirror, compliance or cmd.
package postgres
