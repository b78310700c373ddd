package conformance

import (
	"bytes"
	"sync"
	"testing"

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
	return ms
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
	cfg, s := reference(t, server.RegistrationOpen)
	px := startProxy(t, s.Addr, s.CADir(), m)
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
