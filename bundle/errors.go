package bundle

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/internal/apierr"
)

// Why an import or an export is refused. Every refusal is a *Problem
// wrapping one of these, naming the entry and digest it is about.
var (
	// ErrInvalid: the bundle is not what it says it is (a malformed or
	// hostile archive, content that does not match its digest, something
	// missing or extra). 400 BUNDLE_INVALID.
	ErrInvalid = errors.New("invalid bundle")
	// ErrUntrusted: unsigned, or signed by no key trusted for bundles,
	// and the import did not allow that. 422 UNVERIFIED.
	ErrUntrusted = errors.New("bundle not trusted")
	// ErrOutOfOrder: the bundle continues a chain from a bundle this
	// registry has not applied. 409 BUNDLE_OUT_OF_ORDER.
	ErrOutOfOrder = errors.New("bundle out of order")
	// errTooLarge: past a cap on an import's size or entries. 413.
	errTooLarge = errors.New("bundle too large")
)

// Problem is a refusal: what kind (one of the errors above), the archive
// entry and digest it is about when it is about one, and why.
type Problem struct {
	Kind   error
	Entry  string
	Digest digest.Digest
	Reason string
	// Details are more facts for the API's answer (a chain position).
	Details map[string]any
}

func (p *Problem) Error() string {
	msg := p.Reason
	if p.Digest != "" && p.Entry == "" {
		msg = string(p.Digest) + ": " + msg
	}
	if p.Entry != "" {
		msg = "entry " + p.Entry + ": " + msg
	}
	return fmt.Sprintf("%v: %s", p.Kind, msg)
}

func (p *Problem) Unwrap() error { return p.Kind }

func problem(kind error, entry string, d digest.Digest, format string, args ...any) *Problem {
	return &Problem{Kind: kind, Entry: entry, Digest: d, Reason: fmt.Sprintf(format, args...)}
}

// invalid is an ErrInvalid problem.
func invalid(entry string, d digest.Digest, format string, args ...any) *Problem {
	return problem(ErrInvalid, entry, d, format, args...)
}

// Codes of the API's refusals, besides apierr's.
const (
	CodeInvalid    = "BUNDLE_INVALID"
	CodeUnverified = "UNVERIFIED"
	CodeOutOfOrder = "BUNDLE_OUT_OF_ORDER"
)

// apiError is how the API answers err.
func apiError(err error) error {
	var p *Problem
	if !errors.As(err, &p) {
		return err
	}
	status, code := http.StatusBadRequest, CodeInvalid
	switch {
	case errors.Is(p.Kind, ErrUntrusted):
		status, code = http.StatusUnprocessableEntity, CodeUnverified
	case errors.Is(p.Kind, ErrOutOfOrder):
		status, code = http.StatusConflict, CodeOutOfOrder
	case errors.Is(p.Kind, errTooLarge):
		status, code = http.StatusRequestEntityTooLarge, apierr.TooLarge
	}
	details := map[string]any{}
	for k, v := range p.Details {
		details[k] = v
	}
	if p.Entry != "" {
		details["entry"] = p.Entry
	}
	if p.Digest != "" {
		details["digest"] = p.Digest
	}
	e := apierr.New(status, code, "%s", p.Error())
	if len(details) > 0 {
		e = e.WithDetails(details)
	}
	return e
}
