package conformance

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// account is a registered account with its one device and the delivery
// token the suite gives it.
type account struct {
	address string
	dev     *device
	id      uint32
	token   []byte
	// lastResort: a last-resort key package was published; kpDirty: the
	// one-time pool may hold packages. Tests of key packages need
	// neither.
	lastResort, kpDirty bool
	// links counts the link tokens created and not used (each lives 10
	// minutes; a server keeps at most 5); maxID is the highest device
	// identifier the account has had.
	links int
	maxID uint32
	// extra are the account's linked devices that the pool keeps (see
	// withDevices); spent: a test spent the account's request budget.
	extra []linked
	spent bool
	// blobBytes is the size of every blob the suite created for the
	// account (they count toward its blob quota; section 11 has no
	// request that deletes one), unfinished how many of them it left
	// unfinished, and quotaFull: a test filled the account's blob quota.
	blobBytes  uint64
	unfinished int
	quotaFull  bool
}

// linked is a linked device of a pool account.
type linked struct {
	id  uint32
	dev *device
}

// as returns a copy of a that acts as its linked device l.
func (a *account) as(l linked) *account {
	return &account{address: a.address, dev: l.dev, id: l.id, token: a.token}
}

// unspent selects accounts whose request budget no test spent.
func unspent(a *account) bool { return !a.spent }

// blobRoom selects accounts whose blob quota no test filled.
func blobRoom(a *account) bool { return !a.quotaFull }

// oneDevice selects accounts with only their first device.
func oneDevice(a *account) bool { return len(a.extra) == 0 }

func (a *account) mailbox() wire.Mailbox { return wire.Mailbox{Address: a.address, Device: a.id} }

// verifier is the verifier of a's token.
func (a *account) verifier() []byte {
	v := wire.TokenVerifier(a.token)
	return v[:]
}

// poolSize bounds the accounts the pool registers: servers limit
// registrations per source address (the reference server: 20 at once,
// which the suite's registering tests use nearly up).
const poolSize = 3

// pool shares registered accounts between tests; a test holds its accounts
// exclusively.
type pool struct {
	e    *env
	mu   sync.Mutex
	cond *sync.Cond
	free []*account
	made int
}

func newPool(e *env) *pool {
	p := &pool{e: e}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// accounts gives t n accounts of the pool, each with its default delivery
// policy (its token's verifier, request lane open) and an empty mailbox.
// They return to the pool when t ends.
func (t *T) accounts(n int) []*account { return t.accountsWhere(n, nil) }

// accountsWhere is accounts, for accounts that satisfy ok (nil: any).
func (t *T) accountsWhere(n int, ok func(*account) bool) []*account {
	return t.takeAccounts(n, func(a *account, _ int) bool { return ok == nil || ok(a) })
}

// accountsFirst is accounts, the first of which satisfies first.
func (t *T) accountsFirst(n int, first func(*account) bool) []*account {
	return t.takeAccounts(n, func(a *account, i int) bool { return i > 0 || first(a) })
}

// takeAccounts gives t n accounts of the pool, the i-th satisfying ok(a,
// i), registering new ones for positions no free account fits when the
// pool may grow or waiting could never end.
func (t *T) takeAccounts(n int, ok func(a *account, i int) bool) []*account {
	if reason := t.env.missing([]Need{NeedRegister}); reason != "" {
		t.Skipf("%s", reason)
	}
	p := t.env.pool
	p.mu.Lock()
	got := make([]*account, n)
	for {
		// Accounts with linked devices first, so that few accounts get
		// them (tests of single-device accounts skip them).
		order := make([]int, len(p.free))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(i, j int) int {
			return cmp.Compare(min(len(p.free[j].extra), 1), min(len(p.free[i].extra), 1))
		})
		pick := make([]int, n)
		used := map[int]bool{}
		missing := 0
		for pos := range n {
			pick[pos] = -1
			for _, i := range order {
				if !used[i] && ok(p.free[i], pos) {
					pick[pos], used[i] = i, true
					break
				}
			}
			if pick[pos] < 0 {
				missing++
			}
		}
		// Past the pool's size only when every account is free and none
		// fits: waiting would never end.
		if missing == 0 || p.made+missing <= poolSize || len(p.free) == p.made {
			var taken []int
			for pos, i := range pick {
				if i >= 0 {
					got[pos] = p.free[i]
					taken = append(taken, i)
				}
			}
			slices.Sort(taken)
			for j := len(taken) - 1; j >= 0; j-- {
				i := taken[j]
				p.free = append(p.free[:i], p.free[i+1:]...)
			}
			break
		}
		p.cond.Wait()
	}
	var toMake []int // positions
	for pos, a := range got {
		if a == nil {
			toMake = append(toMake, pos)
		}
	}
	first := p.made == 0 && len(toMake) > 0 // the pool's first account gets a linked device
	p.made += len(toMake)
	p.mu.Unlock()
	t.Cleanup(func() {
		p.mu.Lock()
		for _, a := range got {
			if a != nil {
				p.free = append(p.free, a)
			}
		}
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	for k, pos := range toMake {
		a, err := t.env.newAccount(t.ctx)
		if err == nil && first && k == 0 {
			err = t.env.linkExtra(t.ctx, a)
		}
		if err != nil {
			p.mu.Lock()
			p.made -= len(toMake) - k
			p.cond.Broadcast()
			p.mu.Unlock()
			if errors.Is(err, errNoInvite) {
				t.Skipf("%v", err)
			}
			t.Fatalf("register a suite account: %v", err)
		}
		got[pos] = a
	}
	for _, a := range got {
		if err := t.env.reset(t.ctx, a); err != nil {
			t.Fatalf("reset account %s: %v", a.address, err)
		}
	}
	return got
}

// donate adds to the pool an account that a test registered for its own
// purpose and no longer needs, so that the pool grows without costing a
// registration (the server limits them per source address).
func (e *env) donate(address string, d *device, id uint32) {
	a := &account{address: address, dev: d, id: id, maxID: id, token: make([]byte, 32)}
	rand.Read(a.token)
	p := e.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, a)
	p.made++
	p.cond.Broadcast()
}

// account gives t one account of the pool.
func (t *T) account() *account { return t.accounts(1)[0] }

// newAddress returns an address on the server's domain that is not
// registered.
func (e *env) newAddress() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "conf-" + hex.EncodeToString(b) + "@" + e.c.Domain
}

// newAccount registers an account with a token verifier and an open
// request lane.
func (e *env) newAccount(ctx context.Context) (*account, error) {
	var invite []byte
	if e.info.Registration == wire.RegistrationInvite {
		tok, err := e.takeInvite()
		if err != nil {
			return nil, err
		}
		invite = []byte(tok)
	}
	d, err := newDevice()
	if err != nil {
		return nil, err
	}
	a := &account{address: e.newAddress(), dev: d, token: make([]byte, 32)}
	rand.Read(a.token)
	var c *conn
	var ok wire.RegisterOK
	for attempt := 0; ; attempt++ {
		if c, err = e.dial(ctx); err != nil {
			return nil, err
		}
		defer c.close()
		req, err := c.registerReq(d, a.address, invite)
		if err != nil {
			return nil, err
		}
		err = c.request(ctx, req, &ok)
		var pe *wire.Error
		if errors.As(err, &pe) && pe.Code == wire.CodeRateLimited && pe.RetryAfter <= time.Minute && attempt == 0 {
			// The server's registration limit (section 2.10): wait
			// once, then try on a new connection (this one's
			// authentication deadline may pass meanwhile).
			c.close()
			select {
			case <-time.After(pe.RetryAfter):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", a.address, err)
		}
		break
	}
	a.id, a.maxID = ok.Device, ok.Device
	if invite != nil {
		e.mu.Lock()
		e.used = append(e.used, string(invite))
		e.mu.Unlock()
	}
	if err := c.request(ctx, &wire.SetDeliveryPolicy{Verifiers: [][]byte{a.verifier()}, RequestLaneOpen: true}, &wire.OK{}); err != nil {
		return nil, fmt.Errorf("set-delivery-policy: %w", err)
	}
	return a, nil
}

// linkExtra links a second device to a, which the pool keeps: the tests
// that need two devices share it instead of each linking one, since every
// registration counts toward the server's limit per source address.
func (e *env) linkExtra(ctx context.Context, a *account) error {
	c, err := e.connect(ctx, a)
	if err != nil {
		return err
	}
	defer c.close()
	var tok wire.CreateLinkOK
	if err := c.request(ctx, &wire.CreateLink{}, &tok); err != nil {
		return fmt.Errorf("create-link: %w", err)
	}
	d, err := newDevice()
	if err != nil {
		return err
	}
	nc, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer nc.close()
	req, err := nc.registerReq(d, a.address, nil)
	if err != nil {
		return err
	}
	req.Link = tok.Token
	var ok wire.RegisterOK
	if err := nc.request(ctx, req, &ok); err != nil {
		return fmt.Errorf("register a linked device: %w", err)
	}
	a.extra = append(a.extra, linked{id: ok.Device, dev: d})
	a.maxID = max(a.maxID, ok.Device)
	return nil
}

// reset gives a its default delivery policy and acknowledges everything
// waiting in its mailbox.
func (e *env) reset(ctx context.Context, a *account) error {
	c, err := e.connect(ctx, a)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.request(ctx, &wire.SetDeliveryPolicy{Verifiers: [][]byte{a.verifier()}, RequestLaneOpen: true}, &wire.OK{}); err != nil {
		return fmt.Errorf("set-delivery-policy: %w", err)
	}
	if err := drain(ctx, c); err != nil {
		return err
	}
	for _, l := range a.extra {
		lc, err := e.connect(ctx, a.as(l))
		if err != nil {
			return err
		}
		err = drain(ctx, lc)
		lc.close()
		if err != nil {
			return fmt.Errorf("device %d: %w", l.id, err)
		}
	}
	return nil
}

// drain acknowledges everything waiting for the device of c.
func drain(ctx context.Context, c *conn) error {
	// Drain until caught-up; a server that never sends it (test 7.14/1)
	// must not stall every other test, so the drain also ends after 3 s
	// without a frame.
	var ids [][]byte
	p := c.pushes()
	for {
		fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		it, err := p.next(fctx)
		cancel()
		if err != nil && ctx.Err() == nil && fctx.Err() != nil {
			break
		}
		if err != nil {
			return fmt.Errorf("drain the mailbox: %w", err)
		}
		if d, ok := it.msg.(*wire.Deliver); ok {
			for _, x := range d.Deliveries {
				ids = append(ids, x.ID)
			}
		}
		if _, ok := it.msg.(*wire.CaughtUp); ok {
			break
		}
	}
	for len(ids) > 0 {
		n := min(len(ids), wire.MaxIDsPerAck)
		if err := c.request(ctx, &wire.Ack{IDs: ids[:n]}, &wire.OK{}); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// connect opens a connection authenticated as a.
func (e *env) connect(ctx context.Context, a *account) (*conn, error) {
	c, err := e.dial(ctx)
	if err != nil {
		return nil, err
	}
	req, err := c.authReq(a.dev, a.address, a.id)
	if err == nil {
		err = c.request(ctx, req, &wire.OK{})
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("authenticate as %s: %w", a.address, err)
	}
	return c, nil
}

// connect opens a connection authenticated as a for t.
func (t *T) connect(a *account) *conn {
	c, err := t.env.connect(t.ctx, a)
	t.must(err, "connect")
	t.Cleanup(c.close)
	return c
}

// envelope returns an envelope for a's mailbox with a's token and a random
// sealed value in the smallest bucket.
func envelopeFor(a *account) wire.Envelope {
	return wire.Envelope{ID: randomID(), To: a.mailbox(), Token: a.token, Sealed: sealedOf(256)}
}

// send sends envs on c and returns the per-envelope results.
func (t *T) send(c *conn, envs ...wire.Envelope) []wire.Code {
	var ok wire.SendOK
	t.do(c, &wire.Send{Envelopes: envs}, &ok)
	if len(ok.Results) != len(envs) {
		t.Fatalf("send-ok has %d results for %d envelopes", len(ok.Results), len(envs))
	}
	return ok.Results
}

// sendOK sends envs and requires result 0 for each.
func (t *T) sendOK(c *conn, envs ...wire.Envelope) {
	for i, r := range t.send(c, envs...) {
		if r != wire.CodeOK {
			t.Fatalf("envelope %d: result %s (%d), want 0", i, r, r)
		}
	}
}

// sendCode sends one envelope and requires result code.
func (t *T) sendCode(c *conn, env wire.Envelope, code wire.Code) {
	if r := t.send(c, env)[0]; r != code {
		t.Fatalf("result %s (%d), want %s (%d)", r, r, code, code)
	}
}
