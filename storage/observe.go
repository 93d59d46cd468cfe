package storage

import "time"

// OpObserver is told about one backend operation of a store once it ends:
// its name (a bounded vocabulary: an S3 API operation, a blob store
// method, a kind of SQL statement), how long it took and its error (nil,
// or one of this package's sentinels, a context error, anything else).
// It runs on the caller's goroutine and must be quick.
type OpObserver func(op string, took time.Duration, err error)

// OpsObservable is an optional ability of a blob or metadata store: report
// every backend operation to fn (the metrics of storage and database
// latency and errors). Called once, before the store serves; a store
// without it is simply not measured.
type OpsObservable interface {
	ObserveOps(fn OpObserver)
}
