// Package metrics owns packreg's Prometheus metrics: one registry per
// server, the metric families, and the few calls the rest of the code
// makes to feed them. /metrics serves Handler.
//
// Families (all prefixed packreg_):
//
//   - http_requests_total{route,method,code}, http_request_duration_seconds
//     {route,method} (histogram), http_request_bytes_total{route} and
//     http_response_bytes_total{route} (bodies, as read and written),
//     http_requests_in_flight: fed by ObserveRequest from the request log.
//     route is the route table's template ("/v2/{name}/blobs/{ref}") or
//     "none" for a path no route has, method one of the HTTP methods or
//     "other": never a raw path, a repository name or a client's string,
//     so a hostile client cannot grow the label sets.
//   - storage_operations_total{store,op,outcome} and
//     storage_operation_duration_seconds{store,op}: every backend call of
//     the blob store (store="blobs": S3 operations, or the disk store's
//     methods) and the database (store="database": query, exec, commit),
//     through storage.OpsObservable. outcome is ok, not_found, canceled,
//     unavailable or error.
//   - upload_sessions_open, outbox_pending_events{consumer} (the attest
//     and compliance queues are outbox consumers: their backlog is the
//     honest queue depth, across replicas): read from the metadata store
//     when scraped, within a deadline; a failed read leaves the family out
//     of that scrape rather than reporting a made-up number.
//   - runs_total{kind,outcome}, run_duration_seconds{kind,outcome},
//     run_last_finished_timestamp_seconds{kind}: background runs (kind gc,
//     retention, scrub, sync, parity; outcome succeeded, failed,
//     interrupted, dry_run) through ObserveRun.
//   - gc_collected_total{what}, gc_freed_bytes_total,
//     retention_changes_total{action}, scrub_checked_bytes_total,
//     scrub_mismatches_total: what those runs did (GCCollected,
//     RetentionChanged, ScrubChecked).
//   - build_info{version}, the Go runtime and process collectors, and the
//     database pool (go_sql_* of database/sql's DBStats).
//
// Feeding a metric is a map lookup and an atomic add: the request path
// pays well under a microsecond and no allocation (BenchmarkObserveRequest:
// 0.43 µs with two goroutines on the shared 2-core build machine), and
// nothing here wraps a ResponseWriter, so blob GETs keep sendfile.
//
// metrics imports storage (the sentinel errors that sort outcomes) and
// client_golang; nothing of packreg imports metrics but cmd, which hands
// the other packages plain functions (storage.OpObserver, a run observer).
package metrics
