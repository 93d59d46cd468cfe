package registry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
	"github.com/packreg/packreg/storage"
)

// Actions carried by events.
const (
	ActionBlobPush       = "blob.push"
	ActionBlobMount      = "blob.mount"
	ActionBlobDelete     = "blob.delete"
	ActionManifestPush   = "manifest.push"
	ActionManifestDelete = "manifest.delete"
	ActionTagMove        = "tag.move"
	ActionTagDelete      = "tag.delete"
)

// Event says what a request changed. Subscribers (packs, attestations, the
// audit trail, replication) learn of pushes this way; registry never calls
// them by name.
type Event struct {
	Action       string
	Repo         string
	Digest       digest.Digest
	Tag          string // tag.move, tag.delete
	MediaType    string
	ArtifactType string
	Subject      digest.Digest
	Size         int64
	// Actor is the authenticated user, or "anonymous@<client address>".
	Actor string
	At    time.Time
}

// Subscriber receives events after the change is durable. It runs on the
// request's goroutine, so it must be quick: take note and return, and
// leave slow work to a worker. What must follow from every change goes
// into the change's own transaction instead (Indexer) or is read from
// the outbox.
// A subscriber misses what happened while its process was down: work that
// must not be lost reads the store's outbox instead (storage.Outbox), where
// each event was recorded with its change.
type Subscriber func(ctx context.Context, e Event)

// ManifestCandidate is what an Admitter sees of a manifest before it is
// stored: everything the registry parsed and checked, so no hook parses
// the payload again or reads back what it was just given.
type ManifestCandidate struct {
	Repo         string
	Digest       digest.Digest
	MediaType    string
	ArtifactType string
	Subject      digest.Digest
	Payload      []byte
	Tags         []string
	Actor        string
	// Annotations are the manifest's (or the index's).
	Annotations map[string]string
	// Manifest is the validated image manifest (every descriptor with a
	// parsed digest and a size); nil for an index.
	Manifest *oci.Manifest
	// Config is the config blob's bytes when its media type is one asked
	// for with WithInlineConfig and it is at most MaxInlineConfig bytes;
	// for IndexPush only (read before the put checks the references).
	Config []byte
}

// Admitter may refuse a manifest (return an oci.ErrDenied error for 403
// DENIED, or another error). It runs after OCI validation, before anything is stored.
type Admitter interface {
	AdmitManifest(ctx context.Context, m ManifestCandidate) error
}

// TagClaimer is an optional Admitter ability: which of a candidate's tags
// must be claimed, or checked against claims (storage.TagClaim). The
// registry applies the claims in the transaction that stores the manifest
// and writes its tags, so the check and the write cannot be separated: of
// concurrent pushes binding one tag to different manifests exactly one is
// stored, the others are refused with 403 DENIED. It runs after every
// Admitter has admitted the candidate.
type TagClaimer interface {
	ClaimTags(ctx context.Context, m ManifestCandidate) ([]storage.TagClaim, error)
}

// Indexer is an optional Admitter ability: the changes of the pack index
// (storage.IndexChanges) a push or a delete brings. The registry hands
// them to the metadata store with the change, which writes them in the
// same transaction: an index cannot miss a change or record one that did
// not happen, whenever the process dies, and costs no write of its own.
// IndexPush runs after every Admitter has admitted the candidate;
// IndexDelete for a tag (tag set) or a manifest (d set) being deleted.
type Indexer interface {
	IndexPush(ctx context.Context, m ManifestCandidate) (storage.IndexChanges, error)
	IndexDelete(ctx context.Context, repo, tag string, d digest.Digest) (storage.IndexChanges, error)
}

// MaxInlineConfig caps the config bytes a ManifestCandidate carries.
const MaxInlineConfig = 64 << 10

// WithInlineConfig has manifest candidates carry the bytes of configs of
// the given media types (at most MaxInlineConfig): what an Indexer needs
// of a pack's config, read once, while the push is checked.
func WithInlineConfig(mediaTypes ...string) Option {
	return func(r *Registry) { r.inlineConfig = append(r.inlineConfig, mediaTypes...) }
}

// PullGate may refuse or annotate a manifest pull (archived packs, signature
// policy). It returns warnings for Warning headers, or an error (Denied).
type PullGate interface {
	CheckPull(ctx context.Context, repo string, d digest.Digest, tag string) (warnings []string, err error)
}

// WithSubscriber adds an event subscriber.
func WithSubscriber(s Subscriber) Option {
	return func(r *Registry) { r.subscribers = append(r.subscribers, s) }
}

// WithAdmitter adds an admission check for manifest pushes.
func WithAdmitter(a Admitter) Option {
	return func(r *Registry) { r.admitters = append(r.admitters, a) }
}

// WithPullGate adds a check on manifest pulls.
func WithPullGate(g PullGate) Option {
	return func(r *Registry) { r.gates = append(r.gates, g) }
}

type actorKey struct{}

// WithActor records who acts in ctx (events and admission see it). The
// HTTP handlers set it from the request; other packages calling the service
// methods set it from their own authentication.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor recorded in ctx, or "anonymous".
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "anonymous"
}

// WithRequestActor returns req with its actor recorded in the context,
// unless something before the handler (authentication) recorded one. There
// is no authentication yet, so every client is anonymous, identified by its
// address; the REST APIs call it too, so the audit trail names API and /v2/
// clients alike.
func WithRequestActor(req *http.Request) *http.Request {
	if ActorFrom(req.Context()) != "anonymous" {
		return req
	}
	return req.WithContext(WithActor(req.Context(), "anonymous@"+req.RemoteAddr))
}

// event completes e with who acts in ctx and when. The store records it
// (Record) with the change; subscribers hear of it after the commit.
func event(ctx context.Context, e Event) Event {
	e.Actor = ActorFrom(ctx)
	e.At = time.Now().UTC()
	return e
}

func (r *Registry) notify(ctx context.Context, evs ...Event) {
	// The change is committed: deliver even if the client has gone.
	ctx = context.WithoutCancel(ctx)
	for _, e := range evs {
		for _, s := range r.subscribers {
			s(ctx, e)
		}
	}
}

// Record is e as the metadata store's outbox keeps it, in the audit
// trail's words: the target is "repo" or "repo:tag", and the details hold
// the media type, artifact type, subject and size that are set.
func (e Event) Record() storage.Event {
	target := e.Repo
	if e.Tag != "" {
		target += ":" + e.Tag
	}
	details := map[string]string{}
	for k, v := range map[string]string{"mediaType": e.MediaType, "artifactType": e.ArtifactType, "subject": string(e.Subject)} {
		if v != "" {
			details[k] = v
		}
	}
	if e.Size > 0 {
		details["size"] = strconv.FormatInt(e.Size, 10)
	}
	return storage.Event{At: e.At, Actor: e.Actor, Action: e.Action, Target: target, Digest: e.Digest, Details: details}
}

// records is Record of each event.
func records(evs ...Event) []storage.Event {
	out := make([]storage.Event, len(evs))
	for i, e := range evs {
		out[i] = e.Record()
	}
	return out
}

// DecodeEvent reads back an outbox event the registry recorded (Record);
// ok is false for events of other writers (keys, mirrors...). Consumers
// of the outbox use it to act on registry changes they did not see
// happen (a crash, another replica).
func DecodeEvent(se storage.Event) (e Event, ok bool) {
	switch se.Action {
	case ActionBlobPush, ActionBlobMount, ActionBlobDelete, ActionManifestPush, ActionManifestDelete, ActionTagMove, ActionTagDelete:
	default:
		return Event{}, false
	}
	e = Event{Action: se.Action, Digest: se.Digest, Actor: se.Actor, At: se.At,
		MediaType: se.Details["mediaType"], ArtifactType: se.Details["artifactType"],
		Subject: digest.Digest(se.Details["subject"])}
	e.Repo, e.Tag, _ = strings.Cut(se.Target, ":") // repository names hold no ':'
	if n, err := strconv.ParseInt(se.Details["size"], 10, 64); err == nil {
		e.Size = n
	}
	return e, true
}
