// Package fs is the local-disk storage.BlobStore, packreg's default.
//
// Layout under the root directory:
//
//	<root>/
//	├── blobs/
//	│   ├── sha256/
//	│   │   └── <hex[0:2]>/        fan-out, created on first use
//	│   │       └── <hex>          a committed blob: complete, verified, immutable
//	│   └── sha512/
//	│       └── <hex[0:2]>/<hex>
//	├── uploads/
//	│   └── <upload id>            data of one upload session, Offset bytes valid
//	└── tmp/
//	    ├── empty-<random>         a blob staged without an upload file (0 bytes)
//	    └── put-<random>           a whole blob being written by Put
//
// A file appears under blobs/ only by rename(2) of a fully written, fsynced
// and verified file from uploads/ or tmp/, followed by an fsync of its
// directory, so a reader never sees a partial blob and a committed blob
// survives a crash. The fan-out keeps directories small at millions of blobs.
// On Linux the rename is renameat2(RENAME_NOREPLACE): the kernel says in
// the same call whether the blob is already there (then it is left
// alone, and its directory synced: its publisher may not have yet), so a
// push stats nothing first (NoReplaceRenamer; elsewhere a
// stat, then rename). Only a blob whose stored bytes are known bad
// (storage.StoredBad, asked then) is replaced: a plain rename(2) over it. Files are opened without os.OpenFile's poller
// registration, which a regular file refuses after four more calls.
//
// Upload state lives in storage.Upload, not here: Append truncates the data
// file to u.Offset before writing (a crashed attempt may have left more) and
// resumes the hash from u.HashState, so any process with the struct can take
// the next chunk. Append answers once the chunk is written, its hash still
// running (behind.go): u.HashState is the state at the chunk's start, the
// mark in u.Backend says so, and a process without the running hash reads
// the chunk back to hash it. Append does not fsync: a killed process loses nothing the
// kernel holds, and Commit makes the whole file durable (one fsync of the
// data, one of uploads/ for its name) before it verifies and publishes.
// u.Backend records the boot of the kernel holding unsynced bytes; after a
// restart of the machine those bytes are read again (hashed, or the last
// chunk's CRC-32C) and the session ends (storage.ErrNotFound) unless they
// are intact (durable.go says why a 202 to
// a PATCH needs no more); CheckUpload (storage.UploadChecker) does the same
// for the registry's upload status. On an FS without a boot identity
// (Booter) every Append fsyncs as before. A Commit replayed after a crash (the registry
// died between Commit and dropping the session) finds the data file gone
// and proves from the hash state that the blob holds the session's bytes
// (storage.ProveCommitted; with a state behind the last chunk, the blob's
// tail hashed on from it and the chunk's CRC-32C: behind.go).
//
// Put (storage.BlobPutter) writes a whole blob without a session, for a
// single-request upload: into tmp/, fsynced, verified, renamed; it skips
// what only a session needs (the fsync of uploads/ that makes the data
// file's name durable, a second open to commit), so a small push costs
// one file and one directory fsync.
//
// Append reads on the calling goroutine while a second one hashes (and
// goes on after Append returns) and a third writes, through pooled 256 KiB buffers (small enough to stay in
// the CPU's cache from the socket read to the hash and the write, and to
// fill and drain quickly at each PATCH), and on Linux starts the writeback
// of every MiB once it is written (sync_file_range) so the fsync in Commit
// has little left to flush: a push costs about max(hash, write), not
// hash + write + fsync, and a chunked push about as much as a monolithic
// one, the hash never idle between PATCHes. An Append keeps its data file open for the
// session's next chunk or its Commit (kept.go), checked to still be the
// file at the upload's path.
//
// PurgeUploads (storage.UploadPurger, run by the registry's janitor)
// removes files of uploads/ and tmp/ older than its cutoff: what a crash
// left there, which nothing reads again.
//
// All filesystem calls go through the FS interface so tests can simulate a
// crash between any two calls (see WithFS).
//
// fs imports only storage, digest, golang.org/x/sys/unix (renameat2, which
// syscall lacks) and the standard library.
package fs
