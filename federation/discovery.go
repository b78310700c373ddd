package federation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// DefaultPort is the port of a domain's homeserver when DNS names none.
const DefaultPort = 7443

// resolve finds the UDP address of domain's homeserver: a static peer
// entry, else DNS SRV _xchat._udp.DOMAIN, else the domain's own address on
// DefaultPort (spec/08-federation.md).
func (f *Federation) resolve(ctx context.Context, domain string) (*net.UDPAddr, error) {
	hostport, ok := f.cfg.Peers[domain]
	if !ok {
		_, srvs, err := f.resolver.LookupSRV(ctx, "xchat", "udp", domain)
		var dnsErr *net.DNSError
		switch {
		case err == nil && len(srvs) == 1 && srvs[0].Target == ".":
			return nil, fmt.Errorf("discover %s: its SRV record says it has no homeserver", domain)
		case err == nil && len(srvs) > 0:
			// net sorts by priority and randomises by weight.
			hostport = net.JoinHostPort(srvs[0].Target, strconv.Itoa(int(srvs[0].Port)))
		case err == nil || errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			hostport = net.JoinHostPort(domain, strconv.Itoa(DefaultPort))
		default:
			return nil, fmt.Errorf("discover %s: %w", domain, err)
		}
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", domain, err)
	}
	ips, err := f.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("discover %s: %s: %w", domain, host, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("discover %s: port %q", domain, port)
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), uint16(p))), nil
}
