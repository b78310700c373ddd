package server

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xchat-im/xchat/server/ratelimit"
	"github.com/xchat-im/xchat/spec/wire"
)

// Limits are the policy limits of spec/15-limits.md that an operator may
// change. A zero field takes its default; a negative one (for a Rate, a
// negative Burst) means no limit, except for the durations, where it
// takes the default too.
type Limits struct {
	// ConnsPerAddress bounds the concurrent client connections from one
	// source address: an IPv4 address, or an IPv6 /64 (see AddressKey);
	// default DefaultConnsPerAddress.
	ConnsPerAddress int
	// ConnsPerAccount bounds the concurrent authenticated connections of
	// one account, all its devices together; default
	// DefaultConnsPerAccount.
	ConnsPerAccount int
	// AuthFailuresPerAddress and AuthFailuresPerAccount are the budgets of
	// failed authenticate requests per source address and per account
	// named; defaults DefaultAuthFailuresPerAddress and
	// DefaultAuthFailuresPerAccount.
	AuthFailuresPerAddress, AuthFailuresPerAccount Rate
	// ClaimsPerRequester is the budget of one-time key packages one
	// account may claim, and ClaimsPerTarget the budget of one-time key
	// packages claimed of one device; past either, claims get the
	// last-resort package. Defaults DefaultClaimsPerRequester and
	// DefaultClaimsPerTarget.
	ClaimsPerRequester, ClaimsPerTarget Rate
	// Registrations is the budget of register attempts per source
	// address, announced in server-info; default DefaultRegistrations.
	Registrations Rate
	// LookupMisses is the budget, per requesting account, of get-devices
	// and claim-key-package requests for this domain that name an unknown
	// account or device; default DefaultLookupMisses.
	LookupMisses Rate

	// BlobQuota bounds the bytes of one account's unexpired blobs,
	// unfinished ones counted at their full size (spec/11-files.md);
	// default DefaultBlobQuota.
	BlobQuota int64
	// MaxUnfinished bounds one account's unfinished uploads; default
	// DefaultMaxUnfinished.
	MaxUnfinished int
	// UploadLifetime is how long an unfinished upload is kept; default
	// DefaultUploadLifetime.
	UploadLifetime time.Duration
	// BlobRetention is how long a finished blob is kept, at least the
	// mailbox retention (wire.Retention), so that a blob outlives the
	// messages that refer to it; default DefaultBlobRetention.
	BlobRetention time.Duration
	// FedBlobRate is the budget of blob bytes that the servers of one other
	// domain may read with fed-blob-get: bytes per second, with a burst of
	// fedBlobBurstSeconds seconds' worth; default DefaultFedBlobRate.
	FedBlobRate int64

	// MaxCallMembers bounds the devices of this server in one call room
	// (spec/12-calls.md section 12.3), announced as server-info key 16;
	// default DefaultMaxCallMembers. Negative: the server does not relay
	// calls (call-join is answered unknown_request, keys 16 and 17 are
	// absent).
	MaxCallMembers int
	// MaxCallRooms bounds the call rooms the devices of one account are in at
	// once, announced as server-info key 17; default DefaultMaxCallRooms.
	// Negative: no limit (announced as math.MaxInt32).
	MaxCallRooms int
	// CallFrameRate and CallPacketRate bound the frames (first fragments)
	// and packets a second one connection sends into one room, each a
	// token bucket of one second's worth; the excess is dropped. Defaults
	// DefaultCallFrameRate and DefaultCallPacketRate; negative: no limit.
	CallFrameRate, CallPacketRate int
	// MaxCallPeerRooms bounds the call rooms one other domain has linked on
	// this server (fed-call-join); default DefaultMaxCallPeerRooms; negative:
	// no limit.
	MaxCallPeerRooms int
	// CallRoomIdle is how long a room without members, but with linked
	// domains, is kept; default DefaultCallRoomIdle.
	CallRoomIdle time.Duration
}

// Rate is a token-bucket budget: Burst units, then one more every
// Interval.
type Rate struct {
	Burst    int
	Interval time.Duration
}

// ParseRate parses a Rate written BURST/INTERVAL, as "20/3s" (a burst of
// 20, then one more every 3 s), or "none" for no limit: for command-line
// flags.
func ParseRate(s string) (Rate, error) {
	if s == "none" {
		return Rate{Burst: -1}, nil
	}
	b, i, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want BURST/INTERVAL, as 20/3s, or none", s)
	}
	burst, err := strconv.Atoi(b)
	if err != nil || burst <= 0 {
		return Rate{}, fmt.Errorf("rate %q: burst %q: want a positive number", s, b)
	}
	interval, err := time.ParseDuration(i)
	if err != nil || interval <= 0 {
		return Rate{}, fmt.Errorf("rate %q: interval %q: want a positive duration, as 3s", s, i)
	}
	return Rate{Burst: burst, Interval: interval}, nil
}

// String returns r as ParseRate reads it.
func (r Rate) String() string {
	if r.Burst < 0 {
		return "none"
	}
	return fmt.Sprintf("%d/%s", r.Burst, r.Interval)
}

// Defaults of Limits (spec/15-limits.md section 15.1).
const (
	DefaultConnsPerAddress  = 256
	DefaultConnsPerAccount  = 64
	DefaultBlobQuota        = wire.BlobQuota
	DefaultMaxUnfinished    = wire.MaxUnfinished
	DefaultUploadLifetime   = wire.UploadLifetime * time.Second
	DefaultBlobRetention    = wire.BlobRetention * time.Second
	DefaultFedBlobRate      = 16 << 20 // bytes per second
	DefaultFedBlobBurst     = DefaultFedBlobRate * fedBlobBurstSeconds
	DefaultMaxCallMembers   = wire.MaxCallMembers
	DefaultMaxCallRooms     = wire.MaxCallRooms
	DefaultCallFrameRate    = wire.MaxCallFrameRate
	DefaultCallPacketRate   = wire.MaxCallPacketRate
	DefaultMaxCallPeerRooms = wire.MaxPeerRooms
	DefaultCallRoomIdle     = wire.CallRoomIdle * time.Second
)

// fedBlobBurstSeconds is the burst of Limits.FedBlobRate, in seconds of
// the rate.
const fedBlobBurstSeconds = 4

// FedBlobBurst returns the burst, in bytes, of a fed-blob-get budget of
// rate bytes per second: fedBlobBurstSeconds seconds' worth, at least one
// whole part.
func FedBlobBurst(rate int64) int64 {
	if rate > math.MaxInt64/fedBlobBurstSeconds {
		return math.MaxInt64
	}
	return max(rate*fedBlobBurstSeconds, wire.BlobPartSize)
}

// Defaults of the Rate fields of Limits (spec/15-limits.md section 15.1).
var (
	DefaultAuthFailuresPerAddress = Rate{authFailAddrBurst, authFailAddrRefill}
	DefaultAuthFailuresPerAccount = Rate{authFailAccountBurst, authFailAccountRefill}
	DefaultClaimsPerRequester     = Rate{claimRequesterBurst, claimRequesterRefill}
	DefaultClaimsPerTarget        = Rate{claimTargetBurst, claimTargetRefill}
	DefaultLookupMisses           = Rate{lookupMissBurst, lookupMissRefill}
	DefaultRegistrations          = Rate{registrationBurst, registrationRefill}
)

const (
	authFailAddrBurst     = 20
	authFailAddrRefill    = 3 * time.Second
	authFailAccountBurst  = 100
	authFailAccountRefill = time.Second
	claimRequesterBurst   = 200
	claimRequesterRefill  = 10 * time.Second
	claimTargetBurst      = 20
	claimTargetRefill     = time.Minute
	lookupMissBurst       = 20
	lookupMissRefill      = 6 * time.Second
)

// Limits returns the server's policy limits, defaults applied.
func (s *Server) Limits() Limits { return s.cfg.Limits }

// withDefaults returns l with its zero fields set to their defaults.
func (l Limits) withDefaults() Limits {
	if l.ConnsPerAddress == 0 {
		l.ConnsPerAddress = DefaultConnsPerAddress
	}
	if l.ConnsPerAccount == 0 {
		l.ConnsPerAccount = DefaultConnsPerAccount
	}
	if l.BlobQuota == 0 {
		l.BlobQuota = DefaultBlobQuota
	}
	if l.MaxUnfinished == 0 {
		l.MaxUnfinished = DefaultMaxUnfinished
	}
	if l.UploadLifetime <= 0 {
		l.UploadLifetime = DefaultUploadLifetime
	}
	if l.BlobRetention <= 0 {
		l.BlobRetention = DefaultBlobRetention
	}
	if l.FedBlobRate == 0 {
		l.FedBlobRate = DefaultFedBlobRate
	}
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&l.MaxCallMembers, DefaultMaxCallMembers}, {&l.MaxCallRooms, DefaultMaxCallRooms},
		{&l.CallFrameRate, DefaultCallFrameRate}, {&l.CallPacketRate, DefaultCallPacketRate},
		{&l.MaxCallPeerRooms, DefaultMaxCallPeerRooms},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if l.CallRoomIdle <= 0 {
		l.CallRoomIdle = DefaultCallRoomIdle
	}
	for _, r := range []struct {
		r   *Rate
		def Rate
	}{
		{&l.AuthFailuresPerAddress, DefaultAuthFailuresPerAddress},
		{&l.AuthFailuresPerAccount, DefaultAuthFailuresPerAccount},
		{&l.ClaimsPerRequester, DefaultClaimsPerRequester},
		{&l.ClaimsPerTarget, DefaultClaimsPerTarget},
		{&l.LookupMisses, DefaultLookupMisses},
		{&l.Registrations, DefaultRegistrations},
	} {
		if r.r.Burst == 0 {
			r.r.Burst = r.def.Burst
		}
		if r.r.Interval <= 0 {
			r.r.Interval = r.def.Interval
		}
	}
	return l
}

// limiter returns a limiter for r, or nil (no limit) for a negative burst.
func (r Rate) limiter() *ratelimit.Limiter {
	if r.Burst < 0 {
		return nil
	}
	return ratelimit.New(r.Burst, r.Interval)
}

// addressKey returns the key of per-address limits for a peer's address
// (spec/02-transport.md section 2.10): an IPv4 address itself, also when
// given as an IPv4-mapped IPv6 address; for an IPv6 address its /64
// prefix, since one subscriber commonly holds a whole /64 (the zone is
// dropped). Loopback addresses are not special: each IPv4 loopback address
// is its own key, and ::1 is in ::/64. Tests and benchmarks, which all
// connect from 127.0.0.1, raise the limits instead (Limits).
func addressKey(a net.Addr) string {
	var ip netip.Addr
	if u, ok := a.(*net.UDPAddr); ok {
		ip, _ = netip.AddrFromSlice(u.IP)
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	} else {
		return a.String()
	}
	ip = ip.Unmap().WithZone("")
	if !ip.Is6() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// sizeUnits are the suffixes ParseSize reads, largest first.
var sizeUnits = []struct {
	suffix string
	n      int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// ParseSize parses a byte count written as a number with an optional
// binary suffix, KiB, MiB, GiB or TiB ("10GiB"), or "none" (-1, no limit):
// for command-line flags.
func ParseSize(s string) (int64, error) {
	if s == "none" {
		return -1, nil
	}
	num, unit := s, int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, unit = n, u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with KiB, MiB, GiB or TiB, as 10GiB, or none", s)
	}
	return n * unit, nil
}

// FormatSize returns n as ParseSize reads it, with the largest suffix that
// divides it; "none" for a negative n.
func FormatSize(n int64) string {
	if n < 0 {
		return "none"
	}
	for _, u := range sizeUnits {
		if n != 0 && n%u.n == 0 {
			return fmt.Sprintf("%d%s", n/u.n, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}
