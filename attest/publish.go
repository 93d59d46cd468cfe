package attest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// The API stores what it accepts as plain OCI objects, in the layout
// cosign reads by default: a tag-schema manifest (sha256-<hex>.sig or
// .att) whose layers are the simple-signing payloads or DSSE envelopes.
// The manifest also carries a subject, so the referrers API (oras
// discover, cosign tree) lists it too. One object, found both ways.

var emptyJSON = []byte("{}")

// Concurrent posts about one subject (in this process or on other
// replicas) need no lock: the append to the .att manifest writes the tag
// only if it still holds what was read (PushManifestIf) and reads again
// when it does not, and a new signature supersedes the others by what the
// .sig tag holds once it is written (supersedeBySigTag).

// maxTagRetries bounds the rounds of a read-modify-write of a schema tag
// that lost to concurrent writers; each waits a little, at random, so the
// losers do not collide again.
const maxTagRetries = 32

func backoff(ctx context.Context, round int) {
	t := time.NewTimer(time.Duration(rand.IntN(2*round+2)+1) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// SignatureInput is a cosign signature posted to the API: the base64
// simple-signing payload (`cosign generate IMAGE`) and the base64
// signature over it (`cosign sign-blob --key ... payload.json`).
type SignatureInput struct {
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

func (s *Service) postSignature(w http.ResponseWriter, req *http.Request, repo string, subject digest.Digest) error {
	var in SignatureInput
	if err := apierr.DecodeJSON(req.Body, &in, maxDocument); err != nil {
		return err
	}
	return s.answerPublish(w, req, repo, subject, func(ctx context.Context) ([]storage.AttestRecord, digest.Digest, error) {
		return s.PublishSignature(ctx, repo, subject, in)
	})
}

func (s *Service) postAttestation(w http.ResponseWriter, req *http.Request, repo string, subject digest.Digest) error {
	b, err := apierr.ReadBody(req.Body, maxDocument)
	if err != nil {
		return err
	}
	return s.answerPublish(w, req, repo, subject, func(ctx context.Context) ([]storage.AttestRecord, digest.Digest, error) {
		return s.PublishAttestation(ctx, repo, subject, b)
	})
}

// answerPublish runs a publish as the API's actor and answers 201 with the
// records of what was stored.
func (s *Service) answerPublish(w http.ResponseWriter, req *http.Request, repo string, subject digest.Digest,
	publish func(context.Context) ([]storage.AttestRecord, digest.Digest, error)) error {
	ctx := req.Context()
	recs, ref, err := publish(ctx)
	if err != nil {
		return err
	}
	keys, err := s.keyMap(ctx)
	if err != nil {
		return err
	}
	out := make([]Finding, len(recs))
	for i, r := range recs {
		out[i] = finding(r, trusted{keys: keys})
	}
	return apierr.Reply(w, http.StatusCreated)(map[string]any{
		"repository": repo, "digest": subject, "referrer": ref, "records": out,
	}, nil)
}

// PublishSignature verifies a posted cosign signature about subject and
// stores it as the subject's .sig manifest, replacing what the tag held;
// every other signature of the subject is marked superseded. This is how
// a signature by a new key takes over after a rotation.
func (s *Service) PublishSignature(ctx context.Context, repo string, subject digest.Digest, in SignatureInput) ([]storage.AttestRecord, digest.Digest, error) {
	payload, err := decodeBase64(in.Payload)
	if err != nil {
		return nil, "", fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	sig, err := decodeBase64(in.Signature)
	if err != nil {
		return nil, "", fmt.Errorf("%w: signature: %v", ErrInvalid, err)
	}
	_, about, err := ParseSimpleSigning(payload)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if about != subject {
		return nil, "", fmt.Errorf("%w: the payload is about %s, not %s", ErrUnverified, about, subject)
	}
	if err := s.vouch(ctx, sig, payload, ""); err != nil {
		return nil, "", err
	}
	layer := oci.NewDescriptor(oci.MediaTypeCosignSimpleSigning, digest.FromBytes(digest.SHA256, payload), int64(len(payload)))
	layer.Annotations = map[string]string{oci.AnnotationCosignSignature: base64.StdEncoding.EncodeToString(sig)}
	recs, ref, err := s.publish(ctx, repo, subject, KindSignature, payload, layer, false)
	if err != nil {
		return nil, "", err
	}
	if err := s.supersedeBySigTag(ctx, repo, subject); err != nil {
		return nil, "", err
	}
	return recs, ref, nil
}

// supersedeBySigTag marks every signature of subject superseded but those
// of the manifest its .sig tag holds now, until the tag holds still
// across one round. Superseding makes the kept referrer's records current
// again, so the last round of the last writer decides, whatever order
// concurrent posts ran in: the signature the tag holds is the current one.
func (s *Service) supersedeBySigTag(ctx context.Context, repo string, subject digest.Digest) error {
	tag := SchemaTag(subject, KindSignature)
	for round := 0; ; round++ {
		cur, err := s.src.Manifest(ctx, repo, tag)
		if errors.Is(err, oci.ErrManifestUnknown) {
			return nil // deleted since: its deletion's indexing drops its records
		}
		if err != nil {
			return err
		}
		if _, err := s.st.SupersedeAttestRecords(ctx, repo, subject, KindSignature, "", cur.Digest, s.now().UTC()); err != nil {
			return err
		}
		again, err := s.src.Manifest(ctx, repo, tag)
		if err != nil && !errors.Is(err, oci.ErrManifestUnknown) {
			return err
		}
		if err != nil || again.Digest == cur.Digest || round == maxTagRetries {
			return nil
		}
	}
}

// PublishAttestation verifies a posted DSSE envelope holding an in-toto
// statement about subject and appends it to the subject's .att manifest.
func (s *Service) PublishAttestation(ctx context.Context, repo string, subject digest.Digest, body []byte) ([]storage.AttestRecord, digest.Digest, error) {
	env, err := ParseEnvelope(body)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	st, err := ParseStatement(env.PayloadType, env.PayloadBytes())
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !st.About(subject) {
		return nil, "", fmt.Errorf("%w: the statement's subjects do not include %s", ErrUnverified, subject)
	}
	var errs []error
	for i, sig := range env.sigs {
		err := s.vouch(ctx, sig, env.PAE(), keyIDClaim(env.Signatures[i].KeyID))
		if err == nil {
			errs = nil
			break
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, "", errors.Join(errs...)
	}
	layer := oci.NewDescriptor(oci.MediaTypeDSSE, digest.FromBytes(digest.SHA256, body), int64(len(body)))
	layer.Annotations = map[string]string{AnnotationPredicateType: st.PredicateType, oci.AnnotationCosignSignature: ""}
	return s.publish(ctx, repo, subject, KindAttestation, body, layer, true)
}

// vouch checks that a key the ring trusts right now verifies sig over msg.
func (s *Service) vouch(ctx context.Context, sig, msg []byte, claim string) error {
	_, err := s.vouchFor(ctx, storage.KeyUsageSignatures, sig, msg, claim)
	return err
}

// vouchFor returns the key trusted for usage that verifies sig over msg
// and is valid now, or ErrUnverified.
func (s *Service) vouchFor(ctx context.Context, usage string, sig, msg []byte, claim string) (*storage.Key, error) {
	r, err := s.loadRingFor(ctx, usage)
	if err != nil {
		return nil, err
	}
	m := r.check(sig, msg, claim)
	if !m.ok {
		return nil, fmt.Errorf("%w: no key in the key ring trusted for %s verifies the signature", ErrUnverified, usage)
	}
	k := r.byID[m.keyID].key
	if why := judge(k, s.now().UTC()); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrUnverified, why)
	}
	return k, nil
}

// publish pushes blob as layer of the subject's schema-tag manifest
// (appended to the layers already there when keep is set) and indexes it.
// An append writes the tag only if it still holds the manifest it
// extended, and extends the new one when another post got there first.
func (s *Service) publish(ctx context.Context, repo string, subject digest.Digest, kind string, blob []byte, layer oci.Descriptor, keep bool) ([]storage.AttestRecord, digest.Digest, error) {
	if s.pub == nil {
		return nil, "", apierr.New(http.StatusNotImplemented, "UNSUPPORTED", "this server cannot store signatures")
	}
	subj, err := s.src.Manifest(ctx, repo, subject.String())
	if err != nil {
		return nil, "", err
	}
	if err := s.pub.PushBlob(ctx, repo, digest.Digest(layer.Digest), bytes.NewReader(blob)); err != nil {
		return nil, "", err
	}
	emptyDigest := digest.FromBytes(digest.SHA256, emptyJSON)
	if err := s.pub.PushBlob(ctx, repo, emptyDigest, bytes.NewReader(emptyJSON)); err != nil {
		return nil, "", err
	}
	config := oci.NewDescriptor(oci.MediaTypeEmptyJSON, emptyDigest, int64(len(emptyJSON)))
	subjDesc := oci.NewDescriptor(subj.MediaType, subject, subj.Size)
	tag := SchemaTag(subject, kind)
	for round := 0; ; round++ {
		layers, was, err := s.keptLayers(ctx, repo, tag, layer, keep)
		if err != nil {
			return nil, "", err
		}
		man := oci.NewManifest(config, append(layers, layer))
		man.Subject = &subjDesc
		payload, err := json.Marshal(man)
		if err != nil {
			return nil, "", err
		}
		var ref digest.Digest
		if keep {
			ref, err = s.pub.PushManifestIf(ctx, repo, tag, was, oci.MediaTypeImageManifest, payload)
		} else {
			ref, err = s.pub.PushManifest(ctx, repo, tag, oci.MediaTypeImageManifest, payload)
		}
		if errors.Is(err, storage.ErrConflict) && round < maxTagRetries {
			backoff(ctx, round)
			continue // another post moved the tag: extend what it wrote
		}
		if err != nil {
			return nil, "", err
		}
		// Index now, so the answer carries the records; the push event
		// indexes the same manifest again, to the same result.
		recs, err := s.Index(ctx, repo, ref, subject, true)
		return recs, ref, err
	}
}

// keptLayers is what an append keeps of the manifest tag holds (every
// layer but one equal to layer), and that manifest's digest ("" when the
// tag is free); nothing when keep is not set.
func (s *Service) keptLayers(ctx context.Context, repo, tag string, layer oci.Descriptor, keep bool) ([]oci.Descriptor, digest.Digest, error) {
	if !keep {
		return nil, "", nil
	}
	old, err := s.src.Manifest(ctx, repo, tag)
	if errors.Is(err, oci.ErrManifestUnknown) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var layers []oci.Descriptor
	var doc oci.Manifest
	if json.Unmarshal(old.Payload, &doc) == nil {
		for _, l := range doc.Layers {
			if l.Digest != layer.Digest {
				layers = append(layers, l)
			}
		}
	}
	return layers, old.Digest, nil
}
