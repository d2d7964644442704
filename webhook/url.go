package webhook

import (
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Codes of webhook subscriptions.
const (
	CodeURLNotAllowed = "webhook_url_not_allowed" // scheme or address a delivery may not go to
)

// CheckURL validates a delivery URL: https to a public host, or, only when
// allowLoopback (--webhooks-allow-loopback, for development), http or https
// to a loopback address. Link-local addresses (the cloud metadata service
// at 169.254.169.254 among them), private ranges, unspecified and multicast
// addresses are refused. A host name is checked again on every delivery,
// against the addresses it resolves to then (DialControl), so DNS cannot
// turn an accepted name into an internal address later.
func CheckURL(raw string, allowLoopback bool) error {
	bad := func(why string) error {
		return engine.Errorf(engine.KindInvalid, CodeURLNotAllowed, "/url", "%s", why)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return bad("url must be an absolute http(s) URL")
	}
	if u.User != nil {
		return bad("url must not carry credentials")
	}
	if len(raw) > 2000 {
		return bad("url must be at most 2000 characters")
	}
	host := u.Hostname()
	loopback := host == "localhost" || strings.HasSuffix(host, ".localhost")
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := checkAddr(ip, allowLoopback); err != nil {
			return bad(err.Error())
		}
		loopback = ip.IsLoopback()
	} else if loopback && !allowLoopback {
		return bad("loopback addresses need --webhooks-allow-loopback")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback && allowLoopback:
	default:
		return bad("url must be https (http only to loopback with --webhooks-allow-loopback)")
	}
	return nil
}

type addrError string

func (e addrError) Error() string { return string(e) }

func checkAddr(ip netip.Addr, allowLoopback bool) error {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		if !allowLoopback {
			return addrError("loopback addresses need --webhooks-allow-loopback")
		}
		return nil
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return addrError("link-local addresses (such as the metadata service 169.254.169.254) are not allowed")
	case ip.IsPrivate():
		return addrError("private addresses are not allowed")
	case ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return addrError("unspecified and multicast addresses are not allowed")
	case netip.MustParsePrefix("100.64.0.0/10").Contains(ip): // carrier-grade NAT
		return addrError("shared address space is not allowed")
	}
	return nil
}

// DialControl refuses connections to addresses CheckURL refuses; the
// dispatcher's HTTP client dials through it, so a name that resolves to an
// internal address at delivery time is not reached.
func DialControl(allowLoopback bool) func(network, address string, _ any) error {
	return func(network, address string, _ any) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return err
		}
		return checkAddr(ip, allowLoopback)
	}
}
