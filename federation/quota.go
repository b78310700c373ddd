package federation

import (
	"sync"

	"github.com/xchat-im/xchat/server/store"
)

// Bounds of the outbound queue (spec/08-federation.md section 8.7, step 4;
// spec/15-limits.md): what the devices of one account may have queued for
// other domains, and what may be queued for one destination domain from
// all accounts. An envelope beyond them gets outbound_full.
const (
	outboundAccountEnvelopes = 10000
	outboundAccountBytes     = 64 << 20
	outboundAccountDomains   = 256 // distinct destination domains of one account
	outboundDomainEnvelopes  = 100000
	outboundDomainBytes      = 1 << 30
)

// use is what the outbound queue holds for an account or a domain.
type use struct {
	envelopes int
	bytes     int64
}

func (u *use) add(n int, bytes int64) { u.envelopes += n; u.bytes += bytes }

// quotas tracks the outbound queue's usage per submitting account and per
// destination domain. The counts are this process's view: reset from the
// store at every scan of the queue (Federation.scan), raised by Enqueue,
// lowered when a worker removes envelopes; Federation.usage keeps a scan
// from falling between a change of the queue and that of the counts.
// Envelopes that other processes sharing the store queue or remove are seen
// at the next scan, and an envelope queued twice (a retried send) counts
// twice until then; the bounds therefore hold to within what the other
// processes queue between two scans.
type quotas struct {
	mu       sync.Mutex
	accounts map[string]*accountUse
	domains  map[string]*use
}

type accountUse struct {
	total   use
	domains map[string]*use
}

// reset replaces the counts with the store's.
func (q *quotas) reset(uses []store.OutboundUse) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.accounts, q.domains = nil, nil
	for _, u := range uses {
		q.addLocked(u.From, u.Domain, u.Envelopes, u.Bytes)
	}
}

// reserve counts one envelope of size sealed bytes that account queues for
// domain, or reports false, counting nothing, when that would exceed a
// bound.
func (q *quotas) reserve(account, domain string, size int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := int64(size)
	if a := q.accounts[account]; a != nil {
		if a.total.envelopes+1 > outboundAccountEnvelopes || a.total.bytes+b > outboundAccountBytes {
			return false
		}
		if a.domains[domain] == nil && len(a.domains) >= outboundAccountDomains {
			return false
		}
	}
	if d := q.domains[domain]; d != nil && (d.envelopes+1 > outboundDomainEnvelopes || d.bytes+b > outboundDomainBytes) {
		return false
	}
	q.addLocked(account, domain, 1, b)
	return true
}

// release uncounts one envelope of size sealed bytes that left the queue
// (or was never stored).
func (q *quotas) release(account, domain string, size int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(account, domain, -1, -int64(size))
}

// addLocked adds n envelopes of bytes to account's and domain's counts,
// dropping counts that reach zero; q.mu is held.
func (q *quotas) addLocked(account, domain string, n int, bytes int64) {
	if q.accounts == nil {
		q.accounts, q.domains = make(map[string]*accountUse), make(map[string]*use)
	}
	a := q.accounts[account]
	if a == nil {
		if n <= 0 {
			return // counted before a reset that no longer knows it
		}
		a = &accountUse{domains: make(map[string]*use)}
		q.accounts[account] = a
	}
	ad := a.domains[domain]
	if ad == nil {
		if n <= 0 {
			return
		}
		ad = &use{}
		a.domains[domain] = ad
	}
	d := q.domains[domain]
	if d == nil {
		d = &use{}
		q.domains[domain] = d
	}
	n = max(n, -ad.envelopes)
	if bytes < 0 {
		bytes = max(bytes, -ad.bytes)
	}
	ad.add(n, bytes)
	a.total.add(n, bytes)
	d.add(n, bytes)
	if ad.envelopes <= 0 {
		delete(a.domains, domain)
	}
	if a.total.envelopes <= 0 {
		delete(q.accounts, account)
	}
	if d.envelopes <= 0 {
		delete(q.domains, domain)
	}
}
