package main

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/xchat-im/xchat/server"
)

// Flag values that cobra checks while parsing the command line, so that a
// bad value is a usage error before anything starts.

// registrationFlag is --registration: open, invite or closed.
type registrationFlag struct{ r *server.Registration }

func (f registrationFlag) String() string { return f.r.String() }
func (f registrationFlag) Type() string   { return "POLICY" }
func (f registrationFlag) Set(s string) error {
	r, err := server.ParseRegistration(s)
	if err != nil {
		return fmt.Errorf("want open, invite or closed")
	}
	*f.r = r
	return nil
}

// rateFlag is a budget flag of server.Limits: BURST/INTERVAL or none.
type rateFlag struct{ r *server.Rate }

func (f rateFlag) String() string { return f.r.String() }
func (f rateFlag) Type() string   { return "BURST/INTERVAL" }
func (f rateFlag) Set(s string) error {
	r, err := server.ParseRate(s)
	if err != nil {
		return fmt.Errorf("want BURST/INTERVAL, as 20/3s, or none")
	}
	*f.r = r
	return nil
}

// sizeFlag is a byte-count flag of server.Limits: BYTES with an optional
// KiB, MiB, GiB or TiB suffix, or none.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string { return server.FormatSize(*f.n) }
func (f sizeFlag) Type() string   { return "SIZE" }
func (f sizeFlag) Set(s string) error {
	n, err := server.ParseSize(s)
	if err != nil {
		return fmt.Errorf("want a number of bytes, optionally with KiB, MiB, GiB or TiB, as 10GiB, or none")
	}
	*f.n = n
	return nil
}

// levelFlag is --log-level: debug, info, warn or error.
type levelFlag struct{ l *slog.Level }

func (f levelFlag) String() string { return strings.ToLower(f.l.String()) }
func (f levelFlag) Type() string   { return "LEVEL" }
func (f levelFlag) Set(s string) error {
	if err := f.l.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("want debug, info, warn or error")
	}
	return nil
}

// peersFlag is the repeatable --peer DOMAIN=HOST:PORT.
type peersFlag struct{ m *map[string]string }

func (f peersFlag) String() string {
	if len(*f.m) == 0 {
		return ""
	}
	var ps []string
	for d, a := range *f.m {
		ps = append(ps, d+"="+a)
	}
	slices.Sort(ps)
	return "[" + strings.Join(ps, ",") + "]"
}
func (f peersFlag) Type() string { return "DOMAIN=HOST:PORT" }
func (f peersFlag) Set(s string) error {
	domain, addr, ok := strings.Cut(s, "=")
	if !ok || domain == "" || addr == "" {
		return fmt.Errorf("want DOMAIN=HOST:PORT")
	}
	if err := checkDomain(domain); err != nil {
		return fmt.Errorf("%q is not a domain: %w", domain, err)
	}
	if *f.m == nil {
		*f.m = map[string]string{}
	}
	(*f.m)[domain] = addr
	return nil
}
