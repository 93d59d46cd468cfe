package attest

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/oci"
)

// Envelope is a DSSE envelope (github.com/secure-systems-lab/dsse).
type Envelope struct {
	PayloadType string        `json:"payloadType"`
	Payload     string        `json:"payload"`
	Signatures  []EnvelopeSig `json:"signatures"`
	payload     []byte        // Payload decoded
	sigs        [][]byte      // Signatures[i].Sig decoded
}

// EnvelopeSig is one signature of an envelope.
type EnvelopeSig struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   string `json:"sig"`
}

// maxEnvelopeSigs bounds the work one envelope can ask for.
const maxEnvelopeSigs = 16

// ParseEnvelope parses a DSSE envelope and decodes its payload and
// signatures. It does not check any signature.
func ParseEnvelope(b []byte) (*Envelope, error) {
	if len(b) > maxDocument {
		return nil, errors.New("DSSE envelope too large")
	}
	var e Envelope
	if err := decodeStrict(b, &e); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	if err := e.decode(); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	return &e, nil
}

func (e *Envelope) decode() error {
	if e.PayloadType == "" {
		return errors.New("no payloadType")
	}
	p, err := decodeBase64(e.Payload)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if len(e.Signatures) == 0 {
		return errors.New("no signatures")
	}
	if len(e.Signatures) > maxEnvelopeSigs {
		return fmt.Errorf("%d signatures, at most %d", len(e.Signatures), maxEnvelopeSigs)
	}
	e.payload = p
	e.sigs = make([][]byte, len(e.Signatures))
	for i, s := range e.Signatures {
		if e.sigs[i], err = decodeBase64(s.Sig); err != nil {
			return fmt.Errorf("signature %d: %w", i, err)
		}
	}
	return nil
}

// dsse is the envelope as go-securesystemslib holds it, for sigstore-go.
func (e *Envelope) dsse() *dsse.Envelope {
	out := &dsse.Envelope{PayloadType: e.PayloadType, Payload: e.Payload}
	for _, s := range e.Signatures {
		out.Signatures = append(out.Signatures, dsse.Signature{KeyID: s.KeyID, Sig: s.Sig})
	}
	return out
}

// PayloadBytes returns the decoded payload.
func (e *Envelope) PayloadBytes() []byte { return e.payload }

// PAE is the DSSE pre-authentication encoding of the envelope: the bytes
// every signature of the envelope signs.
func (e *Envelope) PAE() []byte { return pae(e.PayloadType, e.payload) }

// pae is "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in
// ASCII decimal. The length prefixes are what make it unambiguous.
func pae(payloadType string, body []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(body))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, ' ')
	return append(b, body...)
}

// Statement is an in-toto statement (v0.1 or v1).
type Statement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
}

// in-toto statement types packreg accepts.
const (
	StatementV01 = "https://in-toto.io/Statement/v0.1"
	StatementV1  = "https://in-toto.io/Statement/v1"
)

// ParseStatement parses the payload of an in-toto DSSE envelope.
func ParseStatement(payloadType string, payload []byte) (*Statement, error) {
	if payloadType != oci.PayloadTypeInToto {
		return nil, fmt.Errorf("payloadType is %q, want %q", clip(payloadType), oci.PayloadTypeInToto)
	}
	var s Statement
	if err := decodeStrict(payload, &s); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	if s.Type != StatementV01 && s.Type != StatementV1 {
		return nil, fmt.Errorf("in-toto statement: _type is %q", clip(s.Type))
	}
	if s.PredicateType == "" {
		return nil, errors.New("in-toto statement: no predicateType")
	}
	if len(s.Subject) == 0 {
		return nil, errors.New("in-toto statement: no subject")
	}
	return &s, nil
}

// About reports whether one of the statement's subjects has digest d. The
// digest map is matched on d's own algorithm only: a subject listing
// {"sha512": ...} says nothing about a sha256 digest.
func (s *Statement) About(d digest.Digest) bool {
	for _, sub := range s.Subject {
		if v, ok := sub.Digest[d.Algorithm()]; ok && v == d.Hex() {
			return true
		}
	}
	return false
}
