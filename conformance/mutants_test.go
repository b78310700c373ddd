package conformance

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/spec/wire"
)

// lenient decodes b with the default (permissive) decoder and encodes the
// result deterministically: what a server that does not check its input
// strictly would act on.
func lenient(b []byte) ([]byte, bool) {
	var v any
	if err := cbor.Unmarshal(b, &v); err != nil {
		return nil, false
	}
	out, err := wire.Marshal(v)
	return out, err == nil
}

// reqType returns the type of a request payload, or 0.
func reqType(p []byte) uint64 {
	var h wire.Header
	if cbor.Unmarshal(p, &h) != nil {
		return 0
	}
	return h.Type
}

// mutants are the deliberately broken servers: each breaks one MUST, and
// the test named by target must catch it.
func mutants() []*mutation {
	var ms []*mutation

	// Acknowledges a send without storing anything.
	ms = append(ms, &mutation{name: "ack-before-store", target: "7.12/1",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var req wire.Send
			if reqType(p) != wire.TypeSend || wire.Unmarshal(p, &req) != nil {
				return p, nil
			}
			return nil, mustPayload(&wire.SendOK{Results: make([]wire.Code, len(req.Envelopes))})
		}})

	// Admits an envelope whose token matches no verifier (through the
	// request lane).
	ms = append(ms, &mutation{name: "token-not-verified", target: "7.9/2",
		response: func(s *session, req, resp []byte) []byte {
			var r wire.Send
			var ok wire.SendOK
			if reqType(req) != wire.TypeSend || wire.Unmarshal(req, &r) != nil || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			for i, c := range ok.Results {
				if c == wire.CodeTokenInvalid {
					e := r.Envelopes[i]
					e.Token = nil
					f, _ := wire.Marshal(&wire.Send{Header: wire.Header{Type: wire.TypeSend}, Envelopes: []wire.Envelope{e}})
					if b, err := s.request(s.down.Context(), f); err == nil {
						var again wire.SendOK
						if wire.DecodeResponse(b, &again) == nil {
							ok.Results[i] = again.Results[0]
						}
					}
				}
			}
			return mustPayload(&ok)
		}})

	// Accepts duplicate map keys (the last one wins).
	ms = append(ms, &mutation{name: "duplicate-keys", target: "1.5/4",
		request: func(s *session, p []byte) ([]byte, []byte) {
			if wire.CodeOf(wire.CheckDeterministic(p)) != wire.CodeMalformed {
				return p, nil
			}
			if out, ok := lenient(p); ok {
				return out, nil
			}
			return p, nil
		}})

	// Accepts integers not in shortest form, and unsorted keys.
	ms = append(ms, &mutation{name: "noncanonical", target: "1.5/1",
		request: func(s *session, p []byte) ([]byte, []byte) {
			if err := wire.CheckDeterministic(p); err == nil || wire.CodeOf(err) != wire.CodeNoncanonical {
				return p, nil
			}
			if out, ok := lenient(p); ok {
				return out, nil
			}
			return p, nil
		}})

	// Ignores the frame limit: serves an oversized frame by dropping the
	// keys it does not know.
	ms = append(ms, &mutation{name: "frame-limit", target: "3.1/8",
		request: func(s *session, p []byte) ([]byte, []byte) {
			if len(p) <= wire.MaxFrame {
				return p, nil
			}
			var m map[uint64]any
			if cbor.Unmarshal(p, &m) != nil {
				return p, nil
			}
			for k := range m {
				if k > 8 {
					delete(m, k)
				}
			}
			out, _ := wire.Marshal(m)
			return out, nil
		}})

	// Accepts a fed-hello for a domain the certificate does not cover.
	ms = append(ms, &mutation{name: "spoofed-origin", target: "8.4.1/2",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var h wire.FedHello
			if !s.fed || reqType(p) != wire.TypeFedHello || wire.Unmarshal(p, &h) != nil || h.Domain == peerDomain {
				return p, nil
			}
			h.Domain = peerDomain
			out, _ := wire.Marshal(&h)
			return out, nil
		}})

	// Serves federation requests before fed-hello.
	ms = append(ms, &mutation{name: "relay-before-hello", target: "8.4/1",
		fedConnect: func(s *session) {
			f, _ := wire.Marshal(&wire.FedHello{Header: wire.Header{Type: wire.TypeFedHello}, Domain: peerDomain})
			if _, err := s.request(s.down.Context(), f); err == nil {
				s.mu.Lock()
				s.hello = true
				s.mu.Unlock()
			}
		},
		request: func(s *session, p []byte) ([]byte, []byte) {
			if s.fed && reqType(p) == wire.TypeFedHello {
				return nil, mustPayload(&wire.FedHelloOK{Domain: "a.test"})
			}
			return p, nil
		}})

	// Pushes acknowledged envelopes again on the next connection.
	acked := &ackMemory{pushed: map[string]map[string]wire.Delivery{}, acked: map[string][][]byte{}}
	ms = append(ms, &mutation{name: "redeliver-acked", target: "7.15/1",
		response: func(s *session, req, resp []byte) []byte {
			var a wire.Ack
			if reqType(req) == wire.TypeAck && wire.Unmarshal(req, &a) == nil {
				acked.ack(s.addr(), a.IDs)
			}
			return resp
		},
		push: func(s *session, p []byte) [][]byte {
			acked.saw(s.addr(), p)
			return [][]byte{p}
		},
		pushStart: func(s *session) [][]byte { return acked.replay(s.addr()) }})

	// Ignores acknowledgements.
	ms = append(ms, &mutation{name: "ack-ignored", target: "7.15/1",
		request: func(s *session, p []byte) ([]byte, []byte) {
			if reqType(p) == wire.TypeAck {
				return nil, mustPayload(&wire.OK{})
			}
			return p, nil
		}})

	// Keeps the sender's address with the envelope and pushes it.
	senders := &senderMemory{by: map[string]string{}}
	ms = append(ms, &mutation{name: "sender-in-clear", target: "7.12/10",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var r wire.Send
			if reqType(p) == wire.TypeSend && wire.Unmarshal(p, &r) == nil {
				for _, e := range r.Envelopes {
					senders.set(e.ID, s.addr())
				}
			}
			return p, nil
		},
		push: func(s *session, p []byte) [][]byte {
			var f map[uint64]any
			if cbor.Unmarshal(p, &f) != nil {
				return [][]byte{p}
			}
			ds, _ := f[1].([]any)
			for _, d := range ds {
				m, _ := d.(map[any]any)
				if id, ok := m[uint64(1)].([]byte); ok {
					if from := senders.get(id); from != "" {
						m[uint64(5)] = from
					}
				}
			}
			out, err := wire.Marshal(f)
			if err != nil {
				return [][]byte{p}
			}
			return [][]byte{out}
		}})

	// Sends no caught-up frame on an empty mailbox.
	ms = append(ms, &mutation{name: "no-caught-up", target: "7.14/1",
		push: func(s *session, p []byte) [][]byte {
			if reqType(p) == wire.TypeCaughtUp {
				return nil
			}
			return [][]byte{p}
		}})

	// Pushes every deliver frame twice on one connection.
	ms = append(ms, &mutation{name: "push-twice", target: "7.14/4",
		push: func(s *session, p []byte) [][]byte {
			if reqType(p) == wire.TypeDeliver {
				return [][]byte{p, p}
			}
			return [][]byte{p}
		}})

	// Announces a frame limit other than the fixed 1 MiB.
	ms = append(ms, &mutation{name: "limits-lie", target: "15.2/1",
		response: func(s *session, req, resp []byte) []byte {
			var info wire.ServerInfoOK
			if reqType(req) != wire.TypeServerInfo || wire.DecodeResponse(resp, &info) != nil {
				return resp
			}
			info.Limits.MaxFrame = 2 << 20
			return mustPayload(&info)
		}})

	// Admits envelopes into a closed request lane.
	ms = append(ms, &mutation{name: "closed-lane-open", target: "7.11/1",
		response: func(s *session, req, resp []byte) []byte {
			var ok wire.SendOK
			if reqType(req) != wire.TypeSend || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			for i, c := range ok.Results {
				if c == wire.CodeRequestLaneClosed {
					ok.Results[i] = wire.CodeOK
				}
			}
			return mustPayload(&ok)
		}})

	// Acts on a request before its FIN.
	ms = append(ms, &mutation{name: "act-before-fin", target: "3.2/4", early: true})

	// Accepts sealed lengths that are not bucket sizes.
	ms = append(ms, &mutation{name: "padding-unchecked", target: "7.12/3",
		response: func(s *session, req, resp []byte) []byte {
			var ok wire.SendOK
			if reqType(req) != wire.TypeSend || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			for i, c := range ok.Results {
				if c == wire.CodeBadPadding {
					ok.Results[i] = wire.CodeOK
				}
			}
			return mustPayload(&ok)
		}})
	// Answers a send for another domain without queueing anything.
	ms = append(ms, &mutation{name: "remote-not-queued", target: "8.7/1",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var r wire.Send
			if reqType(p) != wire.TypeSend || wire.Unmarshal(p, &r) != nil {
				return p, nil
			}
			for _, e := range r.Envelopes {
				if _, d := wire.SplitAddress(e.To.Address); d == "a.test" {
					return p, nil
				}
			}
			return nil, mustPayload(&wire.SendOK{Results: make([]wire.Code, len(r.Envelopes))})
		}})

	// Serves requests that need authentication on an unauthenticated
	// connection (with an empty success).
	ms = append(ms, &mutation{name: "unauthenticated-served", target: "3.3.1/1",
		request: func(s *session, p []byte) ([]byte, []byte) {
			switch t := reqType(p); {
			case s.fed || s.addr() != "" || t <= wire.TypeServerInfo || t > 31:
				return p, nil
			}
			return nil, mustPayload(&wire.OK{})
		}})
	ms = append(ms, ruleMutants()...)
	ms = append(ms, callMutants()...)
	return append(ms, blobMutants()...)
}

// mustPayload encodes a success response payload: v's header is left at
// type 0, the success status.
func mustPayload(v any) []byte {
	b, err := wire.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

type ackMemory struct {
	mu     sync.Mutex
	pushed map[string]map[string]wire.Delivery // by address, by id
	acked  map[string][][]byte
}

func (a *ackMemory) saw(addr string, p []byte) {
	var d wire.Deliver
	if reqType(p) != wire.TypeDeliver || wire.Unmarshal(p, &d) != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pushed[addr] == nil {
		a.pushed[addr] = map[string]wire.Delivery{}
	}
	for _, x := range d.Deliveries {
		a.pushed[addr][string(x.ID)] = x
	}
}

func (a *ackMemory) ack(addr string, ids [][]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acked[addr] = append(a.acked[addr], ids...)
}

func (a *ackMemory) replay(addr string) [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	var d wire.Deliver
	for _, id := range a.acked[addr] {
		if x, ok := a.pushed[addr][string(id)]; ok {
			d.Deliveries = append(d.Deliveries, x)
		}
	}
	if len(d.Deliveries) == 0 || len(d.Deliveries) > wire.MaxDeliveriesPerPush {
		return nil
	}
	f, _ := wire.EncodePush(&d)
	p, _ := wire.ReadFrame(bytes.NewReader(f), wire.MaxFrame)
	return [][]byte{p}
}

type senderMemory struct {
	mu sync.Mutex
	by map[string]string
}

func (m *senderMemory) set(id []byte, addr string) {
	m.mu.Lock()
	m.by[string(id)] = addr
	m.mu.Unlock()
}

func (m *senderMemory) get(id []byte) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.by[string(id)]
}

// TestMutants runs the tests that target each mutant against it, through
// the proxy in front of a fresh reference server, and requires the
// targeted test to fail; the same tests through a proxy without a
// mutation must pass, so that the failure is the mutation's.
func TestMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server for each mutant")
	}
	t.Parallel()
	ms := mutants()
	if len(ms) < 10 {
		t.Fatalf("%d mutants", len(ms))
	}
	var targets []string
	for _, m := range ms {
		targets = append(targets, m.target)
	}
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		rep := runProxied(t, nil, targets)
		for _, r := range rep.Results {
			if r.Status != Pass {
				t.Errorf("%s through a faithful proxy: %s %s", r.ID, r.Status, r.Message)
			}
		}
	})
	for _, m := range ms {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rep := runProxied(t, m, []string{m.target})
			r := rep.Result(m.target)
			if r == nil || r.Status != Fail {
				t.Fatalf("mutant %q was not caught by %s: %+v", m.name, m.target, r)
			}
			t.Logf("caught by %s: %s", m.target, r.Message)
		})
	}
}

func runProxied(t *testing.T, m *mutation, ids []string) *Report {
	t.Helper()
	outAddr := ""
	if m == nil || m.outbound {
		outAddr = freeUDP(t)
	}
	cfg, s := referenceAt(t, server.RegistrationOpen, outAddr)
	px := startProxy(t, s.Addr, s.CADir(), m)
	if outAddr != "" {
		startOutProxy(t, outAddr, cfg.Peer.Listen, s.CADir(), m)
	}
	tests, err := Select(ids)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(testContext(t), proxied(cfg, px), tests)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// ruleMutants break the rules that the faulty servers kept outside the
// project broke unnoticed by earlier versions of the suite (issue 13), and
// more of the same kind: each is caught by the test named as its target.
func ruleMutants() []*mutation {
	var ms []*mutation

	// Accept integers (or lengths) in one longer form than necessary, and
	// only that form: each is what a decoder that checks the other forms
	// lets through.
	for _, f := range []struct {
		name, target string
		fix          func(major, ai byte) bool
	}{
		{"noncanonical-2byte", "1.5/6", func(major, ai byte) bool { return major == 0 && ai == 25 }},
		{"noncanonical-4byte", "1.5/7", func(major, ai byte) bool { return major == 0 && ai == 26 }},
		{"noncanonical-8byte", "1.5/8", func(major, ai byte) bool { return major == 0 && ai == 27 }},
		{"noncanonical-8byte-large", "1.5/9", func(major, ai byte) bool { return major == 0 && ai == 27 }},
		{"noncanonical-map-length", "1.5/11", func(major, ai byte) bool { return major == 5 && ai >= 24 }},
		{"noncanonical-array-length", "1.5/12", func(major, ai byte) bool { return major == 4 && ai >= 24 }},
		{"noncanonical-text-length", "1.5/13", func(major, ai byte) bool { return major == 3 && ai >= 24 }},
	} {
		ms = append(ms, &mutation{name: f.name, target: f.target,
			request: func(s *session, p []byte) ([]byte, []byte) {
				if wire.CodeOf(wire.CheckDeterministic(p)) != wire.CodeNoncanonical {
					return p, nil
				}
				if q, ok := rewriteHeads(p, f.fix); ok && wire.CheckDeterministic(q) == nil {
					return q, nil
				}
				return p, nil
			}})
	}

	// Rejects every integer in the 8-byte form, also where it is the
	// shortest.
	ms = append(ms, &mutation{name: "rejects-8byte-integers", target: "1.5/10",
		request: func(s *session, p []byte) ([]byte, []byte) {
			long := false
			rewriteHeads(p, func(major, ai byte) bool {
				long = long || (major == 0 && ai == 27)
				return false
			})
			if long {
				return nil, errorPayload(wire.CodeNoncanonical)
			}
			return p, nil
		}})

	// Reads a text key "1" as key 1.
	ms = append(ms, &mutation{name: "text-key-as-integer", target: "1.7/6",
		request: func(s *session, p []byte) ([]byte, []byte) {
			return rekey(p, func(k any) any {
				if str, ok := k.(string); ok && str == "1" {
					return uint64(1)
				}
				return k
			}), nil
		}})

	// Reads a negative key -1-n as key n.
	ms = append(ms, &mutation{name: "negative-key-as-integer", target: "1.7/7",
		request: func(s *session, p []byte) ([]byte, []byte) {
			return rekey(p, func(k any) any {
				if n, ok := k.(int64); ok && n < 0 {
					return uint64(-1 - n)
				}
				return k
			}), nil
		}})

	// Rejects text and negative keys instead of ignoring them.
	ms = append(ms, &mutation{name: "rejects-unusual-keys", target: "1.7/8",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var m map[any]any
			if cbor.Unmarshal(p, &m) != nil {
				return p, nil
			}
			for k := range m {
				if _, ok := k.(uint64); !ok {
					return nil, errorPayload(wire.CodeMalformed)
				}
			}
			return p, nil
		}})

	// Accepts an Ed25519 signature whose S is not reduced (it reduces it).
	ms = append(ms, &mutation{name: "signature-s-unreduced", target: "1.11/1",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var a wire.Authenticate
			if reqType(p) != wire.TypeAuthenticate || wire.Unmarshal(p, &a) != nil || len(a.Signature) != 64 {
				return p, nil
			}
			le := slices.Clone(a.Signature[32:])
			slices.Reverse(le)
			sc := new(big.Int).SetBytes(le)
			if sc.Cmp(groupOrder) < 0 {
				return p, nil
			}
			be := sc.Mod(sc, groupOrder).FillBytes(make([]byte, 32))
			slices.Reverse(be)
			a.Signature = append(a.Signature[:32:32], be...)
			out, _ := wire.Marshal(&a)
			return out, nil
		}})

	// Lets an authenticated connection authenticate again as another
	// account or device (it answers success and keeps the first identity).
	ms = append(ms, &mutation{name: "reauthenticate-as-another", target: "5.7/7",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var a wire.Authenticate
			if reqType(p) != wire.TypeAuthenticate || s.addr() == "" || wire.Unmarshal(p, &a) != nil {
				return p, nil
			}
			if a.Address != s.addr() || a.Device != s.dev() {
				return nil, mustPayload(&wire.OK{})
			}
			return p, nil
		}})

	// Checks the authentication state before an authenticate and sets it
	// after: requests that arrive while one is in progress all succeed.
	auths := &authRace{by: map[*session]*authState{}}
	ms = append(ms, &mutation{name: "authenticate-race", target: "5.7/8",
		request: func(s *session, p []byte) ([]byte, []byte) {
			if reqType(p) != wire.TypeAuthenticate || s.addr() != "" {
				return p, nil
			}
			st, first := auths.begin(s)
			if first {
				// A slow signature check: the window in which the
				// others arrive.
				time.Sleep(100 * time.Millisecond)
				return p, nil
			}
			select {
			case <-st.done:
			case <-time.After(10 * time.Second):
			}
			if st.ok {
				return nil, mustPayload(&wire.OK{})
			}
			return p, nil
		},
		response: func(s *session, req, resp []byte) []byte {
			if reqType(req) == wire.TypeAuthenticate {
				auths.end(s, wire.DecodeResponse(resp, &wire.OK{}) == nil)
			}
			return resp
		}})

	// Serves a sender certificate issued to another device of the account
	// (a certificate cache keyed by account).
	certs := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "certificate-per-account", target: "5.9/3",
		response: func(s *session, req, resp []byte) []byte {
			if reqType(req) != wire.TypeGetSenderCert || wire.DecodeResponse(resp, &wire.SenderCertOK{}) != nil {
				return resp
			}
			type cached struct {
				dev  uint32
				resp []byte
			}
			v := certs.getOrSet(s.addr(), cached{s.dev(), resp}).(cached)
			return v.resp
		}})

	// Accepts a used link token again (it issues a fresh token upstream,
	// as the account, in its place).
	links := &linkMemory{issued: map[string]*session{}, used: map[string]bool{}}
	ms = append(ms, &mutation{name: "link-token-reused", target: "5.11.2/4",
		response: func(s *session, req, resp []byte) []byte {
			switch reqType(req) {
			case wire.TypeCreateLink:
				var ok wire.CreateLinkOK
				if wire.DecodeResponse(resp, &ok) == nil {
					links.issue(ok.Token, s)
				}
			case wire.TypeRegister:
				var r wire.Register
				if wire.Unmarshal(req, &r) != nil || r.Link == nil {
					return resp
				}
				if wire.DecodeResponse(resp, &wire.RegisterOK{}) == nil {
					links.use(r.Link)
					return resp
				}
				iss := links.reusable(r.Link)
				if wire.CodeOf(wire.DecodeResponse(resp, &wire.OK{})) != wire.CodeLinkInvalid || iss == nil {
					return resp
				}
				f, _ := wire.Marshal(&wire.CreateLink{Header: wire.Header{Type: wire.TypeCreateLink}})
				b, err := iss.request(s.down.Context(), f)
				var ok wire.CreateLinkOK
				if err != nil || wire.DecodeResponse(b, &ok) != nil {
					return resp
				}
				r.Link = ok.Token
				f, _ = wire.Marshal(&r)
				b, err = s.request(s.down.Context(), f)
				if err != nil {
					return resp
				}
				s.track(f, b)
				return b
			}
			return resp
		}})

	// Tells a link token presented for an address without an account by
	// its code.
	ms = append(ms, &mutation{name: "link-reveals-account", target: "5.11.2/5",
		response: func(s *session, req, resp []byte) []byte {
			var r wire.Register
			if reqType(req) != wire.TypeRegister || wire.Unmarshal(req, &r) != nil || r.Link == nil ||
				wire.CodeOf(wire.DecodeResponse(resp, &wire.OK{})) != wire.CodeLinkInvalid {
				return resp
			}
			if s.px.known(r.Address) {
				return resp
			}
			return errorPayload(wire.CodeUnknownAccount)
		}})

	// Serves get-devices from a cache that lives 5 s, removals or not.
	devCache := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "device-list-cached", target: "6.1/3",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var g wire.GetDevices
			if reqType(p) != wire.TypeGetDevices || wire.Unmarshal(p, &g) != nil {
				return p, nil
			}
			if v, ok := devCache.get(g.Address).(timedResponse); ok && time.Since(v.at) < 5*time.Second {
				return nil, v.resp
			}
			return p, nil
		},
		response: func(s *session, req, resp []byte) []byte {
			var g wire.GetDevices
			if reqType(req) == wire.TypeGetDevices && wire.Unmarshal(req, &g) == nil && wire.DecodeResponse(resp, &wire.GetDevicesOK{}) == nil {
				devCache.set(g.Address, timedResponse{time.Now(), resp})
			}
			return resp
		}})

	// Remembers for 5 s which devices exist and admits envelopes to them,
	// removed or not.
	devices := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "device-existence-cached", target: "6.1/3",
		response: func(s *session, req, resp []byte) []byte {
			var r wire.Send
			var ok wire.SendOK
			if reqType(req) != wire.TypeSend || wire.Unmarshal(req, &r) != nil || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			for i, e := range r.Envelopes {
				key := fmt.Sprint(e.To.Address, "/", e.To.Device)
				switch ok.Results[i] {
				case wire.CodeOK:
					devices.set(key, time.Now())
				case wire.CodeUnknownDevice:
					if at, found := devices.get(key).(time.Time); found && time.Since(at) < 5*time.Second {
						ok.Results[i] = wire.CodeOK
					}
				}
			}
			return mustPayload(&ok)
		}})

	// Gives a newly linked device the identifier of a removed one.
	removed := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "removed-id-reused", target: "4.4/1",
		response: func(s *session, req, resp []byte) []byte {
			switch reqType(req) {
			case wire.TypeRemoveDevice:
				var r wire.RemoveDevice
				if wire.Unmarshal(req, &r) == nil && wire.DecodeResponse(resp, &wire.OK{}) == nil {
					removed.set(s.addr(), r.Device)
				}
			case wire.TypeRegister:
				var r wire.Register
				var ok wire.RegisterOK
				if wire.Unmarshal(req, &r) != nil || r.Link == nil || wire.DecodeResponse(resp, &ok) != nil {
					return resp
				}
				if id, found := removed.get(r.Address).(uint32); found {
					ok.Device = id
					return mustPayload(&ok)
				}
			}
			return resp
		}})

	// Keeps the request budget per device instead of per account.
	perDevice := &counter{n: map[string]int{}}
	ms = append(ms, &mutation{name: "budget-per-device", target: "7.11/4",
		response: func(s *session, req, resp []byte) []byte {
			var r wire.Send
			var ok wire.SendOK
			if reqType(req) != wire.TypeSend || wire.Unmarshal(req, &r) != nil || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			for i, e := range r.Envelopes {
				if e.Token != nil {
					continue
				}
				key := fmt.Sprint(e.To.Address, "/", e.To.Device)
				switch ok.Results[i] {
				case wire.CodeOK:
					perDevice.add(key)
				case wire.CodeRateLimited:
					if perDevice.get(key) < wire.RequestLaneBurst {
						perDevice.add(key)
						ok.Results[i] = wire.CodeOK
					}
				}
			}
			return mustPayload(&ok)
		}})

	// Checks the request budget before the request lane: a spent budget
	// hides a closed lane.
	spent := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "budget-before-lane", target: "7.12/11",
		response: func(s *session, req, resp []byte) []byte {
			var r wire.Send
			var ok wire.SendOK
			if reqType(req) != wire.TypeSend || wire.Unmarshal(req, &r) != nil || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			for i, e := range r.Envelopes {
				switch {
				case e.Token != nil:
				case ok.Results[i] == wire.CodeRateLimited:
					spent.set(e.To.Address, true)
				case ok.Results[i] == wire.CodeRequestLaneClosed && spent.get(e.To.Address) != nil:
					ok.Results[i] = wire.CodeRateLimited
				}
			}
			return mustPayload(&ok)
		}})

	// Announces a retention of 31 days.
	ms = append(ms, &mutation{name: "retention-over-cap", target: "7.13/2",
		response: func(s *session, req, resp []byte) []byte {
			var info wire.ServerInfoOK
			if reqType(req) != wire.TypeServerInfo || wire.DecodeResponse(resp, &info) != nil {
				return resp
			}
			info.Limits.RetentionSeconds = 31 * 24 * 3600
			return mustPayload(&info)
		}})

	// Sends caught-up twice.
	ms = append(ms, &mutation{name: "caught-up-twice", target: "7.14/7",
		push: func(s *session, p []byte) [][]byte {
			if reqType(p) == wire.TypeCaughtUp {
				return [][]byte{p, p}
			}
			return [][]byte{p}
		}})

	// Deletes acknowledged identifiers from every device of the account
	// (it stops pushing them to the other devices).
	ackBy := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "ack-account-wide", target: "7.15/4",
		response: func(s *session, req, resp []byte) []byte {
			var a wire.Ack
			if reqType(req) == wire.TypeAck && wire.Unmarshal(req, &a) == nil {
				for _, id := range a.IDs {
					ackBy.set(s.addr()+"/"+string(id), s.dev())
				}
			}
			return resp
		},
		push: func(s *session, p []byte) [][]byte {
			var d wire.Deliver
			if reqType(p) != wire.TypeDeliver || wire.Unmarshal(p, &d) != nil {
				return [][]byte{p}
			}
			keep := slices.DeleteFunc(slices.Clone(d.Deliveries), func(x wire.Delivery) bool {
				by, ok := ackBy.get(s.addr() + "/" + string(x.ID)).(uint32)
				return ok && by != s.dev()
			})
			if len(keep) == len(d.Deliveries) {
				return [][]byte{p}
			}
			if len(keep) == 0 {
				return nil
			}
			d.Deliveries = keep
			return [][]byte{pushPayload(&d)}
		}})

	// Accepts 0-RTT data, on either protocol.
	ms = append(ms, &mutation{name: "accepts-0rtt", target: "2.6/1", allow0RTT: true})
	ms = append(ms, &mutation{name: "accepts-0rtt-federation", target: "8.3/4", allow0RTT: true})

	// Treats a peer's mailbox_full as permanent: the envelope leaves the
	// queue with a notice.
	fullIDs := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "mailbox-full-permanent", target: "8.9.1/4", outbound: true,
		response: func(s *session, req, resp []byte) []byte {
			var r wire.Relay
			var ok wire.RelayOK
			if !s.outSession() || reqType(req) != wire.TypeRelay || wire.Unmarshal(req, &r) != nil ||
				wire.DecodeResponse(resp, &ok) != nil || len(ok.Results) != len(r.Envelopes) {
				return resp
			}
			for i, c := range ok.Results {
				if c == wire.CodeMailboxFull {
					ok.Results[i] = wire.CodeUnknownDevice // permanent: a notice, and no retry
					fullIDs.set(string(r.Envelopes[i].ID), true)
				}
			}
			return mustPayload(&ok)
		},
		push: func(s *session, p []byte) [][]byte { // the notice says mailbox_full
			var d wire.Deliver
			if reqType(p) != wire.TypeDeliver || wire.Unmarshal(p, &d) != nil {
				return [][]byte{p}
			}
			for i, x := range d.Deliveries {
				var n wire.Notice
				if x.Lane == wire.LaneNotice && wire.Unmarshal(x.Sealed, &n) == nil && fullIDs.get(string(n.ID)) != nil {
					n.Code = wire.CodeMailboxFull
					d.Deliveries[i].Sealed, _ = wire.Marshal(&n)
				}
			}
			return [][]byte{pushPayload(&d)}
		}})

	// Accepts a relay-ok with fewer results than envelopes: the missing
	// results count as delivered.
	ms = append(ms, &mutation{name: "fewer-results-accepted", target: "8.9.1/5", outbound: true,
		response: func(s *session, req, resp []byte) []byte {
			var r wire.Relay
			var m map[uint64]any
			if !s.outSession() || reqType(req) != wire.TypeRelay || wire.Unmarshal(req, &r) != nil || decodeLoose(resp, &m) != nil || m[0] != uint64(0) {
				return resp
			}
			got, _ := m[1].([]any)
			if len(got) >= len(r.Envelopes) {
				return resp
			}
			ok := wire.RelayOK{Results: make([]wire.Code, len(r.Envelopes))}
			for i, c := range got {
				n, _ := c.(uint64)
				ok.Results[i] = wire.Code(n)
			}
			return mustPayload(&ok)
		}})

	// Writes a notice into the mailbox of another device of the account
	// than the one that submitted the envelope.
	ms = append(ms, &mutation{name: "notice-to-other-device", target: "8.9.1/6",
		push: func(s *session, p []byte) [][]byte {
			var d wire.Deliver
			if reqType(p) != wire.TypeDeliver || wire.Unmarshal(p, &d) != nil {
				return [][]byte{p}
			}
			var notices []wire.Delivery
			keep := slices.DeleteFunc(slices.Clone(d.Deliveries), func(x wire.Delivery) bool {
				if x.Lane == wire.LaneNotice {
					notices = append(notices, x)
					return true
				}
				return false
			})
			others := s.others()
			if len(notices) == 0 || len(others) == 0 {
				return [][]byte{p}
			}
			others[0].inject(pushPayload(&wire.Deliver{Deliveries: notices}))
			if len(keep) == 0 {
				return nil
			}
			d.Deliveries = keep
			return [][]byte{pushPayload(&d)}
		}})
	// Says in its message why an authentication failed: "no such
	// account" for an account it does not know.
	ms = append(ms, &mutation{name: "auth-failure-explained", target: "5.7/9",
		response: func(s *session, req, resp []byte) []byte {
			var a wire.Authenticate
			if reqType(req) != wire.TypeAuthenticate || wire.Unmarshal(req, &a) != nil ||
				wire.CodeOf(wire.DecodeResponse(resp, &wire.OK{})) != wire.CodeAuthFailed || s.px.known(a.Address) {
				return resp
			}
			return errorPayloadMsg(wire.CodeAuthFailed, "no such account")
		}})

	// Lists devices newest first.
	ms = append(ms, &mutation{name: "devices-newest-first", target: "6.1/4",
		response: func(s *session, req, resp []byte) []byte {
			var ok wire.GetDevicesOK
			if reqType(req) != wire.TypeGetDevices || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			slices.Reverse(ok.Devices)
			return mustPayload(&ok)
		}})

	// Hands out the last-resort package while one-time packages are left.
	lastResorts := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "last-resort-first", target: "6.4/2",
		response: func(s *session, req, resp []byte) []byte {
			switch reqType(req) {
			case wire.TypePublishKeyPackages:
				var r wire.PublishKeyPackages
				if wire.Unmarshal(req, &r) == nil && r.LastResort != nil && wire.DecodeResponse(resp, &wire.PublishKeyPackagesOK{}) == nil {
					lastResorts.set(fmt.Sprint(s.addr(), "/", s.dev()), r.LastResort)
				}
			case wire.TypeClaimKeyPackage:
				var r wire.ClaimKeyPackage
				var ok wire.ClaimKeyPackageOK
				if wire.Unmarshal(req, &r) != nil || wire.DecodeResponse(resp, &ok) != nil || ok.LastResort {
					return resp
				}
				if lr, found := lastResorts.get(fmt.Sprint(r.Address, "/", r.Device)).([]byte); found {
					return mustPayload(&wire.ClaimKeyPackageOK{KeyPackage: lr, LastResort: true})
				}
			}
			return resp
		}})

	// Keeps the identifiers of acknowledged envelopes, and answers 0
	// without storing when one comes again.
	ms = append(ms, dedupeForever("dedupe-after-ack", "7.3/4", true))
	// The same for its outbound queue: an envelope relayed once is never
	// queued again.
	ms = append(ms, dedupeForever("outbound-dedupe-forever", "8.7/5", false))

	// Ignores acknowledgements of notices (it drops their delivery
	// identifiers from an ack).
	noticeIDs := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "notice-ack-ignored", target: "7.15/5",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var a wire.Ack
			if reqType(p) != wire.TypeAck || wire.Unmarshal(p, &a) != nil {
				return p, nil
			}
			a.IDs = slices.DeleteFunc(a.IDs, func(id []byte) bool { return noticeIDs.get(string(id)) != nil })
			if len(a.IDs) == 0 {
				return nil, mustPayload(&wire.OK{})
			}
			out, _ := wire.Marshal(&a)
			return out, nil
		},
		push: func(s *session, p []byte) [][]byte {
			var d wire.Deliver
			if reqType(p) == wire.TypeDeliver && wire.Unmarshal(p, &d) == nil {
				for _, x := range d.Deliveries {
					if x.Lane == wire.LaneNotice {
						noticeIDs.set(string(x.ID), true)
					}
				}
			}
			return [][]byte{p}
		}})

	// Treats request_lane_closed from a peer as temporary (it retries).
	ms = append(ms, &mutation{name: "lane-closed-temporary", target: "8.9.1/7", outbound: true,
		response: func(s *session, req, resp []byte) []byte {
			var ok wire.RelayOK
			if !s.outSession() || reqType(req) != wire.TypeRelay || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			for i, c := range ok.Results {
				if c == wire.CodeRequestLaneClosed {
					ok.Results[i] = wire.CodeRateLimited
				}
			}
			return mustPayload(&ok)
		}})

	// Treats a per-envelope code it does not know as permanent.
	ms = append(ms, &mutation{name: "unknown-code-permanent", target: "8.9.1/8", outbound: true,
		response: func(s *session, req, resp []byte) []byte {
			var ok wire.RelayOK
			if !s.outSession() || reqType(req) != wire.TypeRelay || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			for i, c := range ok.Results {
				if c > wire.CodeBadPadding {
					ok.Results[i] = wire.CodeUnknownDevice
				}
			}
			return mustPayload(&ok)
		}})
	// Answers register and authenticate on an authenticated connection
	// with already_authenticated before checking their syntax.
	ms = append(ms, &mutation{name: "authentication-state-first", target: "3.3.1/5",
		request: func(s *session, p []byte) ([]byte, []byte) {
			if t := reqType(p); s.addr() != "" && (t == wire.TypeRegister || t == wire.TypeAuthenticate) {
				return nil, errorPayload(wire.CodeAlreadyAuthenticated)
			}
			return p, nil
		}})

	// Checks the fed-hello state before the syntax of a federation
	// request.
	hellos := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "hello-state-first", target: "8.4/3",
		request: func(s *session, p []byte) ([]byte, []byte) {
			if !s.fed || s.outSession() {
				return p, nil
			}
			done := hellos.get(fmt.Sprintf("%p", s)) != nil
			switch t := reqType(p); {
			case t == wire.TypeFedHello && done:
				return nil, errorPayload(wire.CodeAlreadyAuthenticated)
			case t != wire.TypeFedHello && !done:
				return nil, errorPayload(wire.CodePeerUnauthenticated)
			}
			return p, nil
		},
		response: func(s *session, req, resp []byte) []byte {
			if s.fed && reqType(req) == wire.TypeFedHello && wire.DecodeResponse(resp, &wire.FedHelloOK{}) == nil {
				hellos.set(fmt.Sprintf("%p", s), true)
			}
			return resp
		}})
	// Dials peers without verifying their certificate chain.
	ms = append(ms, &mutation{name: "peer-chain-unverified", target: "8.3/5", outbound: true, insecureUpstream: true})
	// Keeps the first last-resort package a device published.
	firstLR := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "last-resort-not-replaced", target: "6.3/5",
		response: func(s *session, req, resp []byte) []byte {
			switch reqType(req) {
			case wire.TypePublishKeyPackages:
				var r wire.PublishKeyPackages
				if wire.Unmarshal(req, &r) == nil && r.LastResort != nil && wire.DecodeResponse(resp, &wire.PublishKeyPackagesOK{}) == nil {
					firstLR.getOrSet(fmt.Sprint(s.addr(), "/", s.dev()), r.LastResort)
				}
			case wire.TypeClaimKeyPackage:
				var r wire.ClaimKeyPackage
				var ok wire.ClaimKeyPackageOK
				if wire.Unmarshal(req, &r) != nil || wire.DecodeResponse(resp, &ok) != nil || !ok.LastResort {
					return resp
				}
				if lr, found := firstLR.get(fmt.Sprint(r.Address, "/", r.Device)).([]byte); found {
					ok.KeyPackage = lr
					return mustPayload(&ok)
				}
			}
			return resp
		}})

	// Forwards a remote claim for the destination's first device.
	ms = append(ms, &mutation{name: "remote-claim-device-dropped", target: "8.11/5", outbound: true,
		request: func(s *session, p []byte) ([]byte, []byte) {
			var r wire.ClaimKeyPackage
			if !s.outSession() || reqType(p) != wire.TypeClaimKeyPackage || wire.Unmarshal(p, &r) != nil {
				return p, nil
			}
			r.Device = 1
			out, _ := wire.Marshal(&r)
			return out, nil
		}})

	// Pushes relayed envelopes without their origin (delivery key 5).
	ms = append(ms, &mutation{name: "origin-dropped", target: "7.14/8",
		push: func(s *session, p []byte) [][]byte {
			var d wire.Deliver
			if reqType(p) != wire.TypeDeliver || wire.Unmarshal(p, &d) != nil {
				return [][]byte{p}
			}
			for i := range d.Deliveries {
				d.Deliveries[i].Origin = ""
			}
			return [][]byte{pushPayload(&d)}
		}})

	// Pushes envelopes of local sends with an origin (delivery key 5).
	ms = append(ms, &mutation{name: "origin-on-local", target: "7.14/8",
		push: func(s *session, p []byte) [][]byte {
			var d wire.Deliver
			if reqType(p) != wire.TypeDeliver || wire.Unmarshal(p, &d) != nil {
				return [][]byte{p}
			}
			for i := range d.Deliveries {
				if d.Deliveries[i].Origin == "" && d.Deliveries[i].Lane != wire.LaneNotice {
					d.Deliveries[i].Origin = peerDomain
				}
			}
			return [][]byte{pushPayload(&d)}
		}})

	// Hands out one-time key packages of a device without limit: a claim
	// answered with the last-resort package while one-time packages that
	// the device published are left gets one of those instead.
	oneTime := &oneTimeMemory{left: map[string][][]byte{}}
	ms = append(ms, &mutation{name: "claims-unlimited", target: "6.5/1",
		response: func(s *session, req, resp []byte) []byte {
			switch reqType(req) {
			case wire.TypePublishKeyPackages:
				var r wire.PublishKeyPackages
				if wire.Unmarshal(req, &r) == nil && wire.DecodeResponse(resp, &wire.PublishKeyPackagesOK{}) == nil {
					oneTime.add(fmt.Sprint(s.addr(), "/", s.dev()), r.OneTime)
				}
			case wire.TypeClaimKeyPackage:
				var r wire.ClaimKeyPackage
				var ok wire.ClaimKeyPackageOK
				if wire.Unmarshal(req, &r) != nil || wire.DecodeResponse(resp, &ok) != nil {
					return resp
				}
				key := fmt.Sprint(r.Address, "/", r.Device)
				if !ok.LastResort {
					oneTime.take(key, ok.KeyPackage)
				} else if kp := oneTime.take(key, nil); kp != nil {
					return mustPayload(&wire.ClaimKeyPackageOK{KeyPackage: kp})
				}
			}
			return resp
		}})
	return ms
}

// oneTimeMemory is the one-time key packages a proxy saw published for
// each device and not yet handed out.
type oneTimeMemory struct {
	mu   sync.Mutex
	left map[string][][]byte
}

func (m *oneTimeMemory) add(key string, kps [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.left[key] = append(m.left[key], kps...)
}

// take removes kp from key's packages and returns it; with kp nil it
// removes and returns any of them, or nil.
func (m *oneTimeMemory) take(key string, kp []byte) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.left[key]
	for i, x := range l {
		if kp == nil || bytes.Equal(x, kp) {
			m.left[key] = slices.Delete(l, i, i+1)
			return x
		}
	}
	return nil
}

// dedupeForever is a mutant that remembers every envelope it saw answered
// 0 for a mailbox of its own domain (local) or of another (not local), and
// answers a send of only such envelopes with 0 without storing anything.
func dedupeForever(name, target string, local bool) *mutation {
	seen := &memo{m: map[string]any{}}
	key := func(e wire.Envelope) (string, bool) {
		_, d := wire.SplitAddress(e.To.Address)
		return fmt.Sprint(e.To.Address, "/", e.To.Device, "/", string(e.ID)), (d == "a.test") == local
	}
	return &mutation{name: name, target: target,
		request: func(s *session, p []byte) ([]byte, []byte) {
			var r wire.Send
			if reqType(p) != wire.TypeSend || wire.Unmarshal(p, &r) != nil {
				return p, nil
			}
			for _, e := range r.Envelopes {
				if k, mine := key(e); !mine || seen.get(k) == nil {
					return p, nil
				}
			}
			return nil, mustPayload(&wire.SendOK{Results: make([]wire.Code, len(r.Envelopes))})
		},
		response: func(s *session, req, resp []byte) []byte {
			var r wire.Send
			var ok wire.SendOK
			if reqType(req) != wire.TypeSend || wire.Unmarshal(req, &r) != nil || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			for i, e := range r.Envelopes {
				if k, mine := key(e); mine && ok.Results[i] == wire.CodeOK {
					seen.set(k, true)
				}
			}
			return resp
		}}
}

// known reports whether an account with address authenticated through the
// proxy.
func (px *proxy) known(address string) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, o := range px.sessions {
		if o.addr() == address {
			return true
		}
	}
	return false
}

// rewriteHeads re-encodes the CBOR item p with every head for which fix
// returns true in its shortest form, and reports whether p is one
// well-formed item of definite lengths.
func rewriteHeads(p []byte, fix func(major, ai byte) bool) ([]byte, bool) {
	var out []byte
	pos := 0
	var item func(depth int) bool
	item = func(depth int) bool {
		if pos >= len(p) || depth > 16 {
			return false
		}
		start := pos
		major, ai := p[pos]>>5, p[pos]&0x1f
		pos++
		var arg uint64
		switch {
		case ai < 24:
			arg = uint64(ai)
		case ai <= 27:
			n := 1 << (ai - 24)
			if pos+n > len(p) {
				return false
			}
			for _, c := range p[pos : pos+n] {
				arg = arg<<8 | uint64(c)
			}
			pos += n
		default:
			return false
		}
		if major != 7 && fix(major, ai) {
			out = appendHead(out, major, arg)
		} else {
			out = append(out, p[start:pos]...)
		}
		switch major {
		case 2, 3:
			if arg > uint64(len(p)-pos) {
				return false
			}
			out = append(out, p[pos:pos+int(arg)]...)
			pos += int(arg)
		case 4, 5:
			if arg > 1<<16 {
				return false
			}
			n := arg
			if major == 5 {
				n *= 2
			}
			for range n {
				if !item(depth + 1) {
					return false
				}
			}
		case 6:
			return item(depth + 1)
		}
		return true
	}
	if !item(0) || pos != len(p) {
		return nil, false
	}
	return out, true
}

// appendHead appends a CBOR head in its shortest form.
func appendHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= 0xff:
		return append(b, m|24, byte(arg))
	case arg <= 0xffff:
		return append(b, m|25, byte(arg>>8), byte(arg))
	case arg <= 0xffffffff:
		return append(b, m|26, byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	}
	b = append(b, m|27)
	for i := 7; i >= 0; i-- {
		b = append(b, byte(arg>>(8*i)))
	}
	return b
}

// rekey re-encodes the request map p with its keys mapped by f, or
// returns p unchanged if it is not a map or nothing changes.
func rekey(p []byte, f func(k any) any) []byte {
	var m map[any]any
	if wire.CheckDeterministic(p) != nil || cbor.Unmarshal(p, &m) != nil {
		return p
	}
	out := map[any]any{}
	changed := false
	for k, v := range m {
		nk := f(k)
		changed = changed || nk != k
		out[nk] = v
	}
	if !changed {
		return p
	}
	b, err := wire.Marshal(out)
	if err != nil {
		return p
	}
	return b
}

// errorPayload is the payload of an error response with code.
func errorPayload(code wire.Code) []byte { return errorPayloadMsg(code, "mutant") }

// errorPayloadMsg is the payload of an error response with code and msg.
func errorPayloadMsg(code wire.Code, msg string) []byte {
	p, _ := wire.ReadFrame(bytes.NewReader(wire.EncodeError(wire.Errorf(code, "%s", msg))), wire.MaxFrame)
	return p
}

// pushPayload is the payload of a push frame.
func pushPayload(v any) []byte {
	f, _ := wire.EncodePush(v)
	p, _ := wire.ReadFrame(bytes.NewReader(f), wire.MaxFrame)
	return p
}

// timedResponse is a response payload and when it was received.
type timedResponse struct {
	at   time.Time
	resp []byte
}

// memo is a map shared by the sessions of a mutant.
type memo struct {
	mu sync.Mutex
	m  map[string]any
}

func (m *memo) get(k string) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[k]
}

func (m *memo) set(k string, v any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[k] = v
}

// getOrSet returns the value of k, setting it to v first if it has none.
func (m *memo) getOrSet(k string, v any) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.m[k]; ok {
		return old
	}
	m.m[k] = v
	return v
}

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[k]++
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

type authState struct {
	done chan struct{}
	ok   bool
	set  bool
}

type authRace struct {
	mu sync.Mutex
	by map[*session]*authState
}

// begin returns the session's authentication in progress, and whether
// the caller is the first: the one that sends it upstream.
func (a *authRace) begin(s *session) (*authState, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.by[s]
	if st == nil {
		st = &authState{done: make(chan struct{})}
		a.by[s] = st
		return st, true
	}
	return st, false
}

func (a *authRace) end(s *session, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st := a.by[s]; st != nil && !st.set {
		st.ok, st.set = ok, true
		close(st.done)
	}
}

type linkMemory struct {
	mu     sync.Mutex
	issued map[string]*session // link token → the session that created it
	used   map[string]bool
}

func (l *linkMemory) issue(tok []byte, s *session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.issued[string(tok)] = s
}

func (l *linkMemory) use(tok []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used[string(tok)] = true
}

// reusable returns the session that created the used token tok, or nil.
func (l *linkMemory) reusable(tok []byte) *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.used[string(tok)] {
		return nil
	}
	return l.issued[string(tok)]
}

// blobMutants break rules of section 11, files: each is caught by the test
// named as its target.
func blobMutants() []*mutation {
	var ms []*mutation

	// Accepts a blob size that is not a padding bucket (it pads it).
	ms = append(ms, &mutation{name: "blob-size-not-bucket", target: "11.6.1/3",
		request: func(s *session, p []byte) ([]byte, []byte) {
			var r wire.BlobCreate
			if reqType(p) != wire.TypeBlobCreate || wire.Unmarshal(p, &r) != nil {
				return p, nil
			}
			if b := wire.PaddedBlobSize(r.Size); b != 0 && b != r.Size {
				r.Size = b
				out, _ := wire.Marshal(&r)
				return out, nil
			}
			return p, nil
		}})

	// Answers received as the bytes of every part received, gaps
	// included.
	sizes, parts := &memo{m: map[string]any{}}, &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "received-counts-gap", target: "11.6/1",
		response: func(s *session, req, resp []byte) []byte {
			switch reqType(req) {
			case wire.TypeBlobCreate:
				var r wire.BlobCreate
				var ok wire.BlobCreateOK
				if wire.Unmarshal(req, &r) == nil && wire.DecodeResponse(resp, &ok) == nil {
					sizes.set(string(ok.ID), r.Size)
				}
			case wire.TypeBlobPut:
				var r wire.BlobPut
				var ok wire.BlobPutOK
				if wire.Unmarshal(req, &r) != nil || wire.DecodeResponse(resp, &ok) != nil {
					return resp
				}
				size, known := sizes.get(string(r.ID)).(uint64)
				if !known {
					return resp
				}
				got := parts.getOrSet(string(r.ID), &sync.Map{}).(*sync.Map)
				got.Store(r.Index, true)
				var n uint64
				got.Range(func(k, _ any) bool {
					n += wire.BlobPartLen(size, k.(uint64))
					return true
				})
				return mustPayload(&wire.BlobPutOK{Received: max(n, ok.Received)})
			}
			return resp
		}})

	// Serves a blob whose parts are all there but that was not finished
	// (it finishes it on the first read).
	ms = append(ms, &mutation{name: "serves-unfinished", target: "11.7.1/3",
		response: func(s *session, req, resp []byte) []byte {
			var r wire.BlobGet
			if reqType(req) != wire.TypeBlobGet || wire.Unmarshal(req, &r) != nil ||
				wire.CodeOf(wire.DecodeResponse(resp, &wire.BlobGetOK{})) != wire.CodeUnknownBlob {
				return resp
			}
			f, _ := wire.Marshal(&wire.BlobFinish{Header: wire.Header{Type: wire.TypeBlobFinish}, ID: r.ID})
			if b, err := s.request(s.down.Context(), f); err != nil || wire.DecodeResponse(b, &wire.BlobFinishOK{}) != nil {
				return resp
			}
			if b, err := s.request(s.down.Context(), req); err == nil {
				return b
			}
			return resp
		}})

	// Finishes a blob with a part missing.
	ms = append(ms, &mutation{name: "finish-incomplete", target: "11.6.4/2",
		response: func(s *session, req, resp []byte) []byte {
			if reqType(req) != wire.TypeBlobFinish || wire.CodeOf(wire.DecodeResponse(resp, &wire.BlobFinishOK{})) != wire.CodeBlobIncomplete {
				return resp
			}
			return mustPayload(&wire.BlobFinishOK{Expires: uint64(time.Now().Add(30 * 24 * time.Hour).UnixMilli())})
		}})

	// Answers a read past the end of a blob with no bytes.
	ms = append(ms, &mutation{name: "get-past-end", target: "11.7.1/2",
		response: func(s *session, req, resp []byte) []byte {
			var r wire.BlobGet
			if reqType(req) != wire.TypeBlobGet || wire.Unmarshal(req, &r) != nil ||
				wire.CodeOf(wire.DecodeResponse(resp, &wire.BlobGetOK{})) != wire.CodeBadRange {
				return resp
			}
			return mustPayload(&wire.BlobGetOK{Data: []byte{}, Size: r.Offset})
		}})

	// Serves fed-blob-get before fed-hello.
	ms = append(ms, &mutation{name: "blob-before-hello", target: "11.7.2/2",
		fedConnect: func(s *session) {
			f, _ := wire.Marshal(&wire.FedHello{Header: wire.Header{Type: wire.TypeFedHello}, Domain: peerDomain})
			if _, err := s.request(s.down.Context(), f); err == nil {
				s.mu.Lock()
				s.hello = true
				s.mu.Unlock()
			}
		},
		request: func(s *session, p []byte) ([]byte, []byte) {
			if s.fed && reqType(p) == wire.TypeFedHello {
				return nil, mustPayload(&wire.FedHelloOK{Domain: "a.test"})
			}
			return p, nil
		}})

	// Serves a blob only to the account that uploaded it.
	owners := &memo{m: map[string]any{}}
	ms = append(ms, &mutation{name: "owner-only-reads", target: "11.7.1/4",
		response: func(s *session, req, resp []byte) []byte {
			switch reqType(req) {
			case wire.TypeBlobCreate:
				var ok wire.BlobCreateOK
				if wire.DecodeResponse(resp, &ok) == nil {
					owners.set(string(ok.ID), s.addr())
				}
			case wire.TypeBlobGet:
				var r wire.BlobGet
				if wire.Unmarshal(req, &r) == nil {
					if o, _ := owners.get(string(r.ID)).(string); o != "" && o != s.addr() {
						return errorPayload(wire.CodeUnknownBlob)
					}
				}
			}
			return resp
		}})

	// Moves the expiry of a finished blob at every blob-finish.
	ms = append(ms, &mutation{name: "finish-moves-expiry", target: "11.6.4/3",
		response: func(s *session, req, resp []byte) []byte {
			var ok wire.BlobFinishOK
			if reqType(req) != wire.TypeBlobFinish || wire.DecodeResponse(resp, &ok) != nil {
				return resp
			}
			return mustPayload(&wire.BlobFinishOK{Expires: uint64(time.Now().Add(30 * 24 * time.Hour).UnixMilli())})
		}})

	// Answers unavailable whenever the peer answered a blob-get with an
	// error, instead of passing the peer's error on.
	ms = append(ms, &mutation{name: "remote-error-swallowed", target: "11.7.1/7",
		response: func(s *session, req, resp []byte) []byte {
			var r wire.BlobGet
			if reqType(req) != wire.TypeBlobGet || wire.Unmarshal(req, &r) != nil || r.Domain != peerDomain {
				return resp
			}
			if c := wire.CodeOf(wire.DecodeResponse(resp, &wire.BlobGetOK{})); c != wire.CodeOK && c != wire.CodeUnavailable {
				p, _ := wire.ReadFrame(bytes.NewReader(wire.EncodeError(&wire.Error{Code: wire.CodeUnavailable, Message: "mutant", RetryAfter: time.Minute})), wire.MaxFrame)
				return p
			}
			return resp
		}})

	// Ignores the quota, and the limit of unfinished uploads: a refused
	// blob-create of a valid size is answered with a made-up blob.
	for _, f := range []struct {
		name, target string
		code         wire.Code
	}{{"quota-ignored", "11.6.1/4", wire.CodeQuotaExceeded}, {"unfinished-limit-ignored", "11.6.1/5", wire.CodeLimitExceeded}} {
		ms = append(ms, &mutation{name: f.name, target: f.target,
			response: func(s *session, req, resp []byte) []byte {
				var r wire.BlobCreate
				if reqType(req) != wire.TypeBlobCreate || wire.Unmarshal(req, &r) != nil || wire.PaddedBlobSize(r.Size) != r.Size ||
					wire.CodeOf(wire.DecodeResponse(resp, &wire.BlobCreateOK{})) != f.code {
					return resp
				}
				id := make([]byte, wire.BlobIDLen)
				rand.Read(id)
				return mustPayload(&wire.BlobCreateOK{ID: id, Expires: uint64(time.Now().Add(24 * time.Hour).UnixMilli())})
			}})
	}
	return ms
}

// callMutants break rules of section 12, calls.
func callMutants() []*mutation {
	var ms []*mutation

	// Sends a member's media packets back to it as well.
	ms = append(ms, &mutation{name: "packet-back-to-sender", target: "12.5/1",
		datagram: func(s *session, up bool, p []byte) [][]byte {
			if up && !s.fed {
				s.down.SendDatagram(p)
			}
			return [][]byte{p}
		}})

	// Admits a call-join that the server refused with code, answering the
	// handle of the room that an earlier call-join got.
	for _, f := range []struct {
		name, target string
		code         wire.Code
	}{
		{"room-token-not-checked", "12.3/2", wire.CodeRoomDenied},
		{"room-size-not-checked", "12.3/3", wire.CodeCallFull},
	} {
		var mu sync.Mutex
		handles := map[string]uint32{}
		ms = append(ms, &mutation{name: f.name, target: f.target,
			response: func(s *session, req, resp []byte) []byte {
				var r wire.CallJoin
				if reqType(req) != wire.TypeCallJoin || wire.Unmarshal(req, &r) != nil {
					return resp
				}
				var ok wire.CallJoinOK
				err := wire.DecodeResponse(resp, &ok)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					handles[string(r.Room)] = ok.Handle
					return resp
				}
				h, known := handles[string(r.Room)]
				if pe := (*wire.Error)(nil); known && errors.As(err, &pe) && pe.Code == f.code {
					return mustPayload(&wire.CallJoinOK{Handle: h})
				}
				return resp
			}})
	}
	return ms
}
