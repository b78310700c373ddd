package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// send admits envelopes (spec/07-envelopes.md): envelopes for this domain
// into their mailboxes, envelopes for other domains into the outbound
// queue. It answers only after every admitted envelope is durable.
func (c *conn) send(ctx context.Context, me store.Mailbox, r *wire.Send) ([]byte, error) {
	results := make([]wire.Code, len(r.Envelopes))
	var local, remote []wire.Envelope
	var localAt, remoteAt []int
	for i, e := range r.Envelopes {
		if c.s.isLocal(e.To.Address) {
			local, localAt = append(local, e), append(localAt, i)
		} else {
			remote, remoteAt = append(remote, e), append(remoteAt, i)
		}
	}
	if len(local) > 0 {
		codes, err := c.s.accept(ctx, local, "")
		if err != nil {
			return nil, err
		}
		for j, code := range codes {
			results[localAt[j]] = code
		}
	}
	if len(remote) > 0 {
		codes, err := c.s.fed.Enqueue(ctx, me, remote)
		if err != nil {
			return nil, fmt.Errorf("outbound queue: %w", err)
		}
		for j, code := range codes {
			results[remoteAt[j]] = code
		}
	}
	return wire.EncodeSuccess(&wire.SendOK{Results: results})
}

// AdmitRelay admits envelopes relayed from another domain exactly as a
// local send. It implements federation.Local.
func (s *Server) AdmitRelay(ctx context.Context, origin string, envs []wire.Envelope) ([]wire.Code, error) {
	return s.accept(ctx, envs, origin)
}

// maxRelayAge bounds how far back a relayed envelope's accepted-at time
// may lie: the origin's outbound expiry plus clock skew
// (spec/08-federation.md).
const maxRelayAge = 7*24*time.Hour + time.Hour

// receivedAt is the time recorded for an envelope: now, or for a relayed
// envelope the time the origin accepted it, kept within [now-maxRelayAge,
// now], so that a sender certificate valid when the sender sent is still
// valid for the recipient after a long outage.
func receivedAt(e *wire.Envelope, relayed bool, now time.Time) time.Time {
	if !relayed || e.AcceptedAt == 0 {
		return now
	}
	t := time.UnixMilli(int64(min(e.AcceptedAt, uint64(now.UnixMilli()))))
	if oldest := now.Add(-maxRelayAge); t.Before(oldest) {
		return oldest
	}
	return t
}

// accept admits envelopes for local mailboxes, stores the admitted ones
// durably, wakes their devices and returns one code per envelope. Envelopes
// relayed from the origin domain (empty for a local send) keep the origin's
// acceptance time, and are stored with their origin.
func (s *Server) accept(ctx context.Context, envs []wire.Envelope, origin string) ([]wire.Code, error) {
	now := time.Now()
	results := make([]wire.Code, len(envs))
	admit := make([]store.Envelope, 0, len(envs))
	index := make([]int, 0, len(envs))
	policies, err := s.prefetchPolicies(ctx, envs)
	if err != nil {
		return nil, err
	}
	for i := range envs {
		e := &envs[i]
		lane, code, err := s.admit(ctx, e, policies, now)
		if err != nil {
			return nil, err
		}
		if code != wire.CodeOK {
			results[i] = code
			continue
		}
		var id store.EnvelopeID
		copy(id[:], e.ID)
		admit = append(admit, store.Envelope{
			ID: id, To: store.Mailbox{Address: e.To.Address, Device: e.To.Device},
			Sealed: e.Sealed, Lane: lane, ReceivedAt: receivedAt(e, origin != "", now), Origin: origin,
		})
		index = append(index, i)
	}
	if len(admit) == 0 {
		return results, nil
	}
	errs, err := s.cfg.Store.Enqueue(ctx, admit)
	if err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	for j, err := range errs {
		switch {
		case err == nil:
			s.hub.notify(admit[j].To)
		case errors.Is(err, store.ErrLimit):
			results[index[j]] = wire.CodeMailboxFull
		case errors.Is(err, store.ErrUnknownDevice):
			results[index[j]] = wire.CodeUnknownDevice
		default:
			return nil, fmt.Errorf("enqueue: %w", err)
		}
	}
	return results, nil
}

// policyBatcher is implemented by stores that read many accounts'
// delivery policies at once (store.Policy for each, in one query).
type policyBatcher interface {
	Policies(ctx context.Context, addresses []string) (map[string]store.Policy, error)
}

// prefetchPolicies returns the policies of the local recipients of envs,
// read at once when the store can and there are several, else an empty map
// that admit fills one recipient at a time.
func (s *Server) prefetchPolicies(ctx context.Context, envs []wire.Envelope) (map[string]store.Policy, error) {
	policies := make(map[string]store.Policy)
	pb, ok := s.cfg.Store.(policyBatcher)
	if !ok || len(envs) < 2 {
		return policies, nil
	}
	seen := make(map[string]bool)
	var addrs []string
	for i := range envs {
		if a := envs[i].To.Address; !seen[a] && s.isLocal(a) {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	if len(addrs) < 2 {
		return policies, nil
	}
	got, err := pb.Policies(ctx, addrs)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	for a, p := range got {
		policies[a] = p
	}
	return policies, nil
}

// admit decides one envelope's lane, or the code that refuses it. A
// non-nil error fails the whole request.
func (s *Server) admit(ctx context.Context, e *wire.Envelope, policies map[string]store.Policy, now time.Time) (store.Lane, wire.Code, error) {
	if !s.isLocal(e.To.Address) {
		return 0, wire.CodeWrongDomain, nil
	}
	dev, err := s.device(ctx, store.Mailbox{Address: e.To.Address, Device: e.To.Device})
	if errors.Is(err, store.ErrUnknownDevice) {
		return 0, wire.CodeUnknownDevice, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("device: %w", err)
	}
	enc := wire.EncLen(dev.KEM)
	if len(e.Sealed) > enc+wire.MaxBucket+wire.AEADTagLen {
		return 0, wire.CodeEnvelopeTooLarge, nil
	}
	if !wire.SealedLenOK(len(e.Sealed), enc) {
		return 0, wire.CodeBadPadding, nil
	}
	p, ok := policies[e.To.Address]
	if !ok {
		p, err = s.cfg.Store.Policy(ctx, e.To.Address)
		if err != nil {
			return 0, 0, fmt.Errorf("policy: %w", err)
		}
		policies[e.To.Address] = p
	}
	if e.Token != nil {
		if !verifyToken(p.Verifiers, e.Token) {
			return 0, wire.CodeTokenInvalid, nil
		}
		return store.LaneToken, wire.CodeOK, nil
	}
	if !p.RequestLaneOpen {
		return 0, wire.CodeRequestLaneClosed, nil
	}
	if ok, _ := s.lane.Allow(e.To.Address, now); !ok {
		return 0, wire.CodeRateLimited, nil
	}
	return store.LaneRequest, wire.CodeOK, nil
}

// verifyToken compares the token's verifier with every stored verifier in
// constant time.
func verifyToken(verifiers [][]byte, token []byte) bool {
	v := wire.TokenVerifier(token)
	match := 0
	for _, w := range verifiers {
		match |= subtle.ConstantTimeCompare(v[:], w)
	}
	return match == 1
}

// Notify wakes the pusher of a local device. It implements
// federation.Local.
func (s *Server) Notify(mb store.Mailbox) { s.hub.notify(mb) }
