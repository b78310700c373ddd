package server

import (
	"net"
	"strings"
	"testing"
)

// The key of per-address limits (spec/02-transport.md section 2.10): an
// IPv4 address itself, also when IPv4-mapped; an IPv6 address by its /64.
func TestAddressKey(t *testing.T) {
	t.Parallel()
	key := func(s string) string {
		host, zone, _ := strings.Cut(s, "%")
		return addressKey(&net.UDPAddr{IP: net.ParseIP(host), Zone: zone, Port: 7443})
	}
	same := [][2]string{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"2001:db8:1:2::1", "2001:db8:1:2:aaaa::"},
		{"fe80::1%eth0", "fe80::2%eth1"},
	}
	for _, p := range same {
		if a, b := key(p[0]), key(p[1]); a != b {
			t.Errorf("%s and %s have keys %q and %q, want one", p[0], p[1], a, b)
		}
	}
	differ := [][2]string{
		{"127.0.0.1", "127.0.0.2"},
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"::1", "127.0.0.1"},
		{"::ffff:192.0.2.1", "::192.0.2.1"},
	}
	for _, p := range differ {
		if a, b := key(p[0]), key(p[1]); a == b {
			t.Errorf("%s and %s share the key %q", p[0], p[1], a)
		}
	}
}
