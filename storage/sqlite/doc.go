// Package sqlite is the embedded metadata store: storage/sqlmeta over a
// SQLite file through modernc.org/sqlite (pure Go, no cgo), packreg's
// default for a single server.
//
// It owns only what is SQLite-specific: the connection setup (WAL,
// synchronous=FULL, foreign keys, busy_timeout, one writer connection plus
// a pool of query-only readers, PRAGMA optimize at open, hourly and at
// close), the dialect and the error codes. Queries,
// schema and group commit live in sqlmeta. The benchmarks here are the
// store's share of the registry's throughput targets (make bench).
//
// The dialect is InProcess: the database waits on nothing but the local
// disk, so sqlmeta runs its point reads (a pull, a tags page) under a
// context that cannot be cancelled, which spares each query two
// watcher goroutines. sqlmeta's tags page uses string_agg, which the
// bundled SQLite has since 3.44.
//
// It must not import registry, pack, attest, mirror, compliance or cmd.
package sqlite
