package federation

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/ratelimit"
	"github.com/xchat-im/xchat/spec/wire"
)

// Federation is one homeserver's federation: its peers, its relay workers
// and its side of incoming federation connections.
type Federation struct {
	cfg      Config
	resolver *net.Resolver

	relayBudget *ratelimit.Limiter // envelopes per origin domain
	queryBudget *ratelimit.Limiter // key-directory requests per origin domain
	blobBudget  *ratelimit.Limiter // bytes read with fed-blob-get per origin domain; nil: no limit
	keys        *domainKeys
	// frames bounds the request frames read at once on all accepted
	// connections, origins those of each origin domain (framebudget.go).
	frames  *wire.Budget
	origins origins
	// quotas bound the outbound queue per account and per destination
	// (quota.go). usage is held for reading from a change of the queue to
	// the matching change of the quotas, and for writing while the quotas
	// are read again from the store, so that the store and the counts
	// agree.
	quotas quotas
	usage  sync.RWMutex
	// links send call media to peer domains, callCounts count it
	// (calls.go).
	links      packetLinks
	callCounts callCounters

	mu      sync.Mutex
	tr      *quic.Transport
	ctx     context.Context // ends when Stop is called
	peers   map[string]*peer
	workers map[string]*worker
	conns   map[*quic.Conn]struct{} // accepted federation connections
	wg      sync.WaitGroup          // workers and the queue scan
	stop    context.CancelFunc
	// handlers counts requests of accepted connections being served;
	// stopping (under mu) ends new ones.
	handlers sync.WaitGroup
	stopping bool
}

// New returns a Federation for cfg. Start must be called before it relays.
func New(cfg Config) (*Federation, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Federation{
		cfg:         cfg,
		resolver:    net.DefaultResolver,
		relayBudget: ratelimit.New(cfg.RelayBurst, time.Second/time.Duration(cfg.RelayRate)),
		queryBudget: ratelimit.New(queryBurst, time.Second/queryRate),
		blobBudget:  newBlobBudget(cfg.BlobRate, cfg.BlobBurst),
		keys:        newDomainKeys(),
		frames:      wire.NewBudget(fedFrameBudgetAll),
		peers:       make(map[string]*peer),
		workers:     make(map[string]*worker),
		conns:       make(map[*quic.Conn]struct{}),
	}, nil
}

// Domain returns the local domain.
func (f *Federation) Domain() string { return f.cfg.Domain }

// Allowed reports whether the domain policy lets domain federate.
func (f *Federation) Allowed(domain string) bool { return f.cfg.allowed(domain) }

// Start makes federation dial through tr (the transport the homeserver
// listens on) and starts a relay worker for every domain with queued
// envelopes.
func (f *Federation) Start(ctx context.Context, tr *quic.Transport) error {
	ctx, cancel := context.WithCancel(ctx)
	f.mu.Lock()
	f.tr, f.ctx, f.stop = tr, ctx, cancel
	f.mu.Unlock()
	if err := f.scan(ctx); err != nil {
		return err
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		t := time.NewTicker(f.cfg.Scan)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := f.scan(ctx); err != nil && ctx.Err() == nil {
					f.cfg.Logger.Error("outbound queue scan", "err", err)
				}
			}
		}
	}()
	return nil
}

// scan starts a worker for every domain with queued envelopes, and
// updates the outbound quotas from the store.
func (f *Federation) scan(ctx context.Context) error {
	f.usage.Lock()
	uses, err := f.cfg.Store.OutboundUsage(ctx)
	if err == nil {
		f.quotas.reset(uses)
	}
	f.usage.Unlock()
	if err != nil {
		return err
	}
	domains, err := f.cfg.Store.OutboundDomains(ctx)
	if err != nil {
		return err
	}
	for _, d := range domains {
		f.ensureWorker(d.Domain)
	}
	return nil
}

// Stop stops the relay workers (queued envelopes stay queued) and closes
// every federation connection.
func (f *Federation) Stop() {
	f.mu.Lock()
	if f.stop != nil {
		f.stop() // under f.mu: no worker starts after this
	}
	f.stopping = true // and no request handler
	peers := make([]*peer, 0, len(f.peers))
	for _, p := range f.peers {
		peers = append(peers, p)
	}
	conns := make([]*quic.Conn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	f.wg.Wait()
	for _, p := range peers {
		p.close()
	}
	for _, c := range conns {
		c.CloseWithError(3, "server shutting down")
	}
	f.handlers.Wait() // no relay is admitted after Stop returns
}

// beginHandler registers a request being served; false once Stop began.
func (f *Federation) beginHandler() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping {
		return false
	}
	f.handlers.Add(1)
	return true
}

// Conns returns the number of accepted federation connections.
func (f *Federation) Conns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// running returns the context of a started federation, or an error.
func (f *Federation) running() (context.Context, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx == nil {
		return nil, errors.New("federation: not started")
	}
	return f.ctx, nil
}
