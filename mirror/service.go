package mirror

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/packreg/packreg/internal/netguard"
	"github.com/packreg/packreg/registry"
	"github.com/packreg/packreg/storage"
)

// Store is what the mirror package keeps in the metadata store: remotes,
// runs and parity history, and the leases its workers coordinate with.
type Store interface {
	storage.Remotes
	storage.Runs
	storage.Parity
	storage.Leases
}

// PackIndex is where versions and their lifecycle are read on this side.
// The pack index (storage.Packs) satisfies it.
type PackIndex interface {
	ListPackVersions(ctx context.Context, q storage.PackQuery) ([]storage.PackVersion, error)
}

// LifecycleSetter applies a lifecycle state to a local version: how the
// state of an upstream packreg reaches the copies pulled from it. cmd
// plugs the pack service in.
type LifecycleSetter interface {
	SetPackState(ctx context.Context, name, version, state, reason string) error
}

// Service manages mirrors and upstreams, runs their syncs and parity
// checks, and fills pull-through misses.
type Service struct {
	store     Store
	local     LocalRegistry
	index     PackIndex
	lifecycle LifecycleSetter
	log       *slog.Logger
	holder    string
	remoteOf  func(Settings) (*Remote, error)
	retry     Retry
	now       func() time.Time

	wake    chan struct{}
	mu      sync.Mutex
	changed map[string]bool // repositories published since the last look
	pulls   flight          // pull-throughs in progress

	observeRun RunObserver // WithRunObserver; never nil after New
}

// Option configures a Service.
type Option func(*Service)

// WithPackIndex reads versions and lifecycle from the pack index; without
// it versions are the semver tags of the covered repositories, all active.
func WithPackIndex(p PackIndex) Option { return func(s *Service) { s.index = p } }

// WithLifecycleSetter applies an upstream packreg's lifecycle to pulled copies.
func WithLifecycleSetter(l LifecycleSetter) Option { return func(s *Service) { s.lifecycle = l } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithHolder names this process in leases and runs (default host/pid/random).
func WithHolder(h string) Option { return func(s *Service) { s.holder = h } }

// WithRetry sets how transient failures are retried (default DefaultRetry).
func WithRetry(r Retry) Option { return func(s *Service) { s.retry = r } }

// RunObserver is told about each attempt of a run the worker finished or
// stopped: kind "sync" or "parity", outcome "succeeded", "failed" or
// "interrupted" (shutdown, lost lease: carried on later), and how long
// the attempt took. The metrics count and time them.
type RunObserver func(kind, outcome string, took time.Duration)

// WithRunObserver reports the worker's runs to fn.
func WithRunObserver(fn RunObserver) Option { return func(s *Service) { s.observeRun = fn } }

// New returns the service over store, copying into and out of local. A
// service built before its registry (whose options it provides) gets it
// with Attach.
func New(store Store, local LocalRegistry, opts ...Option) *Service {
	s := &Service{store: store, local: local, log: slog.Default(), retry: DefaultRetry,
		now:  func() time.Time { return time.Now().UTC() },
		wake: make(chan struct{}, 1), changed: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	if s.observeRun == nil {
		s.observeRun = func(string, string, time.Duration) {}
	}
	if s.holder == "" {
		host, _ := os.Hostname()
		s.holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomID()[:8])
	}
	if s.remoteOf == nil {
		s.remoteOf = func(st Settings) (*Remote, error) {
			var c Credentials
			if st.Credentials != nil {
				c = *st.Credentials
			}
			return NewRemote(RemoteConfig{URL: st.URL, Credentials: c, AuthRealms: st.AuthRealms, Insecure: st.Insecure,
				UserAgent: "packreg-mirror/" + st.Name})
		}
	}
	return s
}

// Attach gives the service its registry, when New could not.
func (s *Service) Attach(reg LocalRegistry) { s.local = reg }

// RegistryOptions are the hooks to build the registry with: publications
// trigger mirroring, and pulls that miss ask the upstreams.
func (s *Service) RegistryOptions() []registry.Option {
	return []registry.Option{registry.WithSubscriber(s.Observe), registry.WithFetcher(s)}
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// View is a mirror or upstream as the API shows it: its settings without
// credentials, and which kind of credentials it holds.
type View struct {
	ID string `json:"id"`
	Settings
	Auth    string    `json:"auth"` // basic, bearer or none
	Created time.Time `json:"createdAt"`
	Updated time.Time `json:"updatedAt"`
}

// remote is a stored mirror or upstream, decoded.
type remote struct {
	rec *storage.Mirror
	set Settings // Credentials included
}

func (r *remote) view() View {
	set := r.set
	auth := "none"
	if set.Credentials != nil {
		auth = set.Credentials.Kind()
	}
	set.Credentials = nil
	return View{ID: r.rec.ID, Settings: set, Auth: auth, Created: r.rec.Created, Updated: r.rec.Updated}
}

// secret is the stored credentials document: the credentials with where
// they were entered for, the URL's origin and the token realms listed
// then. Credentials never go anywhere their binding does not name.
type secret struct {
	Credentials
	Origin string   `json:"origin,omitempty"`
	Realms []string `json:"realms,omitempty"`
}

// bindingOf is where settings send credentials: the URL's origin and the
// listed realms, as origins.
func bindingOf(s Settings) (origin string, realms []string) {
	u, err := url.Parse(s.URL)
	if err != nil {
		return "", nil
	}
	return netguard.OriginOf(u).String(), s.AuthRealms
}

// covers reports whether credentials bound to sec may be used with s:
// same origin, and no realm that was not listed when they were given.
func (sec secret) covers(s Settings) bool {
	origin, realms := bindingOf(s)
	if sec.Origin != origin {
		return false
	}
	for _, r := range realms {
		if !slices.Contains(sec.Realms, r) {
			return false
		}
	}
	return true
}

func decode(rec *storage.Mirror) (*remote, error) {
	r := &remote{rec: rec}
	if err := json.Unmarshal([]byte(rec.Spec), &r.set); err != nil {
		return nil, fmt.Errorf("mirror %s: stored settings: %w", rec.ID, err)
	}
	r.set.Name, r.set.Kind, r.set.URL, r.set.Credentials = rec.Name, rec.Kind, rec.URL, nil
	if rec.Secret != "" {
		var sec secret
		if err := json.Unmarshal([]byte(rec.Secret), &sec); err != nil {
			return nil, fmt.Errorf("mirror %s: stored credentials unreadable", rec.ID)
		}
		// Credentials stored before they were bound belong to the URL
		// they are stored with. Bound ones that no longer cover the
		// settings (changed behind the API's back) are not used.
		if sec.Origin == "" || sec.covers(r.set) {
			c := sec.Credentials
			r.set.Credentials = &c
		}
	}
	return r, nil
}

// encode splits settings into the record's columns: the credentials go
// to Secret only, bound to the settings' origin and realms.
func encode(rec *storage.Mirror, s Settings) error {
	creds := s.Credentials
	s.Credentials = nil
	spec, err := json.Marshal(s)
	if err != nil {
		return err
	}
	rec.Name, rec.Kind, rec.URL, rec.Spec, rec.Secret = s.Name, s.Kind, s.URL, string(spec), ""
	if creds != nil && creds.Kind() != "none" {
		sec := secret{Credentials: *creds}
		sec.Origin, sec.Realms = bindingOf(s)
		b, err := json.Marshal(sec)
		if err != nil {
			return err
		}
		rec.Secret = string(b)
	}
	return nil
}

// Create stores a new mirror (kind storage.MirrorPush) or upstream.
func (s *Service) Create(ctx context.Context, kind string, set Settings) (*View, error) {
	if err := set.check(kind); err != nil {
		return nil, err
	}
	now := s.now()
	rec := &storage.Mirror{ID: randomID(), Created: now, Updated: now}
	if err := encode(rec, set); err != nil {
		return nil, err
	}
	if err := s.store.CreateMirror(ctx, rec, remoteEvent(ctx, "create", rec, nil)); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, fmt.Errorf("%s %q exists: %w", kind, set.Name, storage.ErrConflict)
		}
		return nil, err
	}
	s.log.Info("mirror: created", "kind", kind, "id", rec.ID, "name", set.Name, "url", set.URL)
	s.poke()
	v := (&remote{rec: rec, set: set}).view()
	return &v, nil
}

// Update replaces the settings of a mirror or upstream. Nil credentials
// keep the stored ones while the URL's origin stays, no token realm is
// added and TLS verification is not turned off (else they are dropped:
// they were given for somewhere else); empty credentials remove them.
func (s *Service) Update(ctx context.Context, id string, set Settings) (*View, error) {
	old, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := set.check(old.rec.Kind); err != nil {
		return nil, err
	}
	if set.Credentials == nil && old.set.Credentials != nil {
		origin, realms := bindingOf(old.set)
		// Credentials given while TLS was verified are not sent to a peer
		// that no longer has to prove who it is.
		if (secret{Origin: origin, Realms: realms}).covers(set) && (old.set.Insecure || !set.Insecure) {
			set.Credentials = old.set.Credentials
		} else {
			s.log.Warn("mirror: stored credentials dropped: the url's origin or the token realms changed, or TLS verification was turned off, and no new credentials came",
				"kind", old.rec.Kind, "id", id, "name", set.Name, "from", origin, "to", set.URL)
		}
	}
	rec := *old.rec
	rec.Updated = s.now()
	if err := encode(&rec, set); err != nil {
		return nil, err
	}
	// Only a real change is audited: the config file re-applies its
	// remotes at every start.
	var evs []storage.Event
	if rec.Name != old.rec.Name || rec.URL != old.rec.URL || rec.Spec != old.rec.Spec || rec.Secret != old.rec.Secret {
		evs = append(evs, remoteEvent(ctx, "update", &rec, old.rec))
	}
	if err := s.store.UpdateMirror(ctx, &rec, evs...); err != nil {
		return nil, err
	}
	s.poke()
	v := (&remote{rec: &rec, set: set}).view()
	return &v, nil
}

// Ensure creates or updates the remote of kind named set.Name: how the
// config file declares remotes, idempotently at every start.
func (s *Service) Ensure(ctx context.Context, kind string, set Settings) (*View, error) {
	list, err := s.store.ListMirrors(ctx, kind)
	if err != nil {
		return nil, err
	}
	for _, m := range list {
		if m.Name == set.Name {
			return s.Update(ctx, m.ID, set)
		}
	}
	return s.Create(ctx, kind, set)
}

// Get returns one mirror or upstream of kind ("" for either).
func (s *Service) Get(ctx context.Context, kind, id string) (*View, error) {
	r, err := s.loadKind(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	v := r.view()
	return &v, nil
}

// List returns the remotes of kind, by name.
func (s *Service) List(ctx context.Context, kind string) ([]View, error) {
	recs, err := s.store.ListMirrors(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(recs))
	for _, rec := range recs {
		r, err := decode(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, r.view())
	}
	return out, nil
}

// Delete forgets a remote with its history. Nothing is deleted on it.
func (s *Service) Delete(ctx context.Context, kind, id string) error {
	r, err := s.loadKind(ctx, kind, id)
	if err != nil {
		return err
	}
	return s.store.DeleteMirror(ctx, id, remoteEvent(ctx, "delete", r.rec, nil))
}

// remoteEvent is the outbox event (and so the audit record) of a change
// to rec: action "mirror.create", "upstream.update"..., target
// "mirror:NAME". Its details are the stored settings and the kind of
// credentials, never the credentials; an update says whether they changed
// and what the remote was called before.
func remoteEvent(ctx context.Context, change string, rec, old *storage.Mirror) storage.Event {
	auth := "none"
	if rec.Secret != "" {
		var sec secret
		if json.Unmarshal([]byte(rec.Secret), &sec) == nil {
			auth = sec.Kind()
		}
	}
	details := map[string]string{"id": rec.ID, "url": rec.URL, "auth": auth, "settings": rec.Spec}
	if old != nil {
		details["credentialsChanged"] = strconv.FormatBool(rec.Secret != old.Secret)
		if old.Name != rec.Name {
			details["previousName"] = old.Name
		}
		if old.URL != rec.URL {
			details["previousUrl"] = old.URL
		}
	}
	return storage.Event{Actor: registry.ActorFrom(ctx), Action: rec.Kind + "." + change,
		Target: rec.Kind + ":" + rec.Name, Details: details}
}

func (s *Service) load(ctx context.Context, id string) (*remote, error) {
	rec, err := s.store.GetMirror(ctx, id)
	if err != nil {
		return nil, err
	}
	return decode(rec)
}

// loadKind is load that hides remotes of the other kind (a mirror's id
// under /upstreams is not found).
func (s *Service) loadKind(ctx context.Context, kind, id string) (*remote, error) {
	r, err := s.load(ctx, id)
	if err == nil && kind != "" && r.rec.Kind != kind {
		return nil, fmt.Errorf("%s %s: %w", kind, id, storage.ErrNotFound)
	}
	return r, err
}

// Scope narrows a run to some packs (names on this side).
type Scope struct {
	Packs []string `json:"packs,omitempty"`
}

// StartSync records a sync run of a remote, for the worker to carry out,
// and returns its id.
func (s *Service) StartSync(ctx context.Context, kind, id, trigger string, scope Scope) (int64, error) {
	if _, err := s.loadKind(ctx, kind, id); err != nil {
		return 0, err
	}
	return s.startRun(ctx, id, runSync, trigger, scope)
}

const (
	runSync   = "sync"
	runParity = "parity"
)

func (s *Service) startRun(ctx context.Context, id, kind, trigger string, scope Scope) (int64, error) {
	sc := ""
	if len(scope.Packs) > 0 {
		b, err := json.Marshal(scope)
		if err != nil {
			return 0, err
		}
		sc = string(b)
	}
	now := s.now()
	run := &storage.MirrorRun{MirrorID: id, Kind: kind, Trigger: trigger, Scope: sc, State: storage.RunRunning,
		Counts: "{}", Errors: "[]", Started: now, Updated: now}
	if err := s.store.CreateMirrorRun(ctx, run); err != nil {
		return 0, err
	}
	s.poke()
	return run.ID, nil
}

// RunView is a run as the API shows it.
type RunView struct {
	ID       int64      `json:"id"`
	Remote   string     `json:"remote"`
	Kind     string     `json:"kind"`
	Trigger  string     `json:"trigger"`
	Scope    *Scope     `json:"scope,omitempty"`
	State    string     `json:"state"`
	Attempts int        `json:"attempts"`
	Counts   Stats      `json:"counts"`
	Errors   []string   `json:"errors"`
	Started  time.Time  `json:"startedAt"`
	Updated  time.Time  `json:"updatedAt"`
	Finished *time.Time `json:"finishedAt,omitempty"`
}

func runView(r *storage.MirrorRun) RunView {
	v := RunView{ID: r.ID, Remote: r.MirrorID, Kind: r.Kind, Trigger: r.Trigger, State: r.State, Attempts: r.Attempts,
		Errors: []string{}, Started: r.Started, Updated: r.Updated}
	_ = json.Unmarshal([]byte(r.Counts), &v.Counts)
	_ = json.Unmarshal([]byte(r.Errors), &v.Errors)
	if r.Scope != "" {
		var sc Scope
		if json.Unmarshal([]byte(r.Scope), &sc) == nil {
			v.Scope = &sc
		}
	}
	if !r.Finished.IsZero() {
		f := r.Finished
		v.Finished = &f
	}
	return v
}

// Run returns one run of a remote.
func (s *Service) Run(ctx context.Context, kind, id string, run int64) (*RunView, error) {
	if _, err := s.loadKind(ctx, kind, id); err != nil {
		return nil, err
	}
	r, err := s.store.GetMirrorRun(ctx, run)
	if err != nil {
		return nil, err
	}
	if r.MirrorID != id {
		return nil, fmt.Errorf("run %d of %s: %w", run, id, storage.ErrNotFound)
	}
	v := runView(r)
	return &v, nil
}

// Runs lists runs of a remote, newest first, below before (0: newest).
func (s *Service) Runs(ctx context.Context, kind, id string, before int64, n int) ([]RunView, error) {
	if _, err := s.loadKind(ctx, kind, id); err != nil {
		return nil, err
	}
	list, err := s.store.ListMirrorRuns(ctx, id, "", before, n)
	if err != nil {
		return nil, err
	}
	out := make([]RunView, len(list))
	for i, r := range list {
		out[i] = runView(r)
	}
	return out, nil
}

// poke wakes the worker.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
