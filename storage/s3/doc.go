// Package s3 is the storage.BlobStore on an S3 bucket (aws-sdk-go-v2), for
// registries that outgrow one disk or run several replicas over one bucket.
//
// Layout under Config.Prefix:
//
//	<prefix>/
//	├── blobs/
//	│   └── <alg>/<hex[0:2]>/<hex>    a committed blob: verified, immutable
//	└── uploads/
//	    └── <upload id>/
//	        ├── data                  the multipart upload of full parts;
//	        │                         once completed, the assembled bytes
//	        │                         awaiting their copy to blobs/
//	        └── tail-<offset>-<nonce> staged bytes past the last full part
//
// S3 parts must be at least 5 MiB (but the last), while an OCI PATCH may be
// a few bytes and must be durable once acknowledged. So an upload is split
// at fixed part boundaries: bytes [0, n*PartSize) are parts 1..n of the
// multipart upload, streamed out as each part fills, and the remainder is a
// list of small tail segments. The next Append that completes the part
// fetches the segments, prepends them and uploads the part; Commit uploads
// them as the short last part. A part an Append starts at a part
// boundary with a whole part announced (storage.Remainder: a PATCH's
// Content-Length) is sent while it is received, aws-chunked with a
// trailing CRC32, to a loopback endpoint (stream.go); if that send
// fails, the part goes again once all in. A full part is uploaded in the background
// while the next one is received and the part's hash computed, so an
// upload holds two parts at most: the second only if one is free at once
// (else it waits for its own part to be sent; waiting for a free one
// while holding one could deadlock uploads against each other). All
// uploads of a Store hold at most maxPartBuffers parts (a further one
// waits, within its request's context, for a part to be sent), and a
// Store keeps a couple of idle part buffers for the next uploads until
// none has been in use for a couple of seconds (parts.go).
//
// Put (storage.BlobPutter, a single-request upload) writes a blob of up
// to 64 KiB with one PutObject from memory, verified first: a session's
// path costs a 1 KiB push four calls (stage, write, list, delete). The PutObject is conditional (If-None-Match: *): an existing
// blob is kept, or written again if storage.StoredBad says its bytes are
// bad. A larger one goes through a session of its own.
//
// An Append that uploads a part needs no other request: UploadPart into
// a finished (committed or aborted) upload fails with NoSuchUpload, which
// is ErrNotFound; one that only stages a tail asks first (checkAlive).
//
// All upload state lives in storage.Upload (Backend holds the multipart id,
// part size, part ETags and tail segments as JSON), so any replica can take
// the next chunk. Part numbers follow from offsets and segment keys are
// never reused, so replaying an Append from an older Upload rewrites the
// same parts and cannot clobber what a newer state refers to; bytes past
// u.Offset are simply not referenced.
//
// A blob key is written only with verified bytes: Commit checks the digest
// (from the running hash, or by reading the data back when the digest uses
// another algorithm), completes the multipart upload into uploads/<id>/data
// and copies it to blobs/ server side. A small upload is verified in memory
// and written with one PutObject, conditional as Put's (no HeadObject
// first), from the tail this Store staged if it did (tails.go: no
// GetObject back); its cleanup lists and deletes the upload's objects
// but looks for no multipart upload, which only an unrecorded Append
// could have left (PurgeUploads' then). A 1 KiB push through a session
// is 4 S3 calls on one replica (it was 7, and the registry's HeadObject
// after the link an 8th). A Commit replayed after its session's
// data was consumed (the registry died before dropping the session) finds
// the blob published and succeeds (storage.ProveCommitted). A Commit of a
// blob already there drops its data, unless the blob's stored bytes are
// known bad (storage.StoredBad, asked only then): it then writes the key
// again, which S3 replaces whole.
//
// A blob read is one GET from the offset, resumed with a Range GET when
// its body breaks. From a plain http:// endpoint (Config.NoSplice unset,
// no read-ahead) that first GET is raw (splice.go): presigned, sent on a
// connection the Store dials to the endpoint and owns, its status and
// headers read and checked here (capped, timed, the length and range
// the ones asked for), so that SendTo (storage.BlobSender) hands the
// connection to the client's writer and the kernel splices the body from
// socket to socket (on Linux at a 1 MiB receive low-water mark while more
// than that is to come, so S3's segments do not wake the registry one by
// one); an answer it cannot take goes to the SDK's GET.
// With Config.ReadAhead it is a read-ahead reader instead (readahead.go): the first part streams from the first GET while
// the next parts are fetched by concurrent ranged GETs, pinned to its
// ETag, into buffers handed out in order; the buffers of all readers of a
// Store are bounded, and a reader that finds none free streams its next
// part directly. Reads check no CRC, and bodies sent to a loopback server
// are UNSIGNED-PAYLOAD with a CRC32 (store.go): the digests cover the
// bytes, and the SDK's defaults hashed each byte once more (a CRC64 read,
// a SHA-256 sent over plain HTTP).
//
// With a configured endpoint, the calls of a small push (its PutObject,
// the HeadObjects of Stat, Delete and Commit) are signed and sent here
// without the SDK's per-call middleware stack, which was about half of
// their CPU (direct.go); every other call goes through the SDK.
//
// Leftovers of crashed or abandoned uploads (incomplete multipart uploads
// cost storage and hide from listings) are removed by Store.PurgeUploads
// (storage.UploadPurger), which the registry's background janitor calls
// under its lease with a cutoff of twice the upload session TTL.
//
// The SDK retries 5xx, SlowDown, timeouts and connection errors, with
// seekable bodies so a part can be resent; also the 409 a file-backed
// server (versitygw posix) answers when a write races the pruning of an
// emptied upload directory, since no key here is ever a directory. What
// still fails wraps storage.ErrUnavailable. Retrying is safe for the calls that are not
// idempotent too: a retried CreateMultipartUpload leaves an orphan that
// Commit and Abort sweep, a CompleteMultipartUpload or copy whose answer
// was lost is recognised by the object it left. Package s3fault is a
// fault-injecting proxy that tests put in front of the server to prove it.
//
// s3 imports only storage, digest, the AWS SDK and the standard library.
package s3
