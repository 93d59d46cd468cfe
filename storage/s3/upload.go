package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

// state is storage.Upload.Backend: all an upload needs to continue on any
// replica. Bytes [0, len(Parts)*PartSize) are parts of the multipart
// upload UploadID; the rest, up to Upload.Offset, are the Tail segments,
// small objects under uploads/<id>/ because S3 parts but the last must be
// at least 5 MiB.
type state struct {
	V int `json:"v"`
	// PartSize is fixed when the upload starts, so replicas configured
	// with another part size still continue it consistently.
	PartSize int64  `json:"ps"`
	UploadID string `json:"mp,omitempty"`
	// Parts holds the ETag of part i+1, which covers bytes
	// [i*PartSize, (i+1)*PartSize). Part numbers follow from offsets, so a
	// replayed Append overwrites the part it rewrites.
	Parts []string  `json:"parts,omitempty"`
	Tail  []segment `json:"tail,omitempty"`
}

type segment struct {
	Name string `json:"k"` // key relative to the upload's directory
	Size int64  `json:"n"`
	ETag string `json:"e"`
}

const stateVersion = 1

// maxSegments bounds the tail list (and so the size of Backend); the merge
// rule in stageTail keeps it near log2(PartSize/chunk) anyway.
const maxSegments = 32

// dataName is the key, under an upload's directory, of its multipart
// upload and, once completed, of the assembled but unpublished object.
const dataName = "data"

func (st *state) tailSize() int64 {
	var n int64
	for _, sg := range st.Tail {
		n += sg.Size
	}
	return n
}

func (s *Store) loadState(u *storage.Upload) (*state, error) {
	if len(u.Backend) == 0 {
		if u.Offset != 0 {
			return nil, fmt.Errorf("s3: upload %s: offset %d but no backend state", u.ID, u.Offset)
		}
		return &state{V: stateVersion, PartSize: s.cfg.PartSize}, nil
	}
	var st state
	dec := json.NewDecoder(bytes.NewReader(u.Backend))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("s3: upload %s: backend state: %w", u.ID, err)
	}
	switch {
	case st.V != stateVersion:
		return nil, fmt.Errorf("s3: upload %s: backend state version %d, want %d", u.ID, st.V, stateVersion)
	case st.PartSize < minPartSize || st.PartSize > maxPartSize:
		return nil, fmt.Errorf("s3: upload %s: part size %d", u.ID, st.PartSize)
	case int64(len(st.Parts))*st.PartSize+st.tailSize() != u.Offset:
		return nil, fmt.Errorf("s3: upload %s: state holds %d bytes, offset says %d",
			u.ID, int64(len(st.Parts))*st.PartSize+st.tailSize(), u.Offset)
	case len(st.Parts) > 0 && st.UploadID == "":
		return nil, fmt.Errorf("s3: upload %s: parts without a multipart upload", u.ID)
	}
	for _, sg := range st.Tail {
		if !safeName(sg.Name) || sg.Size <= 0 {
			return nil, fmt.Errorf("s3: upload %s: bad tail segment %q", u.ID, sg.Name)
		}
	}
	return &st, nil
}

func algorithm(u *storage.Upload) string {
	if u.Algorithm == "" {
		return digest.SHA256
	}
	return u.Algorithm
}

// Append streams r after u.Offset. Every time the bytes after the last
// full part reach PartSize they go out as the next part, so memory stays
// at one part however large the push; what is left at EOF is staged as a
// tail segment. Nothing in u changes unless every byte is durable.
func (s *Store) Append(ctx context.Context, u *storage.Upload, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: append %s: %w", u.ID, err)
	}
	dir, err := s.uploadDir(u.ID)
	if err != nil {
		return err
	}
	st, err := s.loadState(u)
	if err != nil {
		return err
	}
	h, err := digest.RestoreHash(algorithm(u), u.HashState)
	if err != nil {
		return err
	}
	ps, tailN := st.PartSize, st.tailSize()
	// alive is set once an S3 call of this Append proved the upload still
	// there (a part uploaded into it); otherwise checkAlive asks before
	// anything is staged.
	alive := false
	// buf is the image of the part being filled: the staged tail belongs
	// at buf[:tailN] and is fetched only if the part fills or segments merge.
	// A full part is uploaded while the next one is received (up to two
	// parts per Append, the second only if one is free at once: waiting
	// for it while holding one could deadlock uploads against each other);
	// its hash is computed during its upload.
	var buf []byte
	var fl *flight
	waitPart := func() error {
		if fl == nil {
			return nil
		}
		<-fl.done
		f := fl
		fl = nil
		if f.err != nil {
			s.releasePart(f.buf)
			return s.partFailed(ctx, dir, st.UploadID, f.err)
		}
		st.Parts = append(st.Parts, f.etag)
		alive = true
		if buf == nil {
			buf = f.buf[:0] // the next part goes into it
		} else {
			s.releasePart(f.buf)
		}
		return nil
	}
	defer func() {
		waitPart()
		s.releasePart(buf)
	}()
	// nextBuf is fillFrom's way to a part buffer: a free one, else the one
	// in flight once sent, else a wait for one.
	nextBuf := func(n int64) ([]byte, error) {
		if b, ok := s.tryPartBuffer(n); ok {
			return b, nil
		}
		if fl != nil {
			if err := waitPart(); err != nil {
				return nil, err
			}
			b := buf[:cap(buf)]
			buf = nil // fillFrom copies the bytes so far into b
			return b, nil
		}
		return s.partBuffer(ctx, n)
	}
	fill, added := tailN, int64(0)
	for {
		if fill == 0 && fl == nil && s.streams(r, ps) {
			// The last whole part the reader announces goes out as it
			// comes (stream.go).
			if len(st.Parts) >= maxParts {
				return tooManyParts(u, ps)
			}
			if buf == nil {
				if buf, err = nextBuf(ps); err != nil {
					return err
				}
			}
			f := newPartFeed(buf[:ps])
			fl, buf = s.streamPart(ctx, dir, st, len(st.Parts)+1, f), nil
			n, rerr := fillFeed(r, f)
			added += n
			h.Write(f.b[:n]) // during the part's upload
			if rerr == nil {
				if storage.Remaining(r) != 0 { // else the Append is done
					buf, _ = s.tryPartBuffer(ps)
				}
				continue
			}
			if rerr != io.EOF {
				return fmt.Errorf("s3: append %s: %w", u.ID, rerr)
			}
			// The reader ended short of what it announced: the send
			// stopped, and its bytes are staged as any short Append's.
			<-fl.done
			buf, fl, fill = f.b, nil, n
			break
		}
		var n int64
		var rerr error
		buf, n, rerr = s.fillFrom(ctx, r, buf, fill, ps, nextBuf)
		inFlight := 0
		if fl != nil {
			inFlight = 1
		}
		if n > 0 && len(st.Parts)+inFlight >= maxParts {
			return tooManyParts(u, ps)
		}
		fresh := buf[fill : fill+n]
		fill += n
		added += n
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("s3: append %s: %w", u.ID, rerr)
		}
		if fill == ps {
			if err := waitPart(); err != nil {
				return err
			}
			if err := s.fetchTail(ctx, dir, st.Tail, buf[:tailN]); err != nil {
				return err
			}
			fl = s.startPart(ctx, dir, st, len(st.Parts)+1, buf[:ps])
			// The next part goes into a free part buffer if there is one
			// (growing one from 64 KiB would allocate 2 MiB on the way),
			// else into what fillFrom grows until it needs one.
			buf, _ = s.tryPartBuffer(ps)
			st.Tail, tailN, fill = nil, 0, 0
		}
		h.Write(fresh) // during the part's upload, if it went out
		if rerr == io.EOF {
			break
		}
	}
	if err := waitPart(); err != nil {
		return err
	}
	if !alive {
		if err := s.checkAlive(ctx, dir, st); err != nil {
			return err
		}
	}
	if fill > tailN {
		if err := s.stageTail(ctx, dir, st, buf, tailN, fill); err != nil {
			return err
		}
	}
	hs, err := digest.MarshalHash(h)
	if err != nil {
		return err
	}
	backend, err := json.Marshal(st)
	if err != nil {
		return err
	}
	u.Offset += added
	u.HashState = hs
	u.Backend = backend
	return nil
}

func tooManyParts(u *storage.Upload, ps int64) error {
	return fmt.Errorf("s3: append %s: upload exceeds %d parts of %d bytes", u.ID, maxParts, ps)
}

// checkAlive fails with ErrNotFound when the upload was committed or
// aborted: otherwise an Append would quietly start a new tail that no
// Commit can use, and the client would learn it only at the end. An
// Append that uploaded a part needs no check (UploadPart into a finished
// upload fails with NoSuchUpload): a chunked push whose PATCHes fill
// whole parts makes one S3 request per PATCH, not two.
func (s *Store) checkAlive(ctx context.Context, dir string, st *state) error {
	if n := len(st.Tail); n > 0 {
		key := dir + st.Tail[n-1].Name
		_, err := s.headObject(ctx, key)
		return s.wrap("append: staged tail", key, err)
	}
	if st.UploadID != "" {
		key := dir + dataName
		_, err := s.client.ListParts(ctx, &s3.ListPartsInput{
			Bucket: &s.cfg.Bucket, Key: &key, UploadId: &st.UploadID, MaxParts: aws.Int32(1),
		})
		return s.wrap("append: multipart upload", key, err)
	}
	return nil
}

// partFailed names why a part upload failed. A server may drop the
// connection of an UploadPart into a committed or aborted upload before
// it reads the body (versitygw does, under load), and the retries then
// end in ErrUnavailable; a client PATCHing a finished upload must hear
// that it is unknown, not to try again later. So a failure other than
// NoSuchUpload asks whether the upload is still there.
func (s *Store) partFailed(ctx context.Context, dir, uploadID string, err error) error {
	if uploadID == "" || errors.Is(err, storage.ErrNotFound) || ctx.Err() != nil {
		return err
	}
	if alive := s.checkAlive(ctx, dir, &state{UploadID: uploadID}); errors.Is(alive, storage.ErrNotFound) {
		return alive
	}
	return err
}

// flight is a part being uploaded (startPart): done closes when etag
// and err are set. Its buffer stays untouched until then, but for reads.
type flight struct {
	done chan struct{}
	buf  []byte
	etag string
	err  error
}

// startPart uploads b as part n in the background. The goroutine only
// touches st.UploadID (set when it creates the multipart upload), so the
// caller may change st's other fields meanwhile and reads UploadID only
// after done.
func (s *Store) startPart(ctx context.Context, dir string, st *state, n int, b []byte) *flight {
	f := &flight{done: make(chan struct{}), buf: b}
	go func() {
		defer close(f.done)
		f.etag, f.err = s.putPart(ctx, dir, st, n, b)
	}()
	return f
}

// fillFrom reads r into b[from:limit], growing b as data arrives so that a
// small chunk does not cost a whole part of memory; past 1 MiB the
// buffer is a whole part from take. It returns after
// filling b to limit (err nil) or on the first error: io.EOF at the end,
// the reader's other errors as "read: ...", the context's while it waits
// for a part buffer as "waiting for a part buffer: ...", with n the bytes
// read.
func (s *Store) fillFrom(ctx context.Context, r io.Reader, b []byte, from, limit int64, take func(int64) ([]byte, error)) ([]byte, int64, error) {
	i := from
	for i < limit {
		if i >= int64(len(b)) {
			var nb []byte
			if n := max(2*int64(len(b)), i+64<<10); n < min(limit, 1<<20) {
				nb = make([]byte, n)
			} else {
				// Past 1 MiB, go to a whole (pooled) part at once: doubling
				// up to a whole part would allocate and copy it twice over.
				var err error
				if nb, err = take(limit); err != nil {
					return b, i - from, err
				}
			}
			copy(nb, b)
			s.releasePart(b)
			b = nb
		}
		m, err := r.Read(b[i:])
		i += int64(m)
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("read: %w", err)
			}
			return b, i - from, err
		}
	}
	return b, i - from, nil
}

// putPart uploads b as part n, creating the multipart upload first if
// needed. A bytes.Reader body is seekable, so the SDK can sign it and
// replay it on retries.
func (s *Store) putPart(ctx context.Context, dir string, st *state, n int, b []byte) (string, error) {
	key := dir + dataName
	if err := s.createUpload(ctx, key, st); err != nil {
		return "", err
	}
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &s.cfg.Bucket, Key: &key, UploadId: &st.UploadID,
		PartNumber: aws.Int32(int32(n)), Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))),
	})
	if err != nil {
		return "", s.wrap(fmt.Sprintf("upload part %d", n), key, err)
	}
	return aws.ToString(out.ETag), nil
}

// createUpload creates the multipart upload at key unless st has one.
func (s *Store) createUpload(ctx context.Context, key string, st *state) error {
	if st.UploadID != "" {
		return nil
	}
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.cfg.Bucket, Key: &key, ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return s.wrap("create multipart upload", key, err)
	}
	st.UploadID = aws.ToString(out.UploadId)
	return nil
}

// stageTail writes buf[tailN:fill], the bytes of this Append past the last
// part, as a new tail segment. Trailing segments no larger than what is
// being written are merged into it (fetched into buf first), like a binary
// counter: many tiny PATCHes then cost O(log n) rewrites per byte instead
// of rewriting the whole tail on every call.
func (s *Store) stageTail(ctx context.Context, dir string, st *state, buf []byte, tailN, fill int64) error {
	k, start := len(st.Tail), tailN
	for k > 0 && (st.Tail[k-1].Size <= fill-start || k >= maxSegments) {
		k--
		start -= st.Tail[k].Size
	}
	if err := s.fetchTail(ctx, dir, st.Tail[k:], buf[start:tailN]); err != nil {
		return err
	}
	var nonce [6]byte
	rand.Read(nonce[:])
	// The offset is for people reading listings; the nonce keeps a stale
	// replay of an older Append from overwriting a segment a newer state
	// refers to.
	name := fmt.Sprintf("tail-%d-%s", int64(len(st.Parts))*st.PartSize+start, hex.EncodeToString(nonce[:]))
	key := dir + name
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.cfg.Bucket, Key: &key, Body: bytes.NewReader(buf[start:fill]), ContentLength: aws.Int64(fill - start),
	})
	if err != nil {
		return s.wrap("stage tail", key, err)
	}
	s.tails.put(key, aws.ToString(out.ETag), buf[start:fill])
	st.Tail = append(st.Tail[:k:k], segment{Name: name, Size: fill - start, ETag: aws.ToString(out.ETag)})
	return nil
}

// fetchTail reads segments, in order, into dst (exactly their total size).
func (s *Store) fetchTail(ctx context.Context, dir string, segs []segment, dst []byte) error {
	for _, sg := range segs {
		key := dir + sg.Name
		if b, ok := s.tails.take(key, sg.ETag); ok && int64(len(b)) == sg.Size {
			copy(dst, b)
			dst = dst[sg.Size:]
			continue
		}
		r, err := s.openObject(ctx, key, 0, sg.ETag)
		if err != nil {
			return s.wrap("read tail", key, err)
		}
		n, err := io.ReadFull(r, dst[:sg.Size])
		if err == nil && r.size != sg.Size {
			err = fmt.Errorf("size %d, want %d", r.size, sg.Size)
		}
		r.Close()
		if err != nil {
			return fmt.Errorf("s3: read tail %s (%d bytes read): %w", key, n, err)
		}
		dst = dst[sg.Size:]
	}
	return nil
}

// Commit publishes the upload as blob d once the data is known to hash to
// d: from the running hash state when the algorithms agree, else by
// reading the data back. Small uploads (no full part yet) are verified in
// memory and written with one PutObject; larger ones are completed into
// uploads/<id>/data and then copied to the blob key, so the blob key only
// ever holds verified bytes.
func (s *Store) Commit(ctx context.Context, u *storage.Upload, d digest.Digest) error {
	dir, err := s.uploadDir(u.ID)
	if err != nil {
		return err
	}
	if _, err := digest.Parse(string(d)); err != nil {
		return fmt.Errorf("s3: commit %s: %w", u.ID, err)
	}
	final, err := s.blobKey(d)
	if err != nil {
		return err
	}
	st, err := s.loadState(u)
	if err != nil {
		return err
	}
	sameAlg := algorithm(u) == d.Algorithm()
	if sameAlg {
		h, err := digest.RestoreHash(algorithm(u), u.HashState)
		if err != nil {
			return err
		}
		if got := digest.FromHash(d.Algorithm(), h); got != d {
			return s.mismatch(ctx, u, d, got)
		}
		// Also the path of a Commit replayed after it published. A small
		// one needs no look: its PutObject is conditional.
		if st.UploadID != "" {
			if done, err := s.existing(ctx, dir, final, d); done || err != nil {
				return err
			}
		}
	}
	if st.UploadID == "" {
		err = s.commitSmall(ctx, u, dir, st, d, final)
	} else {
		err = s.commitParts(ctx, u, dir, st, d, final, sameAlg)
	}
	if errors.Is(err, storage.ErrNotFound) {
		// The data is gone: an earlier Commit of this session may have
		// published it and died before the registry dropped the session.
		// (With the same algorithm, existing above already said so.)
		if perr := storage.ProveCommitted(ctx, s, u, d); perr != nil {
			return fmt.Errorf("s3: commit %s: %w", u.ID, perr)
		}
		s.cleanup(ctx, dir, true)
		return nil
	}
	return err
}

// existing discards the upload when blob d is already there at final,
// unless its bytes are bad (storage.StoredBad): then the caller writes
// the key again, which S3 replaces whole.
func (s *Store) existing(ctx context.Context, dir, final string, d digest.Digest) (bool, error) {
	_, err := s.headObject(ctx, final)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap("commit: head", final, err)
	}
	if bad, err := storage.StoredBad(ctx, d); err != nil || bad {
		return false, err
	}
	s.cleanup(ctx, dir, true)
	return true, nil
}

func (s *Store) mismatch(ctx context.Context, u *storage.Upload, d, got digest.Digest) error {
	err := fmt.Errorf("s3: commit %s: %w: data is %s", u.ID, storage.ErrDigestMismatch, got)
	if aerr := s.Abort(ctx, u); aerr != nil {
		// The upload's objects stay for PurgeUploads; the answer is still a mismatch.
		return errors.Join(err, aerr)
	}
	return err
}

func (s *Store) commitSmall(ctx context.Context, u *storage.Upload, dir string, st *state, d digest.Digest, final string) error {
	buf, err := s.scratch(ctx, st.tailSize())
	if err != nil {
		return err
	}
	defer s.releasePart(buf)
	if err := s.fetchTail(ctx, dir, st.Tail, buf); err != nil {
		return err
	}
	// Hash what S3 holds, not what the hash state says: it is in memory
	// anyway, and it covers the other-algorithm case.
	if got := digest.FromBytes(d.Algorithm(), buf); got != d {
		return s.mismatch(ctx, u, d, got)
	}
	if err := s.putVerified(ctx, "commit: put", d, final, buf); err != nil {
		return err
	}
	// No multipart upload to look for: this state started none, and one
	// an unrecorded Append started is PurgeUploads' (a ListMultipartUploads
	// on every small push for a rare leftover the janitor sweeps anyway).
	s.cleanup(ctx, dir, false)
	return nil
}

func (s *Store) commitParts(ctx context.Context, u *storage.Upload, dir string, st *state, d digest.Digest, final string, sameAlg bool) error {
	tmp := dir + dataName
	// NoSuchUpload below means an earlier attempt of this Commit completed
	// the upload and failed later (or its answer was lost): the assembled
	// object is then there, and the size check decides.
	assembled := false
	parts := st.Parts
	if tailN := st.tailSize(); tailN > 0 {
		// The tail becomes the last part, the only one allowed below 5 MiB.
		buf, err := s.scratch(ctx, tailN)
		if err != nil {
			return err
		}
		if err := s.fetchTail(ctx, dir, st.Tail, buf); err != nil {
			s.releasePart(buf)
			return err
		}
		etag, err := s.putPart(ctx, dir, st, len(parts)+1, buf)
		s.releasePart(buf)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			assembled = true
		case err != nil:
			return err
		}
		parts = append(parts[:len(parts):len(parts)], etag)
	}
	if !assembled {
		completed := make([]types.CompletedPart, len(parts))
		for i, etag := range parts {
			completed[i] = types.CompletedPart{ETag: aws.String(etag), PartNumber: aws.Int32(int32(i + 1))}
		}
		_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.cfg.Bucket, Key: &tmp, UploadId: &st.UploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
		})
		if apiCode(err) == "InvalidPart" {
			// A part's ETag changed: a stale replay of an older Append
			// rewrote it after this state was recorded.
			return fmt.Errorf("s3: commit %s: %w: a part was overwritten: %w", u.ID, storage.ErrConflict, err)
		}
		if err != nil && !isNotFound(err) {
			return s.wrap("commit: complete", tmp, err)
		}
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &tmp})
	if err != nil {
		return s.wrap("commit: head", tmp, err)
	}
	if size := aws.ToInt64(head.ContentLength); size != u.Offset {
		return fmt.Errorf("s3: commit %s: assembled %d bytes, upload has %d", u.ID, size, u.Offset)
	}
	if !sameAlg {
		got, err := s.hashObject(ctx, tmp, d.Algorithm(), aws.ToString(head.ETag))
		if err != nil {
			return err
		}
		if got != d {
			return s.mismatch(ctx, u, d, got)
		}
		if done, err := s.existing(ctx, dir, final, d); done || err != nil {
			return err
		}
	}
	if err := s.copyObject(ctx, d, tmp, final, u.Offset); err != nil {
		return err
	}
	s.cleanup(ctx, dir, true)
	return nil
}

func (s *Store) hashObject(ctx context.Context, key, alg, etag string) (digest.Digest, error) {
	r, err := s.openObject(ctx, key, 0, etag)
	if err != nil {
		return "", s.wrap("commit: read back", key, err)
	}
	defer r.Close()
	h := digest.NewHash(alg)
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("s3: commit: read back %s: %w", key, err)
	}
	return digest.FromHash(alg, h), nil
}

// copyObject copies src to dst server side: CopyObject up to 5 GiB,
// UploadPartCopy beyond.
func (s *Store) copyObject(ctx context.Context, d digest.Digest, src, dst string, size int64) error {
	var err error
	if size <= s.copyLimit {
		_, err = s.client.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: &s.cfg.Bucket, Key: &dst, CopySource: aws.String(s.cfg.Bucket + "/" + src),
		})
	} else {
		err = s.copyParts(ctx, src, dst, size)
	}
	if err == nil || s.landed(ctx, d, dst, size) {
		return nil
	}
	return s.wrap("commit: copy to", dst, err)
}

// landed reports whether a write to a blob key that returned an error took
// effect anyway (its answer was lost): then S3 has the blob and Commit must
// say so, or a blob would be visible whose Commit failed. Only blob keys,
// which hold nothing but verified bytes of their digest, can be judged by
// their size; but bad ones being replaced (storage.StoredBad) have the
// size of good ones, so the write is taken as failed.
func (s *Store) landed(ctx context.Context, d digest.Digest, key string, size int64) bool {
	if bad, err := storage.StoredBad(ctx, d); err != nil || bad {
		return false
	}
	got, err := s.headObject(ctx, key)
	return err == nil && got == size
}

func (s *Store) copyParts(ctx context.Context, src, dst string, size int64) error {
	mp, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.cfg.Bucket, Key: &dst, ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return err
	}
	id := mp.UploadId
	abort := func() {
		s.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &dst, UploadId: id})
	}
	partSize := max(s.copyLimit, (size+maxParts-1)/maxParts)
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+partSize, n+1 {
		end := min(off+partSize, size) - 1
		out, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &s.cfg.Bucket, Key: &dst, UploadId: id, PartNumber: aws.Int32(n),
			CopySource: aws.String(s.cfg.Bucket + "/" + src), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
		})
		if err != nil {
			abort()
			return err
		}
		parts = append(parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(n)})
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.cfg.Bucket, Key: &dst, UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil && !isNotFound(err) {
		abort()
		return err
	}
	return nil
}

// cleanup removes everything under the upload's directory once the blob is
// published (or was already there): the assembled object, the tail, and the
// segments and multipart uploads of superseded or replayed Appends, which
// Append cannot delete because an older Upload may still refer to them.
// A failure is not the caller's problem, the blob is there; PurgeUploads
// sweeps what is left. multipart says whether to look for multipart
// uploads too.
func (s *Store) cleanup(ctx context.Context, dir string, multipart bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	s.purgeDir(ctx, dir, multipart)
}

// cleanupTimeout bounds cleanups that outlive the caller's context.
const cleanupTimeout = time.Minute

// Abort discards everything under the upload's directory, including
// multipart uploads and segments of attempts that no state recorded. It
// outlives ctx on purpose: aborting is how a cancelled request cleans up.
func (s *Store) Abort(ctx context.Context, u *storage.Upload) error {
	dir, err := s.uploadDir(u.ID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return s.purgeDir(ctx, dir, true)
}
