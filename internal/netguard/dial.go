package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// ErrRefused is what every refusal of this package wraps.
var ErrRefused = errors.New("netguard: refused")

// RefusedError is a request or connection the policy refused.
type RefusedError struct {
	Addr   string // the address or URL origin refused
	Reason string
}

func (e *RefusedError) Error() string { return "refused " + e.Addr + ": " + e.Reason }

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// dialer connects to checked addresses only.
type dialer struct {
	classify Classifier
	lookup   func(ctx context.Context, host string) ([]netip.Addr, error)
	connect  func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newDialer(c Config, publicOnly bool) *dialer {
	d := &dialer{classify: c.Classify, lookup: c.Lookup, connect: c.Connect}
	if d.classify == nil {
		d.classify = Classify
	}
	if d.lookup == nil {
		d.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if d.connect == nil {
		// Control checks again what the socket really connects to: the
		// address dialed is one this package resolved and judged, and
		// this keeps it so whatever the dialer does with it.
		nd := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
			Control: func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return &RefusedError{Addr: address, Reason: "not an IP address"}
				}
				return d.allow(ap.Addr(), publicOnly)
			}}
		d.connect = nd.DialContext
	}
	return d
}

// allow judges one address.
func (d *dialer) allow(a netip.Addr, publicOnly bool) error {
	switch c := d.classify(a); {
	case c == Forbidden:
		return &RefusedError{Addr: a.String(), Reason: "a " + c.String() + " address is never dialed"}
	case c == Private && publicOnly:
		return &RefusedError{Addr: a.String(), Reason: "a " + c.String() + " address after a public one"}
	}
	return nil
}

// dial resolves address, judges every address it resolves to and connects
// to the first allowed one that answers, by IP: what was judged is what
// is dialed, so a second lookup (DNS rebinding) changes nothing.
func (d *dialer) dial(ctx context.Context, network, address string, publicOnly bool) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = d.lookup(ctx, host); err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		if err := d.allow(a, publicOnly); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", host, err))
			continue
		}
		c, err := d.connect(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s: no address", host)
	}
	return nil, errors.Join(errs...)
}
