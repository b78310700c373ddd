package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// Config says which server to test and what the harness may use.
type Config struct {
	// Server is the UDP address (HOST:PORT) of the server under test.
	Server string
	// Domain is the server's domain; its certificate must be valid for it.
	Domain string
	// RootCAs verify the server's certificate; nil: the system roots.
	RootCAs *x509.CertPool
	// Invites are single-use invite tokens for a server whose registration
	// policy is "invite".
	Invites []string
	// Peer, when set, lets the suite act as a peer homeserver for the
	// federation tests.
	Peer *PeerConfig
	// Parallel is how many tests run at once; zero: 8.
	Parallel int
	// Timeout bounds one test; zero: 60 s.
	Timeout time.Duration
	// Logger receives progress; nil: discarded.
	Logger *slog.Logger

	// exporter, in tests only, replaces the TLS exporter of a connection
	// (for a proxy that terminates TLS in front of a server).
	exporter func(*quic.Conn) ([]byte, error)
}

// PeerConfig is the peer homeserver the suite plays for the federation
// tests.
type PeerConfig struct {
	// Domain is the peer's domain. The server under test must reach it at
	// Listen (xchatd serve --peer DOMAIN=LISTEN) and trust the CA that
	// issued Certificate (xchatd serve --trust-ca).
	Domain string
	// Listen is the UDP address the suite listens on as the peer, and dials
	// the server under test from.
	Listen string
	// Certificate is the peer's certificate chain and key, valid for
	// Domain as a server-authentication certificate.
	Certificate tls.Certificate
	// RootCAs verify the certificate that the server under test presents
	// when it dials the peer; nil: Config.RootCAs.
	RootCAs *x509.CertPool
}

// Report is the outcome of a run.
type Report struct {
	Server   string        `json:"server"`
	Domain   string        `json:"domain"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"-"`
	Millis   int64         `json:"duration_ms"`
	Results  []Result      `json:"tests"`
	Summary  Summary       `json:"summary"`
}

// Summary counts the results.
type Summary struct {
	Total        int `json:"total"`
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	FailedMUST   int `json:"failed_must"`
	FailedSHOULD int `json:"failed_should"`
	Skipped      int `json:"skipped"`
}

// OK reports whether the run conforms: no MUST test failed, nor, when
// strict, a SHOULD test.
func (r *Report) OK(strict bool) bool {
	return r.Summary.FailedMUST == 0 && (!strict || r.Summary.FailedSHOULD == 0)
}

// Result returns the result of the test with id, or nil.
func (r *Report) Result(id string) *Result {
	for i := range r.Results {
		if r.Results[i].ID == id {
			return &r.Results[i]
		}
	}
	return nil
}

// Run runs tests against the server of c and reports their results. It
// fails only when the harness cannot start (the peer cannot listen, or the
// server cannot be reached at all).
func Run(ctx context.Context, c Config, tests []*Test) (*Report, error) {
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := wire.ValidateDomain(c.Domain); err != nil {
		return nil, fmt.Errorf("conformance: --domain: %w", err)
	}
	e, err := newEnv(ctx, c)
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep := &Report{Server: c.Server, Domain: c.Domain, Started: time.Now().UTC()}
	order := slices.Clone(tests)
	slices.SortStableFunc(order, func(a, b *Test) int {
		switch {
		case a.Slow && !b.Slow:
			return -1
		case b.Slow && !a.Slow:
			return 1
		}
		return 0
	})
	results := make(map[string]Result, len(tests))
	var mu sync.Mutex
	work := make(chan *Test)
	var wg sync.WaitGroup
	for range c.Parallel {
		wg.Go(func() {
			for t := range work {
				r := runOne(ctx, e, t, c.Timeout)
				c.Logger.Debug("test done", "id", r.ID, "status", r.Status, "message", r.Message)
				mu.Lock()
				results[t.ID] = r
				mu.Unlock()
			}
		})
	}
	for _, t := range order {
		work <- t
	}
	close(work)
	wg.Wait()
	for _, t := range tests {
		r := results[t.ID]
		rep.Results = append(rep.Results, r)
		rep.Summary.Total++
		switch r.Status {
		case Pass:
			rep.Summary.Passed++
		case Skip:
			rep.Summary.Skipped++
		case Fail:
			rep.Summary.Failed++
			if r.Level == MUST {
				rep.Summary.FailedMUST++
			} else {
				rep.Summary.FailedSHOULD++
			}
		}
	}
	rep.Duration = time.Since(rep.Started)
	rep.Millis = rep.Duration.Milliseconds()
	return rep, nil
}

// env is what the tests of one run share.
type env struct {
	c      Config
	tls    *tls.Config
	info   *wire.ServerInfoOK
	limits map[uint64]uint64 // server-info key 4, by key, as announced
	pool   *pool
	peer   *peer
	peerMu sync.Mutex // held by tests that use the peer's listening side

	mu      sync.Mutex
	invites []string
	used    []string // invites consumed by registrations
}

func newEnv(ctx context.Context, c Config) (*env, error) {
	e := &env{c: c, invites: slices.Clone(c.Invites)}
	e.tls = &tls.Config{RootCAs: c.RootCAs, ServerName: c.Domain, NextProtos: []string{wire.ALPN}, MinVersion: tls.VersionTLS13}
	ictx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := e.dial(ictx)
	if err != nil {
		return nil, fmt.Errorf("conformance: cannot reach %s: %w", c.Server, err)
	}
	var info wire.ServerInfoOK
	f, err := wire.EncodeRequest(&wire.ServerInfo{})
	if err != nil {
		return nil, err
	}
	p, err := conn.roundTrip(ictx, f)
	conn.close()
	if err == nil {
		err = wire.DecodeResponse(p, &info)
	}
	if err == nil {
		err = e.readLimits(p)
	}
	if err != nil {
		return nil, fmt.Errorf("conformance: server-info: %w", err)
	}
	e.info = &info
	e.pool = newPool(e)
	if c.Peer != nil {
		p, err := startPeer(ctx, e, c.Peer)
		if err != nil {
			return nil, err
		}
		e.peer = p
	}
	return e, nil
}

func (e *env) close() {
	if e.peer != nil {
		e.peer.close()
	}
}

// readLimits keeps the limits of the server-info response payload p by
// key, so that tests read keys the wire package may not name.
func (e *env) readLimits(p []byte) error {
	var m struct {
		Limits map[uint64]uint64 `cbor:"4,keyasint"`
	}
	if err := decodeLoose(p, &m); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	e.limits = m.Limits
	return nil
}

// limit returns the limit that server-info announces under key, and
// whether it announces one (a value of 0 is none).
func (e *env) limit(key uint64) (uint64, bool) {
	v := e.limits[key]
	return v, v != 0
}

// missing returns why needs cannot be met, or "".
func (e *env) missing(needs []Need) string {
	for _, n := range needs {
		switch n {
		case NeedPeer:
			if e.peer == nil {
				return "needs a federation peer (--peer-domain, --peer-listen, --peer-cert, --peer-key)"
			}
		case NeedInvite:
			if e.info.Registration != wire.RegistrationInvite {
				return "needs a server with registration policy invite"
			}
		case NeedOpen:
			if e.info.Registration != wire.RegistrationOpen {
				return "needs a server with registration policy open"
			}
		case NeedClosed:
			if e.info.Registration != wire.RegistrationClosed {
				return "needs a server with registration policy closed"
			}
		case NeedRegister:
			if e.info.Registration == wire.RegistrationClosed {
				return "needs a server that allows registration (policy open or invite)"
			}
		}
	}
	return ""
}

// errNoInvite means the configuration has no invite left.
var errNoInvite = errors.New("needs more invite tokens (--invite)")

// takeInvite returns an unused invite token.
func (e *env) takeInvite() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.invites) == 0 {
		return "", errNoInvite
	}
	tok := e.invites[0]
	e.invites = e.invites[1:]
	return tok, nil
}
