package registry

import "context"

// AccessFunc answers whether the caller of a request may do action
// ("pull", "push", "overwrite", "delete", "lifecycle") on repo: nil if so,
// else the refusal to answer with, shaped by whoever installed it (the
// auth gate in cmd/packreg). The registry and the packages above it ask
// it where the right depends on what only they know: a tag that already
// points elsewhere (overwrite), a mount's source repository, the
// repository named in a publish body, the names a listing shows.
type AccessFunc func(repo, action string) error

type accessKey struct{}

// WithAccess records the caller's rights in ctx.
func WithAccess(ctx context.Context, f AccessFunc) context.Context {
	return context.WithValue(ctx, accessKey{}, f)
}

// Allowed returns nil when ctx's caller may do action on repo: always
// when ctx carries no rights (authentication off, or a call from inside
// the server).
func Allowed(ctx context.Context, repo, action string) error {
	if f, ok := ctx.Value(accessKey{}).(AccessFunc); ok {
		return f(repo, action)
	}
	return nil
}

// MayPull reports whether ctx's caller may pull repo: what a listing
// shows.
func MayPull(ctx context.Context, repo string) bool { return Allowed(ctx, repo, "pull") == nil }

// restricted reports whether ctx carries a caller's rights at all.
func restricted(ctx context.Context) bool {
	_, ok := ctx.Value(accessKey{}).(AccessFunc)
	return ok
}

// asServer drops the caller's rights from ctx: work the registry does for
// itself on a caller's request (filling a pull-through miss the caller may
// pull) is not bound by what the caller may write.
func asServer(ctx context.Context) context.Context {
	return context.WithValue(ctx, accessKey{}, nil)
}
