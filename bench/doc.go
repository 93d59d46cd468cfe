// Command bench measures a packreg binary from the outside, the way a client
// sees it, and prints a table of figures (never pass/fail verdicts):
//
//   - the physical limits of this machine, measured in the same run (at the
//     start, and again just before and after the largest pushes, because a
//     shared disk's speed drifts): single-core sha256 throughput and fsync'd
//     disk write throughput in the directory the server stores its data in,
//     combined into the limit for a blob push (serial: 1/(1/write+1/sha);
//     overlapped on two cores: min(write, sha)), and the pull limit: that
//     file served over loopback HTTP by net/http (sendfile) to the bench's
//     own client; each pull row also has a limit sampled beside it, a file
//     of its size sent the same way right before each of its samples;
//   - blob push (monolithic POST+PUT and chunked PATCH+PUT) and pull
//     throughput for several sizes, each as a ratio of a limit sampled
//     beside it: a push sample follows the same bytes written and fsynced
//     into new files, with dirty pages drained (sync, then Dirty+Writeback
//     in /proc/meminfo small) before both, and the monolithic and chunked
//     rows of a size run in one schedule, alternating which goes first
//     (settle.go, side.go's schedule);
//   - small-blob push rate (single-request POST ?digest=), manifest PUT and
//     GET rates with p50/p99 latency for 1 and 16 concurrent clients;
//   - tag listing latency (a 1,000-tag repository side by side, and a walk
//     of a 10,000-tag one), each request timed to its answer's last byte and
//     its tags checked after that, and manifest PUT cost in a repository
//     with 10 tags against one with 100,000;
//   - the server's RSS sampled during the largest push, and its VmHWM; at
//     the end, its RSS split into anonymous and file-backed (the binary's
//     pages, whose count depends on the page cache's folios);
//   - an offline bundle of 1 GiB of packs: its export through the REST API
//     into a file, and its import into a second, empty server until it is
//     published, in MB/s next to the disk write limit measured just before,
//     with the peak RSS of the server doing each (disk only);
//   - the first page of GET /api/v1/packs in a registry of 10,000 pack
//     versions, timed once the pack index lists them all and every outbox
//     queue (attest, audit, compliance) is empty, read from the server's
//     /metrics: a settled registry, not one catching up (packs.go);
//   - 1,000 signed pack versions copied to another packreg process by the
//     mirror sync and by `regctl image copy --referrers`, 8 at a time
//     (mirror.go);
//   - the same push/pull/manifest figures on S3 + PostgreSQL when
//     PACKREG_TEST_S3 and PACKREG_TEST_POSTGRES are set, and there a
//     second packreg replica: pulls with presign=true next to pulls
//     through packreg, and manifest GETs on two replicas next to one
//     (replicas.go).
//
// The blob, small-blob and manifest rows (and a 1,000-tag listing, and the
// peak RSS) run side by side against CNCF Distribution v3.1.2 (`registry
// serve` with a config the bench writes: filesystem driver on disk, its s3
// driver on the same S3 server under a prefix of its own, redirects off),
// each row's samples interleaved A-B-B-A so drift on a shared machine hits
// both (the 1 KiB and manifest rows first warm each side up, untimed, with
// the row's own operation at its concurrency: side.go's warmUp); cells are median [min–max] and a ratio where above 1 means packreg
// is ahead (side.go, distribution.go). Without a `registry` binary those
// rows show packreg alone and a note says why.
//
// It imports nothing from packreg on purpose: it starts the real binary as a
// child process (`packreg serve --addr 127.0.0.1:PORT --data DIR`) and talks
// plain OCI distribution v1.1 over loopback HTTP, so what it measures is what
// crane or oras would get, including HTTP parsing, logging and fsyncs. The
// outside libraries it uses are image-spec, for the manifests it pushes,
// and aws-sdk-go-v2, only after the S3 run, to delete the objects under the
// run's own prefix: the registry API cannot free storage (a blob DELETE
// unlinks), and the bucket is shared.
//
// The bench must not distort what it measures: blob bodies come from a
// deterministic generator (copies out of a 1 MiB random pool), never from a
// buffer holding the whole blob, and their digests are computed in a separate
// pass before the timed push, so during a push the client only copies bytes
// to a socket and the server has the rest of the machine.
//
// Usage (from the module root):
//
//	go run ./bench                      # builds ./cmd/packreg into a temp dir
//	go run ./bench -binary bin/packreg  # an already built binary
//	go run ./bench -quick               # short run: small sizes and counts
//	go run ./bench -smoke               # CI's check (make bench-smoke): every suite at tiny sizes, strict
//	go run ./bench -backend disk        # disk only (default: all = disk, and S3+PostgreSQL when configured)
//	go run ./bench -keep                # keep the data dir and the server logs
//	go run ./bench -suites bundles      # only some suites (blobs,small,manifests,tags,bundles,auth,gc)
//	go run ./bench -distribution off    # packreg alone; -distribution PATH for another registry binary
//	go run ./bench -rounds 6            # samples per registry in side-by-side rows (default 4, -quick 2)
//	go run ./bench -markdown BENCH.md   # also write the report as markdown
//	go run ./bench -sizes 64,256        # blob sizes in MiB
//
// For the S3 + PostgreSQL column, set the variables the storage tests use
// (eval "$(.ci/s3.sh)"; eval "$(.ci/pg.sh)"). The run creates its own
// schema with psql and its own S3 prefix, and removes both at the end.
//
// A row whose requests fail prints FAILED, the error and the server's log
// line for it go to the notes, the run goes on, and the exit status is 1
// (any FAILED cell of the table sets it, whichever path wrote it; figures
// never do). -smoke runs every row with tiny sizes and counts, which makes
// its figures meaningless, and also exits 1 when a part was skipped for
// want of something (S3 + PostgreSQL variables, Distribution, regctl): in
// CI (.ci/run, after make test) a broken bench then shows in a minute
// instead of in a full run.
package main
